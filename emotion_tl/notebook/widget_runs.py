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

    data, pretrained = prepare_run(cfg)
    return train_approach(
        cfg, approach, data, pretrained, Path(cfg.checkpoint_dir), stop=stop, on_epoch=on_epoch
    )


def find_live(cfg: Config, approach: str) -> tuple[Any, dict[str, Path]]:
    """Run the learning-rate finder with the widget's settings; write its curve to the run's
    folder (no checkpoint, no split.csv)."""
    from emotion_tl.data.prepare import prepare_data
    from emotion_tl.model.backbones import load_backbone_weights
    from emotion_tl.training.lr_find import find_learning_rate, write_lr_finding

    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    data = prepare_data(cfg)
    pretrained = load_backbone_weights(cfg.pretrained, cfg.weights, cfg.backbone)
    finding = find_learning_rate(cfg, approach, data, pretrained, steps=FINDER_STEPS)
    return finding, write_lr_finding(finding, Path(cfg.checkpoint_dir), approach)


def run_name(cfg: Config, approach: str) -> str:
    """A folder name that says the settings a widget run was trained with."""
    images = cfg.max_images_per_category or "all"
    return (
        f"{approach}_{'-'.join(cfg.categories)}_e{cfg.epochs}_b{cfg.batch_size}"
        f"_lr{cfg.learning_rate:.3g}_n{images}"
    )
