"""Repeated splits: each split follows the split rules, the summary's interval is the corrected
resampled t-interval, and `--repeats` trains, gathers and, run again, only reads back."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from emotion_tl.config import Config
from emotion_tl.data.prepare import prepare_data, resplit
from emotion_tl.evaluation.repeats import (
    REPEATS_FILE,
    SUMMARY_FILE,
    corrected_interval,
    describe_repeats,
    summarize_repeats,
)
from emotion_tl.figures.repeats import plot_repeats
from emotion_tl.training.repeats import FIGURE_FILE, REPEATS_DIR, make_time_estimate
from emotion_tl.training.run import run_experiment


def test_repeated_splits_differ_and_keep_people_and_copies_together(tiny_config, image_dir):
    shutil.copy(image_dir / "circle" / "circle_000.png", image_dir / "circle" / "copy.png")
    files = sorted(p.relative_to(image_dir).as_posix() for p in image_dir.rglob("*.png"))
    identities = {f: f"id{int(f.split('_')[-1][:3]) % 10}" for f in files if "copy" not in f}
    identities["circle/copy.png"] = "someone else"  # a copy under another person: still joined
    pd.DataFrame({"file": list(identities), "identity": list(identities.values())}).to_csv(
        image_dir / "metadata.csv"
    )
    data = prepare_data(tiny_config)
    splits = [resplit(data, dataclasses.replace(tiny_config, seed=42 + k)).table for k in range(4)]
    assert len({tuple(t["split"]) for t in splits}) == 4  # all different
    for table in splits:
        assert list(table["file"]) == list(data.table["file"])  # same images, nothing re-read
        person = table["file"].map(identities)
        assert table.groupby(person)["split"].nunique().max() == 1
        by_file = table.set_index("file")["split"]
        assert by_file["circle/copy.png"] == by_file["circle/circle_000.png"]
        assert (pd.crosstab(table["label"], table["split"]) > 0).all(axis=None)


def test_interval_is_the_corrected_resampled_t_interval():
    values = np.array([0.80, 0.85, 0.75, 0.90, 0.82])
    ratio = 44 / 212
    # By hand: mean 0.824, sample variance 0.00313, t(0.975, 4) = 2.7764
    half = 2.7764451051977987 * np.sqrt((1 / 5 + ratio) * 0.00313)
    interval = corrected_interval(values, ratio)
    assert interval.mean == pytest.approx(0.824)
    assert (interval.low, interval.high) == pytest.approx((0.824 - half, 0.824 + half))
    t = 0.824 / np.sqrt((1 / 5 + ratio) * 0.00313)
    assert interval.p_value == pytest.approx(2 * stats.t.sf(t, 4))
    plain = corrected_interval(values, 0.0)  # no correction: the textbook t-interval
    assert plain.half_width == pytest.approx(
        stats.t.ppf(0.975, 4) * values.std(ddof=1) / np.sqrt(5)
    )
    assert np.isnan(corrected_interval(values[:1], ratio).low)  # one split: no interval


def test_summary_pairs_the_splits_and_says_what_the_interval_means():
    table = pd.DataFrame(
        {
            "split": [0, 0, 1, 1, 2, 2],
            "approach": ["frozen_weights", "finetuning"] * 3,
            "accuracy": [0.70, 0.80, 0.60, 0.72, 0.75, 0.86],
            "balanced_accuracy": [0.70, 0.80, 0.60, 0.72, 0.75, 0.86],
            "macro_f1": [0.70, 0.80, 0.60, 0.72, 0.75, 0.86],
            "train_images": 100,
            "test_images": 20,
        }
    )
    summary = summarize_repeats(table).set_index(["approach", "score"])
    difference = summary.loc[("finetuning - frozen_weights", "accuracy")]
    expected = corrected_interval(np.array([0.10, 0.12, 0.11]), 0.2)
    assert difference["mean"] == pytest.approx(0.11)
    assert (difference["low"], difference["high"]) == pytest.approx((expected.low, expected.high))
    assert difference["low"] > 0  # consistent gains: the paired interval leaves out zero
    frozen = summary.loc[("frozen_weights", "accuracy")]
    assert frozen["low"] < 0.6 < frozen["high"]  # a single approach varies far more
    text = describe_repeats(summary.reset_index())
    assert "Over 3 different splits" in text and "leaves out zero" in text


def test_repeats_train_each_split_once_and_gather_the_scores(tiny_config, caplog):
    cfg = dataclasses.replace(tiny_config, epochs=1, repeats=3)
    run_experiment(cfg)
    root = Path(cfg.checkpoint_dir)
    table = pd.read_csv(root / REPEATS_FILE)
    assert list(table["split"]) == [0, 0, 1, 1, 2, 2]
    assert list(table["seed"].unique()) == [42, 43, 44]
    assert {"accuracy", "balanced_accuracy", "macro_f1", "best_epoch", "seconds"} <= set(table)
    assert (root / SUMMARY_FILE).is_file() and (root / FIGURE_FILE).is_file()
    split_files = [root / REPEATS_DIR / f"seed_{seed}" / "split.csv" for seed in (43, 44)]
    assert all(path.is_file() for path in split_files)
    stamps = {p: p.stat().st_mtime_ns for p in (root / REPEATS_DIR).rglob("*_best.pt")}
    assert len(stamps) == 4
    with caplog.at_level(logging.INFO, logger="emotion_tl"):
        run_experiment(dataclasses.replace(cfg, resume=True))  # split 0 and 1.. all finished
    assert caplog.text.count("finished before; reading it back") == 4
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}  # nothing trained again
    pd.testing.assert_frame_equal(pd.read_csv(root / REPEATS_FILE), table)


def test_one_approach_has_intervals_but_no_difference():
    table = pd.DataFrame(
        {"split": [0, 1, 2], "approach": "frozen_weights", "accuracy": [0.7, 0.8, 0.75],
         "balanced_accuracy": [0.7, 0.8, 0.75], "macro_f1": [0.7, 0.8, 0.75],
         "train_images": 100, "test_images": 20}
    )  # fmt: skip
    summary = summarize_repeats(table)
    assert set(summary["approach"]) == {"frozen_weights"}
    text = describe_repeats(summary)
    assert "frozen_weights: 0.750" in text and "minus" not in text
    figure = plot_repeats(table, summary)
    assert len(figure.axes) == 2


def test_the_time_estimate_counts_the_epochs_each_split_will_run(caplog):
    # 50 training images at batch 32 make 2 steps an epoch: 20 default epochs reach 40 steps.
    estimate = make_time_estimate(Config(repeats=3), "finetuning", train_images=50)
    with caplog.at_level(logging.INFO, logger="emotion_tl"):
        estimate([{"seconds": 6.0}])
    assert "6.0 s per epoch, so 3 splits of 20 epochs take about 6 min in all" in caplog.text
    big = make_time_estimate(Config(repeats=3), "finetuning", train_images=212)
    with caplog.at_level(logging.INFO, logger="emotion_tl"):
        big([{"seconds": 6.0}])
    assert "3 splits of 10 epochs take about 3 min" in caplog.text
    assert make_time_estimate(Config(), "finetuning", train_images=50) is None  # one split
