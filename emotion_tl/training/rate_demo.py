"""What too high a learning rate does to fine-tuning: the same small run at two rates.

Every layer learns, on a subset of the images for a few epochs, once at approach A's rate
(`learning_rate`) and once at the tenth of it that fine-tuning uses. Both runs share one split
and seed, so the rate is the only difference. Outputs go to `checkpoint_dir/rate_demo/`, never
over the notebook's own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from emotion_tl.config import FINETUNING_LR_DIVISOR, Config

RATE_DEMO = "rate_demo"  # sub-folder of checkpoint_dir


def demo_rates(cfg: Config) -> dict[str, float]:
    """The two backbone rates compared, by the name their curves carry."""
    high, low = cfg.learning_rate, cfg.learning_rate / FINETUNING_LR_DIVISOR
    return {f"every layer at {high:g} (A's rate)": high, f"every layer at {low:g}": low}


def compare_learning_rates(
    cfg: Config, images_per_category: int = 40, epochs: int = 4
) -> dict[str, list[dict[str, float]]]:
    """Fine-tune at each of `demo_rates(cfg)`; the histories by name (for `plot_histories`)."""
    from emotion_tl.training.approach import train_approach
    from emotion_tl.training.run import prepare_run

    root = Path(cfg.checkpoint_dir) / RATE_DEMO
    limit = min(images_per_category, cfg.max_images_per_category or images_per_category)
    base = dataclasses.replace(
        cfg,
        approach="finetuning",
        epochs=epochs,
        max_images_per_category=limit,
        checkpoint_dir=str(root),
        finetuning_head_lr=None,  # one rate for every layer, the head included
        resume=False,
    )
    run = prepare_run(base)
    histories = {}
    for name, rate in demo_rates(cfg).items():
        # Fine-tuning trains at learning_rate / 10, so this run's learning_rate is 10x the rate.
        rated = dataclasses.replace(base, learning_rate=rate * FINETUNING_LR_DIVISOR)
        moved = dataclasses.replace(run, cfg=rated, out_dir=root / f"lr{rate:g}")
        histories[name] = train_approach(moved, "finetuning").history
    return histories


def rate_table(histories: dict[str, list[dict[str, float]]]) -> pd.DataFrame:
    """One row per rate: its validation loss after the first and last epochs, its highest
    validation loss, its best validation accuracy and its training time (seconds, all epochs)."""
    rows = {}
    for name, history in histories.items():
        frame = pd.DataFrame(history)
        rows[name] = {
            "val loss, first epoch": frame["val_loss"].iloc[0],
            "val loss, last epoch": frame["val_loss"].iloc[-1],
            "highest val loss": frame["val_loss"].max(),
            "best val acc": frame["val_acc"].max(),
            "seconds": frame["seconds"].sum(),
        }
    return pd.DataFrame(rows).T.round(3)
