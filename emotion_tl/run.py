"""A whole run: prepare the data once, train each approach, write every output."""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from emotion_tl.balance import make_class_weights, resolve_balance
from emotion_tl.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from emotion_tl.config import OUTPUT_PREFIX, Config
from emotion_tl.data import PreparedData, make_loaders, prepare_data, save_split
from emotion_tl.device import (
    measure_peak_memory_mb,
    reset_peak_memory,
    resolve_device,
    resolve_precision,
)
from emotion_tl.evaluate import make_predictions_table
from emotion_tl.features import FeatureHead, make_feature_loaders
from emotion_tl.io import (
    check_free_space,
    check_writable,
    estimate_output_bytes,
    remove_stale_temporaries,
    save_figure_atomic,
    write_atomic,
)
from emotion_tl.metrics import compute_accuracy, make_confusion_table
from emotion_tl.model import build_model, count_trainable, make_param_groups
from emotion_tl.plots import plot_confusion_matrix, plot_history
from emotion_tl.resume import (
    TrainingInterrupted,
    catch_stop_signals,
    check_same_split,
    compare_configs,
    load_interrupted,
)
from emotion_tl.scan import make_data_report
from emotion_tl.train import TrainState, fit, predict_probabilities

logger = logging.getLogger("emotion_tl")


@dataclass
class ApproachResult:
    """What one approach's training produced."""

    approach: str
    trainable_params: int
    best_epoch: int
    best_val_acc: float
    test_acc: float
    final_test_acc: float
    seconds_per_epoch: float
    peak_memory_mb: float
    history: list[dict[str, float]]
    outputs: dict[str, Path] = field(default_factory=dict)


@dataclass
class Pretrained:
    """The backbone weights a run starts from (or none) and where they came from."""

    weights: object | None  # emotion_tl.weights.PretrainedWeights
    source: str
    stride_in_1x1: bool


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_backbone_weights(cfg: Config) -> Pretrained:
    """ImageNet weights as the config asks, or random initialisation with --no_pretrained."""
    if not cfg.pretrained:
        return Pretrained(None, "none (random initialisation)", stride_in_1x1=False)
    from emotion_tl.weights import load_pretrained_weights

    weights = load_pretrained_weights(cfg.weights)
    return Pretrained(weights, weights.source, weights.stride_in_1x1)


def is_better(stats: dict[str, float], best: dict[str, float] | None) -> bool:
    """Higher validation accuracy wins; on a tie, lower validation loss."""
    if best is None:
        return True
    if stats["val_acc"] != best["val_acc"]:
        return stats["val_acc"] > best["val_acc"]
    return stats["val_loss"] < best["val_loss"]


