"""Evaluation figures: both approaches' curves and confusion matrices, mistakes and Grad-CAM."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torchvision.transforms.v2 import functional as TF

from emotion_tl.evaluate import PROBABILITY_PREFIX, compute_losses, read_predictions_table
from emotion_tl.files import load_image
from emotion_tl.predict import predictor_from_checkpoint

if TYPE_CHECKING:
    from emotion_tl.report import Comparison


def plot_comparison(
    histories: dict[str, list[dict[str, float]]],
    confusions: dict[str, pd.DataFrame],
    title: str = "",
) -> Figure:
    """Top: loss and accuracy per epoch for every approach on shared axes. Bottom: confusions."""
    names = list(confusions)
    figure = Figure(figsize=(5.5 * max(2, len(names)), 9), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[1, 1.1])
    loss_ax, acc_ax = top.subplots(1, 2)
    colors = dict(zip(histories, sns.color_palette("tab10"), strict=False))
    for name, history in histories.items():
        frame = pd.DataFrame(history)
        for ax, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
            ax.plot(frame["epoch"], frame[f"train_{metric}"], "--", color=colors[name],
                    label=f"{name} train")  # fmt: skip
            ax.plot(frame["epoch"], frame[f"val_{metric}"], "-o", color=colors[name],
                    label=f"{name} validation", markersize=4)  # fmt: skip
    for ax, label in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    acc_ax.set_ylim(0, 1.02)
    loss_ax.legend(fontsize=8)
    matrix_axes = np.atleast_1d(bottom.subplots(1, len(names)))
    for ax, name in zip(matrix_axes, names, strict=True):
        counts = confusions[name]
        shares = counts.div(counts.sum(axis=1).replace(0, 1), axis=0)
        notes = counts.astype(str) + "\n" + (shares * 100).round().astype(int).astype(str) + "%"
        sns.heatmap(shares, annot=notes, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False,
                    square=True, ax=ax)  # fmt: skip
        accuracy = np.trace(counts.to_numpy()) / max(1, counts.to_numpy().sum())
        ax.set_title(f"{name}: test accuracy {accuracy:.3f}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    if title:
        figure.suptitle(title)
    return figure


def plot_mistakes(
    predictions: dict[str, pd.DataFrame],
    class_names: list[str],
    data_dir: str | Path,
    count: int = 6,
) -> Figure:
    """One row per model: its `count` highest-loss test images, with true and predicted class."""
    data_dir = Path(data_dir)
    count = max(1, min(count, *(len(table) for table in predictions.values())))
    figure = Figure(figsize=(2.2 * count, 2.6 * len(predictions) + 0.4), layout="constrained")
    axes = figure.subplots(len(predictions), count, squeeze=False)
    for row, (name, table) in enumerate(predictions.items()):
        labels, probabilities = read_predictions_table(table, class_names)
        worst = np.argsort(-compute_losses(labels, probabilities), kind="stable")[:count]
        for ax, index in zip(axes[row], worst, strict=False):
            item = table.iloc[index]
            ax.imshow(load_image(data_dir / item["file"]))
            predicted = item["predicted"]
            ax.set_title(
                f"true: {item['label']}\npredicted: {predicted} "
                f"({item[PROBABILITY_PREFIX + predicted]:.2f})",
                size=9,
                color="firebrick" if predicted != item["label"] else "black",
            )
        axes[row, 0].text(-0.1, 0.5, name, transform=axes[row, 0].transAxes, rotation=90,
                          ha="right", va="center", size=11)  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    figure.suptitle("Each model's worst test images (highest loss; red: wrong)")
    return figure


def plot_comparison_report(comparison: Comparison) -> Figure:
    """comparison.png: both approaches' curves on shared axes and their confusion matrices."""
    return plot_comparison(
        {a.name: a.checkpoint["history"] for a in comparison.approaches},
        {a.name: comparison.evaluations[a.name].confusion for a in comparison.approaches},
        title=comparison.mcnemar.sentence(),
    )


def plot_mistakes_report(comparison: Comparison, data_dir: str | Path, count: int = 6) -> Figure:
    """Each approach's highest-loss test images."""
    predictions = {a.name: a.predictions for a in comparison.approaches}
    return plot_mistakes(predictions, comparison.approaches[0].class_names, data_dir, count)


def pick_disputed_files(comparison: Comparison, count: int = 4) -> list[str]:
    """Test images the approaches disagree on first, then those the ensemble finds hardest."""
    first, second = (a.predictions for a in comparison.approaches)
    labels, probabilities_a = read_predictions_table(first, comparison.approaches[0].class_names)
    _, probabilities_b = read_predictions_table(second, comparison.approaches[0].class_names)
    disagree = probabilities_a.argmax(1) != probabilities_b.argmax(1)
    ensemble = (probabilities_a + probabilities_b) / 2
    confidence = ensemble[np.arange(len(labels)), labels]
    order = np.lexsort((confidence, ~disagree))  # disagreements first, then the least confident
    return [first["file"].iloc[i] for i in order[:count]]


def plot_gradcam_report(comparison: Comparison, data_dir: str | Path, count: int = 4) -> Figure:
    """Grad-CAM of both approaches on the same few test images (disputed ones first)."""
    from emotion_tl.explain import plot_gradcam_comparison  # imports captum: only when asked

    files = pick_disputed_files(comparison, count)
    images = [TF.pil_to_tensor(load_image(Path(data_dir) / f)) for f in files]
    table = comparison.approaches[0].predictions.set_index("file")
    predictors = {
        a.name: predictor_from_checkpoint(a.checkpoint, a.name) for a in comparison.approaches
    }
    return plot_gradcam_comparison(predictors, images, list(table.loc[files, "label"]))
