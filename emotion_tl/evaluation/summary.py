"""Notebook 04's closing comparison: measured facts per approach, and sentences built from them.

Every claim in `write_summary` is computed from the run's numbers, so the text cannot contradict
the tables above it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from emotion_tl.data.files import DataError
from emotion_tl.data.metadata import read_metadata
from emotion_tl.evaluation.comparison import Comparison, load_comparison
from emotion_tl.evaluation.paired import find_only_right
from emotion_tl.figures.evaluation import plot_labelled_images
from emotion_tl.model.checkpoint import CheckpointError

READABLE = {"frozen_weights": "frozen weights", "finetuning": "fine-tuning"}


def readable(name: str) -> str:
    """'frozen_weights' -> 'frozen weights', for sentences."""
    return READABLE.get(name, name)


def measure_approaches(comparison: Comparison) -> pd.DataFrame:
    """One row per approach: the numbers behind the guide's table and the summary."""
    rows = {}
    for outputs in comparison.approaches:
        facts = outputs.facts()
        history = pd.DataFrame(outputs.checkpoint["history"])
        last = history.iloc[-1]
        rows[outputs.name] = {
            "trainable_params": facts["trainable_params"],
            "seconds_per_epoch": facts["seconds_per_epoch"],
            "setup_seconds": facts["setup_seconds"],
            "training_seconds": facts["training_seconds"],
            "best_epoch": facts["best_epoch"],
            "epochs": int(history["epoch"].max()),
            "peak_memory_mb": facts.get("peak_memory_mb"),
            "test_accuracy": comparison.evaluations[outputs.name].accuracy,
            # Training minus validation accuracy at the end: how much is memorised, not learnt.
            "final_gap": float(last["train_acc"] - last["val_acc"]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def make_guide_table(measures: pd.DataFrame) -> pd.DataFrame:
    """The seed guide's table: time, convergence, memory, accuracy, overfitting, parameters."""

    def memory(value: float | None) -> str:
        return "not measured" if value is None or pd.isna(value) else f"{value:,.0f} MB peak"

    def total(row: pd.Series) -> str:
        if row.training_seconds is None or pd.isna(row.training_seconds):
            return "not recorded"
        return f"{row.training_seconds:.1f} s, {row.setup_seconds:.1f} s of it before epoch 1"

    table = {
        name: {
            "training time": f"{row.seconds_per_epoch:.1f} s per epoch",
            # For frozen weights with the feature cache, the backbone's one pass over the images.
            "whole training": total(row),
            "convergence": f"best validation accuracy at epoch {int(row.best_epoch)} "
            f"of {int(row.epochs)}",
            "memory": memory(row.peak_memory_mb),
            "test accuracy": f"{row.test_accuracy:.3f}",
            "overfitting (train - validation accuracy, last epoch)": f"{row.final_gap:+.3f}",
            "trainable parameters": f"{int(row.trainable_params):,}",
        }
        for name, row in measures.iterrows()
    }
    return pd.DataFrame(table).rename(columns=readable).rename_axis("aspect")


def compare_words(a: float, b: float, more: str, less: str, same: str = "the same") -> str:
    """'more' if a > b, 'less' if a < b, else 'same'."""
    return more if a > b else less if a < b else same


def write_summary(comparison: Comparison) -> str:
    """A Markdown paragraph per aspect whose every claim comes from this run's numbers."""
    measures = measure_approaches(comparison)
    (first, a), (second, b) = measures.iterrows()
    name_a, name_b = readable(first), readable(second)
    ratio = b.trainable_params / max(1, a.trainable_params)
    lines = [
        f"- **Trainable parameters**: {name_b} trained {int(b.trainable_params):,}, "
        f"{name_a} {int(a.trainable_params):,} ({ratio:,.0f} times as many).",
    ]
    time_ratio = b.seconds_per_epoch / a.seconds_per_epoch
    words = (
        f"- **Training time**: an epoch took {b.seconds_per_epoch:.1f} s with {name_b} and "
        f"{a.seconds_per_epoch:.1f} s with {name_a}, {time_ratio:.1f} times as long."
    )
    if not (pd.isna(a.training_seconds) or pd.isna(b.training_seconds)):
        words += (
            f" Counting the work before the first epoch ({a.setup_seconds:.1f} s for "
            f"{name_a}, {b.setup_seconds:.1f} s for {name_b}: with the feature cache, frozen "
            f"weights' one pass of the backbone over every image), the whole training took "
            f"{b.training_seconds:.1f} s with {name_b} and {a.training_seconds:.1f} s with "
            f"{name_a}, {b.training_seconds / a.training_seconds:.1f} times as long."
        )
    lines.append(words)
    for name, row in ((name_a, a), (name_b, b)):
        still = (
            " (the last one: more epochs might still help)" if row.best_epoch == row.epochs else ""
        )
        lines.append(
            f"- **Convergence, {name}**: best validation accuracy at epoch "
            f"{int(row.best_epoch)} of {int(row.epochs)}{still}."
        )
    if not (pd.isna(a.peak_memory_mb) or pd.isna(b.peak_memory_mb)):
        word = compare_words(b.peak_memory_mb, a.peak_memory_mb, "more", "less")
        lines.append(
            f"- **Memory**: {name_b} peaked at {b.peak_memory_mb:,.0f} MB, {word} than "
            f"{name_a} ({a.peak_memory_mb:,.0f} MB)."
        )
    better = compare_words(a.test_accuracy, b.test_accuracy, name_a, name_b, "neither")
    lines.append(
        f"- **Test accuracy**: {name_a} {a.test_accuracy:.3f}, {name_b} {b.test_accuracy:.3f} "
        f"on the same {comparison.num_test_images()} images; higher: {better}. "
        f"{comparison.mcnemar.sentence()}"
    )
    wider = compare_words(a.final_gap, b.final_gap, name_a, name_b, "neither")
    lines.append(
        f"- **Overfitting**: training minus validation accuracy at the last epoch was "
        f"{a.final_gap:+.3f} ({name_a}) and {b.final_gap:+.3f} ({name_b}); the wider gap, "
        f"a sign of memorising the training images: {wider}."
    )
    return "\n".join(lines)


def find_disagreements(comparison: Comparison) -> pd.DataFrame:
    """Test images exactly one approach gets right: file, label, both predictions, who is right."""
    first, second = comparison.approaches
    a, b = first.predictions, second.predictions  # same files in the same order (checked)
    labels, probabilities_a, probabilities_b = comparison.read_probabilities()
    only_a, only_b = find_only_right(labels, probabilities_a.argmax(1), probabilities_b.argmax(1))
    table = pd.DataFrame(
        {
            "file": a["file"],
            "label": a["label"],
            first.name: a["predicted"],
            second.name: b["predicted"],
            "right": np.where(only_a, first.name, second.name),
        }
    )
    return table[only_a | only_b].reset_index(drop=True)


def plot_disagreements(comparison: Comparison, data_dir: str | Path, count: int = 8) -> Figure:
    """Up to `count` test images one approach gets right and the other wrong, both ways round."""
    table = find_disagreements(comparison)
    # Alternate between the two directions so both are shown when both exist.
    table = table.assign(turn=table.groupby("right").cumcount()).sort_values(["turn", "right"])
    table = table.head(count)
    titles = [f"true: {row.label}\nright: {readable(row.right)}" for row in table.itertuples()]
    return plot_labelled_images(
        list(table["file"]),
        titles,
        data_dir,
        title="Test images only one approach gets right",
        empty="Both approaches get the same test images right.",
        face_crop=comparison.approaches[0].face_crop,
    )


def compare_saved_runs(checkpoint_dir: str | Path) -> pd.DataFrame | str:
    """The guide's table for both approaches in `checkpoint_dir`, or why there is none yet."""
    try:
        comparison = load_comparison(checkpoint_dir)
    except (CheckpointError, DataError) as error:
        return f"No comparison yet: {error}"
    return make_guide_table(measure_approaches(comparison))


# Expression intensity bands (metadata.csv's `intensity`: 0 = neutral, 1 = full expression).
INTENSITY_BANDS = (-0.001, 0.0, 0.5, 0.7, 0.85, 1.0)
BAND_NAMES = ("0 (neutral)", "0-0.5", "0.5-0.7", "0.7-0.85", "0.85-1")


def accuracy_by_intensity(comparison: Comparison, data_dir: str | Path) -> pd.DataFrame | None:
    """Each approach's test accuracy per band of expression intensity, with the number of test
    images in each band; None when data_dir's metadata.csv records no intensity."""
    metadata = read_metadata(data_dir)
    if metadata is None or "intensity" not in metadata.columns:
        return None
    intensity = metadata.set_index("file")["intensity"]
    files = comparison.approaches[0].predictions["file"]
    bands = pd.cut(files.map(intensity), INTENSITY_BANDS, labels=BAND_NAMES)
    table = pd.DataFrame(
        {
            outputs.name: (outputs.predictions["label"] == outputs.predictions["predicted"])
            .groupby(bands, observed=False)
            .mean()
            for outputs in comparison.approaches
        }
    )
    table.insert(0, "test images", bands.value_counts().reindex(table.index))
    return table.rename_axis("intensity")
