"""The dataset a run uses: every image of the chosen categories checked, decoded once and split.

All of it happens before any training, so a bad folder fails in seconds, not mid-epoch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from emotion_tl.config import Config
from emotion_tl.data.faces.cache import FACE_CACHE_FILE, FaceCache
from emotion_tl.data.faces.crop import FaceCropSettings, FaceFinder, Framing, make_faces_table
from emotion_tl.data.files import DataError, Skipped, check_data_dir, list_image_files
from emotion_tl.data.image_store import ImageStore, open_store, take, use_disk
from emotion_tl.data.metadata import read_identities
from emotion_tl.data.near_copies import group_near_copies
from emotion_tl.data.scan import (
    CROSS_CATEGORY,
    SCAN_CACHE_FILE,
    Duplicates,
    ScanCache,
    find_duplicates,
    scan_images,
)
from emotion_tl.data.split import choose_subset, make_split, merge_groups
from emotion_tl.data.transforms import resize_size_for
from emotion_tl.distributed import broadcast_object

logger = logging.getLogger("emotion_tl")


@dataclass
class PreparedData:
    """Decoded images with their labels and split, ready for loaders."""

    class_names: list[str]
    table: pd.DataFrame  # one row per image: file (relative to data_dir), label, split
    images: Sequence[torch.Tensor]  # uint8 (3, H, W), row-aligned with `table`; maybe on disk
    skipped: Skipped
    duplicates: Duplicates = dataclasses.field(default_factory=Duplicates)
    framings: list[Framing] = dataclasses.field(default_factory=list)  # row-aligned, as images
    phashes: np.ndarray | None = None  # each image's 64-bit perceptual hash, row-aligned

    def indices(self, split: str) -> np.ndarray:
        """Row numbers of one split, in table order (the order every loader keeps)."""
        return np.flatnonzero(self.table["split"].to_numpy() == split)

    def labels(self) -> np.ndarray:
        """Each row's class index (its position in `class_names`)."""
        return self.table["label"].map({c: i for i, c in enumerate(self.class_names)}).to_numpy()

    def faces_table(self) -> pd.DataFrame:
        """faces.csv: each image's faces found, outcome, chosen face and crop (pixels)."""
        framings = self.framings or [Framing()] * len(self.table)
        return make_faces_table(list(self.table["file"]), framings)

    def train_counts(self) -> dict[str, int]:
        """Training images per category, in class order."""
        train_labels = self.labels()[self.indices("train")]
        return {name: int((train_labels == i).sum()) for i, name in enumerate(self.class_names)}


def list_category_files(
    cfg: Config, identities: dict[str, str], skipped: Skipped
) -> tuple[list[Path], list[str]]:
    """Image files of each configured category (a seeded subset if asked) and their labels."""
    data_dir = Path(cfg.data_dir)
    paths, labels = [], []
    for category in cfg.categories:
        found = list_image_files(data_dir / category, skipped)
        limit = cfg.max_images_per_category
        if limit is not None and len(found) > limit:
            found = choose_subset(found, limit, data_dir, identities, cfg.seed)
        paths += found
        labels += [category] * len(found)
    return paths, labels


def drop_cross_category(
    files: list[str], labels: list[str], duplicates: Duplicates, data_dir: Path, skipped: Skipped
) -> list[int]:
    """Rows to keep: an image filed under two categories has no trustworthy label, so every
    copy of it goes to `skipped`."""
    dropped = {name for names in duplicates.across for name in names}
    for name in sorted(dropped):
        skipped.add(CROSS_CATEGORY, data_dir / name)
    return [i for i, name in enumerate(files) if name not in dropped]


def check_enough_images(
    files: list[str], labels: list[str], duplicates: Duplicates, cfg: Config
) -> None:
    """Fail unless every category has three different images (one each for train, val, test)."""
    groups = merge_groups({f: f for f in files}, duplicates.within)
    for category in cfg.categories:
        count = labels.count(category)
        members = [f for f, label in zip(files, labels, strict=True) if label == category]
        distinct = len({groups[f] for f in members})
        if distinct < 3:
            copies = f" ({distinct} distinct)" if distinct < count else ""
            raise DataError(
                f"category '{category}' has {count} usable image(s){copies} in "
                f"'{Path(cfg.data_dir) / category}'; at least 3 different images are needed "
                "(one each for training, validation and test). Add images."
            )


