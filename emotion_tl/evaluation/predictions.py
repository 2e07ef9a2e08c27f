"""Predictions tables: one row per image with its file, label, predicted class and each class's
probability, as `*_test_predictions.csv` and `predict --csv` store them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emotion_tl.evaluation.metrics import compute_losses

PROBABILITY_PREFIX = "prob_"  # one `prob_<class>` column per class


def make_predictions_table(
    files: list[str],
    probabilities: np.ndarray,
    class_names: list[str],
    labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """file, [label,] predicted, prob_<class>... : one row per image."""
    table = pd.DataFrame({"file": list(files)})
    if labels is not None:
        table["label"] = [class_names[i] for i in labels]
    table["predicted"] = [class_names[i] for i in np.asarray(probabilities).argmax(1)]
    for index, name in enumerate(class_names):
        table[f"{PROBABILITY_PREFIX}{name}"] = probabilities[:, index]
    return table


def read_predictions_table(
    table: pd.DataFrame, class_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), probabilities (N, C)) back from a table made by `make_predictions_table`."""
    columns = [f"{PROBABILITY_PREFIX}{name}" for name in class_names]
    missing = [c for c in ["label", *columns] if c not in table.columns]
    if missing:
        raise ValueError(f"predictions table lacks column(s) {missing}; re-create it.")
    unknown = sorted(set(table["label"]) - set(class_names))
    if unknown:
        raise ValueError(f"predictions table has labels {unknown} outside {class_names}.")
    labels = table["label"].map({name: i for i, name in enumerate(class_names)}).to_numpy()
    return labels.astype(int), table[columns].to_numpy(dtype=float)


def find_hardest(table: pd.DataFrame, class_names: list[str], count: int) -> pd.DataFrame:
    """The `count` rows with the highest loss (the most confidently wrong first), with a
    `probability` column: the model's probability for the class it predicted."""
    labels, probabilities = read_predictions_table(table, class_names)
    worst = np.argsort(-compute_losses(labels, probabilities), kind="stable")[:count]
    rows = table.iloc[worst].reset_index(drop=True)
    rows["probability"] = probabilities[worst].max(axis=1)
    return rows
