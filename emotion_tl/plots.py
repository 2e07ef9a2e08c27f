"""Figures from data: each function returns a matplotlib Figure and never shows it."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure


def plot_history(history: list[dict[str, float]], title: str = "") -> Figure:
    """Loss and accuracy per epoch, train and validation, side by side."""
    frame = pd.DataFrame(history)
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = figure.subplots(1, 2)
    for ax, metric, label in ((loss_ax, "loss", "Loss"), (acc_ax, "acc", "Accuracy")):
        ax.plot(frame["epoch"], frame[f"train_{metric}"], marker="o", label="train")
        ax.plot(frame["epoch"], frame[f"val_{metric}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    acc_ax.set_ylim(0, 1.02)
    if title:
        figure.suptitle(title)
    return figure


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
