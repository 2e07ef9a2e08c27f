"""Class imbalance: measure it, and correct for it with loss weights or a balanced sampler."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch.utils.data import WeightedRandomSampler

# "auto" corrects when the largest category has at least this many times the smallest's images.
AUTO_THRESHOLD = 1.5
# Balanced sampling measured best on imbalanced demo faces (docs/data.md, benchmarks/imbalance.py).
AUTO_METHOD = "sampler"


def compute_imbalance(counts: dict[str, int]) -> float:
    """Largest category's image count divided by the smallest's (1.0: balanced)."""
    sizes = [n for n in counts.values()]
    return max(sizes) / max(1, min(sizes))


def resolve_balance(
    balance: str, train_counts: dict[str, int], *, can_resample: bool = True
) -> str:
    """'none', 'weights' or 'sampler': what the `balance` setting means for these training counts.

    Where training data cannot be resampled (the frozen approach's cached features come in a
    fixed order per epoch), balanced sampling becomes a class-weighted loss.
    """
    if balance == "auto":
        balance = AUTO_METHOD if compute_imbalance(train_counts) >= AUTO_THRESHOLD else "none"
    if balance == "sampler" and not can_resample:
        return "weights"
    return balance


def describe_balance(method: str) -> str:
    """A resolved method in words, for reports and logs."""
    return {
        "none": "no correction",
        "weights": "class-weighted loss",
        "sampler": "balanced sampling",
    }[method]


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
