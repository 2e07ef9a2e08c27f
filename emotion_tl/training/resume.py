"""Stop cleanly on Ctrl-C or SIGTERM, and continue an interrupted run (--resume)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emotion_tl.model.checkpoint import CheckpointError, load_checkpoint
from emotion_tl.training.step import TrainState

logger = logging.getLogger("emotion_tl")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Settings that may differ between an interrupted run and its resumption: they change where and
# how fast it runs, not what it computes.
# repeats: how many more splits; image_cache: where the same decoded images are kept.
MAY_DIFFER = {"resume", "device", "num_workers", "repeats", "image_cache"}


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving its state; `exit_status` is 128 + signal."""

    def __init__(self, signum: int, path: Path) -> None:
        self.signum, self.path = signum, path
        name = signal.Signals(signum).name
        super().__init__(
            f"{name}: training stopped after the current step; saved '{path}' and the history so "
            "far. Continue with the same command plus --resume."
        )

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class StopRequest(threading.Event):
    """Set by the first SIGINT/SIGTERM; remembers which signal it was."""

    signum: int = signal.SIGINT


@contextlib.contextmanager
def catch_stop_signals() -> Iterator[StopRequest]:
    """While inside, the first SIGINT/SIGTERM sets the yielded event instead of killing the
    process; a second one interrupts at once. Handlers are restored on leaving."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread may install handlers; signals then act as usual
        return

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()
        logger.warning(
            "%s received: stopping after the current step (send it again to stop at once).",
            signal.Signals(signum).name,
        )

    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def compare_configs(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings, other than MAY_DIFFER, whose values differ: 'name: saved -> current'."""
    names = sorted((set(saved) | set(current)) - MAY_DIFFER)
    return [
        f"{name}: {saved.get(name)!r} -> {current.get(name)!r}"
        for name in names
        if saved.get(name) != current.get(name)
    ]


def load_finished(
    config: dict[str, Any], paths: dict[str, Path]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The best and the final checkpoint of the approach whose files are `paths`
    (`make_output_paths`) when its run finished with these settings (`config`, but for
    MAY_DIFFER); None when it is missing, interrupted or different."""
    if paths["interrupted"].exists() or not (paths["best"].is_file() and paths["final"].is_file()):
        return None
    best, final = load_checkpoint(paths["best"]), load_checkpoint(paths["final"])
    return None if compare_configs(final["config"], config) else (best, final)


def load_interrupted(path: Path, config: dict[str, Any]) -> tuple[dict[str, Any], TrainState]:
    """The interrupted checkpoint at `path` and the TrainState to continue from."""
    checkpoint = load_checkpoint(path)
    if checkpoint.get("kind") != "interrupted" or "resume" not in checkpoint:
        raise CheckpointError(f"'{path}' is not an interrupted-run checkpoint.")
    differences = compare_configs(checkpoint["config"], config)
    if differences:
        raise CheckpointError(
            f"cannot resume from '{path}': settings differ from the interrupted run ("
            + "; ".join(differences)
            + "). Pass the same options as that run."
        )
    return checkpoint, TrainState(**checkpoint["resume"])
