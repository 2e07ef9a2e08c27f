"""Which epoch a run keeps, and when patience ends it: judged from the validation scores alone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

History = list[dict[str, float]]  # one dict per epoch: epoch, train_loss, train_acc, val_loss, ...


def epochs_without_improvement(history: History) -> int:
    """How many epochs have passed since the one with the lowest validation loss (0: the last
    epoch is the lowest so far). Computed from the history alone, so a resumed run counts on."""
    if not history:
        return 0
    losses = [row["val_loss"] for row in history]
    return len(losses) - 1 - losses.index(min(losses))


def early_stop_reason(history: History, patience: int) -> str | None:
    """Why training stops after the last epoch of `history`, in words, or None to go on."""
    waited = epochs_without_improvement(history)
    if patience <= 0 or waited < patience:
        return None
    best = history[len(history) - 1 - waited]
    return (
        f"stopped after epoch {history[-1]['epoch']}: the validation loss had not improved for "
        f"{waited} epochs (patience {patience}; lowest {best['val_loss']:.4f} at epoch "
        f"{best['epoch']})"
    )


def is_better(stats: dict[str, float], best: dict[str, float] | None) -> bool:
    """Higher validation accuracy wins; on a tie, lower validation loss."""
    if best is None:
        return True
    if stats["val_acc"] != best["val_acc"]:
        return stats["val_acc"] > best["val_acc"]
    return stats["val_loss"] < best["val_loss"]


@dataclass
class BestEpoch:
    """The best epoch so far by `is_better`, with a copy of the model's weights at that epoch."""

    stats: dict[str, float] | None = None
    state_dict: dict[str, torch.Tensor] | None = None

    def update(self, stats: dict[str, float], model: nn.Module) -> bool:
        """Keep `stats` and `model`'s weights if this epoch is better; True if it was."""
        if not is_better(stats, self.stats):
            return False
        self.stats = stats
        self.state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True
