"""Test-split metrics, computed with scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix


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


def compute_accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Share of images whose most probable class is the true one."""
    return float(accuracy_score(labels, probabilities.argmax(1)))
