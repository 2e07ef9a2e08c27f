"""How an approach is optimised beyond its rates: the recipe's parts, each an option of Config.

- `weight_decay`: AdamW's decoupled weight decay (0: plain Adam, the seed's);
- `label_smoothing`: cross-entropy against targets smoothed by this much (0: none);
- `schedule`: `constant` (the seed's) or `cosine`: a linear warm-up over `warmup_epochs`, then
  cosine decay to zero at the last step;
- `finetuning_batchnorm`: `train` (the seed's: BatchNorm statistics follow the batches while
  fine-tuning) or `frozen` (BatchNorm layers kept in evaluation mode, as the Keras guide does on
  small data; their scale and shift still learn; Config's default with pretrained weights);
- `patience`: stop once the validation loss has not improved for this many epochs (0: every
  epoch, the seed's; selection.py);
- `layer_decay`: discriminative rates: each block of the body, counted down from the top, learns
  at this factor times the rate of the block above it; the top block keeps the backbone's rate
  (1: one rate for the whole body, the seed's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from emotion_tl.config import Config


@dataclass(frozen=True)
class Recipe:
    """The recipe's parts a run uses (the seed's plain recipe by default)."""

    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    finetuning_batchnorm: str = "train"
    layer_decay: float = 1.0
    patience: int = 0

    @classmethod
    def from_config(cls, cfg: Config) -> Recipe:
        return cls(
            weight_decay=cfg.weight_decay,
            label_smoothing=cfg.label_smoothing,
            schedule=cfg.schedule,
            warmup_epochs=cfg.warmup_epochs,
            finetuning_batchnorm=cfg.batchnorm_for_finetuning(),
            layer_decay=cfg.layer_decay,
            patience=cfg.patience,
        )


SEED_RECIPE = Recipe()  # the seed's plain recipe (Config's defaults add the cosine schedule)


def make_optimizer(groups: list[dict], recipe: Recipe) -> torch.optim.Optimizer:
    """Adam over the parameter groups, the seed's; AdamW when the recipe decays weights."""
    if recipe.weight_decay == 0:
        return torch.optim.Adam(groups)
    return torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)


def make_schedule(
    optimizer: torch.optim.Optimizer, recipe: Recipe, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """None for the constant rate; for `cosine`, a per-step factor on every group's rate: a
    linear rise over the warm-up steps, then a half cosine down to 0 at the last step."""
    if recipe.schedule == "constant":
        return None
    total = max(1, epochs * steps_per_epoch)
    warmup = min(total - 1, round(recipe.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
