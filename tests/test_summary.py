"""Notebook 04's summary: its claims follow the numbers, whichever way they go."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emotion_tl.evaluation.comparison import ApproachOutputs, build_comparison
from emotion_tl.evaluation.predictions import make_predictions_table
from emotion_tl.evaluation.summary import (
    accuracy_by_intensity,
    find_disagreements,
    make_guide_table,
    measure_approaches,
    plot_disagreements,
    write_summary,
)

CLASSES = ["circle", "square"]
LABELS = np.array([0, 0, 0, 1, 1, 1])


def outputs(name, right, *, params, seconds, best_epoch, final_gap, memory=None, setup=None):
    """A saved run whose test predictions are right exactly where `right` is True."""
    predicted = np.where(right, LABELS, 1 - LABELS)
    probabilities = np.eye(2)[predicted] * 0.8 + 0.1
    files = [f"{CLASSES[label]}/{index}.png" for index, label in enumerate(LABELS)]
    history = [
        {"epoch": e, "train_acc": 0.6 + final_gap, "val_acc": 0.6, "seconds": seconds}
        for e in (1, 2, 3)
    ]
    checkpoint = {
        "class_names": CLASSES,
        "epoch": best_epoch,
        "history": history,
        "metrics": {"trainable_params": params, "peak_memory_mb": memory, "setup_seconds": setup},
    }
    table = make_predictions_table(files, probabilities, CLASSES, LABELS)
    return ApproachOutputs(name, checkpoint, table)


def make_comparison(frozen_right, finetuning_right, frozen_setup=None, **finetuning):
    frozen = outputs(
        "frozen_weights", frozen_right, params=4098, seconds=2.0, best_epoch=3, final_gap=0.05,
        setup=frozen_setup,
    )  # fmt: skip
    defaults = {"params": 23_512_130, "seconds": 6.0, "best_epoch": 2, "final_gap": 0.25}
    return build_comparison(
        [frozen, outputs("finetuning", finetuning_right, **(defaults | finetuning))]
    )


def test_measures_and_guide_table_come_from_the_saved_runs():
    comparison = make_comparison([1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1])
    measures = measure_approaches(comparison)
    assert measures.loc["frozen_weights", "test_accuracy"] == pytest.approx(4 / 6)
    assert measures.loc["finetuning", "test_accuracy"] == 1.0
    assert measures.loc["finetuning", "final_gap"] == pytest.approx(0.25)
    assert measures.loc["frozen_weights", "epochs"] == 3
    table = make_guide_table(measures)
    assert list(table.columns) == ["frozen weights", "fine-tuning"]
    assert table.loc["trainable parameters", "fine-tuning"] == "23,512,130"
    assert table.loc["memory", "frozen weights"] == "not measured"


def test_summary_claims_follow_the_numbers_both_ways():
    finetuning_wins = write_summary(make_comparison([1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]))
    assert "frozen weights 0.667, fine-tuning 1.000" in finetuning_wins
    assert "higher: fine-tuning" in finetuning_wins
    assert "5,737 times as many" in finetuning_wins  # 23,512,130 / 4,098
    assert "3.0 times as long" in finetuning_wins
    assert "the wider gap, a sign of memorising the training images: fine-tuning" in (
        finetuning_wins
    )
    # The frozen run's best epoch was its last one; fine-tuning's was not.
    assert "epoch 3 of 3 (the last one" in finetuning_wins
    assert "epoch 2 of 3." in finetuning_wins

    frozen_wins = write_summary(
        make_comparison([1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 1, 1], final_gap=-0.1, memory=512.0)
    )
    assert "higher: frozen weights" in frozen_wins
    assert "memorising the training images: frozen weights" in frozen_wins
    assert "Memory" not in frozen_wins  # only one run measured it: no claim

    tie = write_summary(make_comparison([1] * 6, [1] * 6))
    assert "higher: neither" in tie


def test_time_counts_the_frozen_feature_pass_when_recorded():
    """Frozen weights' epochs are cheap because its backbone ran once before them: the whole
    training time counts that pass, so a 30 s pass makes frozen the slower of the two here."""
    comparison = make_comparison([1] * 6, [1] * 6, frozen_setup=30.0, setup=1.0)
    table = make_guide_table(measure_approaches(comparison))
    # 3 epochs: 30 + 3 x 2.0 = 36 s (frozen), 1 + 3 x 6.0 = 19 s (fine-tuning)
    assert table.loc["whole training", "frozen weights"] == "36.0 s, 30.0 s of it before epoch 1"
    assert table.loc["whole training", "fine-tuning"] == "19.0 s, 1.0 s of it before epoch 1"
    summary = write_summary(comparison)
    assert "3.0 times as long" in summary  # per epoch
    assert "19.0 s with fine-tuning and 36.0 s with frozen weights, 0.5 times as long" in summary
    # Checkpoints from before the record: no claim about the whole training.
    assert (
        make_guide_table(measure_approaches(make_comparison([1] * 6, [1] * 6))).loc[
            "whole training", "frozen weights"
        ]
        == "not recorded"
    )
    assert "whole training" not in write_summary(make_comparison([1] * 6, [1] * 6))


def test_disagreements_are_the_images_only_one_gets_right(tmp_path):
    comparison = make_comparison([1, 0, 1, 1, 1, 0], [1, 1, 1, 0, 1, 0])
    table = find_disagreements(comparison)
    assert list(table["file"]) == ["circle/1.png", "square/3.png"]
    assert list(table["right"]) == ["finetuning", "frozen_weights"]
    assert list(table["label"]) == ["circle", "square"]

    for file in table["file"]:
        (tmp_path / file).parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 16)).save(tmp_path / file)
    figure = plot_disagreements(comparison, tmp_path)
    assert len(figure.axes) == 2
    titles = sorted(ax.get_title() for ax in figure.axes)
    assert titles == ["true: circle\nright: fine-tuning", "true: square\nright: frozen weights"]
    same = plot_disagreements(make_comparison([1] * 6, [1] * 6), tmp_path)
    assert "same test images" in same.axes[0].texts[0].get_text()


def test_accuracy_by_intensity_band(tmp_path):
    """Accuracy within each band of metadata.csv's intensity; none without the column."""
    comparison = make_comparison([1, 0, 1, 1, 1, 0], [1, 1, 1, 0, 1, 1])
    files = list(comparison.approaches[0].predictions["file"])
    intensities = [0.0, 0.0, 0.0, 0.3, 0.9, 0.95]  # circles neutral; squares weak, strong
    pd.DataFrame({"file": files, "intensity": intensities}).to_csv(tmp_path / "metadata.csv")
    table = accuracy_by_intensity(comparison, tmp_path)
    assert list(table["test images"]) == [3, 1, 0, 0, 2]
    assert table.loc["0 (neutral)", "frozen_weights"] == pytest.approx(2 / 3)
    assert table.loc["0-0.5", "finetuning"] == 0.0 and table.loc["0-0.5", "frozen_weights"] == 1
    assert table.loc["0.85-1", "frozen_weights"] == 0.5 and table.loc["0.85-1", "finetuning"] == 1
    assert pd.isna(table.loc["0.5-0.7", "finetuning"])  # no test image in that band
    pd.DataFrame({"file": files}).to_csv(tmp_path / "metadata.csv")
    assert accuracy_by_intensity(comparison, tmp_path) is None
