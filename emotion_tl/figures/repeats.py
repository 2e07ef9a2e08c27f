"""The repeated-splits figure: each split's score per approach (a grey line joins the two scores
of one split), each approach's mean and interval, and the per-split differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure


def plot_repeats(table: pd.DataFrame, summary: pd.DataFrame, score: str = "accuracy") -> Figure:
    """Left: `score` per split and approach, with the mean and interval; right: the differences."""
    approaches = list(dict.fromkeys(table["approach"]))
    wide = table.pivot(index="split", columns="approach", values=score)[approaches]
    rows = summary[summary["score"] == score].set_index("approach")
    colors = dict(zip(approaches, sns.color_palette("tab10"), strict=False))
    figure = Figure(figsize=(10, 4), layout="constrained")
    scores_ax, diff_ax = figure.subplots(1, 2, width_ratios=(len(approaches), 1.4))
    x = np.arange(len(approaches))
    spread = np.linspace(-0.12, 0.0, len(wide))  # each split a little apart: equal scores show
    for offset, (_, values) in zip(spread, wide.iterrows(), strict=True):
        scores_ax.plot(x + offset, values.to_numpy(), color="grey", alpha=0.4, linewidth=0.8)
    for position, name in enumerate(approaches):
        scores_ax.scatter(position + spread, wide[name], color=colors[name], s=22)
        _draw_interval(scores_ax, position + 0.12, rows.loc[name], "black")
    scores_ax.set_xticks(x, approaches)
    scores_ax.set_xlim(-0.5, len(approaches) - 0.5)
    scores_ax.set_ylabel(score.replace("_", " "))
    scores_ax.set_title(f"{len(wide)} splits: each dot one split; bar: mean and interval")
    differences = [name for name in rows.index if " - " in name]
    for position, name in enumerate(differences):
        first, second = name.split(" - ")[1], name.split(" - ")[0]
        values = wide[second] - wide[first]
        diff_ax.scatter(position + spread, values, color="grey", s=22)
        _draw_interval(diff_ax, position + 0.12, rows.loc[name], "black")
    diff_ax.axhline(0, color="red", linewidth=0.8)
    diff_ax.set_xticks(range(len(differences)), differences, fontsize=8)
    diff_ax.set_xlim(-0.6, max(len(differences), 1) - 0.4)
    diff_ax.set_title("paired difference per split")
    for ax in (scores_ax, diff_ax):
        ax.grid(alpha=0.3, axis="y")
    return figure


def _draw_interval(ax, position: float, row: pd.Series, color: str) -> None:
    """A mean (diamond) with its interval (bar), when the interval is known."""
    if np.isfinite(row["low"]):
        ax.vlines(position, row["low"], row["high"], color=color, linewidth=2)
    ax.scatter([position], [row["mean"]], marker="D", color=color, s=30, zorder=3)
