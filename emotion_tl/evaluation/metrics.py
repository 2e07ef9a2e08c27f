"""Scores of one model's probabilities against the true labels, computed with scikit-learn.

The one accuracy, the one per-image cross-entropy and the one confusion table of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


def compute_accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Share of images (N,) whose most probable class in `probabilities` (N, C) is the true one."""
    return float(accuracy_score(labels, np.asarray(probabilities).argmax(1)))


def compute_losses(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Cross-entropy of each image (N,): minus the log of the probability of its true class."""
    picked = np.asarray(probabilities)[np.arange(len(labels)), np.asarray(labels)]
    return -np.log(np.clip(picked, 1e-12, None))


def compute_mean_loss(
    labels: np.ndarray, probabilities: np.ndarray, class_weights: np.ndarray | None = None
) -> float:
    """Mean cross-entropy, weighted per class as `nn.CrossEntropyLoss(weight=...)` weighs it:
    sum(w[y] * loss) / sum(w[y]). Without weights, the plain mean."""
    losses = compute_losses(labels, probabilities)
    if class_weights is None:
        return float(losses.mean())
    weights = np.asarray(class_weights)[np.asarray(labels)]
    return float((weights * losses).sum() / weights.sum())


def make_confusion_table(
    labels: np.ndarray, predictions: np.ndarray, class_names: list[str]
) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns."""
    counts = confusion_matrix(labels, predictions, labels=range(len(class_names)))
    return pd.DataFrame(
        counts,
        index=pd.Index(class_names, name="true"),
        columns=pd.Index(class_names, name="predicted"),
    )


@dataclass
class Evaluation:
    """One model's scores on the test split."""

    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    roc_auc: float | None  # two classes only
    num_images: int
    per_class: pd.DataFrame  # rows: classes; columns: precision, recall, f1, support
    confusion: pd.DataFrame  # counts; rows true, columns predicted
    confusion_normalized: pd.DataFrame  # each row divided by its total (recall on the diagonal)

    def scores(self) -> dict[str, float | int | None]:
        """The single-number scores, for tables."""
        return {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "roc_auc": self.roc_auc,
            "test_images": self.num_images,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON."""
        return self.scores() | {
            "per_class": self.per_class.to_dict(orient="index"),
            "confusion": self.confusion.to_numpy().tolist(),
            "confusion_normalized": self.confusion_normalized.to_numpy().round(4).tolist(),
        }


def evaluate_predictions(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> Evaluation:
    """Score probabilities (N, C) against integer labels (N,) with scikit-learn."""
    labels = np.asarray(labels)
    predictions = np.asarray(probabilities).argmax(1)
    classes = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index(class_names, name="class"),
    )
    roc_auc = None
    if len(class_names) == 2 and len(set(labels.tolist())) == 2:
        roc_auc = float(roc_auc_score(labels, probabilities[:, 1]))
    confusion = make_confusion_table(labels, predictions, class_names)
    row_totals = confusion.sum(axis=1).replace(0, 1)  # a class absent from the test split: zeros
    return Evaluation(
        accuracy=compute_accuracy(labels, probabilities),
        balanced_accuracy=float(balanced_accuracy_score(labels, predictions)),
        macro_f1=float(
            f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)
        ),
        roc_auc=roc_auc,
        num_images=len(labels),
        per_class=per_class,
        confusion=confusion,
        confusion_normalized=confusion.div(row_totals, axis=0),
    )