def prepare_data(cfg: Config, face_crop: FaceCropSettings | None = None) -> PreparedData:
    """Scan, check, decode and split the configured categories (errors before any training).

    Verdicts are remembered in `checkpoint_dir/.scan_cache.json`, so a later run does not
    re-open files already found broken, nor re-hash the good ones. Each image is cropped to its
    face as `face_crop` (the run's settings; by default those of `cfg`) says before it is resized.
    """
    if face_crop is None:
        face_crop = FaceCropSettings.from_config(cfg)
    data_dir, out_dir = Path(cfg.data_dir), Path(cfg.checkpoint_dir)
    check_data_dir(data_dir, cfg.categories)
    skipped = Skipped()
    identities = read_identities(data_dir)
    paths, labels = list_category_files(cfg, identities, skipped)
    cache = ScanCache(out_dir / SCAN_CACHE_FILE, data_dir)
    finder = make_face_finder(face_crop, out_dir)
    resize_size = resize_size_for(cfg.image_size)
    with open_image_store(cfg.image_cache, out_dir, len(paths), resize_size, face_crop) as store:
        scan = scan_images(paths, data_dir, resize_size, skipped, cache, finder, store)
    label_of = dict(zip(paths, labels, strict=True))
    files = [p.relative_to(data_dir).as_posix() for p in scan.paths]
    labels = [label_of[p] for p in scan.paths]
    duplicates = find_duplicates(files, labels, scan.hashes)
    keep = drop_cross_category(files, labels, duplicates, data_dir, skipped)
    files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    images = take(scan.images, keep)
    framings = [scan.framings[i] for i in keep]
    phashes = np.array([scan.phashes[i] for i in keep], dtype=np.uint64)
    if skipped.total():
        logger.warning("Skipped %d file(s):\n%s", skipped.total(), skipped.summary())
    for names in duplicates.across:
        logger.warning(
            "The same image is filed under two categories (left out): %s", " = ".join(names)
        )
    check_enough_images(files, labels, duplicates, cfg)
    duplicates.near = group_near_copies(files, labels, images, phashes, duplicates.within)
    split = make_split(files, labels, identities, cfg, duplicates.within + duplicates.near)
    table = pd.DataFrame({"file": files, "label": labels, "split": split})
    return PreparedData(list(cfg.categories), table, images, skipped, duplicates, framings, phashes)


def resplit(data: PreparedData, cfg: Config) -> PreparedData:
    """The same images split again by `cfg.seed`, under the same rules (people and copies never
    straddle two splits), without reading any file but `metadata.csv` again."""
    files, labels = list(data.table["file"]), list(data.table["label"])
    identities = read_identities(Path(cfg.data_dir))
    same_image = data.duplicates.within + data.duplicates.near
    split = make_split(files, labels, identities, cfg, same_image)
    return dataclasses.replace(data, table=data.table.assign(split=split))


def take_main_split(data: PreparedData) -> PreparedData:
    """`data` with rank 0's split (the same split on every process, computed once)."""
    table = broadcast_object(data.table)
    if not table[["file", "label"]].equals(data.table[["file", "label"]]):
        raise DataError(
            "the processes of this run found different images (were files added or changed "
            "while it started?); run it again."
        )
    return dataclasses.replace(data, table=table)


def make_face_finder(settings: FaceCropSettings, out_dir: Path) -> FaceFinder | None:
    """The run's face finder (None when face_crop is off); detections are cached in
    `out_dir/.face_cache.json`."""
    if settings.mode == "off":
        return None
    return FaceFinder(settings, FaceCache(out_dir / FACE_CACHE_FILE, settings.detector))


@contextmanager
def open_image_store(
    mode: str, out_dir: Path, num_files: int, resize_size: int, settings: FaceCropSettings
) -> Iterator[ImageStore | None]:
    """The on-disk image store when `mode` (the image_cache setting) asks for one (or `auto`
    finds the images too many to hold in memory); None keeps decoded images in memory."""
    if not use_disk(mode, num_files, resize_size):
        yield None
        return
    with open_store(out_dir, resize_size, settings) as store:
        yield store
