"""Figures of results: confusion matrices, both approaches side by side, hardest images,
disagreements and Grad-CAM maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from emotion_tl.data.faces.crop import FaceCropSettings, load_seen_image
from emotion_tl.figures.training import draw_histories


def plot_confusion_matrix(table: pd.DataFrame, title: str = "") -> Figure:
    """Heat map of a confusion table (rows true, columns predicted) with counts written in."""
    figure = Figure(figsize=(1.2 * len(table) + 3, 1.0 * len(table) + 2.5), layout="constrained")
    ax = figure.subplots()
    sns.heatmap(table, annot=True, fmt="d", cmap="Blues", cbar=False, square=True, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return figure


def plot_comparison(
    histories: dict[str, list[dict[str, float]]],
    confusions: dict[str, pd.DataFrame],
    accuracies: dict[str, float],
    title: str = "",
) -> Figure:
    """Top: loss and accuracy per epoch for every model on shared axes. Bottom: each model's
    confusion matrix with counts and row percentages (recall on the diagonal)."""
    names = list(confusions)
    figure = Figure(figsize=(5.5 * max(2, len(names)), 9), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[1, 1.1])
    draw_histories(*top.subplots(1, 2), histories)
    for ax, name in zip(np.atleast_1d(bottom.subplots(1, len(names))), names, strict=True):
        counts = confusions[name]
        shares = counts.div(counts.sum(axis=1).replace(0, 1), axis=0)
        notes = counts.astype(str) + "\n" + (shares * 100).round().astype(int).astype(str) + "%"
        sns.heatmap(
            shares,
            annot=notes,
            fmt="",
            cmap="Blues",
            vmin=0,
            vmax=1,
            cbar=False,
            square=True,
            ax=ax,
        )
        ax.set_title(f"{name}: test accuracy {accuracies[name]:.3f}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    if title:
        figure.suptitle(title)
    return figure


def plot_mistakes(
    hardest: dict[str, pd.DataFrame],
    data_dir: str | Path,
    face_crop: FaceCropSettings | None = None,
) -> Figure:
    """One row per model: its hardest test images (rows with file, label, predicted and the
    predicted class's probability), titled in red where the prediction is wrong; each image
    is shown as the model saw it (cropped to the face as `face_crop` says)."""
    count = max(1, max(len(rows) for rows in hardest.values()))
    figure = Figure(figsize=(2.2 * count, 2.6 * len(hardest) + 0.4), layout="constrained")
    axes = figure.subplots(len(hardest), count, squeeze=False)
    for row, (name, rows) in enumerate(hardest.items()):
        for ax, item in zip(axes[row], rows.itertuples(), strict=False):
            ax.imshow(load_seen_image(Path(data_dir) / item.file, face_crop))
            ax.set_title(
                f"true: {item.label}\npredicted: {item.predicted} ({item.probability:.2f})",
                size=9,
                color="firebrick" if item.predicted != item.label else "black",
            )
        axes[row, 0].text(
            -0.1,
            0.5,
            name,
            transform=axes[row, 0].transAxes,
            rotation=90,
            ha="right",
            va="center",
            size=11,
        )
    for ax in axes.flat:
        ax.axis("off")
    figure.suptitle("Each model's worst test images (highest loss; red: wrong)")
    return figure


def plot_labelled_images(
    files: Sequence[str],
    titles: Sequence[str],
    data_dir: str | Path,
    title: str,
    empty: str,
    face_crop: FaceCropSettings | None = None,
) -> Figure:
    """A row of images (as the model saw them), each under its own title; `empty` is written
    when there are none."""
    figure = Figure(figsize=(2.3 * max(1, len(files)), 3.0), layout="constrained")
    if not files:
        ax = figure.subplots()
        ax.text(0.5, 0.5, empty, ha="center")
        ax.axis("off")
        return figure
    axes = figure.subplots(1, len(files), squeeze=False)[0]
    for ax, file, text in zip(axes, files, titles, strict=True):
        ax.imshow(load_seen_image(Path(data_dir) / file, face_crop))
        ax.set_title(text, size=9)
        ax.axis("off")
    figure.suptitle(title)
    return figure


def plot_gradcam_grid(
    results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    labels: Sequence[str] | None = None,
    alpha: float = 0.5,
) -> Figure:
    """One row per image: the crop the first model sees, then each model's Grad-CAM over its crop.

    `results` maps a model's name to (maps (N, S, S) in [0, 1], probabilities (N, C),
    crops (N, S, S, 3)); each map is titled with the predicted class and its probability.
    """
    first_crops = next(iter(results.values()))[2]
    rows, columns = len(first_crops), 1 + len(results)
    figure = Figure(figsize=(2.6 * columns, 2.7 * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for row in range(rows):
        axes[row, 0].imshow(first_crops[row])
        axes[row, 0].set_title(f"true: {labels[row]}" if labels is not None else "image", size=9)
        for column, (name, (maps, probabilities, crops)) in enumerate(results.items(), 1):
            predicted = int(probabilities[row].argmax())
            ax = axes[row, column]
            ax.imshow(crops[row])
            ax.imshow(maps[row], cmap="jet", alpha=alpha, vmin=0, vmax=1)
            confidence = probabilities[row, predicted]
            ax.set_title(f"{name}\n{class_names[predicted]} ({confidence:.2f})", size=9)
    for ax in axes.flat:
        ax.axis("off")
    figure.suptitle("Grad-CAM: where each model looks for the class it predicts")
    return figure


def plot_feature_maps(
    maps: dict[str, tuple[np.ndarray, np.ndarray]], labels: Sequence[str]
) -> Figure:
    """One panel per model: points (N, 2) coloured by label; axes named with the share of the
    variance (explained ratios (2,)) each holds."""
    figure = Figure(figsize=(5 * len(maps), 4.4), layout="constrained")
    axes = figure.subplots(1, len(maps), squeeze=False)[0]
    order = sorted(set(labels))
    for ax, (name, (points, ratios)) in zip(axes, maps.items(), strict=True):
        sns.scatterplot(
            x=points[:, 0],
            y=points[:, 1],
            hue=list(labels),
            hue_order=order,
            ax=ax,
            s=22,
            alpha=0.8,
        )
        ax.set_title(name)
        ax.set_xlabel(f"first direction ({ratios[0]:.0%} of the variance)")
        ax.set_ylabel(f"second direction ({ratios[1]:.0%})")
    figure.suptitle("Each image's features, projected onto their two main directions (PCA)")
    return figure


def plot_sources(table: pd.DataFrame, title: str = "") -> Figure:
    """Every source's models side by side: test accuracy with its 95% interval (a bar each,
    the best one darker), and trainable parameters on a log scale."""
    figure = Figure(figsize=(11, 0.5 * len(table) + 1.8), layout="constrained")
    accuracy_ax, size_ax = figure.subplots(1, 2, sharey=True, width_ratios=[2, 1])
    positions = np.arange(len(table))[::-1]
    colours = ["#1f4e79" if best else "#7fa7cf" for best in table["best"]]
    errors = [table["accuracy"] - table["low"], table["high"] - table["accuracy"]]
    accuracy_ax.barh(positions, table["accuracy"], xerr=errors, color=colours, capsize=3)
    accuracy_ax.set_yticks(positions, table["model"])
    accuracy_ax.set_xlim(0, 1)
    accuracy_ax.set_xlabel("test accuracy (95% interval)")
    trainable = table["trainable_params"].astype(float).fillna(0).clip(lower=1)
    size_ax.barh(positions, trainable, color="#999999")
    size_ax.set_xscale("log")
    size_ax.set_xlabel("trainable parameters (log scale; zero-shot: none)")
    if title:
        figure.suptitle(title)
    return figure
