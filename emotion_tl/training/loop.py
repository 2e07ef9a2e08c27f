"""One training loop for both approaches; they differ only in their parameter groups.

`fit(model, train_loader, val_loader, ...)` trains with Adam and cross-entropy, validates after
every epoch and returns the history; it never plots or writes files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from emotion_tl.distributed import all_reduce_sums, broadcast_buffers, is_main, wrap_for_processes
from emotion_tl.evaluation.inference import evaluate_loader
from emotion_tl.model.network import set_train_mode
from emotion_tl.training.context import RunContext
from emotion_tl.training.recipe import SEED_RECIPE, Recipe
from emotion_tl.training.selection import History, early_stop_reason
from emotion_tl.training.step import TrainState, TrainStep, make_train_step


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


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    step: TrainStep,
    state: TrainState,
    progress: tqdm | None = None,
    stop: threading.Event | None = None,
) -> tuple[float, float]:
    """Train for one pass over `loader`; return mean loss and accuracy.

    Starts after `state.step` steps (a resumed epoch) and returns early, with `state.stopped`
    set, after the first step that finds `stop` set.
    """
    for index, (images, labels) in enumerate(loader):
        if index < state.step:
            continue  # taken before the interruption; loaded again only to replay the RNG
        loss, correct = step(model, images, labels)
        state.step += 1
        state.totals[0] += loss * len(labels)
        state.totals[1] += correct
        state.totals[2] += len(labels)
        loss_sum, correct_sum, seen = state.totals
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct_sum / seen:.3f}")
        if stop is not None and stop.is_set():
            state.stopped = True
            break
    loss_sum, correct_sum, seen = state.totals
    if step.parallel is not None:  # every process's share of the epoch
        loss_sum, correct_sum, seen = all_reduce_sums(state.totals)
    return loss_sum / max(seen, 1), correct_sum / max(seen, 1)


def start_epoch(loader: DataLoader, state: TrainState) -> None:
    """Draw the epoch's random numbers as the first try of this epoch did, and tell the sampler
    which epoch it is (the frozen approach's cached views cycle by epoch)."""
    generator = getattr(loader, "generator", None)
    if state.rng is None:
        state.rng = capture_rng(generator)
    else:  # a resumed epoch: draw the same order and augmentations as before
        restore_rng(state.rng, generator)
    set_epoch = getattr(loader.sampler, "set_epoch", None)
    if set_epoch is not None:
        set_epoch(state.epoch - 1)


def ends_here(
    state: TrainState,
    epochs: int,
    patience: int,
    stop: threading.Event | None,
    train_loader: DataLoader,
) -> bool:
    """After an epoch with epochs still to run: True when patience ends training here (the
    reason in `state.early_stop`) or a Stop asks to (`state.stopped`, with the random states
    the next epoch starts from)."""
    if state.epoch > epochs:
        return False
    state.early_stop = early_stop_reason(state.history, patience)
    if state.early_stop is None and stop is not None and stop.is_set():
        state.stopped = True
        state.rng = capture_rng(getattr(train_loader, "generator", None))
    return state.early_stop is not None or state.stopped


def progress_bar(desc: str, epochs: int, steps: int, state: TrainState) -> tqdm:
    """One bar over every step of every epoch, from where `state` stands; with several
    processes, rank 0's alone."""
    done = (state.epoch - 1) * steps + state.step
    return tqdm(total=epochs * steps, initial=done, desc=desc, unit="step", disable=not is_main())


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    *,
    approach: str,
    backbone: str,  # the model's entry: which parameters are the head, how batches are normalised
    epochs: int,
    backbone_lr: float,
    head_lr: float,
    device: torch.device,
    precision: str,
    on_epoch_end: Callable[[dict[str, float], nn.Module], Any] | None = None,
    progress_desc: str = "",
    class_weights: torch.Tensor | None = None,
    state: TrainState | None = None,
    stop: threading.Event | None = None,
    recipe: Recipe = SEED_RECIPE,
) -> History:
    """Train `model` with Adam; `approach` decides which parameters learn and at what rate.

    `backbone_lr` is unused when frozen; `head_lr` is the new final layer's rate. `class_weights`
    (C,) weight the training and validation loss per class. `state` continues an interrupted run
    and is kept current; when `stop` is set, training ends after the current step (`stopped`, the
    optimizer state in `state`). `recipe`: decay, schedule, patience (`state.early_stop`), ...
    """
    state = state if state is not None else TrainState()
    step = make_train_step(
        model,
        approach,
        backbone=backbone,
        backbone_lr=backbone_lr,
        head_lr=head_lr,
        device=device,
        precision=precision,
        class_weights=class_weights,
        recipe=recipe,
        total_steps=(epochs, len(train_loader)),
    )
    step.restore(state)
    step.parallel, state.stopped = wrap_for_processes(model, train_loader), False
    desc = progress_desc or approach
    bar = progress_bar(desc, epochs, len(train_loader), state)
    try:
        while state.epoch <= epochs and not state.stopped:
            stats = run_epoch(model, train_loader, val_loader, step, state, bar, stop)
            if stats is None:
                break
            bar.set_description(
                f"{desc} epoch {stats['epoch']}/{epochs} val_acc={stats['val_acc']:.3f}"
            )
            if on_epoch_end is not None:
                on_epoch_end(stats, model)
            if ends_here(state, epochs, recipe.patience, stop, train_loader):
                break
    finally:
        bar.close()
    if state.stopped:
        step.save(state)
    return state.history


def fit_run(
    run: RunContext,
    approach: str,
    net: nn.Module,
    loaders: dict[str, DataLoader],
    *,
    on_epoch_end: Callable[[dict[str, float], nn.Module], Any],
    progress_desc: str,
    class_weights: torch.Tensor | None = None,
    state: TrainState | None = None,
    stop: threading.Event | None = None,
) -> History:
    """`fit` as `run` decides it: its epochs, the approach's rates, device, precision, recipe."""
    backbone_lr, head_lr = run.cfg.lr_for(approach)
    return fit(
        net,
        loaders["train"],
        loaders["val"],
        approach=approach,
        backbone=run.backbone.name,
        epochs=run.cfg.epochs_for(approach, len(loaders["train"])),
        backbone_lr=backbone_lr,
        head_lr=head_lr,
        device=run.device,
        precision=run.precision,
        on_epoch_end=on_epoch_end,
        progress_desc=progress_desc,
        class_weights=class_weights,
        state=state,
        stop=stop,
        recipe=Recipe.from_config(run.cfg),
    )


def run_epoch(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    step: TrainStep,
    state: TrainState,
    bar: tqdm | None = None,
    stop: threading.Event | None = None,
) -> dict[str, float] | None:
    """Train the epoch in `state` to its end and validate: its stats, or None if stopped."""
    epoch = state.epoch
    start_epoch(train_loader, state)
    start = time.perf_counter()
    set_train_mode(model, step.approach, step.backbone.name, step.batchnorm)
    train_loss, train_acc = train_one_epoch(model, train_loader, step, state, bar, stop)
    train_seconds = time.perf_counter() - start
    if state.stopped:
        return None
    if step.parallel is not None:
        broadcast_buffers(model)  # every process validates the model rank 0 will save
    # The validation loss weighs classes as the training loss does.
    val_loss, val_acc = evaluate_loader(
        model, val_loader, step.device, step.precision, step.loss_fn.weight, step.backbone.name
    )
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
    return stats
