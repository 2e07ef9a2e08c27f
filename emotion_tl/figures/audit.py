"""The audit's contact sheet: a row of the worst images for each kind of problem."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from emotion_tl.data.faces.crop import FaceCropSettings, load_seen_image


def plot_audit_sheet(
    rows: dict[str, list[tuple[str, str]]],
    data_dir: str | Path,
    face_crop: FaceCropSettings | None = None,
) -> Figure:
    """One row per problem (its name on the left): (file, caption) pairs, as the model sees them."""
    columns = max([len(items) for items in rows.values()] + [1])
    figure = Figure(figsize=(2.0 * columns + 1.5, 2.3 * max(1, len(rows))), layout="constrained")
    axes = figure.subplots(max(1, len(rows)), columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not rows:
        axes[0, 0].text(0.5, 0.5, "No problems found.", ha="center")
    for line, (problem, items) in enumerate(rows.items()):
        axes[line, 0].set_title(problem, loc="left", size=10, weight="bold")
        for ax, (file, caption) in zip(axes[line], items, strict=False):
            ax.imshow(load_seen_image(Path(data_dir) / file, face_crop))
            ax.text(
                0.5,
                -0.08,
                f"{file}\n{caption}",
                transform=ax.transAxes,
                ha="center",
                va="top",
                size=7,
            )
    return figure
