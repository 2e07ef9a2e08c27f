"""A whole run: prepare the data once, train each approach, write every output.

`run_experiment(cfg)` is what `python -m emotion_tl` does; `prepare_run` (which returns the run's
context: its settings, data and weights) and `training.approach.train_approach` are its two
halves, which the notebooks call one at a time.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_tl.config import OUTPUT_PREFIX, Config
from emotion_tl.data.describe import make_data_report
from emotion_tl.data.faces.crop import FACES_FILE
from emotion_tl.data.split import check_same_split, save_split
from emotion_tl.distributed import is_main, world_size
from emotion_tl.evaluation.sources import SOURCES_FILE
from emotion_tl.storage import (
    check_free_space,
    check_writable,
    estimate_output_bytes,
    remove_stale_temporaries,
    write_atomic,
)
from emotion_tl.training.approach import ApproachResult, train_approach
from emotion_tl.training.context import RunContext, make_run_context
from emotion_tl.training.repeats import make_time_estimate, run_repeats
from emotion_tl.training.resume import catch_stop_signals, load_finished
from emotion_tl.training.zero_shot import write_zero_shot

logger = logging.getLogger("emotion_tl")


def load_result(run: RunContext, approach: str) -> ApproachResult | None:
    """The result of an approach a resumed run had already finished, from its checkpoints."""
    paths = run.outputs[approach]
    finished = load_finished(run.cfg.to_dict(), paths)
    if finished is None:
        return None  # not finished, or finished with other settings: train it again
    best, final = finished
    logger.info(
        "%s finished before the interruption; using its saved results", OUTPUT_PREFIX[approach]
    )
    metrics = best["metrics"]
    return ApproachResult(
        approach=approach,
        trainable_params=int(metrics["trainable_params"]),
        best_epoch=int(best["epoch"]),
        best_val_acc=metrics["val_acc"],
        test_acc=metrics["test_acc"],
        final_test_acc=final["metrics"]["test_acc"],
        seconds_per_epoch=float(np.mean([row["seconds"] for row in final["history"]])),
        peak_memory_mb=float(metrics.get("peak_memory_mb", float("nan"))),
        history=final["history"],
        outputs={"best": paths["best"], "final": paths["final"]},
        early_stop=final.get("early_stop"),
    )


def prepare_run(cfg: Config) -> RunContext:
    """Everything before training: check the output folder, prepare and split the data, load
    the weights; the run's context, which `train_approach` takes.

    With several processes (torchrun), rank 0 alone checks the folder and writes the split.
    """
    out_dir = Path(cfg.checkpoint_dir)
    if is_main():
        check_writable(out_dir)
        check_free_space(out_dir, estimate_output_bytes(len(cfg.approaches)) * cfg.repeats)
        remove_stale_temporaries(out_dir)
    run = make_run_context(cfg)
    if is_main():
        write_data_tables(run)
    logger.info("Backbone weights: %s", run.pretrained.source)
    logger.info(
        "Model input: %s, each channel less %s, over %s (%s)",
        run.backbone.describe_input(run.cfg.image_size),
        [round(m, 4) for m in run.backbone.mean],
        [round(s, 4) for s in run.backbone.std],
        run.backbone.name,
    )
    return run


def write_data_tables(run: RunContext) -> None:
    """Describe the data in the log; save its split (with `cfg.resume`, check that it is the
    saved one) and faces.csv."""
    data = run.data
    logger.info("%s", make_data_report(data, run.cfg.balance))
    faces = data.faces_table()
    if run.cfg.resume:
        check_same_split(data.table, run.out_dir)
    else:
        save_split(data.table, run.out_dir)
    write_atomic(run.out_dir / FACES_FILE, faces.to_csv(index=False).encode())


def run_experiment(cfg: Config) -> list[ApproachResult]:
    """What `python -m emotion_tl` does: check, prepare, train each approach, write outputs.

    Ctrl-C or SIGTERM during training saves an interrupted checkpoint and raises
    TrainingInterrupted; `cfg.resume` continues from it.
    """
    run = prepare_run(cfg)
    results = []
    if cfg.repeats > 1:
        logger.info(
            "Repeated splits: each approach trains on %d splits; frozen weights reuse the cached "
            "features, fine-tuning trains %d times (an estimate follows its first epoch)",
            cfg.repeats,
            cfg.repeats,
        )
    # Signals stop training gracefully only while it runs; elsewhere they act as usual.
    # With several processes a signal would stop each at a different step: they stop as usual.
    with catch_stop_signals() if world_size() == 1 else contextlib.nullcontext() as stop:
        for approach in cfg.approaches:
            hook = None
            if approach == "finetuning":
                train_images = sum(run.data.train_counts().values())
                hook = make_time_estimate(cfg, approach, train_images)
            done = load_result(run, approach) if cfg.resume else None
            results.append(done or train_approach(run, approach, stop, hook))
        if cfg.repeats > 1:
            run_repeats(run, stop)
    if is_main():
        write_zero_shot(run)
    if len(results) == 2 and is_main():
        write_report(run)
    return results


def write_report(run: RunContext) -> None:
    """The comparison report of both approaches; a warning (the models are saved) if it fails."""
    from emotion_tl.evaluation.report import write_comparison_report

    try:
        report = write_comparison_report(run.out_dir, data_dir=run.cfg.data_dir)
        # An earlier several-source run's list: comparison.* is this run's report now.
        (run.out_dir / SOURCES_FILE).unlink(missing_ok=True)
        logger.info("Comparison report: %s", report["md"])
    except (ValueError, OSError) as error:  # the trained models are saved all the same
        logger.warning(
            "Could not write the comparison report (%s); fix that, then run "
            "`python -m emotion_tl compare --checkpoint_dir %s`.",
            error,
            run.out_dir,
        )


def summarize(results: list[ApproachResult]) -> pd.DataFrame:
    """The end-of-run table: one row per approach."""
    return pd.DataFrame(
        {
            "approach": [OUTPUT_PREFIX[r.approach] for r in results],
            "trainable params": [f"{r.trainable_params:,}" for r in results],
            "best val acc": [round(r.best_val_acc, 3) for r in results],
            "test acc": [round(r.test_acc, 3) for r in results],
            "s/epoch": [f"{r.seconds_per_epoch:.2g}" for r in results],
        }
    )
