"""One approach, start to finish: build the model and loaders, train (or resume), keep the best
and final checkpoints, score them on the test split and write the approach's outputs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from emotion_tl.config import OUTPUT_PREFIX, Config
from emotion_tl.data.balance import make_class_weights, resolve_balance
from emotion_tl.data.loaders import make_loaders
from emotion_tl.data.prepare import PreparedData
from emotion_tl.device import (
    measure_peak_memory_mb,
    reset_peak_memory,
    resolve_device,
    resolve_precision,
    seed_everything,
)
from emotion_tl.distributed import is_main, rank, world_size
from emotion_tl.evaluation.inference import predict_loader
from emotion_tl.evaluation.metrics import compute_accuracy
from emotion_tl.model.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from emotion_tl.model.network import build_model, count_trainable, head_of, make_param_groups
from emotion_tl.model.weights import Pretrained
from emotion_tl.training.feature_loaders import FeatureHead, make_feature_loaders
from emotion_tl.training.loop import BestEpoch, TrainState, fit
from emotion_tl.training.outputs import make_output_paths, write_history, write_test_outputs
from emotion_tl.training.resume import TrainingInterrupted, load_interrupted

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
class Checkpoints:
    """Writes one approach's checkpoints: the model's weights now, with the run's metadata."""

    model: nn.Module
    cfg: Config
    approach: str
    class_names: list[str]
    pretrained: Pretrained
    device: torch.device
    precision: str

    def save(
        self, path: Path, kind: str, epoch: int, metrics: dict, history: list, **extra: Any
    ) -> None:
        """Write a `kind` ("best", "final", "interrupted") checkpoint atomically to `path` (with
        several processes, rank 0 alone writes)."""
        if not is_main():
            return
        checkpoint = make_checkpoint(
            self.model,
            class_names=self.class_names,
            config=self.cfg.to_dict(),
            approach=self.approach,
            weights_source=self.pretrained.source,
            stride_in_1x1=self.pretrained.stride_in_1x1,
            epoch=epoch,
            metrics=metrics,
            history=history,
            device=str(self.device),
            precision=self.precision,
            kind=kind,
        )
        save_checkpoint(checkpoint | extra, path)


def build_training(
    cfg: Config,
    approach: str,
    data: PreparedData,
    pretrained: Pretrained,
    device: torch.device,
    precision: str,
) -> tuple[nn.Module, nn.Module, dict[str, DataLoader]]:
    """The seeded model (frozen where `approach` freezes it), what `fit` trains (the model, or
    for the frozen approach with the feature cache its head alone on cached backbone features)
    and the loaders it trains on."""
    seed_everything(cfg.seed)
    model = build_model(
        len(data.class_names),
        pretrained.weights,
        stride_in_1x1=pretrained.stride_in_1x1,
        backbone=cfg.backbone,
    )
    backbone_lr, head_lr = cfg.lr_for(approach)
    make_param_groups(model, approach, cfg.backbone, backbone_lr=backbone_lr, head_lr=head_lr)
    if world_size() > 1:
        torch.manual_seed(cfg.seed + rank())  # the same model, each process its own augmentations
    if approach == "frozen" and cfg.feature_cache:
        loaders = make_feature_loaders(model, data, cfg, device=device, precision=precision)
        # The very head object of `model`: training one trains the other.
        return model, FeatureHead(head_of(model, cfg.backbone), cfg.backbone), loaders
    return model, model, make_loaders(data, cfg, device=device)


def choose_class_weights(cfg: Config, data: PreparedData, cached: bool) -> torch.Tensor | None:
    """Class weights for the loss when the balance setting asks for them on this data."""
    can_resample = not cached and world_size() == 1  # as make_loaders decides
    balance = resolve_balance(cfg.balance, data.train_counts(), can_resample=can_resample)
    if balance == "weights" and not can_resample and cfg.balance != "weights":
        logger.info("Balancing with class weights (this data cannot be resampled)")
    if balance != "weights":
        return None
    return make_class_weights(data.labels()[data.indices("train")], len(data.class_names))


def resume_state(
    cfg: Config, paths: dict[str, Path], model: nn.Module, best: BestEpoch
) -> TrainState:
    """A new TrainState, or with `cfg.resume` the interrupted one (weights put back in `model`,
    the best epoch so far in `best`)."""
    if not cfg.resume:
        return TrainState()
    if not paths["interrupted"].is_file():
        logger.warning("No %s to resume from; training from the start.", paths["interrupted"])
        return TrainState()
    saved, state = load_interrupted(paths["interrupted"], cfg.to_dict())
    model.load_state_dict(saved["state_dict"])
    if state.history:  # the best epoch so far, to compare the coming ones against
        best_saved = load_checkpoint(paths["best"])
        best.stats, best.state_dict = best_saved["metrics"], best_saved["state_dict"]
    logger.info(
        "Resuming %s at epoch %d, step %d", paths["interrupted"].name, state.epoch, state.step
    )
    return state


