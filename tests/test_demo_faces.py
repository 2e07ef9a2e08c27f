"""The synthetic face generator and the committed Images/ set it produced."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emotion_tl.cli import main
from emotion_tl.demo_faces import (
    ACTION_NAMES,
    EXPRESSIONS,
    make_sample,
    measure_brow_asymmetry,
    render_sample,
)
from emotion_tl.demo_faces.dataset import describe_sample
from emotion_tl.demo_faces.scene import encode_jpeg

IMAGES = Path(__file__).resolve().parents[1] / "Images"
README = IMAGES / "README.md"
METADATA = IMAGES / "metadata.csv"


@pytest.fixture(scope="module")
def metadata() -> list[dict[str, str]]:
    """metadata.csv exactly as the generator wrote it: every value as text."""
    with open(METADATA, newline="") as handle:
        return list(csv.DictReader(handle))


def decode(jpeg: bytes | Path) -> np.ndarray:
    source = io.BytesIO(jpeg) if isinstance(jpeg, bytes) else jpeg
    return np.asarray(Image.open(source).convert("RGB"), dtype=np.float32)


def column(rows: list[dict[str, str]], expression: str, name: str) -> np.ndarray:
    return np.array([float(r[name]) for r in rows if r["expression"] == expression])


def test_readme_documents_the_seed_the_metadata_records(metadata):
    seeds = {row["seed"] for row in metadata}
    difficulties = {row["difficulty"] for row in metadata}
    assert len(seeds) == 1 and len(difficulties) == 1
    text = README.read_text()
    command = re.search(r"python -m emotion_tl demo-faces [^\n`]*", text).group(0)
    assert f"--seed {seeds.pop()}" in command
    assert f"--difficulty {difficulties.pop()}" in command


def test_committed_pictures_regenerate_from_the_seed(metadata):
    # Every 97th row walks through all expressions and many identities.
    for row in metadata[::97]:
        sample = make_sample(
            int(row["seed"]), int(row["identity"]), row["expression"], float(row["difficulty"])
        )
        regenerated = describe_sample(sample, int(row["seed"]), float(row["difficulty"]))
        assert {k: str(v) for k, v in regenerated.items()} == row
        picture = render_sample(sample, size=Image.open(IMAGES / row["file"]).width)
        fresh = decode(encode_jpeg(picture, sample.nuisance.jpeg_quality))
        committed = decode(IMAGES / row["file"])
        # Allows for a different JPEG encoder build, not for a different picture.
        assert np.abs(fresh - committed).mean() < 2.0, row["file"]


def test_folder_counts_match_metadata_and_readme(metadata):
    readme = README.read_text()
    for expression in EXPRESSIONS:
        on_disk = sorted(p.name for p in (IMAGES / expression).glob("*.jpg"))
        listed = sorted(Path(r["file"]).name for r in metadata if r["expression"] == expression)
        assert on_disk == listed, expression
        stated = re.search(rf"^\|\s*{expression}\s*\|\s*(\d+)\s*\|", readme, re.MULTILINE)
        assert stated is not None and int(stated.group(1)) == len(on_disk), expression
    assert all("\\" not in r["file"] and not r["file"].startswith("/") for r in metadata)
    assert set(ACTION_NAMES) <= set(metadata[0])


def test_classes_differ_in_actions_as_defined(metadata):
    def mean(expression: str, name: str) -> float:
        return float(column(metadata, expression, name).mean())

    def asymmetry(expression: str) -> float:
        rows = [r for r in metadata if r["expression"] == expression]
        return float(
            np.mean([measure_brow_asymmetry({k: float(r[k]) for k in ACTION_NAMES}) for r in rows])
        )

    assert all(abs(mean("neutral", name)) < 0.05 for name in ACTION_NAMES)
    assert asymmetry("confused") > asymmetry("neutral") + 0.5
    assert np.abs(column(metadata, "confused", "mouth_skew")).mean() > 0.3
    assert np.abs(column(metadata, "confused", "head_tilt")).mean() > 0.2
    assert mean("happy", "lip_corner_pull") > 0.3 > mean("sad", "lip_corner_pull")
    assert mean("sad", "lip_corner_depress") > 0.3 > mean("happy", "lip_corner_depress")
    assert mean("happy", "cheek_raise") > mean("neutral", "cheek_raise") + 0.2
    inner_sad = (mean("sad", "brow_inner_raise_left") + mean("sad", "brow_inner_raise_right")) / 2
    assert inner_sad > 0.3 and mean("sad", "upper_lid_raise") < -0.1
    assert mean("angry", "brow_furrow_left") > 0.3 and mean("angry", "brow_furrow_right") > 0.3
    assert mean("angry", "lid_tighten") > 0.3 and mean("angry", "lip_press") > 0.3
    assert mean("surprised", "jaw_drop") > mean("neutral", "jaw_drop") + 0.3
    assert mean("surprised", "upper_lid_raise") > 0.3
    # Weak expressions exist: the task is not trivially separable.
    assert (column(metadata, "confused", "intensity") < 0.5).mean() > 0.02


def test_same_seed_same_picture_other_seed_other_picture():
    first = np.asarray(render_sample(make_sample(11, 3, "confused")))
    again = np.asarray(render_sample(make_sample(11, 3, "confused")))
    other = np.asarray(render_sample(make_sample(12, 3, "confused")))
    assert np.array_equal(first, again)
    assert np.abs(first.astype(float) - other).mean() > 5


def test_command_line_output_is_independent_of_worker_count(tmp_path):
    common = ["--identities", "2", "--seed", "5", "--expressions", "neutral", "surprised"]
    assert main(["demo-faces", "--out", str(tmp_path / "one"), "--workers", "1", *common]) == 0
    assert main(["demo-faces", "--out", str(tmp_path / "two"), "--workers", "2", *common]) == 0
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert [str(p) for p in one] == [
        "metadata.csv",
        "neutral/neutral_0000.jpg",
        "neutral/neutral_0001.jpg",
        "surprised/surprised_0000.jpg",
        "surprised/surprised_0001.jpg",
    ]
    for path in one:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes()
