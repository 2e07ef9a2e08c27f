"""The frozen approach trained on cached features: the head alone, fed (features, label) pairs
in the same seeded order as the image loaders, one augmented view per epoch."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from emotion_tl.data.split import SPLITS
from emotion_tl.training.context import RunContext
from emotion_tl.training.feature_cache import load_features


class FeatureHead(nn.Module):
    """A model's head on its own, for `fit` to train on cached features.

    It holds the very same module as the full model, under the same name (`name`: the backbone
    entry's `head`), so training it trains the full model's head, the approaches' parameter
    groups find it as they do in the full model, and the full model's state_dict and
    checkpoints stay what they always were.
    """

    def __init__(self, head: nn.Module, name: str) -> None:
        super().__init__()
        self.head_name = name
        self.add_module(name, head)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.get_submodule(self.head_name)(features)  # (B, feature_dim) -> (B, classes)


class FeatureDataset(Dataset):
    """Cached features (V, N, feature_dim) with labels (N,); index v * N + i is view v of
    image i."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels
        self.num_views, self.num_images = features.shape[:2]

    def __len__(self) -> int:
        return self.num_views * self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        view, image = divmod(index, self.num_images)
        return self.features[view, image], self.labels[image]


class ViewCyclingSampler(Sampler[int]):
    """Shuffles images each epoch exactly as `RandomSampler` does; epoch e (0-based, set by
    `set_epoch` as for PyTorch's DistributedSampler) uses view e mod V."""

    def __init__(self, num_images: int, num_views: int, generator: torch.Generator) -> None:
        self.shuffle = RandomSampler(range(num_images), generator=generator)
        self.num_images, self.num_views = num_images, num_views
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the view of the coming epoch; `fit` calls it, a resumed epoch included."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_images

    def __iter__(self) -> Iterator[int]:
        offset = (self.epoch % self.num_views) * self.num_images
        for image in self.shuffle:
            yield offset + image


def make_feature_loaders(model: nn.Module, run: RunContext) -> dict[str, DataLoader]:
    """train/val/test loaders of (features, labels) of `run.data`, from the body of `model`,
    shuffled and batched like `make_loaders`."""
    cfg, data = run.cfg, run.data
    features = load_features(model, run)
    labels = torch.tensor(data.labels())
    loaders = {}
    for split in SPLITS:
        dataset = FeatureDataset(features[split], labels[data.indices(split)])
        train = split == "train"
        # The same seeded generator and sampler as the image loaders, so the order matches.
        generator = torch.Generator().manual_seed(cfg.seed)
        sampler = ViewCyclingSampler(dataset.num_images, dataset.num_views, generator)
        loaders[split] = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler if train else None,
            drop_last=train and dataset.num_images % cfg.batch_size == 1,
            generator=generator,
        )
    return loaders
