"""Figures of training: loss and accuracy per epoch (a history: one dict per epoch with
`epoch`, `train_loss`, `train_acc`, `val_loss`, `val_acc`), and a BatchNorm layer's running
means."""

from __future__ import annotations

import numpy as np
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


def plot_histories(histories: dict[str, list[dict[str, float]]], title: str = "") -> Figure:
    """Several runs' loss and accuracy per epoch on shared axes, loss left, accuracy right."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    draw_histories(*figure.subplots(1, 2), histories)
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


def plot_running_means(means: dict[str, np.ndarray], layer: str) -> Figure:
    """One BatchNorm layer's running mean per channel, one marker per state (the first hollow
    and large, so that a state which did not move shows as a dot inside its circle)."""
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    ax = figure.subplots()
    styles = [
        {"marker": "o", "s": 70, "facecolors": "none", "linewidths": 1.2},
        {"marker": "o", "s": 14},
        {"marker": "x", "s": 22},
    ]
    colors = sns.color_palette("tab10")
    for index, (name, values) in enumerate(means.items()):
        style = styles[min(index, len(styles) - 1)]
        key = "edgecolors" if style.get("facecolors") == "none" else "color"
        ax.scatter(np.arange(len(values)), values, label=name, **{key: colors[index]}, **style)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel(f"channel of {layer}")
    ax.set_ylabel("running mean")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def plot_lr_finding(table: pd.DataFrame, suggestion: float | None, title: str = "") -> Figure:
    """The learning-rate finder's loss against the rate (log scale): raw steps faint, smoothed
    bold, the suggested rate marked."""
    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    ax.plot(table["rate"], table["loss"], color="grey", alpha=0.35, label="loss per step")
    ax.plot(table["rate"], table["smoothed"], color="C0", label="smoothed")
    if suggestion is not None:
        ax.axvline(suggestion, color="C3", linestyle="--", label=f"suggested: {suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    top = float(np.nanpercentile(table["smoothed"], 95)) * 1.5
    ax.set_ylim(max(0.0, float(table["loss"].min()) * 0.8), max(top, 1e-3))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if title:
        ax.set_title(title)
    return figure
