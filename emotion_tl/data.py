"""The dataset: scan, split (saved as CSV), transforms and loaders."""

from __future__ import annotations

import contextlib
import dataclasses
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

from emotion_tl.balance import make_balanced_sampler, resolve_balance
from emotion_tl.config import Config
from emotion_tl.files import DataError, Skipped, check_data_dir, list_image_files
from emotion_tl.io import write_atomic
from emotion_tl.scan import (
    CROSS_CATEGORY,
    SCAN_CACHE_FILE,
    Duplicates,
    ScanCache,
    find_duplicates,
    scan_images,
)

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
    duplicates: Duplicates = dataclasses.field(default_factory=Duplicates)

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


def split_by_category(labels: Sequence[str], groups: Sequence[str], cfg: Config) -> list[str]:
    """Stratified, seeded split: each category's groups (usually single images) are shuffled and
    cut by the configured fractions, so the members of a group share a split."""
    rng = np.random.default_rng(cfg.seed)
    labels = np.asarray(labels)
    split = np.empty(len(labels), dtype=object)
    for category in sorted(set(labels)):
        members = np.flatnonzero(labels == category)
        unique = list(dict.fromkeys(groups[i] for i in members))  # in file order
        order = [unique[i] for i in rng.permutation(len(unique))]
        n_test = max(1, round(len(order) * cfg.test_fraction))
        n_val = max(1, round(len(order) * cfg.val_fraction))
        assign = {g: "test" for g in order[:n_test]}
        assign |= {g: "val" for g in order[n_test : n_test + n_val]}
        assign |= {g: "train" for g in order[n_test + n_val :]}
        split[members] = [assign[groups[i]] for i in members]
    return list(split)


def merge_groups(groups: dict[str, str], same_image: Sequence[Sequence[str]]) -> dict[str, str]:
    """file -> group, with every set of identical files joined into one group (union-find)."""
    parent: dict[str, str] = {}

    def find(group: str) -> str:
        while parent.get(group, group) != group:
            group = parent[group]
        return group

    for names in same_image:
        roots = sorted({find(groups[name]) for name in names})
        for root in roots[1:]:
            parent[root] = roots[0]
    return {file: find(group) for file, group in groups.items()}


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
    files: list[str],
    labels: list[str],
    identities: dict[str, str],
    cfg: Config,
    same_image: Sequence[Sequence[str]] = (),
) -> list[str]:
    """Split by person when every file has an identity, else stratified by category; identical
    files (`same_image`) always land in one split, so a copy never leaks into the test set."""
    if identities and all(f in identities for f in files):
        groups = merge_groups({f: identities[f] for f in files}, same_image)
        split = split_by_group([groups[f] for f in files], cfg)
        table = pd.crosstab(pd.Series(labels, name="label"), pd.Series(split, name="split"))
        if set(table.columns) == set(SPLITS) and (table.to_numpy() > 0).all():
            return split
        logger.warning("Too few people to split by identity; splitting by category instead.")
    groups = merge_groups({f: f for f in files}, same_image)
    return split_by_category(labels, [groups[f] for f in files], cfg)


def choose_subset(
    found: list[Path], count: int, data_dir: Path, identities: dict[str, str], seed: int
) -> list[Path]:
    """A seeded subset of one category; with known identities, the same people in every category.

    Choosing people rather than files keeps an identity split balanced on a subset: each person
    chosen brings one image of every category, as in the full bundled set.
    """
    rng = np.random.default_rng(seed)
    names = [p.relative_to(data_dir).as_posix() for p in found]
    if identities and all(n in identities for n in names):
        people = sorted(set(identities.values()))
        rank = {person: i for i, person in enumerate(rng.permutation(people))}
        order = sorted(range(len(found)), key=lambda i: (rank[identities[names[i]]], names[i]))
        keep = sorted(order[:count])
    else:
        keep = np.sort(rng.choice(len(found), count, replace=False))
    return [found[i] for i in keep]


