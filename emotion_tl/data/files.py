"""Find the images of each category and decode them once, skipping what is not a usable image."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms.v2 import functional as TF

logger = logging.getLogger("emotion_tl")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# Files that operating systems and tools leave in photo folders.
SYSTEM_FILES = {"thumbs.db", "desktop.ini", ".ds_store"}
# Web pages embed 1x1 "tracking pixels" and tiny icons; nothing under this many pixels a side can
# show a face, so such files are skipped rather than blown up to the network's input size.
MIN_SIDE = 16


class DataError(ValueError):
    """The data folder cannot be used as it is; the message says what to change."""


class ImageTooSmall(ValueError):
    """An image with a side under MIN_SIDE pixels (a web tracking pixel or an icon)."""


@dataclass
class Skipped:
    """Files left out, grouped by reason."""

    by_reason: dict[str, list[Path]] = field(default_factory=dict)

    def add(self, reason: str, path: Path) -> None:
        self.by_reason.setdefault(reason, []).append(path)

    def total(self) -> int:
        return sum(len(paths) for paths in self.by_reason.values())

    def summary(self, examples: int = 3) -> str:
        """One line per reason with a count and the first few names."""
        lines = []
        for reason, paths in sorted(self.by_reason.items()):
            names = ", ".join(p.name for p in paths[:examples])
            more = ", ..." if len(paths) > examples else ""
            lines.append(f"  {len(paths)} {reason}: {names}{more}")
        return "\n".join(lines)


def list_categories(data_dir: str | Path) -> list[str]:
    """The category folders of `data_dir`, sorted (empty when it does not exist). Hidden
    folders and those whose names start with `_` (such as `_set_aside`) are never categories."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[:1] not in (".", "_"))


def check_data_dir(data_dir: Path, categories: tuple[str, ...]) -> None:
    """Fail with a message naming the fix if `data_dir` or a category folder is missing."""
    if not data_dir.exists():
        raise DataError(
            f"data_dir '{data_dir}' does not exist. Create it with one sub-folder of images per "
            f"category (for example {data_dir}/{categories[0]}/), or pass --data_dir PATH."
        )
    if not data_dir.is_dir():
        raise DataError(
            f"data_dir '{data_dir}' is a file; pass the folder that holds the category folders."
        )
    available = list_categories(data_dir)
    missing = [c for c in categories if not (data_dir / c).is_dir()]
    if missing:
        raise DataError(
            f"category folder(s) {missing} not found in '{data_dir}'. "
            f"Available categories: {', '.join(available) or '(none)'}. "
            "Pass --categories with names from that list, or add the folders."
        )


def list_image_files(folder: Path, skipped: Skipped) -> list[Path]:
    """Image files under `folder` (sub-folders too), sorted; the rest go to `skipped`."""
    found = []
    # followlinks=False: a symlink loop cannot send the walk round forever.
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in dirs:
            if (Path(root) / name).is_symlink():
                # os.walk does not descend into it; say so rather than drop it silently.
                skipped.add("linked folders (not followed)", Path(root) / name)
        for name in sorted(files):
            path = Path(root) / name
            # "._name.jpg": macOS resource forks, left behind on USB sticks and in zip files.
            if name.lower() in SYSTEM_FILES or name.startswith("._"):
                skipped.add("system files", path)
            elif name.startswith("."):
                skipped.add("hidden files", path)
            elif path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.add("files without an image extension", path)
            else:
                found.append(path)
    return found


def to_8_bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit and 32-bit grayscale to 8 bits (Pillow's own convert would clip at 255)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        pixels = np.asarray(image).astype(np.float64).clip(0, 65535) / 257.0
    elif image.mode == "F":
        pixels = np.asarray(image).astype(np.float64)
        pixels = pixels * 255.0 if pixels.max(initial=0.0) <= 1.0 else pixels
    else:
        return image
    return Image.fromarray(np.rint(pixels).clip(0, 255).astype(np.uint8), mode="L")


def load_image(path: Path | BinaryIO) -> Image.Image:
    """Open an image upright (EXIF orientation applied) in 8-bit RGB."""
    with warnings.catch_warnings():
        # Pillow warns before its decompression-bomb error; the error is what we act on.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.seek(0)  # the first frame of an animation
            image = ImageOps.exif_transpose(image)
            if min(image.size) < MIN_SIDE:
                raise ImageTooSmall(f"{image.size[0]}x{image.size[1]} pixels")
            if image.mode in ("RGBA", "LA", "PA") or (
                image.mode == "P" and "transparency" in image.info
            ):
                # Composite transparency on white instead of letting it turn black.
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            return to_8_bit(image).convert("RGB")


def decode_image(
    path: Path | BinaryIO,
    resize_size: int,
    frame: Callable[[Image.Image], Image.Image | None] | None = None,
) -> torch.Tensor | None:
    """Decode `path` (a file name or an open binary file) to uint8 (3, H, W), shorter side
    `resize_size`. `frame` crops the upright full-resolution picture first (the face); None
    from it (no face where one is required) is returned as None."""
    image = load_image(path)
    if frame is not None and (image := frame(image)) is None:
        return None
    tensor = TF.pil_to_tensor(image)
    return TF.resize(tensor, [resize_size], antialias=True)
