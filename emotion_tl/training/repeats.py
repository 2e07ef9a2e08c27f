"""Repeated splits (`--repeats K`): both approaches trained on K different splits of the same
images, so that their comparison rests on more than one draw of the test images.

Split 0 is the run's own (seed `seed`, outputs in checkpoint_dir as usual); split k is drawn with
seed `seed + k` under the same rules and trained into `checkpoint_dir/repeats/seed_<seed+k>/`.
The frozen approach reads the features cached in checkpoint_dir by split 0, so its extra splits
cost seconds; fine-tuning trains K times, and the log estimates how long after its first epoch.
A split already finished with the same settings is read back, not trained again, so an
interrupted `--repeats` run continues where it stopped. Scores go to `repeats.csv`, the summary
(evaluation/repeats.py) to `repeats_summary.csv` and `repeats.png`; where the source names the
categories itself, its zero-shot baseline is scored on every split too (`zero_shot` rows).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable

import pandas as pd

from emotion_tl.config import OUTPUT_PREFIX, Config
from emotion_tl.data.files import DataError
from emotion_tl.data.prepare import resplit
from emotion_tl.data.split import check_same_split, save_split
from emotion_tl.evaluation.comparison import ZERO_SHOT, ZERO_SHOT_FILE
from emotion_tl.evaluation.metrics import evaluate_predictions
from emotion_tl.evaluation.predictions import read_predictions_table
from emotion_tl.evaluation.repeats import (
    REPEATS_FILE,
    SUMMARY_FILE,
    describe_repeats,
    summarize_repeats,
)
from emotion_tl.figures.repeats import plot_repeats
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.storage import save_figure_atomic, write_atomic
from emotion_tl.training.approach import train_approach
from emotion_tl.training.context import RunContext
from emotion_tl.training.resume import load_finished
from emotion_tl.training.zero_shot import predict_zero_shot

logger = logging.getLogger("emotion_tl")

REPEATS_DIR = "repeats"
FIGURE_FILE = "repeats.png"


def make_split_run(run: RunContext, split: int) -> RunContext:
    """Split `split` (0: the run's own) of `run`: the same images split again with seed
    `seed + split`, its outputs in its own folder."""
    if split == 0:
        return run
    # checkpoint_dir stays: the frozen approach reads split 0's cached features.
    cfg = dataclasses.replace(run.cfg, seed=run.cfg.seed + split)
    out_dir = run.out_dir / REPEATS_DIR / f"seed_{cfg.seed}"
    return dataclasses.replace(run, cfg=cfg, out_dir=out_dir, data=resplit(run.data, cfg))


def repeat_row(run: RunContext, split: int, approach: str) -> dict[str, object]:
    """One approach's scores on split `split` (`run` is that split's), read back from the
    files its training wrote."""
    paths, data = run.outputs[approach], run.data
    best = load_checkpoint(paths["best"])
    history = pd.read_csv(paths["history_csv"])
    predictions = pd.read_csv(paths["predictions_csv"], dtype=str, keep_default_na=False)
    labels, probabilities = read_predictions_table(predictions, data.class_names)
    scores = evaluate_predictions(labels, probabilities, data.class_names)
    setup = float(best["metrics"].get("setup_seconds", 0.0))
    return {
        "split": split,
        "seed": run.cfg.seed,
        "approach": OUTPUT_PREFIX[approach],
        "accuracy": scores.accuracy,
        "balanced_accuracy": scores.balanced_accuracy,
        "macro_f1": scores.macro_f1,
        "best_epoch": int(best["epoch"]),
        "seconds": round(setup + float(history["seconds"].sum()), 2),
        "train_images": len(data.indices("train")),
        "test_images": len(data.indices("test")),
    }


def zero_shot_row(run: RunContext, split: int) -> dict[str, object] | None:
    """The zero-shot baseline's scores on split `split`, where the source has one; a later
    split's predictions are written to its folder (split 0's the run writes as it ends)."""
    predictions = predict_zero_shot(run)
    if predictions is None:
        return None
    if split:
        write_atomic(run.out_dir / ZERO_SHOT_FILE, predictions.to_csv(index=False).encode())
    labels, probabilities = read_predictions_table(predictions, run.data.class_names)
    scores = evaluate_predictions(labels, probabilities, run.data.class_names)
    return {
        "split": split,
        "seed": run.cfg.seed,
        "approach": ZERO_SHOT,
        "accuracy": scores.accuracy,
        "balanced_accuracy": scores.balanced_accuracy,
        "macro_f1": scores.macro_f1,
        "seconds": 0.0,
        "train_images": len(run.data.indices("train")),
        "test_images": len(run.data.indices("test")),
    }


def is_finished(run: RunContext, approach: str) -> bool:
    """True when `run.out_dir` holds this approach's finished run with these settings."""
    paths = run.outputs[approach]
    tables = paths["history_csv"].is_file() and paths["predictions_csv"].is_file()
    return tables and load_finished(run.cfg.to_dict(), paths) is not None


