"""One training loop for both approaches; they differ only in their parameter groups."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from emotion_tl.device import autocast
from emotion_tl.model import make_param_groups, set_train_mode

History = list[dict[str, float]]  # one dict per epoch: epoch, train_loss, train_acc, val_loss, ...


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
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain values and tensors, for a checkpoint that loads with weights_only=True."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def capture_rng(generator: torch.Generator | None) -> dict[str, Any]:
    """The random states an epoch draws from: torch's (augmentation) and the loader's (order)."""
    return {
        "torch": torch.get_rng_state(),
        "loader": generator.get_state() if generator is not None else None,
    }


def restore_rng(rng: dict[str, Any], generator: torch.Generator | None) -> None:
    """Put back states from `capture_rng`, so a resumed epoch draws the same numbers again."""
    torch.set_rng_state(rng["torch"])
    if generator is not None and rng["loader"] is not None:
        generator.set_state(rng["loader"])


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a batch (B, 3, H, W) to `device` in channels_last layout, which convolutions prefer.

    Cached features (B, 2048) just move.
    """
    images = images.to(device, non_blocking=True)
    if images.dim() != 4:
        return images
    return images.contiguous(memory_format=torch.channels_last)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
    precision: str,
    scaler: torch.amp.GradScaler,
    progress: tqdm | None = None,
    state: TrainState | None = None,
    stop: threading.Event | None = None,
) -> tuple[float, float]:
    """Train for one pass over `loader`; return mean loss and accuracy.

    Starts after `state.step` steps (a resumed epoch) and returns early, with `state.stopped`
    set, after the first step that finds `stop` set.
    """
    state = state if state is not None else TrainState()
    for step, (images, labels) in enumerate(loader):
        if step < state.step:
            continue  # taken before the interruption; loaded again only to replay the RNG
        images, labels = to_device(images, device), labels.to(device)
        with autocast(device, precision):
            logits = model(images)
        loss = loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        state.step += 1
        state.totals[0] += loss.item() * len(labels)
        state.totals[1] += (logits.argmax(1) == labels).sum().item()
        state.totals[2] += len(labels)
        loss_sum, correct, seen = state.totals
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        if stop is not None and stop.is_set():
            state.stopped = True
            break
    loss_sum, correct, seen = state.totals
    return loss_sum / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, loader: DataLoader, device: torch.device, precision: str = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (N, C) and true labels (N,) for every batch of `loader`."""
    model.eval()
    probabilities, targets = [], []
    for images, labels in loader:
        with autocast(device, precision):
            logits = model(to_device(images, device))
        probabilities.append(logits.float().softmax(1).cpu())
        targets.append(labels)
    return torch.cat(probabilities).numpy(), torch.cat(targets).numpy()


def evaluate(
    model: nn.Module, loader: DataLoader, device: torch.device, precision: str = "fp32"
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on `loader`."""
    probabilities, labels = predict_probabilities(model, loader, device, precision)
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.log(np.clip(picked, 1e-12, None)).mean())
    return loss, float((probabilities.argmax(1) == labels).mean())


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    *,
    approach: str,
    epochs: int,
    backbone_lr: float,
    head_lr: float,
    device: torch.device,
    precision: str = "fp32",
    on_epoch_end: Callable[[dict[str, float], nn.Module], Any] | None = None,
    progress_desc: str = "",
    class_weights: torch.Tensor | None = None,
    state: TrainState | None = None,
    stop: threading.Event | None = None,
) -> History:
    """Train `model` with Adam; `approach` decides which parameters learn and at what rate.

    `backbone_lr` is unused when frozen; `head_lr` is the new final layer's rate.
    `class_weights` (C,) weight the loss per class. `state` continues an interrupted run and is
    kept current; when `stop` is set, training ends after the current step with `state.stopped`
    and the optimizer state in `state`.
    """
    state = state if state is not None else TrainState()
    groups = make_param_groups(model, approach, backbone_lr=backbone_lr, head_lr=head_lr)
    optimizer = torch.optim.Adam(groups)
    weight = class_weights.to(device) if class_weights is not None else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    # Loss scaling matters only for fp16; it is a no-op otherwise.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model.to(device, memory_format=torch.channels_last)
    if state.optimizer is not None:
        optimizer.load_state_dict(state.optimizer)
    if state.scaler is not None:
        scaler.load_state_dict(state.scaler)
    state.stopped = False
    generator = getattr(train_loader, "generator", None)
    steps = len(train_loader)
    bar = tqdm(
        total=epochs * steps,
        initial=(state.epoch - 1) * steps + state.step,
        desc=progress_desc or approach,
        unit="step",
    )
    try:
        while state.epoch <= epochs and not state.stopped:
            epoch = state.epoch
            if state.rng is None:
                state.rng = capture_rng(generator)
            else:  # a resumed epoch: draw the same order and augmentations as before
                restore_rng(state.rng, generator)
            start = time.perf_counter()
            set_train_mode(model, approach)
            train_loss, train_acc = train_one_epoch(
                model, train_loader, optimizer, loss_fn, device, precision, scaler, bar, state, stop
            )
            train_seconds = time.perf_counter() - start
            if state.stopped:
                break
            val_loss, val_acc = evaluate(model, val_loader, device, precision)
            stats = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": time.perf_counter() - start,
                "train_seconds": train_seconds,  # the training pass alone, data loading included
            }
            state.history.append(stats)
            state.epoch, state.step, state.totals, state.rng = epoch + 1, 0, [0.0, 0, 0], None
            bar.set_description(
                f"{progress_desc or approach} epoch {epoch}/{epochs} val_acc={val_acc:.3f}"
            )
            if on_epoch_end is not None:
                on_epoch_end(stats, model)
            if stop is not None and stop.is_set() and state.epoch <= epochs:
                state.stopped, state.rng = True, capture_rng(generator)
    finally:
        bar.close()
    if state.stopped:
        state.optimizer, state.scaler = optimizer.state_dict(), scaler.state_dict()
    return state.history
