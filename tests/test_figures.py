"""Figures, drawn as a learner sees them."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from emotion_tl.figures.training import plot_history


def history(epochs: int) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 50,
         "val_loss": 1.1 / e, "val_acc": 0.5 + e / 60}
        for e in range(1, epochs + 1)
    ]  # fmt: skip


@pytest.mark.parametrize("epochs", [2, 5, 7])
def test_history_plots_label_whole_epochs(epochs):
    """Matplotlib would put ticks at 1.2, 1.4, ... (2 epochs) or 2.5, 7.5 (more)."""
    figure = plot_history(history(epochs))
    FigureCanvasAgg(figure).draw()
    for ax in figure.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
