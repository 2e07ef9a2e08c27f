"""The training widget's finder row: **Find learning rate** runs the quick finder in a background
thread (a bar counts its steps, Stop ends it with the curve so far) and shows its curve and
suggestion; **Use suggested rate** puts the suggestion on the slider. TrainingPanel
(training_panel.py) has these methods and the widgets they touch."""

from __future__ import annotations

import threading
from typing import Any

from emotion_tl.config import Config


class FinderButtons:
    """The finder row's methods; the panel holds the widgets (`finder`, `finder_progress`,
    `status`, `learning_rate`), `find`, `thread`, `stop_event` and `suggested`."""

    thread: threading.Thread | None
    stop_event: threading.Event | None
    suggested: float | None
    approach: str
    find: Any
    status: Any
    finder: Any
    finder_progress: Any
    learning_rate: Any

    # and the panel's chosen_config() -> Config and set_running(running: bool)

    def start_find(self) -> None:
        """Run the learning-rate finder on the chosen settings in a background thread."""
        if self.thread is not None and self.thread.is_alive():
            return
        try:
            cfg = self.chosen_config()
        except ValueError as error:
            self.status.value = f"<b>Cannot run the finder:</b> {error}"
            return
        from emotion_tl.training.lr_find import QUICK_STEPS

        self.stop_event = threading.Event()  # Stop ends the finder with the curve so far
        self.set_running(True)
        self.finder_progress.value, self.finder_progress.max = 0, QUICK_STEPS
        self.finder_progress.layout.display = ""
        self.status.value = (
            f"Finding a learning rate: up to {QUICK_STEPS} training steps at rising rates "
            "(Stop ends it with the curve so far) ..."
        )
        self.thread = threading.Thread(target=self.find_work, args=(cfg,), daemon=True)
        self.thread.start()

    def find_work(self, cfg: Config) -> None:
        """The thread: the finder's curve, its suggestion in words, and the Use button."""
        from emotion_tl.training.lr_find import describe_finding, learning_rate_for

        def on_step(done: int, total: int) -> None:
            self.finder_progress.max, self.finder_progress.value = total, done

        try:
            finding, paths = self.find(cfg, self.approach, stop=self.stop_event, on_step=on_step)
        except Exception as error:  # shown to the learner rather than lost in the thread
            self.status.value = f"<b>The finder failed:</b> {type(error).__name__}: {error}"
        else:
            self.finder.value = paths["png"].read_bytes()
            self.finder.layout.display = ""
            words = describe_finding(finding, cfg, self.approach)
            if self.stop_event.is_set():
                words = f"Stopped after {len(finding.rates)} steps. " + words
            self.suggested = None
            if finding.suggestion is not None:
                slider = self.learning_rate
                wanted = learning_rate_for(finding.suggestion, cfg, self.approach)
                self.suggested = min(max(wanted, 10.0**slider.min), 10.0**slider.max)
                words += f" <b>Use suggested rate</b> sets the slider to {self.suggested:.2g}."
            self.status.value = words
        finally:
            self.finder_progress.layout.display = "none"
            self.set_running(False)

    def use_suggestion(self) -> None:
        if self.suggested is not None:
            self.learning_rate.value = self.suggested
