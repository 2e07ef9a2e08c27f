"""The sweep figure: best validation accuracy over a grid of one or two settings, a heatmap per
approach, each cell annotated with its value."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure


def plot_sweep(table: pd.DataFrame, names: list[str], value: str = "best_val_acc") -> Figure:
    """`value` of each run of `table` (sweep.csv) laid out by the grid settings `names`."""
    if not 1 <= len(names) <= 2:
        raise ValueError(f"a sweep heatmap shows one or two settings; got {names}.")
    approaches = list(dict.fromkeys(table["approach"]))
    figure = Figure(figsize=(4.5 * len(approaches) + 1, 3.8), layout="constrained")
    axes = figure.subplots(1, len(approaches), squeeze=False)[0]
    for ax, approach in zip(axes, approaches, strict=True):
        rows = table[table["approach"] == approach]
        columns = names[1] if len(names) == 2 else None
        grid = rows.pivot_table(index=names[0], columns=columns, values=value, aggfunc="mean")
        if columns is None:
            grid = grid.rename(columns={value: ""})
        sns.heatmap(
            grid,
            ax=ax,
            annot=True,
            fmt=".3f",
            cmap="viridis",
            vmin=0,
            vmax=1,
            cbar_kws={"label": value.replace("_", " ")},
        )
        ax.set_title(approach)
    figure.suptitle(f"{value.replace('_', ' ')} per run")
    return figure
