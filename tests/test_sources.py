"""Several sources in one run: each trained in its own folder on the same split, then every model
compared in checkpoint_dir/comparison.*, with --repeats across sources; compare rewrites it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from conftest import cli_args
from test_backbones import tiny_backbone  # noqa: F401 -- the fixture that registers "tiny"

from emotion_tl.cli import main
from emotion_tl.evaluation.sources import (
    NOTEBOOK_FOLDER,
    SOURCES_FILE,
    build_sources_comparison,
    find_sources_comparison,
)


def test_two_sources_train_and_every_model_is_compared(tiny_backbone, tiny_config):  # noqa: F811
    out = Path(tiny_config.checkpoint_dir)
    args = cli_args(tiny_config, "--backbone", "resnet50", "tiny", "--repeats", "2")
    assert main(args) == 0
    for source in ("resnet50", "tiny"):
        assert (out / source / "frozen_weights_best.pt").is_file()
        assert (out / source / "repeats.csv").is_file()
    split = {s: pd.read_csv(out / s / "split.csv") for s in ("resnet50", "tiny")}
    assert split["resnet50"].equals(split["tiny"])  # one split for every source
    assert json.loads((out / SOURCES_FILE).read_text()) == {"sources": ["resnet50", "tiny"]}

    table = pd.read_csv(out / "comparison.csv")
    assert list(table["model"]) == [
        "resnet50/frozen_weights",
        "resnet50/finetuning",
        "tiny/frozen_weights",
        "tiny/finetuning",
    ]
    assert table["best"].sum() == 1
    assert table.loc[table["best"], "vs_best_p"].isna().all()
    assert table.loc[~table["best"], "vs_best_p"].between(0, 1).all()
    assert (table["low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["high"]).all()
    assert (table["splits"] == 2).all() and table["repeats_mean"].between(0, 1).all()
    assert list(table["trainable_params"][::2]) == [2048 * 2 + 2, 16 * 2 + 2]  # the frozen heads
    side = tiny_config.image_size  # what each source read: ResNet50 colour, the tiny one grey
    assert list(table["reads"][::2]) == [f"{side}x{side} colour", f"{side}x{side} grey"]
    best = table.loc[table["best"]].iloc[0]
    assert best["accuracy"] == table["accuracy"].max()

    # compare writes the same report again from what the run saved
    (out / "comparison.md").unlink()
    assert main(["compare", "--checkpoint_dir", str(out)]) == 0
    text = (out / "comparison.md").read_text()
    assert text.startswith("# Which model to transfer from") and "tiny/finetuning" in text
    again = build_sources_comparison(out, ["resnet50", "tiny"]).table
    pd.testing.assert_series_equal(again["accuracy"], table["accuracy"])


def test_one_approach_from_two_sources_is_compared_too(tiny_backbone, tiny_config):  # noqa: F811
    out = Path(tiny_config.checkpoint_dir)
    args = cli_args(tiny_config, "--backbone", "resnet50", "tiny", "--approach", "frozen")
    assert main(args) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["model"]) == ["resnet50/frozen_weights", "tiny/frozen_weights"]
    assert "own comparison" not in (out / "comparison.md").read_text()  # none was written

    # notebook 04 finds the comparison in checkpoint_dir, or in notebook 05's sources/ below it
    assert list(find_sources_comparison(out).table["model"]) == list(table["model"])
    assert find_sources_comparison(out / "resnet50") is None  # a one-source run's folder
    moved = out.parent / "course"
    moved.mkdir()
    out.rename(moved / NOTEBOOK_FOLDER)
    assert list(find_sources_comparison(moved).table["model"]) == list(table["model"])


def test_a_source_named_twice_is_refused_before_training(tiny_config, caplog):
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(cli_args(tiny_config, "--backbone", "face", "faceapi_expression")) == 2
    assert "more than once" in caplog.text
    assert not any(Path(tiny_config.checkpoint_dir).rglob("*.pt"))


@pytest.mark.parametrize("name", ["face", "faceapi_expression"])
def test_the_alias_and_the_entry_train_the_same_source(name, tiny_config):
    from emotion_tl.model.backbones import resolve_config

    resolved = resolve_config(type(tiny_config)(backbone=name))
    assert resolved.backbone == "faceapi_expression" and resolved.image_size == 112


def test_the_zero_shot_baseline_is_scored_on_every_split(tmp_path):
    from conftest import make_image_folder, make_tiny_config

    from emotion_tl.evaluation.comparison import ZERO_SHOT_FILE
    from emotion_tl.training.run import run_experiment

    faces = make_image_folder(tmp_path / "faces", {"circle": 12, "square": 12})
    for shape, expression in (("circle", "happy"), ("square", "neutral")):
        (faces / shape).rename(faces / expression)
    cfg = make_tiny_config(
        faces, tmp_path / "ck", backbone="face", pretrained=True, image_size=None, epochs=1,
        categories=("happy", "neutral"), repeats=2, approach="frozen",
    )  # fmt: skip
    run_experiment(cfg)
    out = Path(cfg.checkpoint_dir)
    table = pd.read_csv(out / "repeats.csv")
    zero = table[table["approach"] == "zero_shot"]
    assert list(zero["split"]) == [0, 1]
    split_1 = pd.read_csv(next((out / "repeats").glob("seed_*")) / ZERO_SHOT_FILE)
    right = (split_1["label"] == split_1["predicted"]).mean()
    assert zero.loc[zero["split"] == 1, "accuracy"].item() == right
    summary = pd.read_csv(out / "repeats_summary.csv")
    assert "zero_shot - frozen_weights" in set(summary["approach"])
