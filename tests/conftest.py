"""Shared fixtures: tiny image folders made on the fly, so tests run offline in seconds, and the
builders every test module uses (command-line arguments, checkpoints of untrained models)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from emotion_tl.config import Config
from emotion_tl.model.checkpoint import make_checkpoint, save_checkpoint
from emotion_tl.model.network import build_model

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


def make_tiny_config(data_dir: Path, checkpoint_dir: Path, **changes: Any) -> Config:
    """A config for fast CPU runs without pretrained weights on circles and squares; `changes`
    replace any of its settings."""
    tiny = dict(
        data_dir=str(data_dir),
        categories=("circle", "square"),
        epochs=2,
        batch_size=8,
        image_size=32,
        device="cpu",
        precision="fp32",
        checkpoint_dir=str(checkpoint_dir),
        pretrained=False,
        # One rate throughout: a warm-up epoch would be half of two epochs.
        schedule="constant",
        warmup_epochs=0.0,
    )
    return Config(**tiny | changes)


@pytest.fixture
def tiny_config(image_dir: Path, tmp_path: Path) -> Config:
    """A config for fast CPU runs without pretrained weights."""
    return make_tiny_config(image_dir, tmp_path / "checkpoints")


def cli_args(cfg: Config, *extra: str) -> list[str]:
    """Command-line arguments that train on `cfg`'s tiny data (CPU, no ImageNet weights); options
    in `extra` come last, so they win over the same options taken from `cfg`."""
    return [
        "--data_dir", cfg.data_dir, "--checkpoint_dir", cfg.checkpoint_dir,
        "--categories", *cfg.categories, "--epochs", str(cfg.epochs),
        "--batch_size", str(cfg.batch_size), "--image_size", str(cfg.image_size),
        "--device", cfg.device, "--precision", cfg.precision, "--no_pretrained",
        "--schedule", cfg.schedule, "--warmup_epochs", str(cfg.warmup_epochs), *extra,
    ]  # fmt: skip


def make_test_checkpoint(
    model: torch.nn.Module,
    *,
    class_names: Sequence[str] = ("circle", "square"),
    config: Config | None = None,
    approach: str = "finetuning",
    epoch: int = 1,
    metrics: dict[str, float] | None = None,
    history: Sequence[dict[str, float]] = (),
    kind: str = "best",
) -> dict[str, Any]:
    """A checkpoint as training writes it, for a model made in the test (no training needed)."""
    return make_checkpoint(
        model,
        class_names=list(class_names),
        config=(config or Config(image_size=32)).to_dict(),
        approach=approach,
        weights_source="none",
        stride_in_1x1=False,
        epoch=epoch,
        metrics=metrics or {"val_acc": 0.5},
        history=list(history),
        device="cpu",
        precision="fp32",
        kind=kind,
    )


def save_test_model(
    path: Path,
    class_names: Sequence[str] = ("circle", "square"),
    image_size: int = 32,
    seed: int = 0,
    changes: dict[str, Any] | None = None,
) -> torch.nn.Module:
    """Save an untrained, seeded model as a checkpoint (with `changes` to its fields); return it."""
    torch.manual_seed(seed)
    model = build_model(len(class_names)).eval()
    checkpoint = make_test_checkpoint(
        model, class_names=class_names, config=Config(image_size=image_size)
    )
    save_checkpoint(checkpoint | (changes or {}), path)
    return model
