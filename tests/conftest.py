"""Shared fixtures: tiny image folders made on the fly, so tests run offline in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from emotion_tl.config import Config

SHAPES = {"circle": "ellipse", "square": "rectangle", "triangle": "polygon"}


def draw_shape(kind: str, rng: np.random.Generator, size: int = 48) -> Image.Image:
    """A white shape on a random dark background: easy to learn, cheap to make."""
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 120, 3)))
    draw = ImageDraw.Draw(image)
    x, y = (int(v) for v in rng.integers(2, size // 3, 2))
    box = [x, y, x + size // 2, y + size // 2]
    if kind == "polygon":
        draw.polygon([(x, box[3]), (box[2], box[3]), ((x + box[2]) // 2, y)], fill="white")
    else:
        getattr(draw, kind)(box, fill="white")
    return image


def make_image_folder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """Write `counts[category]` PNG images of that category's shape under `root/category/`."""
    rng = np.random.default_rng(seed)
    for category, count in counts.items():
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            draw_shape(SHAPES[category], rng).save(folder / f"{category}_{index:03d}.png")
    return root


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """Three categories of 10 tiny images each."""
    return make_image_folder(tmp_path / "images", {"circle": 10, "square": 10, "triangle": 10})


@pytest.fixture
def tiny_config(image_dir: Path, tmp_path: Path) -> Config:
    """A config for fast CPU runs without pretrained weights."""
    return Config(
        data_dir=str(image_dir),
        categories=("circle", "square"),
        epochs=2,
        batch_size=8,
        image_size=32,
        device="cpu",
        precision="fp32",
        checkpoint_dir=str(tmp_path / "checkpoints"),
        pretrained=False,
    )
