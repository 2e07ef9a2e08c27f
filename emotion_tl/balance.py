"""Class imbalance: measure it, and correct for it with loss weights or a balanced sampler."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch.utils.data import WeightedRandomSampler

BALANCE_CHOICES = ("auto", "none", "weights", "sampler")
# "auto" corrects when the largest category has at least this many times the smallest's images.
AUTO_THRESHOLD = 1.5
# Balanced sampling measured best on imbalanced demo faces (README, benchmarks/imbalance.py).
AUTO_METHOD = "sampler"


def compute_imbalance(counts: dict[str, int]) -> float:
    """Largest category's image count divided by the smallest's (1.0: balanced)."""
    sizes = [n for n in counts.values()]
    return max(sizes) / max(1, min(sizes))


def resolve_balance(balance: str, train_counts: dict[str, int]) -> str:
    """'none', 'weights' or 'sampler': what `balance` means for these training counts."""
    if balance != "auto":
        return balance
    return AUTO_METHOD if compute_imbalance(train_counts) >= AUTO_THRESHOLD else "none"


def make_class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """scikit-learn's "balanced" weights, n / (classes * count): rarer classes weigh more."""
    classes = np.arange(num_classes)
    weights = compute_class_weight("balanced", classes=classes, y=np.asarray(labels))
    return torch.tensor(weights, dtype=torch.float32)


def make_balanced_sampler(labels: np.ndarray, generator: torch.Generator) -> WeightedRandomSampler:
    """Draw training images with replacement so that each class is equally likely per draw."""
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples=len(labels),
        replacement=True,
        generator=generator,
    )