def train_split(run: RunContext, split: int, stop: threading.Event) -> RunContext:
    """Split the images of `run` with seed `seed + split` and train each approach on it, unless
    a finished run with the same split and settings is already there; the split's run."""
    run = make_split_run(run, split)
    cfg, out_dir = run.cfg, run.out_dir
    try:
        check_same_split(run.data.table, out_dir)
        same_split = True
    except DataError:
        same_split = False
        save_split(run.data.table, out_dir)
    for approach in cfg.approaches:
        if same_split and is_finished(run, approach):
            logger.info(
                "Split %d of %d: %s finished before; reading it back",
                split + 1,
                cfg.repeats,
                approach,
            )
            continue
        interrupted = run.outputs[approach]["interrupted"].exists()
        resume = dataclasses.replace(cfg, resume=same_split and interrupted)
        logger.info("Split %d of %d (seed %d): %s", split + 1, cfg.repeats, cfg.seed, approach)
        train_approach(dataclasses.replace(run, cfg=resume), approach, stop)
    return run


def run_repeats(run: RunContext, stop: threading.Event) -> pd.DataFrame:
    """Splits 1 .. repeats-1 (split 0 is already trained), then repeats.csv (rewritten after
    each split), its summary and figure; returns the summary."""
    approaches, root, rows = run.cfg.approaches, run.out_dir, []
    for split in range(run.cfg.repeats):
        split_run = train_split(run, split, stop) if split else run
        rows += [repeat_row(split_run, split, approach) for approach in approaches]
        rows += [row for row in [zero_shot_row(split_run, split)] if row is not None]
        table = pd.DataFrame(rows)
        write_atomic(root / REPEATS_FILE, table.to_csv(index=False).encode())
    summary = summarize_repeats(table)
    write_atomic(root / SUMMARY_FILE, summary.to_csv(index=False).encode())
    save_figure_atomic(plot_repeats(table, summary), root / FIGURE_FILE)
    logger.info("%s", describe_repeats(summary))
    return summary


def make_time_estimate(
    cfg: Config, approach: str, train_images: int
) -> Callable[[list[dict]], None] | None:
    """With --repeats, an on_epoch hook that logs, after the first epoch of split 0, how long all
    the splits of this approach will take (each split's epochs as `epochs_for` decides them for
    about `train_images` training images)."""
    if cfg.repeats < 2:
        return None
    epochs = cfg.epochs_for(approach, math.ceil(train_images / cfg.batch_size))

    def estimate(history: list[dict]) -> None:
        if len(history) == 1:
            seconds = float(history[0]["seconds"]) * epochs * cfg.repeats
            logger.info(
                "%s: %.1f s per epoch, so %d splits of %d epochs take about %.0f min in all",
                OUTPUT_PREFIX[approach],
                history[0]["seconds"],
                cfg.repeats,
                epochs,
                seconds / 60,
            )

    return estimate
