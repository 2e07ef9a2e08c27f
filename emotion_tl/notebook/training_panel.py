"""The notebooks' training widget: choose settings, train in the background, watch the curves grow
after every epoch, stop (keeping an interrupted checkpoint) and resume.

Training runs in a thread so that the kernel stays free to receive the Stop click; the thread
touches only widget values (curves and tables as PNG and HTML), which ipywidgets sends from any
thread. What the buttons run, and the folder each run trains into, is in widget_runs.py.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from emotion_tl.config import OUTPUT_PREFIX, Config
from emotion_tl.data.files import list_categories
from emotion_tl.model.backbones import BACKBONES, get_backbone
from emotion_tl.notebook.finder_buttons import FinderButtons
from emotion_tl.notebook.widget_runs import (
    WIDGET_RUNS,
    Find,
    Train,
    find_live,
    run_name,
    train_live,
)
from emotion_tl.storage import figure_png

IMAGE_CHOICES = (10, 20, 40, 80, 160)  # images per category offered, besides "all"


def describe_source(name: str) -> str:
    """A source model's name for the dropdown, with what it reads: 'resnet50 (160x160 colour)'."""
    entry = get_backbone(name)
    return f"{entry.name} ({entry.describe_input()})"


class TrainingPanel(FinderButtons):
    """The widget: `panel.widget` is what the notebook displays."""

    def __init__(
        self, cfg: Config, approach: str, train: Train = train_live, find: Find = find_live
    ) -> None:
        import ipywidgets as widgets

        self.cfg, self.approach, self.train, self.find = cfg, approach, train, find
        self.suggested: float | None = None  # the learning rate the finder's suggestion needs
        self.runs: list[dict[str, Any]] = []  # one row per widget run, shown as a table
        self.curve_updates = 0  # how many times the live curves were redrawn
        self.thread: threading.Thread | None = None
        self.stop_event: threading.Event | None = None
        self.stopped_cfg: Config | None = None  # the run Resume continues

        settings = self._make_settings()
        finder, buttons = self._make_buttons()
        self.widget = widgets.VBox([*settings, finder, buttons, *self._make_outputs()])

    def _make_settings(self) -> list[Any]:
        """The choices a run is trained with, from the notebook's Config, top to bottom."""
        import ipywidgets as widgets

        cfg = self.cfg
        categories = list_categories(cfg.data_dir) or list(cfg.categories)
        epochs = cfg.epochs_for(self.approach)  # the approach's own default when unset
        self.epochs = widgets.IntSlider(
            value=epochs, min=1, max=max(50, 2 * epochs), description="epochs"
        )
        self.categories = widgets.SelectMultiple(
            options=categories,
            value=[c for c in cfg.categories if c in categories],
            rows=min(len(categories), 8),
            description="categories",
        )
        hint = widgets.HTML("Ctrl/Shift-click to choose several categories.")
        images = sorted({*IMAGE_CHOICES, cfg.max_images_per_category or IMAGE_CHOICES[0]})
        self.images = widgets.Dropdown(
            options=[("all", None), *[(str(n), n) for n in images]],
            value=cfg.max_images_per_category,
            description="images/category",
            style={"description_width": "initial"},
        )
        self.batch_size = widgets.Dropdown(
            options=sorted({8, 16, 32, 64, cfg.batch_size}),
            value=cfg.batch_size,
            description="batch",
        )
        self.learning_rate = widgets.FloatLogSlider(
            value=cfg.learning_rate, base=10, min=-5, max=-1, step=0.25, description="learning rate"
        )
        self.rate_used = widgets.HTML()
        self.learning_rate.observe(lambda _: self.show_rate(), names="value")
        self.show_rate()
        # The source model: every entry of the backbone table (the notebook's own first).
        sources = list(dict.fromkeys([get_backbone(cfg.backbone).name, *BACKBONES]))
        self.backbone = widgets.Dropdown(
            options=[(describe_source(name), name) for name in sources],
            value=sources[0],
            description="source model",
            style={"description_width": "initial"},
        )
        chosen = [self.backbone, self.epochs, self.categories, hint, self.images, self.batch_size]
        return [*chosen, self.learning_rate, self.rate_used]

    def _make_outputs(self) -> list[Any]:
        """What a run shows: the status line, the finder's curve, the training curves, the
        confusion matrix and the table of runs."""
        import ipywidgets as widgets

        self.status = widgets.HTML("Nothing trained yet: choose settings and click Train.")
        # The finder's steps so far; hidden while the finder is not running.
        self.finder_progress = widgets.IntProgress(
            value=0, min=0, max=1, description="finder", layout={"display": "none"}
        )
        # Hidden until there is a picture: an empty image shows as a broken one.
        self.finder = widgets.Image(format="png", layout={"display": "none"})
        self.curves = widgets.Image(format="png", layout={"display": "none"})
        self.curves.add_class("emotion-tl-curves")  # how the browser test finds them
        self.matrix = widgets.Image(format="png", layout={"display": "none"})
        self.table = widgets.HTML()
        return [
            self.status,
            self.finder_progress,
            self.finder,
            self.curves,
            self.matrix,
            self.table,
        ]

    def _make_buttons(self) -> tuple[Any, Any]:
        """The finder's row (Find, Use) and the training row (Train, Stop, Resume)."""
        import ipywidgets as widgets

        label = OUTPUT_PREFIX[self.approach]
        self.train_button = widgets.Button(
            description=f"Train {label}", button_style="primary", layout={"width": "auto"}
        )
        self.stop_button = widgets.Button(description="Stop", button_style="danger", disabled=True)
        self.resume_button = widgets.Button(description="Resume", disabled=True)
        self.train_button.on_click(lambda _: self.start(resume=False))
        self.stop_button.on_click(lambda _: self.request_stop())
        self.resume_button.on_click(lambda _: self.start(resume=True))
        self.find_button = widgets.Button(
            description="Find learning rate", layout={"width": "auto"}
        )
        self.use_button = widgets.Button(
            description="Use suggested rate", disabled=True, layout={"width": "auto"}
        )
        self.find_button.on_click(lambda _: self.start_find())
        self.use_button.on_click(lambda _: self.use_suggestion())
        return (
            widgets.HBox([self.find_button, self.use_button]),
            widgets.HBox([self.train_button, self.stop_button, self.resume_button]),
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Displayed as its widget: a notebook cell can end with the panel itself."""
        return self.widget._repr_mimebundle_(**kwargs)

    def show_rate(self) -> None:
        backbone, head = dataclasses.replace(
            self.cfg, learning_rate=self.learning_rate.value
        ).lr_for(self.approach)
        if self.approach == "frozen":
            words = f"new final layer {head:.2g}; backbone frozen"
        else:
            words = f"every layer {backbone:.2g} (the learning rate / 10)"
            if head != backbone:
                words = f"backbone {backbone:.2g} (the learning rate / 10), "
                words += f"new final layer {head:.2g}"
        self.rate_used.value = f"Rate used: {words}"

    def chosen_config(self) -> Config:
        """The notebook's Config with the widget's choices, in this run's own folder."""
        source = self.backbone.value
        chosen = dataclasses.replace(
            self.cfg,
            backbone=source,
            # another source than the notebook's reads its own default side
            image_size=self.cfg.image_size if source == self.cfg.backbone else None,
            epochs=self.epochs.value,
            categories=tuple(self.categories.value),
            max_images_per_category=self.images.value,
            batch_size=self.batch_size.value,
            learning_rate=self.learning_rate.value,
        )
        folder = Path(self.cfg.checkpoint_dir) / WIDGET_RUNS / run_name(chosen, self.approach)
        return dataclasses.replace(chosen, checkpoint_dir=str(folder))

    def set_running(self, running: bool) -> None:
        self.train_button.disabled = self.find_button.disabled = running
        self.use_button.disabled = running or self.suggested is None
        self.stop_button.disabled = not running
        self.resume_button.disabled = running or self.stopped_cfg is None

    def start(self, *, resume: bool) -> None:
        """Train (or, with `resume`, continue the stopped run) in a background thread."""
        if self.thread is not None and self.thread.is_alive():
            return
        if resume:
            cfg = dataclasses.replace(self.stopped_cfg, resume=True)
        else:
            try:
                cfg = self.chosen_config()
            except ValueError as error:  # for example fewer than two categories chosen
                self.status.value = f"<b>Cannot train:</b> {error}"
                return
        self.stopped_cfg, self.stop_event = None, threading.Event()
        self.matrix.layout.display = "none"  # the last run's
        if not resume:
            self.curves.layout.display = "none"
        self.set_running(True)
        self.status.value = f"{'Resuming' if resume else 'Training'} into {cfg.checkpoint_dir} ..."
        self.thread = threading.Thread(target=self.work, args=(cfg,), daemon=True)
        self.thread.start()

    def request_stop(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()
            self.status.value = "Stopping after the current step ..."  # training or the finder

    def show_epoch(self, history: list[dict[str, float]]) -> None:
        from emotion_tl.figures.training import plot_history

        self.curves.value = figure_png(plot_history(history, OUTPUT_PREFIX[self.approach]), dpi=80)
        self.curves.layout.display = ""
        self.curve_updates += 1
        last = history[-1]
        self.status.value = f"Epoch {int(last['epoch'])}: validation accuracy {last['val_acc']:.3f}"

    def work(self, cfg: Config) -> None:
        """The thread: train, then show the outcome in the status line and the runs table."""
        from emotion_tl.figures.evaluation import plot_confusion_matrix
        from emotion_tl.training.resume import TrainingInterrupted

        row = {
            "run": Path(cfg.checkpoint_dir).name,
            "epochs": cfg.epochs_for(self.approach),
            "images/category": cfg.max_images_per_category or "all",
        }
        try:
            result = self.train(cfg, self.approach, on_epoch=self.show_epoch, stop=self.stop_event)
        except TrainingInterrupted as stopped:
            self.stopped_cfg = cfg
            self.status.value = f"Stopped. Saved {stopped.path}; Resume continues from it."
            row |= {"outcome": "stopped", "test accuracy": "-"}
        except Exception as error:  # shown to the learner rather than lost in the thread
            self.status.value = f"<b>Training failed:</b> {type(error).__name__}: {error}"
            row |= {"outcome": "failed", "test accuracy": "-"}
        else:
            matrix = pd.read_csv(result.outputs["confusion_csv"], index_col=0)
            title = f"test accuracy {result.test_acc:.3f}"
            self.matrix.value = figure_png(plot_confusion_matrix(matrix, title), dpi=80)
            self.matrix.layout.display = ""
            best = max(h["val_acc"] for h in result.history)
            self.status.value = f"Done: best validation accuracy {best:.3f}, {title}."
            row |= {"outcome": "done", "test accuracy": round(result.test_acc, 3)}
        finally:
            self.runs.append(row)
            self.table.value = pd.DataFrame(self.runs).to_html(index=False)
            self.set_running(False)
