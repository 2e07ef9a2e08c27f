"""One training loop for both approaches; they differ only in their parameter groups."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from emotion_tl.device import autocast
from emotion_tl.model import make_param_groups, set_train_mode

History = list[dict[str, float]]  # one dict per epoch: epoch, train_loss, train_acc, val_loss, ...


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
) -> tuple[float, float]:
    """Train for one pass over `loader`; return mean loss and accuracy."""
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels in loader:
        images, labels = to_device(images, device), labels.to(device)
        with autocast(device, precision):
            logits = model(images)
        loss = loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return total_loss / seen, correct / seen


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
) -> History:
    """Train `model` with Adam; `approach` decides which parameters learn and at what rate.

    `backbone_lr` is unused when frozen; `head_lr` is the new final layer's rate.
    """
    groups = make_param_groups(model, approach, backbone_lr=backbone_lr, head_lr=head_lr)
    optimizer = torch.optim.Adam(groups)
    loss_fn = nn.CrossEntropyLoss()
    # Loss scaling matters only for fp16; it is a no-op otherwise.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model.to(device, memory_format=torch.channels_last)
    history: History = []
    bar = tqdm(total=epochs * len(train_loader), desc=progress_desc or approach, unit="step")
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            set_train_mode(model, approach)
            train_loss, train_acc = train_one_epoch(
                model, train_loader, optimizer, loss_fn, device, precision, scaler, bar
            )
            train_seconds = time.perf_counter() - start
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
            history.append(stats)
            bar.set_description(
                f"{progress_desc or approach} epoch {epoch}/{epochs} val_acc={val_acc:.3f}"
            )
            if on_epoch_end is not None:
                on_epoch_end(stats, model)
    finally:
        bar.close()
    return history
