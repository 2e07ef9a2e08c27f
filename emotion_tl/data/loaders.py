"""DataLoaders over the decoded images: augmentation for training, seeded order, balance."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from emotion_tl.config import Config
from emotion_tl.data.balance import make_balanced_sampler, resolve_balance
from emotion_tl.data.files import DataError
from emotion_tl.data.image_store import take
from emotion_tl.data.prepare import PreparedData
from emotion_tl.data.split import SPLITS
from emotion_tl.data.transforms import build_transforms, one_thread
from emotion_tl.distributed import ShardSampler, rank, world_size


class ImageDataset(Dataset):
    """Decoded uint8 images (in memory or on disk) with integer labels, transformed on access."""

    def __init__(self, images: Sequence[torch.Tensor], labels: Sequence[int], transform) -> None:
        # Not copied into a list: images on disk stay a lazy sequence.
        self.images, self.labels, self.transform = images, list(labels), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        with one_thread():
            return self.transform(self.images[index]), self.labels[index]


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in each DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def choose_num_workers(num_workers: int | None, device: torch.device) -> int:
    """Worker processes for a device: the configured number, else 0 on the CPU and up to 4 on a GPU.

    On the CPU the training step already keeps every core busy and augmenting one image takes a
    few milliseconds, so workers would only compete with it; a GPU waits for its data instead.
    With several processes on one machine (torchrun), they share its cores.
    """
    if num_workers is not None:
        return num_workers
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return 0 if device.type == "cpu" else min(4, max(1, (os.cpu_count() or 1) // processes_here))


def per_step_count(sampler: Sampler | None, dataset: Dataset) -> int:
    """Items one pass over a loader takes: this process's share, or the whole dataset."""
    return len(sampler) if sampler is not None else len(dataset)


def choose_sampler(
    dataset: Dataset,
    train: bool,
    balance: str,
    labels: np.ndarray,
    generator: torch.Generator,
    seed: int,
) -> Sampler | None:
    """The order of one split: shuffled (None), class-balanced, or with several processes
    (torchrun) each one's share: shuffled alike on all of them for training, in order for
    evaluation."""
    if world_size() > 1:
        if train:
            return DistributedSampler(dataset, world_size(), rank(), shuffle=True, seed=seed)
        return ShardSampler(len(dataset))
    if train and balance == "sampler":
        return make_balanced_sampler(labels, generator)
    return None


def make_loaders(
    data: PreparedData, cfg: Config, *, device: torch.device | None = None
) -> dict[str, DataLoader]:
    """train/val/test DataLoaders suited to `device` (default CPU); only train shuffles (or
    samples class-balanced) and augments."""
    device = device or torch.device("cpu")
    num_workers = choose_num_workers(cfg.num_workers, device)
    labels = data.labels()
    # Several processes each draw their share of the data; a balanced sampler cannot be shared
    # out, so there the loss weighs the classes instead.
    balance = resolve_balance(cfg.balance, data.train_counts(), can_resample=world_size() == 1)
    loaders = {}
    for split in SPLITS:
        index = data.indices(split)
        train = split == "train"
        dataset = ImageDataset(
            take(data.images, index),
            labels[index].tolist(),
            # uint8 out: `to_device` normalises whole batches where they land.
            build_transforms(cfg.image_size, train=train, normalize=False),
        )
        if len(dataset) == 0:
            raise DataError(f"the {split} split is empty; add images or change the fractions.")
        # Each process its own augmentations (workers are seeded from this generator).
        generator = torch.Generator().manual_seed(cfg.seed + rank())
        sampler = choose_sampler(dataset, train, balance, labels[index], generator, cfg.seed)
        loaders[split] = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            # BatchNorm cannot train on a batch of one image.
            drop_last=train and per_step_count(sampler, dataset) % cfg.batch_size == 1,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            worker_init_fn=seed_worker,
            generator=generator,
            pin_memory=device.type == "cuda",
        )
    return loaders
