"""The dataset: scan, split (saved as CSV), transforms and loaders."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from emotion_tl.config import Config
from emotion_tl.files import DataError, Skipped, check_data_dir, decode_images, list_image_files
from emotion_tl.io import write_atomic

logger = logging.getLogger("emotion_tl")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPLITS = ("train", "val", "test")
SPLIT_FILE = "split.csv"
METADATA_FILE = "metadata.csv"  # optional: file,identity columns keep one person in one split


def resize_size_for(image_size: int) -> int:
    """Shorter side before the centre crop, in torchvision's 256 -> 224 proportion."""
    return round(image_size * 256 / 224)


@dataclass
class PreparedData:
    """Decoded images with their labels and split, ready for loaders."""

    class_names: list[str]
    table: pd.DataFrame  # one row per image: file (relative to data_dir), label, split
    images: list[torch.Tensor]  # uint8 (3, H, W), row-aligned with `table`
    skipped: Skipped

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.table["split"].to_numpy() == split)

    def labels(self) -> np.ndarray:
        return self.table["label"].map({c: i for i, c in enumerate(self.class_names)}).to_numpy()


def read_groups(data_dir: Path) -> dict[str, str]:
    """file -> identity from `data_dir/metadata.csv` when it exists, else empty."""
    path = data_dir / METADATA_FILE
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str)
    if not {"file", "identity"} <= set(table.columns):
        return {}
    return dict(zip(table["file"], table["identity"], strict=True))


def split_by_category(labels: Sequence[str], cfg: Config) -> list[str]:
    """Stratified, seeded split: each category is shuffled and cut by the configured fractions."""
    rng = np.random.default_rng(cfg.seed)
    labels = np.asarray(labels)
    split = np.empty(len(labels), dtype=object)
    for category in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(labels == category))
        n_test = max(1, round(len(members) * cfg.test_fraction))
        n_val = max(1, round(len(members) * cfg.val_fraction))
        split[members[:n_test]] = "test"
        split[members[n_test : n_test + n_val]] = "val"
        split[members[n_test + n_val :]] = "train"
    return list(split)


def split_by_group(groups: Sequence[str], cfg: Config) -> list[str]:
    """Seeded split of whole groups (people), so no one appears in two splits."""
    rng = np.random.default_rng(cfg.seed)
    unique = rng.permutation(sorted(set(groups)))
    n_test = max(1, round(len(unique) * cfg.test_fraction))
    n_val = max(1, round(len(unique) * cfg.val_fraction))
    assign = {g: "test" for g in unique[:n_test]}
    assign |= {g: "val" for g in unique[n_test : n_test + n_val]}
    assign |= {g: "train" for g in unique[n_test + n_val :]}
    return [assign[g] for g in groups]


def make_split(
    files: list[str], labels: list[str], groups: dict[str, str], cfg: Config
) -> list[str]:
    """Split by person when every file has an identity, else stratified by category."""
    if groups and all(f in groups for f in files):
        split = split_by_group([groups[f] for f in files], cfg)
        table = pd.crosstab(pd.Series(labels, name="label"), pd.Series(split, name="split"))
        if set(table.columns) == set(SPLITS) and (table.to_numpy() > 0).all():
            return split
        logger.warning("Too few people to split by identity; splitting by category instead.")
    return split_by_category(labels, cfg)


def prepare_data(cfg: Config) -> PreparedData:
    """Scan, check, decode and split the configured categories (errors before any training)."""
    data_dir = Path(cfg.data_dir)
    check_data_dir(data_dir, cfg.categories)
    skipped = Skipped()
    paths, labels = [], []
    rng = np.random.default_rng(cfg.seed)
    for category in cfg.categories:
        found = list_image_files(data_dir / category, skipped)
        if cfg.max_images_per_category is not None and len(found) > cfg.max_images_per_category:
            keep = np.sort(rng.choice(len(found), cfg.max_images_per_category, replace=False))
            found = [found[i] for i in keep]
        paths += found
        labels += [category] * len(found)

    kept, images = decode_images(paths, resize_size_for(cfg.image_size), skipped)
    label_of = dict(zip(paths, labels, strict=True))
    labels = [label_of[p] for p in kept]
    if skipped.total():
        logger.warning("Skipped %d file(s):\n%s", skipped.total(), skipped.summary())
    for category in cfg.categories:
        count = labels.count(category)
        if count < 3:
            raise DataError(
                f"category '{category}' has {count} usable image(s) in '{data_dir / category}'; "
                "at least 3 are needed (one each for training, validation and test). Add images."
            )

    files = [p.relative_to(data_dir).as_posix() for p in kept]
    split = make_split(files, labels, read_groups(data_dir), cfg)
    table = pd.DataFrame({"file": files, "label": labels, "split": split})
    return PreparedData(list(cfg.categories), table, images, skipped)


def save_split(table: pd.DataFrame, checkpoint_dir: Path) -> Path:
    """Write the split CSV that both approaches, the notebooks and the report share."""
    path = checkpoint_dir / SPLIT_FILE
    write_atomic(path, table.to_csv(index=False).encode())
    return path


def build_transforms(image_size: int, *, train: bool) -> v2.Compose:
    """uint8 (3, H, W) tensor -> normalised float tensor; augmentation only when `train`."""
    if train:
        steps = [
            v2.RandomResizedCrop(image_size, scale=(0.75, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(10),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    else:
        steps = [v2.Resize(resize_size_for(image_size), antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose(
        [*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the thread count.

    Splitting one image's small tensor operations across cores costs far more than it saves:
    measured on 2 cores, a training-view augmentation took ~3 ms on one thread and ~80 ms of
    CPU time on two, more than the network's own step per image.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class ImageDataset(Dataset):
    """Pre-decoded uint8 images with integer labels, transformed on access."""

    def __init__(self, images: Sequence[torch.Tensor], labels: Sequence[int], transform) -> None:
        self.images, self.labels, self.transform = list(images), list(labels), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        with one_thread():
            return self.transform(self.images[index]), self.labels[index]


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in each DataLoader worker from torch's per-worker seed."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def choose_num_workers(num_workers: int | None, device: torch.device) -> int:
    """Worker processes for a device: the configured number, else 0 on the CPU and up to 4 on a GPU.

    On the CPU the training step already keeps every core busy and augmenting one image takes a
    few milliseconds, so workers would only compete with it; a GPU waits for its data instead.
    """
    if num_workers is not None:
        return num_workers
    return 0 if device.type == "cpu" else min(4, os.cpu_count() or 1)


def make_loaders(
    data: PreparedData, cfg: Config, *, device: torch.device | None = None
) -> dict[str, DataLoader]:
    """train/val/test DataLoaders suited to `device` (default CPU); only train shuffles."""
    device = device or torch.device("cpu")
    num_workers = choose_num_workers(cfg.num_workers, device)
    labels = data.labels()
    loaders = {}
    for split in SPLITS:
        index = data.indices(split)
        train = split == "train"
        dataset = ImageDataset(
            [data.images[i] for i in index],
            labels[index].tolist(),
            build_transforms(cfg.image_size, train=train),
        )
        if len(dataset) == 0:
            raise DataError(f"the {split} split is empty; add images or change the fractions.")
        generator = torch.Generator().manual_seed(cfg.seed)
        loaders[split] = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            shuffle=train,
            # BatchNorm cannot train on a batch of one image.
            drop_last=train and len(dataset) % cfg.batch_size == 1,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            worker_init_fn=seed_worker,
            generator=generator,
            pin_memory=device.type == "cuda",
        )
    return loaders
