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
FINDER_STEPS = 100  # training steps of the learning-rate finder (it stops early on divergence)

# train(cfg, approach, on_epoch=callback(history so far), stop=threading.Event) -> result with
# .history, .test_acc and .outputs["confusion_csv"]
Train = Callable[..., Any]
# find(cfg, approach) -> (LrFinding, {"csv": path, "png": path})
Find = Callable[[Config, str], tuple[Any, dict[str, Path]]]


def train_live(
    cfg: Config, approach: str, *, on_epoch: Callable[[list[dict]], None], stop: threading.Event
) -> Any:
    """Prepare the data and train one approach, calling `on_epoch` after every epoch."""
    from emotion_tl.training.approach import train_approach
    from emotion_tl.training.run import prepare_run

    return train_approach(prepare_run(cfg), approach, stop=stop, on_epoch=on_epoch)


def find_live(cfg: Config, approach: str) -> tuple[Any, dict[str, Path]]:
    """Run the learning-rate finder with the widget's settings; write its curve to the run's
    folder (no checkpoint, no split.csv)."""
    from emotion_tl.training.context import make_run_context
    from emotion_tl.training.lr_find import find_learning_rate, write_lr_finding

    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    run = make_run_context(cfg)
    finding = find_learning_rate(run, approach, steps=FINDER_STEPS)
    return finding, write_lr_finding(finding, run.out_dir, approach)


def run_name(cfg: Config, approach: str) -> str:
    """A folder name that says the settings a widget run was trained with."""
    images = cfg.max_images_per_category or "all"
    return (
        f"{approach}_{cfg.backbone}_{'-'.join(cfg.categories)}_e{cfg.epochs}_b{cfg.batch_size}"
        f"_lr{cfg.learning_rate:.3g}_n{images}"
    )
