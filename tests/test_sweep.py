"""Sweeps: the sweep file is checked before anything runs, every grid cell runs notebook 02 into
its own folder, a second call runs nothing new, and a failing cell does not stop the others."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from emotion_tl.cli import main
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.sweep import DONE_FILE, SweepError, read_sweep, run_sweep

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_frozen_weights.ipynb"


def write_sweep(folder: Path, **spec) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(
        yaml.safe_dump({"notebook": str(NOTEBOOK), "output": "out"} | spec, sort_keys=False)
    )
    return path


def tiny_parameters(image_dir: Path) -> dict:
    return {"data_dir": str(image_dir), "categories": ["circle", "square"], "image_size": 32,
            "batch_size": 8, "device": "cpu", "pretrained": False}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"grid": {"learning_rte": [0.1]}}, "did you mean 'learning_rate'"),
        ({"grid": {"epochs": []}}, "non-empty list"),
        ({"grid": {"epochs": [1]}, "parameters": {"checkpoint_dir": "x"}}, "its own folder"),
        ({"grid": {"epochs": [1]}, "parameters": {"epochs": 2}}, "set twice"),
        ({"grid": {"epochs": [1]}, "notebook": "missing.ipynb"}, "not found"),
        ({"grid": {"epochs": [1]}, "repeat": 2}, "unknown key"),
    ],
)
def test_a_bad_sweep_file_is_refused_before_anything_runs(tmp_path, spec, message):
    with pytest.raises(SweepError, match=message):
        read_sweep(write_sweep(tmp_path, **spec))
    assert not (tmp_path / "out").exists()


def test_cells_follow_the_grid_and_are_named_by_their_values(tmp_path):
    grid = {"learning_rate": [0.001, 0.01], "categories": [["angry", "sad"]]}
    sweep = read_sweep(write_sweep(tmp_path, grid=grid))
    assert sweep.cells() == [
        {"learning_rate": 0.001, "categories": ["angry", "sad"]},
        {"learning_rate": 0.01, "categories": ["angry", "sad"]},
    ]
    assert sweep.folder(sweep.cells()[0]).name == "learning_rate=0.001_categories=angry-sad"
    assert sweep.output == tmp_path / "out"


def test_sweep_runs_each_cell_once_and_gathers_the_runs(tmp_path, image_dir):
    grid = {"learning_rate": [0.001, 0.01], "epochs": [1]}
    path = write_sweep(tmp_path, grid=grid, parameters=tiny_parameters(image_dir))
    result = run_sweep(path)
    assert result["counts"] == {"done": 2, "skipped": 0, "failed": 0}
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(table["learning_rate"]) == [0.001, 0.01] and set(table["epochs"]) == {1}
    assert set(table["approach"]) == {"frozen_weights"}
    assert table["best_val_acc"].between(0, 1).all() and table["test_acc"].between(0, 1).all()
    assert (table["seconds"] > 0).all()
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
    folders = [tmp_path / "out" / name for name in table["folder"]]
    for folder in folders:
        assert (folder / NOTEBOOK.name).is_file()
        assert (folder / "checkpoints" / "frozen_weights_best.pt").is_file()
    stamps = [(f / NOTEBOOK.name).stat().st_mtime_ns for f in folders]
    again = run_sweep(path)
    assert again["counts"] == {"done": 0, "skipped": 2, "failed": 0}
    assert stamps == [(f / NOTEBOOK.name).stat().st_mtime_ns for f in folders]
    pd.testing.assert_frame_equal(again["table"], result["table"])


def test_a_failing_cell_is_reported_and_retried_later(tmp_path, image_dir):
    path = write_sweep(tmp_path, grid={"epochs": [0]}, parameters=tiny_parameters(image_dir))
    assert main(["sweep", str(path)]) == 1  # epochs=0 stops the notebook at its Config cell
    assert not (tmp_path / "out" / "epochs=0" / DONE_FILE).exists()
    assert not (tmp_path / "out" / "sweep.csv").exists()


def test_a_sweep_over_source_models_runs_notebook_02_from_each(tmp_path, image_dir):
    grid = {"backbone": ["fer_mini_xception", "faceapi_expression"], "epochs": [1]}
    path = write_sweep(tmp_path, grid=grid, parameters=tiny_parameters(image_dir))
    result = run_sweep(path)
    assert result["counts"] == {"done": 2, "skipped": 0, "failed": 0}
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(table["backbone"]) == grid["backbone"]
    for name, folder in zip(grid["backbone"], table["folder"], strict=True):
        best = load_checkpoint(tmp_path / "out" / folder / "checkpoints" / "frozen_weights_best.pt")
        assert best["backbone"] == name
        executed = nbformat.read(tmp_path / "out" / folder / NOTEBOOK.name, as_version=4)
        [drift] = [c for c in executed.cells if "first_batchnorm(model)" in c.source]
        text = "".join(o.get("text", "") for o in drift.outputs)
        # mini-Xception has BatchNorm layers and face-api's network none: the cell says which
        has_none = f"{name} has no BatchNorm layer" in text
        assert has_none == (name == "faceapi_expression"), text
