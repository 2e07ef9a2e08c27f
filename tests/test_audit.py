"""The data audit on generated faces with problems planted on purpose: near-copies (resized and
re-encoded, cropped), an exact copy, flipped labels, and blurred, dark and tiny pictures."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_image_folder
from PIL import Image, ImageFilter

from emotion_tl.audit import features
from emotion_tl.audit.run import audit_data
from emotion_tl.cli import main
from emotion_tl.config import Config
from emotion_tl.data.prepare import prepare_data
from emotion_tl.demo_faces import generate_dataset
from emotion_tl.model.network import build_model
from emotion_tl.training.context import make_run_context

cpu = torch.device("cpu")


def plant_problems(root: Path) -> dict[str, str]:
    """40 people, each happy and neutral, then the planted problems; returns file -> what was
    planted."""
    generate_dataset(root, 40, 7, ("happy", "neutral"), difficulty=0.0)
    planted = {}
    original = Image.open(root / "happy" / "happy_0000.jpg")
    buffer = io.BytesIO()
    original.resize((150, 150)).save(buffer, "JPEG", quality=50)
    (root / "neutral" / "resized_copy.jpg").write_bytes(buffer.getvalue())
    planted["neutral/resized_copy.jpg"] = "happy/happy_0000.jpg"
    face = Image.open(root / "neutral" / "neutral_0001.jpg")
    face.crop((11, 11, 213, 213)).save(root / "neutral" / "cropped_copy.jpg", quality=92)
    planted["neutral/cropped_copy.jpg"] = "neutral/neutral_0001.jpg"
    shutil.copy(root / "neutral" / "neutral_0002.jpg", root / "neutral" / "exact_copy.jpg")
    dark = Image.open(root / "neutral" / "neutral_0003.jpg").point(lambda v: v // 8)
    dark.save(root / "neutral" / "dark.jpg")
    blurred = Image.open(root / "happy" / "happy_0004.jpg").filter(ImageFilter.GaussianBlur(6))
    blurred.save(root / "happy" / "blurred.jpg")
    Image.open(root / "happy" / "happy_0005.jpg").resize((48, 48)).save(root / "happy" / "tiny.jpg")
    return planted


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    planted = plant_problems(root / "data")
    cfg = Config(data_dir=str(root / "data"), categories=("happy", "neutral"),
                 checkpoint_dir=str(root / "out"), device="cpu")  # fmt: skip
    data, audit = audit_data(cfg)
    return cfg, planted, data, audit.table


def pairs_of(table: pd.DataFrame, problem: str) -> set[frozenset]:
    rows = table[table["problem"] == problem]
    return {frozenset((a, b)) for a, b in zip(rows["file"], rows["other"], strict=True)}


def test_near_copies_are_found_and_nothing_else_is(audited):
    _, planted, _, table = audited
    across = pairs_of(table, "near-copy in another category")
    assert across == {frozenset(("neutral/resized_copy.jpg", "happy/happy_0000.jpg"))}
    within = pairs_of(table, "near-copy in another split") | pairs_of(table, "near-copy")
    assert within == {frozenset(("neutral/cropped_copy.jpg", "neutral/neutral_0001.jpg"))}
    assert pairs_of(table, "exact copy") == {
        frozenset(("neutral/neutral_0002.jpg", "neutral/exact_copy.jpg"))
    }


def test_flipped_labels_rank_first(tmp_path):
    """Drawn circles and squares, which the frozen features tell apart, with three circles filed
    as squares: those three are the first suspects, and the guess names their real shape."""
    root = make_image_folder(tmp_path / "shapes", {"circle": 30, "square": 30})
    flipped = {f"square/flipped_circle_{i:03d}.png" for i in range(3)}
    for i in range(3):
        (root / "circle" / f"circle_{i:03d}.png").rename(
            root / f"square/flipped_circle_{i:03d}.png"
        )
    cfg = Config(data_dir=str(root), categories=("circle", "square"),
                 checkpoint_dir=str(tmp_path / "out"), device="cpu")  # fmt: skip
    _, audit = audit_data(cfg)
    labels = audit.table[audit.table["problem"] == "label"]
    assert set(labels["file"][:3]) == flipped, list(labels["file"][:6])
    assert set(labels[labels["file"].isin(flipped)]["guess"]) == {"circle"}


def test_poor_pictures_are_named(audited):
    _, _, _, table = audited
    problems = table.groupby("file")["problem"].agg(set)
    assert "too dark" in problems["neutral/dark.jpg"]
    assert "blurred" in problems["happy/blurred.jpg"]
    assert "low resolution" in problems["happy/tiny.jpg"]
    # The untouched bundled faces are sharp, lit and large.
    assert not {"too dark", "low resolution"} & problems.get("happy/happy_0006.jpg", set())


def test_the_audit_command_writes_its_files_and_changes_nothing(audited, capsys):
    cfg, _, data, _ = audited
    before = sorted(p.relative_to(cfg.data_dir) for p in Path(cfg.data_dir).rglob("*"))
    arguments = ["audit", "--data_dir", cfg.data_dir, "--checkpoint_dir", cfg.checkpoint_dir]
    assert main([*arguments, "--categories", "happy", "neutral"]) == 0
    assert sorted(p.relative_to(cfg.data_dir) for p in Path(cfg.data_dir).rglob("*")) == before
    out = Path(cfg.checkpoint_dir)
    table = pd.read_csv(out / "audit.csv")
    assert {"file", "label", "split", "problem", "score", "action"} <= set(table.columns)
    assert "near-copy in another category" in set(table["problem"])
    assert (out / "audit.png").stat().st_size > 10_000
    report = (out / "audit.md").read_text()
    assert f"{len(data.table)} images audited" in report and "## label" in report
    assert "audit.md" in capsys.readouterr().out


def test_label_check_features_mirror_with_the_picture_and_are_cached(tmp_path, monkeypatch):
    """The grid features of a picture's mirror image are the picture's grid mirrored (each view is
    averaged with its mirror's, so neither side is favoured), and a second audit reads them from
    the cache, computing only a changed file."""
    root = make_image_folder(tmp_path / "shapes", {"circle": 4, "square": 4})
    picture = Image.open(root / "circle" / "circle_000.png").convert("RGB")
    mirror = picture.transpose(Image.FLIP_LEFT_RIGHT)
    mirror.save(root / "circle" / "mirror.png")
    # The circle is off-centre: its mirror image is another picture, pixel for pixel.
    assert np.abs(np.asarray(picture, float) - np.asarray(mirror, float)).mean() > 5
    # 112 px: resized to 128, so the centre crop takes 8 px from each side, as a mirror would.
    cfg = Config(data_dir=str(root), categories=("circle", "square"), image_size=112,
                 checkpoint_dir=str(tmp_path / "out"), device="cpu", precision="fp32",
                 pretrained=False)  # fmt: skip
    data = prepare_data(cfg)
    model = build_model(2)
    computed = []
    real = features.grid_features

    def counting(model, images, **kwargs):
        computed.append(len(images))
        return real(model, images, **kwargs)

    monkeypatch.setattr(features, "grid_features", counting)
    first = features.label_check_features(model, make_run_context(cfg, data))
    assert first.shape == (len(data.table), 1024 * features.GRID**2) and computed == [9]
    rows = {file: i for i, file in enumerate(data.table["file"])}
    original, mirrored = first[rows["circle/circle_000.png"]], first[rows["circle/mirror.png"]]
    grid = (1024, features.GRID, features.GRID)
    assert abs(original - mirrored).max() > 0.1 * abs(original).max()
    flipped_back = mirrored.reshape(grid)[..., ::-1].reshape(-1)
    assert abs(original - flipped_back).max() < 1e-2 * abs(original).max()
    assert abs(original - first[rows["circle/circle_001.png"]]).max() > 0.1 * abs(original).max()

    Image.open(root / "square" / "square_000.png").rotate(90).save(root / "square/square_000.png")
    again = features.label_check_features(model, make_run_context(cfg))
    assert computed == [9, 1]
    changed = rows["square/square_000.png"]
    assert (again[:changed] == first[:changed]).all() and (
        again[changed + 1 :] == first[changed + 1 :]
    ).all()
