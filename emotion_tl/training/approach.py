"""One approach, start to finish: build the model and loaders, train (or resume), keep the best
and final checkpoints, score them on the test split and write the approach's outputs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from emotion_tl.config import OUTPUT_PREFIX, Config
from emotion_tl.data.balance import make_class_weights, resolve_balance
from emotion_tl.data.loaders import make_loaders
from emotion_tl.data.prepare import PreparedData
from emotion_tl.device import measure_peak_memory_mb, reset_peak_memory, seed_everything
from emotion_tl.distributed import is_main, rank, world_size
from emotion_tl.evaluation.inference import predict_loader
from emotion_tl.evaluation.metrics import compute_accuracy
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.model.network import build_model, count_trainable, make_param_groups
from emotion_tl.training.checkpoints import Checkpoints
from emotion_tl.training.context import RunContext
from emotion_tl.training.feature_loaders import FeatureHead, make_feature_loaders
from emotion_tl.training.loop import fit_run
from emotion_tl.training.outputs import write_history, write_test_outputs
from emotion_tl.training.probe import probe_head_state
from emotion_tl.training.resume import TrainingInterrupted, load_interrupted
from emotion_tl.training.selection import BestEpoch
from emotion_tl.training.step import TrainState

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
    early_stop: str | None = None  # why patience ended it before its last epoch, in words


@dataclass
class Training:
    """One approach set up to train, then trained: what `fit` and `finish_approach` work on."""

    approach: str
    model: nn.Module  # the whole model, which the checkpoints hold
    net: nn.Module  # what fit trains: the model, or its head alone on cached features
    loaders: dict[str, DataLoader]
    trainable: int  # parameters that learn
    setup_seconds: float  # before the first epoch: with the feature cache, the backbone's pass
    checkpoints: Checkpoints
    best: BestEpoch = field(default_factory=BestEpoch)
    state: TrainState = field(default_factory=TrainState)


class Setup(NamedTuple):
    """What `build_training` makes for one approach."""

    model: nn.Module  # seeded, frozen where the approach freezes it
    net: nn.Module  # what fit trains: the model, or its head alone on cached features
    loaders: dict[str, DataLoader]
    trainable: int  # parameters that learn
    class_weights: torch.Tensor | None  # the loss's, when the balance setting asks for them


def build_training(run: RunContext, approach: str) -> Setup:
    """The seeded model (frozen where `approach` freezes it), what `fit` trains (the model, or
    for the frozen approach with the feature cache its head alone on cached backbone features),
    the loaders it trains on and the loss's class weights."""
    cfg, data, pretrained = run.cfg, run.data, run.pretrained
    cached = approach == "frozen" and cfg.feature_cache
    class_weights = choose_class_weights(cfg, data, cached=cached)
    lp_ft = approach == "finetuning" and cfg.finetuning_head_init == "probe"
    probe = probe_head_state(run, build_training) if lp_ft else None  # before the seeding
    seed_everything(cfg.seed)
    model = build_model(
        len(data.class_names),
        pretrained.weights,
        stride_in_1x1=pretrained.stride_in_1x1,
        backbone=cfg.backbone,
    )
    if probe is not None:  # LP-FT: the trained probe's weights, strictly, in the new head
        prefix = run.backbone.head + "."
        run.backbone.head_of(model).load_state_dict(
            {k.removeprefix(prefix): v for k, v in probe.items()}
        )
    backbone_lr, head_lr = cfg.lr_for(approach)
    make_param_groups(model, approach, cfg.backbone, backbone_lr=backbone_lr, head_lr=head_lr)
    trainable = count_trainable(model)
    if world_size() > 1:
        torch.manual_seed(cfg.seed + rank())  # the same model, each process its own augmentations
    if not cached:
        loaders = make_loaders(data, cfg, device=run.device)
        return Setup(model, model, loaders, trainable, class_weights)
    # The very head object of `model`: training one trains the other.
    head = FeatureHead(run.backbone.head_of(model), run.backbone.head)
    return Setup(model, head, make_feature_loaders(model, run), trainable, class_weights)


def choose_class_weights(cfg: Config, data: PreparedData, cached: bool) -> torch.Tensor | None:
    """Class weights for the loss when the balance setting asks for them on this data."""
    can_resample = not cached and world_size() == 1  # as make_loaders decides
    balance = resolve_balance(cfg.balance, data.train_counts(), can_resample=can_resample)
    if balance == "weights" and not can_resample and cfg.balance != "weights":
        logger.info("Balancing with class weights (this data cannot be resampled)")
    if balance != "weights":
        return None
    return make_class_weights(data.labels()[data.indices("train")], len(data.class_names))


def resume_state(run: RunContext, training: Training) -> TrainState:
    """A new TrainState, or with `cfg.resume` the interrupted one (weights put back in the
    model, the best epoch so far in `training.best`)."""
    paths = run.outputs[training.approach]
    if not run.cfg.resume:
        return TrainState()
    if not paths["interrupted"].is_file():
        logger.warning("No %s to resume from; training from the start.", paths["interrupted"])
        return TrainState()
    saved, state = load_interrupted(paths["interrupted"], run.cfg.to_dict())
    training.model.load_state_dict(saved["state_dict"])
    if state.history:  # the best epoch so far, to compare the coming ones against
        best_saved = load_checkpoint(paths["best"])
        training.best.stats = best_saved["metrics"]
        training.best.state_dict = best_saved["state_dict"]
    logger.info(
        "Resuming %s at epoch %d, step %d", paths["interrupted"].name, state.epoch, state.step
    )
    return state