def train_approach(
    cfg: Config,
    approach: str,
    data: PreparedData,
    pretrained: Pretrained,
    out_dir: Path,
    stop: threading.Event | None = None,
) -> ApproachResult:
    """Train one approach, keep its best and final checkpoints, and write its figures and tables.

    When `stop` is set, save an interrupted checkpoint and raise TrainingInterrupted; with
    `cfg.resume`, continue from such a checkpoint.
    """
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    seed_everything(cfg.seed)
    model = build_model(
        len(data.class_names), pretrained.weights, stride_in_1x1=pretrained.stride_in_1x1
    )
    # `net` is what fit trains and predictions run through: the model itself, or for the frozen
    # approach its head alone on cached backbone features (the same fc object as model.fc).
    if approach == "frozen" and cfg.feature_cache:
        net = FeatureHead(model.fc)
        loaders = make_feature_loaders(model, data, cfg, device=device, precision=precision)
    else:
        net = model
        loaders = make_loaders(data, cfg, device=device)
    backbone_lr, head_lr = cfg.lr_for(approach)
    make_param_groups(model, approach, backbone_lr=backbone_lr, head_lr=head_lr)
    trainable = count_trainable(model)
    prefix = OUTPUT_PREFIX[approach]
    paths = {
        "best": out_dir / f"{prefix}_best.pt",
        "final": out_dir / f"{prefix}_final.pt",
        "history_csv": out_dir / f"{prefix}_history.csv",
        "history_png": out_dir / f"{prefix}_history.png",
        "confusion_csv": out_dir / f"{prefix}_confusion_matrix.csv",
        "confusion_png": out_dir / f"{prefix}_confusion_matrix.png",
        "predictions_csv": out_dir / f"{prefix}_test_predictions.csv",
        "interrupted": out_dir / f"{prefix}_interrupted.pt",
    }
    logger.info(
        "Approach %s: %s trainable parameters, device %s, precision %s",
        prefix,
        f"{trainable:,}",
        device,
        precision,
    )

    def checkpoint(kind: str, epoch: int, metrics: dict, history: list) -> dict:
        return make_checkpoint(
            model,
            class_names=data.class_names,
            config=cfg.to_dict(),
            approach=approach,
            weights_source=pretrained.source,
            stride_in_1x1=pretrained.stride_in_1x1,
            epoch=epoch,
            metrics=metrics,
            history=history,
            device=str(device),
            precision=precision,
            kind=kind,
        )

    state = TrainState()
    best: dict = {"stats": None, "state": None}
    reset_peak_memory(device)
    if cfg.resume and paths["interrupted"].is_file():
        saved, state = load_interrupted(paths["interrupted"], cfg.to_dict())
        model.load_state_dict(saved["state_dict"])
        if state.history:  # the best epoch so far, to compare the coming ones against
            best_saved = load_checkpoint(paths["best"])
            best["stats"], best["state"] = best_saved["metrics"], best_saved["state_dict"]
        logger.info("Resuming %s at epoch %d, step %d", prefix, state.epoch, state.step)
    elif cfg.resume:
        logger.warning(
            "No %s to resume from; training %s from the start.", paths["interrupted"], prefix
        )
    history = state.history  # fit appends each finished epoch

    def on_epoch_end(stats: dict[str, float], _: torch.nn.Module) -> None:
        # `model`, not fit's argument: with cached features fit trains the head alone.
        if is_better(stats, best["stats"]):
            best["stats"] = stats
            best["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            save_checkpoint(checkpoint("best", stats["epoch"], stats, history), paths["best"])

    train_labels = data.labels()[data.indices("train")]
    counts = {name: int((train_labels == i).sum()) for i, name in enumerate(data.class_names)}
    balance = resolve_balance(cfg.balance, counts)
    if balance == "sampler" and net is not model:
        # Cached features come in a fixed per-epoch order; weight the loss instead of resampling.
        logger.info("Balancing %s with class weights (cached features cannot be resampled)", prefix)
        balance = "weights"
    class_weights = None
    if balance == "weights":
        class_weights = make_class_weights(train_labels, len(data.class_names))
    fit(
        net,
        loaders["train"],
        loaders["val"],
        approach=approach,
        epochs=cfg.epochs,
        backbone_lr=backbone_lr,
        head_lr=head_lr,
        device=device,
        precision=precision,
        on_epoch_end=on_epoch_end,
        progress_desc=prefix,
        class_weights=class_weights,
        state=state,
        stop=stop,
    )
    if state.stopped:
        epoch = len(history)
        metrics = history[-1] if history else {}
        interrupted = checkpoint("interrupted", epoch, metrics, history)
        save_checkpoint(interrupted | {"resume": state.to_dict()}, paths["interrupted"])
        write_atomic(paths["history_csv"], pd.DataFrame(history).to_csv(index=False).encode())
        raise TrainingInterrupted(getattr(stop, "signum", 2), paths["interrupted"])

    # The final model first, then the best one, each scored on the untouched test split.
    final_probabilities, test_labels = predict_probabilities(
        net, loaders["test"], device, precision
    )
    final_test_acc = compute_accuracy(test_labels, final_probabilities)
    final_metrics = history[-1] | {"test_acc": final_test_acc}
    save_checkpoint(checkpoint("final", cfg.epochs, final_metrics, history), paths["final"])

    model.load_state_dict(best["state"])
    probabilities, _ = predict_probabilities(net, loaders["test"], device, precision)
    test_acc = compute_accuracy(test_labels, probabilities)
    peak_memory_mb = measure_peak_memory_mb(device)
    best_metrics = best["stats"] | {
        "test_acc": test_acc,
        "trainable_params": trainable,
        "peak_memory_mb": peak_memory_mb,
    }
    save_checkpoint(
        checkpoint("best", best["stats"]["epoch"], best_metrics, history), paths["best"]
    )

    table = make_confusion_table(test_labels, probabilities.argmax(1), data.class_names)
    write_atomic(paths["confusion_csv"], table.to_csv().encode())
    test_files = data.table["file"].to_numpy()[data.indices("test")]  # the test loader's order
    predictions = make_predictions_table(test_files, probabilities, data.class_names, test_labels)
    write_atomic(paths["predictions_csv"], predictions.to_csv(index=False).encode())
    title = f"{prefix}: test accuracy {test_acc:.3f} (best epoch {best['stats']['epoch']})"
    save_figure_atomic(plot_confusion_matrix(table, title), paths["confusion_png"])
    write_atomic(paths["history_csv"], pd.DataFrame(history).to_csv(index=False).encode())
    save_figure_atomic(plot_history(history, prefix), paths["history_png"])
    paths.pop("interrupted").unlink(missing_ok=True)  # finished: nothing left to resume
    return ApproachResult(
        approach=approach,
        trainable_params=trainable,
        best_epoch=int(best["stats"]["epoch"]),
        best_val_acc=best["stats"]["val_acc"],
        test_acc=test_acc,
        final_test_acc=final_test_acc,
        seconds_per_epoch=float(np.mean([row["seconds"] for row in history])),
        peak_memory_mb=peak_memory_mb,
        history=history,
        outputs=paths,
    )


def load_result(cfg: Config, approach: str, out_dir: Path) -> ApproachResult | None:
    """The result of an approach a resumed run had already finished, from its checkpoints."""
    prefix = OUTPUT_PREFIX[approach]
    paths = {kind: out_dir / f"{prefix}_{kind}.pt" for kind in ("best", "final")}
    if (out_dir / f"{prefix}_interrupted.pt").exists() or not all(
        p.is_file() for p in paths.values()
    ):
        return None
    best, final = load_checkpoint(paths["best"]), load_checkpoint(paths["final"])
    if compare_configs(final["config"], cfg.to_dict()):
        return None  # finished with other settings: train it again
    model = build_model(len(final["class_names"]))
    backbone_lr, head_lr = cfg.lr_for(approach)
    make_param_groups(model, approach, backbone_lr=backbone_lr, head_lr=head_lr)
    logger.info("%s finished before the interruption; using its saved results", prefix)
    return ApproachResult(
        approach=approach,
        trainable_params=count_trainable(model),
        best_epoch=int(best["epoch"]),
        best_val_acc=best["metrics"]["val_acc"],
        test_acc=best["metrics"]["test_acc"],
        final_test_acc=final["metrics"]["test_acc"],
        seconds_per_epoch=float(np.mean([row["seconds"] for row in final["history"]])),
        peak_memory_mb=float(best["metrics"].get("peak_memory_mb", float("nan"))),
        history=final["history"],
        outputs=paths,
    )


def prepare_run(cfg: Config) -> tuple[PreparedData, Pretrained]:
    """Everything before training: check the output folder, prepare and split data, load weights."""
    out_dir = Path(cfg.checkpoint_dir)
    check_writable(out_dir)
    check_free_space(out_dir, estimate_output_bytes(len(cfg.approaches)))
    remove_stale_temporaries(out_dir)
    data = prepare_data(cfg)
    logger.info(
        "%s",
        make_data_report(data.table, data.class_names, data.skipped, data.duplicates, cfg.balance),
    )
    if cfg.resume:
        check_same_split(data.table, out_dir)
    else:
        save_split(data.table, out_dir)
    pretrained = load_backbone_weights(cfg)
    logger.info("Backbone weights: %s", pretrained.source)
    return data, pretrained


def run_experiment(cfg: Config) -> list[ApproachResult]:
    """What `python -m emotion_tl` does: check, prepare, train each approach, write outputs.

    Ctrl-C or SIGTERM during training saves an interrupted checkpoint and raises
    TrainingInterrupted; `cfg.resume` continues from it.
    """
    data, pretrained = prepare_run(cfg)
    out_dir = Path(cfg.checkpoint_dir)
    results = []
    # Signals stop training gracefully only while it runs; elsewhere they act as usual.
    with catch_stop_signals() as stop:
        for approach in cfg.approaches:
            done = load_result(cfg, approach, out_dir) if cfg.resume else None
            results.append(done or train_approach(cfg, approach, data, pretrained, out_dir, stop))
    if len(results) == 2:
        from emotion_tl.report import write_comparison_report

        try:
            report = write_comparison_report(out_dir, data_dir=cfg.data_dir)
            logger.info("Comparison report: %s", report["md"])
        except (ValueError, OSError) as error:  # the trained models are saved all the same
            logger.warning(
                "Could not write the comparison report (%s); fix that, then run "
                "`python -m emotion_tl compare --checkpoint_dir %s`.",
                error,
                out_dir,
            )
    return results


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
