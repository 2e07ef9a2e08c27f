"""FER2013-style CSV import: good rows become PNG files under their expression, bad rows are
reported and skipped, another dataset's metadata is never replaced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emotion_tl.cli import main
from emotion_tl.data.files import DataError
from emotion_tl.data.import_csv import EXPRESSIONS, import_csv


def write_csv(path: Path, rows: list[tuple[object, str, str]]) -> Path:
    lines = ["emotion,pixels,Usage"] + [f"{e},{p},{u}" for e, p, u in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def pixels(seed: int, count: int = 48 * 48) -> tuple[str, np.ndarray]:
    values = np.random.default_rng(seed).integers(0, 256, count)
    return " ".join(map(str, values)), values.astype(np.uint8)


def test_rows_become_pictures_under_their_expression(tmp_path):
    happy, happy_values = pixels(0)
    neutral, _ = pixels(1)
    rows = [
        (3, happy, "Training"),
        (6, neutral, "PublicTest"),
        (9, neutral, "Training"),  # no such emotion
        ("x", neutral, "Training"),  # not a number
        (0, pixels(2, 100)[0], "Training"),  # 100 values: a 10x10 picture is fine
        (0, pixels(3, 101)[0], "Training"),  # not square
        (0, neutral.replace("1", "-1", 1), "Training"),  # a negative value
        (2, "", "PrivateTest"),  # no pixels
    ]
    report = import_csv(write_csv(tmp_path / "fer.csv", rows), tmp_path / "out")
    assert report.written == {"happy": 1, "neutral": 1, "angry": 1}
    assert [row for row, _ in report.skipped] == [4, 5, 7, 8, 9]
    reasons = " | ".join(why for _, why in report.skipped)
    assert "outside 0-6" in reasons and "not a whole number" in reasons
    assert "101 pixel values" in reasons and "0 pixel values" in reasons
    picture = Image.open(tmp_path / "out" / "happy" / "Training_000002.png")
    assert picture.mode == "L" and picture.size == (48, 48)
    np.testing.assert_array_equal(np.asarray(picture).ravel(), happy_values)
    assert Image.open(tmp_path / "out" / "angry" / "Training_000006.png").size == (10, 10)
    metadata = pd.read_csv(tmp_path / "out" / "metadata.csv")
    assert list(metadata["usage"]) == ["Training", "PublicTest", "Training"]
    assert "5 row(s) skipped" in report.summary()
    assert set(EXPRESSIONS) >= {"angry", "happy", "neutral"}


def test_the_import_feeds_the_pipeline_and_can_run_again(tmp_path, capsys):
    rows = [(e, pixels(i)[0], "Training") for i, e in enumerate([3, 4] * 6)]
    csv_file = write_csv(tmp_path / "fer.csv", rows)
    out = tmp_path / "data"
    assert main(["import-csv", str(csv_file), "--out", str(out)]) == 0
    first = sorted(p.read_bytes() for p in out.rglob("*.png"))
    assert main(["import-csv", str(csv_file), "--out", str(out)]) == 0  # the same files again
    assert sorted(p.read_bytes() for p in out.rglob("*.png")) == first
    assert "12 pictures written: happy 6, sad 6" in capsys.readouterr().out
    args = ["--data_dir", str(out), "--categories", "happy", "sad", "--epochs", "1",
            "--image_size", "32", "--batch_size", "4", "--device", "cpu", "--precision", "fp32",
            "--no_pretrained", "--approach", "frozen",
            "--checkpoint_dir", str(tmp_path / "ck")]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "ck" / "frozen_weights_best.pt").is_file()


def test_missing_columns_and_foreign_metadata_are_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,image\n1,2\n")
    with pytest.raises(DataError, match="no column"):
        import_csv(bad, tmp_path / "out")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metadata.csv").write_text("file,identity\nhappy/a.png,p1\n")
    with pytest.raises(DataError, match="belongs to another dataset"):
        import_csv(write_csv(tmp_path / "fer.csv", [(3, pixels(0)[0], "Training")]), out)
    assert (out / "metadata.csv").read_text() == "file,identity\nhappy/a.png,p1\n"
