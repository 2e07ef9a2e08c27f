"""One optimisation step and where training stands: what `fit` (loop.py) repeats and keeps.

`make_train_step` freezes or unfreezes the model for its approach and builds the step: the
optimiser over its parameter groups, the loss, the rate schedule and the mixed-precision scaler
(recipe.py says which); `TrainState` is the position a stopped run saves and resumes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from emotion_tl.device import autocast, to_device
from emotion_tl.model.backbones import Backbone, get_backbone
from emotion_tl.model.network import make_param_groups
from emotion_tl.training.recipe import SEED_RECIPE, Recipe, make_optimizer, make_schedule
from emotion_tl.training.selection import History


@dataclass
class TrainState:
    """Where training stands: `fit` reads it to start and keeps it current, so an interrupted
    run can be saved (`to_dict`) and continued exactly where it stopped."""

    epoch: int = 1  # the epoch in progress, 1-based
    step: int = 0  # training steps already taken in that epoch
    totals: list[float] = field(default_factory=lambda: [0.0, 0, 0])  # loss sum, correct, seen
    history: History = field(default_factory=list)  # the finished epochs
    rng: dict[str, Any] | None = None  # torch and train-loader generator states at epoch start
    optimizer: dict[str, Any] | None = None  # filled in when training stops early
    scaler: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None  # the rate schedule's position, when there is one
    stopped: bool = False  # interrupted (Stop, Ctrl-C): to be resumed
    early_stop: str | None = None  # why patience ended training before its last epoch

    def to_dict(self) -> dict[str, Any]:
        """Plain values and tensors, for a checkpoint that loads with weights_only=True."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class TrainStep:
    """One optimisation step: forward in mixed precision, loss, backward, Adam update, and the
    rate schedule's step."""

    approach: str  # which layers are in train mode (set_train_mode)
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None  # None: the rates stay as they are
    batchnorm: str  # fine-tuning's BatchNorm mode: "train" or "frozen" (recipe.py)
    loss_fn: nn.Module
    scaler: torch.amp.GradScaler  # loss scaling matters only for fp16; a no-op otherwise
    device: torch.device
    precision: str
    backbone: Backbone  # the model's entry: its head, and how its uint8 batches are normalised
    # With several processes: the DistributedDataParallel wrapper of the model, whose backward
    # pass averages the gradients over every process.
    parallel: DistributedDataParallel | None = None

    def __call__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
        """Train on one batch; return its mean loss and how many it classified correctly."""
        images = to_device(images, self.device, self.backbone.normalize)
        labels = labels.to(self.device)
        with autocast(self.device, self.precision):
            logits = (self.parallel or model)(images)
        loss = self.loss_fn(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.schedule is not None:
            self.schedule.step()
        return loss.item(), (logits.argmax(1) == labels).sum().item()

    def restore(self, state: TrainState) -> None:
        """Put back the optimizer, loss-scaler and schedule states an interrupted run saved."""
        if state.optimizer is not None:
            self.optimizer.load_state_dict(state.optimizer)
        if state.scaler is not None:
            self.scaler.load_state_dict(state.scaler)
        if state.schedule is not None and self.schedule is not None:
            self.schedule.load_state_dict(state.schedule)

    def save(self, state: TrainState) -> None:
        """Keep in `state` what `restore` puts back."""
        state.optimizer, state.scaler = self.optimizer.state_dict(), self.scaler.state_dict()
        state.schedule = None if self.schedule is None else self.schedule.state_dict()


def make_train_step(
    model: nn.Module,
    approach: str,
    *,
    backbone: str,
    backbone_lr: float,
    head_lr: float,
    device: torch.device,
    precision: str,
    class_weights: torch.Tensor | None = None,
    recipe: Recipe = SEED_RECIPE,
    total_steps: tuple[int, int] | None = None,  # (epochs, steps per epoch), for the schedule
) -> TrainStep:
    """Freeze or unfreeze `model` (a `backbone`) for `approach`, move it and build its step."""
    groups = make_param_groups(
        model,
        approach,
        backbone,
        backbone_lr=backbone_lr,
        head_lr=head_lr,
        layer_decay=recipe.layer_decay if approach == "finetuning" else 1.0,
    )
    weight = class_weights.to(device) if class_weights is not None else None
    model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(groups, recipe)
    schedule = None if total_steps is None else make_schedule(optimizer, recipe, *total_steps)
    return TrainStep(
        approach=approach,
        optimizer=optimizer,
        schedule=schedule,
        batchnorm=recipe.finetuning_batchnorm,
        loss_fn=nn.CrossEntropyLoss(weight=weight, label_smoothing=recipe.label_smoothing),
        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        device=device,
        precision=precision,
        backbone=get_backbone(backbone),
    )