def prepare_data(cfg: Config) -> PreparedData:
    """Scan, check, decode and split the configured categories (errors before any training).

    Verdicts are remembered in `checkpoint_dir/.scan_cache.json`, so a later run does not
    re-open files already found broken, nor re-hash the good ones.
    """
    data_dir = Path(cfg.data_dir)
    check_data_dir(data_dir, cfg.categories)
    skipped = Skipped()
    paths, labels = [], []
    identities = read_groups(data_dir)
    for category in cfg.categories:
        found = list_image_files(data_dir / category, skipped)
        limit = cfg.max_images_per_category
        if limit is not None and len(found) > limit:
            found = choose_subset(found, limit, data_dir, identities, cfg.seed)
        paths += found
        labels += [category] * len(found)

    cache = ScanCache(Path(cfg.checkpoint_dir) / SCAN_CACHE_FILE, data_dir)
    scan = scan_images(paths, data_dir, resize_size_for(cfg.image_size), skipped, cache)
    label_of = dict(zip(paths, labels, strict=True))
    files = [p.relative_to(data_dir).as_posix() for p in scan.paths]
    labels = [label_of[p] for p in scan.paths]
    duplicates = find_duplicates(files, labels, scan.hashes)
    # An image filed under two categories has no trustworthy label: leave every copy out.
    dropped = {name for names in duplicates.across for name in names}
    for name in sorted(dropped):
        skipped.add(CROSS_CATEGORY, data_dir / name)
    keep = [i for i, name in enumerate(files) if name not in dropped]
    files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    images = [scan.images[i] for i in keep]

    if skipped.total():
        logger.warning("Skipped %d file(s):\n%s", skipped.total(), skipped.summary())
    for names in duplicates.across:
        logger.warning(
            "The same image is filed under two categories (left out): %s", " = ".join(names)
        )
    groups = merge_groups({f: f for f in files}, duplicates.within)
    for category in cfg.categories:
        count = labels.count(category)
        members = [f for f, label in zip(files, labels, strict=True) if label == category]
        distinct = len({groups[f] for f in members})
        if distinct < 3:
            copies = f" ({distinct} distinct)" if distinct < count else ""
            raise DataError(
                f"category '{category}' has {count} usable image(s){copies} in "
                f"'{data_dir / category}'; at least 3 different images are needed (one each for "
                "training, validation and test). Add images."
            )

    split = make_split(files, labels, read_groups(data_dir), cfg, duplicates.within)
    table = pd.DataFrame({"file": files, "label": labels, "split": split})
    return PreparedData(list(cfg.categories), table, images, skipped, duplicates)


def save_split(table: pd.DataFrame, checkpoint_dir: Path) -> Path:
    """Write the split CSV that both approaches, the notebooks and the report share."""
    path = checkpoint_dir / SPLIT_FILE
    write_atomic(path, table.to_csv(index=False).encode())
    return path


def build_transforms(
    image_size: int,
    *,
    train: bool,
    resize_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """uint8 (3, H, W) tensor -> normalised float tensor; augmentation only when `train`.

    `resize_size`, `mean` and `std` default to this project's; a checkpoint may record others.
    """
    if train:
        steps = [
            v2.RandomResizedCrop(image_size, scale=(0.75, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(10),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    else:
        resize_size = resize_size or resize_size_for(image_size)
        steps = [v2.Resize(resize_size, antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


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
    """train/val/test DataLoaders suited to `device` (default CPU); only train shuffles (or
    samples class-balanced) and augments."""
    device = device or torch.device("cpu")
    num_workers = choose_num_workers(cfg.num_workers, device)
    labels = data.labels()
    train_labels = labels[data.indices("train")]
    counts = {name: int((train_labels == i).sum()) for i, name in enumerate(data.class_names)}
    balance = resolve_balance(cfg.balance, counts)
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
        sampler = None
        if train and balance == "sampler":
            sampler = make_balanced_sampler(labels[index], generator)
        loaders[split] = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            # BatchNorm cannot train on a batch of one image.
            drop_last=train and len(dataset) % cfg.batch_size == 1,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            worker_init_fn=seed_worker,
            generator=generator,
            pin_memory=device.type == "cuda",
        )
    return loaders