def train_approach(
    cfg: Config,
    approach: str,
    data: PreparedData,
    pretrained: Pretrained,
    out_dir: Path,
    stop: threading.Event | None = None,
    on_epoch: Callable[[list[dict[str, float]]], Any] | None = None,
) -> ApproachResult:
    """Train one approach, keep its best and final checkpoints, and write its figures and tables.

    When `stop` is set, save an interrupted checkpoint and raise TrainingInterrupted; with
    `cfg.resume`, continue from such a checkpoint. `on_epoch` gets the history so far after
    every epoch (the notebooks' live curves).
    """
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    start = time.perf_counter()
    model, net, loaders = build_training(cfg, approach, data, pretrained, device, precision)
    setup_seconds = time.perf_counter() - start  # with the feature cache: the backbone's pass
    backbone_lr, head_lr = cfg.lr_for(approach)
    trainable = count_trainable(model)
    prefix, paths = OUTPUT_PREFIX[approach], make_output_paths(out_dir, approach)
    logger.info(
        f"Approach {prefix}: {trainable:,} trainable parameters, device {device}, "
        f"precision {precision}"
    )
    checkpoints = Checkpoints(model, cfg, approach, data.class_names, pretrained, device, precision)
    best = BestEpoch()
    reset_peak_memory(device)
    state = resume_state(cfg, paths, model, best)

    def on_epoch_end(stats: dict[str, float], _: nn.Module) -> None:
        # `model`, not fit's argument: with cached features fit trains the head alone.
        if best.update(stats, model):
            checkpoints.save(paths["best"], "best", stats["epoch"], stats, state.history)
        if on_epoch is not None:
            on_epoch(list(state.history))

    fit(
        net,
        loaders["train"],
        loaders["val"],
        approach=approach,
        backbone=cfg.backbone,
        epochs=cfg.epochs,
        backbone_lr=backbone_lr,
        head_lr=head_lr,
        device=device,
        precision=precision,
        on_epoch_end=on_epoch_end,
        progress_desc=prefix,
        state=state,
        stop=stop,
        class_weights=choose_class_weights(cfg, data, cached=net is not model),
    )
    if state.stopped:
        save_interrupted(checkpoints, state, paths, stop)
    return finish_approach(cfg, approach, data, net, loaders["test"], checkpoints, best, state,
                           paths, trainable, setup_seconds)  # fmt: skip


def save_interrupted(
    checkpoints: Checkpoints, state: TrainState, paths: dict[str, Path], stop: Any
) -> None:
    """Save what a stopped run needs to continue, and the history so far; then raise
    TrainingInterrupted with the signal that stopped it."""
    metrics = state.history[-1] if state.history else {}
    checkpoints.save(
        paths["interrupted"],
        "interrupted",
        len(state.history),
        metrics,
        state.history,
        resume=state.to_dict(),
    )
    write_history(state.history, paths["history_csv"])
    raise TrainingInterrupted(getattr(stop, "signum", 2), paths["interrupted"])


def finish_approach(
    cfg: Config,
    approach: str,
    data: PreparedData,
    net: nn.Module,
    test_loader: DataLoader,
    checkpoints: Checkpoints,
    best: BestEpoch,
    state: TrainState,
    paths: dict[str, Path],
    trainable: int,
    setup_seconds: float,
) -> ApproachResult:
    """Score the final and the best model on the untouched test split, save both checkpoints
    and the approach's tables and figures."""
    device, precision, history = checkpoints.device, checkpoints.precision, state.history
    final_probabilities, test_labels = predict_loader(
        net, test_loader, device, precision, cfg.backbone
    )
    final_test_acc = compute_accuracy(test_labels, final_probabilities)
    final_metrics = history[-1] | {"test_acc": final_test_acc}
    checkpoints.save(paths["final"], "final", cfg.epochs, final_metrics, history)
    checkpoints.model.load_state_dict(best.state_dict)
    probabilities, _ = predict_loader(net, test_loader, device, precision, cfg.backbone)
    test_acc = compute_accuracy(test_labels, probabilities)
    peak_memory_mb = measure_peak_memory_mb(device)
    best_metrics = best.stats | {
        "test_acc": test_acc,
        "trainable_params": trainable,
        "peak_memory_mb": peak_memory_mb,
        # Work before the first epoch: for the frozen approach with the feature cache, the
        # backbone's pass over every image (unless the cache already held them).
        "setup_seconds": setup_seconds,
    }
    best_epoch = int(best.stats["epoch"])
    checkpoints.save(paths["best"], "best", best_epoch, best_metrics, history)
    interrupted = paths.pop("interrupted")
    if is_main():
        write_test_outputs(
            paths, data, probabilities, approach=approach, best_epoch=best_epoch, history=history
        )
        interrupted.unlink(missing_ok=True)  # finished: nothing left to resume
    return ApproachResult(
        approach=approach,
        trainable_params=trainable,
        best_epoch=best_epoch,
        best_val_acc=best.stats["val_acc"],
        test_acc=test_acc,
        final_test_acc=final_test_acc,
        seconds_per_epoch=float(np.mean([row["seconds"] for row in history])),
        peak_memory_mb=peak_memory_mb,
        history=history,
        outputs=paths,
    )
