"""What the training widget's buttons run: training or the learning-rate finder, each in the
run's own folder under `checkpoint_dir/widget_runs/`, named by its settings, so widget runs never
overwrite the notebook's own outputs or each other's.

The panel (training_panel.py) takes these as arguments, so a test can hand it quicker ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emotion_tl.config import Config

WIDGET_RUNS = "widget_runs"  # sub-folder of checkpoint_dir for runs started from the widgets

# train(cfg, approach, on_epoch=callback(history so far), stop=threading.Event) -> result with
# .history, .test_acc and .outputs["confusion_csv"]
Train = Callable[..., Any]
# find(cfg, approach, stop=threading.Event, on_step=callback(done, total))
#   -> (LrFinding, {"csv": path, "png": path})
Find = Callable[..., tuple[Any, dict[str, Path]]]


def train_live(
    cfg: Config, approach: str, *, on_epoch: Callable[[list[dict]], None], stop: threading.Event
) -> Any:
    """Prepare the data and train one approach, calling `on_epoch` after every epoch."""
    from emotion_tl.training.approach import train_approach
    from emotion_tl.training.run import prepare_run

    return train_approach(prepare_run(cfg), approach, stop=stop, on_epoch=on_epoch)


def find_live(
    cfg: Config,
    approach: str,
    *,
    stop: threading.Event,
    on_step: Callable[[int, int], None],
) -> tuple[Any, dict[str, Path]]:
    """Run the quick learning-rate finder (`lr-find --quick`) with the widget's settings, until
    it ends or `stop` is set; write its curve to the run's folder (no checkpoint, no
    split.csv)."""
    from emotion_tl.training import lr_find
    from emotion_tl.training.context import make_run_context

    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    run = lr_find.quick_finder_run(make_run_context(cfg), approach)
    finding = lr_find.find_learning_rate(
        run, approach, steps=lr_find.QUICK_STEPS, stop=stop, on_step=on_step
    )
    return finding, lr_find.write_lr_finding(finding, run.out_dir, approach)


def run_name(cfg: Config, approach: str) -> str:
    """A folder name that says the settings a widget run was trained with."""
    images = cfg.max_images_per_category or "all"
    return (
        f"{approach}_{cfg.backbone}_{'-'.join(cfg.categories)}_e{cfg.epochs_for(approach)}"
        f"_b{cfg.batch_size}_lr{cfg.learning_rate:.3g}_n{images}"
    )