def train_approach(
    run: RunContext,
    approach: str,
    stop: threading.Event | None = None,
    on_epoch: Callable[[list[dict[str, float]]], Any] | None = None,
) -> ApproachResult:
    """Train one approach of `run`, keep its best and final checkpoints, and write its figures
    and tables to `run.out_dir`.

    When `stop` is set, save an interrupted checkpoint and raise TrainingInterrupted; with
    `cfg.resume`, continue from such a checkpoint. `on_epoch` gets the history so far after
    every epoch (the notebooks' live curves).
    """
    start = time.perf_counter()
    model, net, loaders, trainable, class_weights = build_training(run, approach)
    setup_seconds = time.perf_counter() - start  # with the feature cache: the backbone's pass
    logger.info(
        f"Approach {OUTPUT_PREFIX[approach]}: {trainable:,} trainable parameters, "
        f"device {run.device}, precision {run.precision}"
    )
    checkpoints = Checkpoints(model, run, approach)
    training = Training(approach, model, net, loaders, trainable, setup_seconds, checkpoints)
    reset_peak_memory(run.device)
    training.state = resume_state(run, training)
    best, state = training.best, training.state

    def on_epoch_end(stats: dict[str, float], _: nn.Module) -> None:
        # The whole model, not fit's argument: with cached features fit trains the head alone.
        if best.update(stats, model):
            checkpoints.save("best", stats["epoch"], stats, state.history)
        if on_epoch is not None:
            on_epoch(list(state.history))

    fit_run(
        run,
        approach,
        net,
        loaders,
        on_epoch_end=on_epoch_end,
        progress_desc=OUTPUT_PREFIX[approach],
        class_weights=class_weights,
        state=state,
        stop=stop,
    )
    if state.early_stop is not None:
        logger.info("%s %s", OUTPUT_PREFIX[approach], state.early_stop)
    if state.stopped:
        save_interrupted(training, run.outputs[approach], stop)
    return finish_approach(run, training)


def save_interrupted(training: Training, paths: dict[str, Path], stop: Any) -> None:
    """Save what a stopped run needs to continue, and the history so far; then raise
    TrainingInterrupted with the signal that stopped it."""
    state = training.state
    metrics = state.history[-1] if state.history else {}
    resume = state.to_dict()
    training.checkpoints.save(
        "interrupted", len(state.history), metrics, state.history, resume=resume
    )
    write_history(state.history, paths["history_csv"])
    raise TrainingInterrupted(getattr(stop, "signum", 2), paths["interrupted"])


def finish_approach(run: RunContext, training: Training) -> ApproachResult:
    """Score the final and the best model on the untouched test split, save both checkpoints
    and the approach's tables and figures."""
    device, precision, history = run.device, run.precision, training.state.history
    net, test_loader, best = training.net, training.loaders["test"], training.best
    backbone = run.backbone.name
    final_probabilities, test_labels = predict_loader(net, test_loader, device, precision, backbone)
    final_test_acc = compute_accuracy(test_labels, final_probabilities)
    final_metrics = history[-1] | {"test_acc": final_test_acc}
    # The last epoch run, which patience may have made earlier than cfg.epochs.
    early_stop = training.state.early_stop
    last_epoch = int(history[-1]["epoch"])
    training.checkpoints.save("final", last_epoch, final_metrics, history, early_stop=early_stop)
    training.model.load_state_dict(best.state_dict)
    probabilities, _ = predict_loader(net, test_loader, device, precision, backbone)
    test_acc = compute_accuracy(test_labels, probabilities)
    peak_memory_mb = measure_peak_memory_mb(device)
    best_metrics = best.stats | {
        "test_acc": test_acc,
        "trainable_params": training.trainable,
        "peak_memory_mb": peak_memory_mb,
        # Work before the first epoch: for the frozen approach with the feature cache, the
        # backbone's pass over every image (unless the cache already held them).
        "setup_seconds": training.setup_seconds,
    }
    best_epoch = int(best.stats["epoch"])
    training.checkpoints.save("best", best_epoch, best_metrics, history, early_stop=early_stop)
    paths = run.outputs[training.approach]
    outputs = {kind: path for kind, path in paths.items() if kind != "interrupted"}
    if is_main():
        write_test_outputs(
            outputs,
            run.data,
            probabilities,
            test_labels,
            approach=training.approach,
            best_epoch=best_epoch,
            history=history,
        )
        paths["interrupted"].unlink(missing_ok=True)  # finished: nothing left to resume
    return ApproachResult(
        approach=training.approach,
        trainable_params=training.trainable,
        best_epoch=best_epoch,
        best_val_acc=best.stats["val_acc"],
        test_acc=test_acc,
        final_test_acc=final_test_acc,
        seconds_per_epoch=float(np.mean([row["seconds"] for row in history])),
        peak_memory_mb=peak_memory_mb,
        history=history,
        outputs=outputs,
        early_stop=early_stop,
    )
