"""Figures of training: loss and accuracy per epoch (a history: one dict per epoch with
`epoch`, `train_loss`, `train_acc`, `val_loss`, `val_acc`)."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        ax.grid(alpha=0.3)
        ax.legend()
    acc_ax.set_ylim(0, 1.02)
    if title:
        figure.suptitle(title)
    return figure


def draw_histories(
    loss_ax: Axes, acc_ax: Axes, histories: dict[str, list[dict[str, float]]]
) -> None:
    """Several runs' curves on shared axes: a colour per run, dashed training, solid validation."""
    colors = dict(zip(histories, sns.color_palette("tab10"), strict=False))
    for name, history in histories.items():
        frame = pd.DataFrame(history)
        for ax, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
            for split, style, words in (("train", "--", "train"), ("val", "-o", "validation")):
                ax.plot(
                    frame["epoch"],
                    frame[f"{split}_{metric}"],
                    style,
                    color=colors[name],
                    label=f"{name} {words}",
                    markersize=4,
                )
    for ax, label in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    acc_ax.set_ylim(0, 1.02)
    loss_ax.legend(fontsize=8)
