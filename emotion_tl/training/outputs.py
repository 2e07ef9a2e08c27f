"""The files one approach writes to checkpoint_dir: their names, and its tables and figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emotion_tl.config import OUTPUT_PREFIX
from emotion_tl.data.prepare import PreparedData
from emotion_tl.evaluation.metrics import compute_accuracy, make_confusion_table
from emotion_tl.evaluation.predictions import make_predictions_table
from emotion_tl.figures.evaluation import plot_confusion_matrix
from emotion_tl.figures.training import plot_history
from emotion_tl.storage import save_figure_atomic, write_atomic

OUTPUT_KINDS = {
    "best": "best.pt",
    "final": "final.pt",
    "history_csv": "history.csv",
    "history_png": "history.png",
    "confusion_csv": "confusion_matrix.csv",
    "confusion_png": "confusion_matrix.png",
    "predictions_csv": "test_predictions.csv",
    "interrupted": "interrupted.pt",
}


def make_output_paths(out_dir: Path, approach: str) -> dict[str, Path]:
    """Kind -> path, e.g. "best" -> checkpoints/frozen_weights_best.pt."""
    prefix = OUTPUT_PREFIX[approach]
    return {kind: Path(out_dir) / f"{prefix}_{name}" for kind, name in OUTPUT_KINDS.items()}


def write_history(history: list[dict[str, float]], path: Path) -> None:
    """The history as CSV, one row per finished epoch."""
    write_atomic(path, pd.DataFrame(history).to_csv(index=False).encode())


def write_test_outputs(
    paths: dict[str, Path],
    data: PreparedData,
    probabilities: np.ndarray,
    labels: np.ndarray,
    *,
    approach: str,
    best_epoch: int,
    history: list[dict[str, float]],
) -> None:
    """The best model's confusion matrix (CSV, PNG) and predictions on the test split, and the
    history (CSV, PNG). `probabilities` (N, C) and `labels` (N,) follow the test split's table
    order."""
    test = data.indices("test")
    prefix = OUTPUT_PREFIX[approach]
    accuracy = compute_accuracy(labels, probabilities)
    table = make_confusion_table(labels, probabilities.argmax(1), data.class_names)
    files = data.table["file"].to_numpy()[test]
    predictions = make_predictions_table(files, probabilities, data.class_names, labels)
    title = f"{prefix}: test accuracy {accuracy:.3f} (best epoch {best_epoch})"
    matrix, curves = plot_confusion_matrix(table, title), plot_history(history, prefix)
    # Every table and figure is made before any file is written.
    write_atomic(paths["confusion_csv"], table.to_csv().encode())
    write_atomic(paths["predictions_csv"], predictions.to_csv(index=False).encode())
    save_figure_atomic(matrix, paths["confusion_png"])
    write_history(history, paths["history_csv"])
    save_figure_atomic(curves, paths["history_png"])
