"""Frozen approach in one backbone pass: cache pooled features, then train only the head on them.

A frozen backbone in eval mode maps an image to the same 2048 numbers every epoch, so running
it once per image (and per augmented view) and training the head on the stored numbers gives the
head the plain loop would give, at a small fraction of the cost. The cache lives under
`checkpoint_dir/feature_cache/`: one file per setting (backbone weights, transforms, image size,
precision, device type), one entry per image file (its path, size and modification time) and
view, so a changed setting misses the whole file and a changed image misses only its entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from emotion_tl.config import Config
from emotion_tl.data import PreparedData, build_transforms, one_thread, resize_size_for
from emotion_tl.device import autocast
from emotion_tl.io import save_torch_atomic
from emotion_tl.model import FEATURE_DIM, is_head
from emotion_tl.train import to_device

logger = logging.getLogger("emotion_tl")

CACHE_DIR = "feature_cache"
CACHE_FORMAT = 1


class FeatureHead(nn.Module):
    """A model's `fc` on its own, for `fit` to train on cached features.

    It holds the very same `nn.Linear` object as the full model, so training it trains the full
    model's head, and the full model's state_dict and checkpoints stay what they always were.
    """

    def __init__(self, fc: nn.Linear) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)  # (B, 2048) -> (B, num_classes)


class FeatureDataset(Dataset):
    """Cached features (V, N, 2048) with labels (N,); index v * N + i is view v of image i."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels
        self.num_views, self.num_images = features.shape[:2]

    def __len__(self) -> int:
        return self.num_views * self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        view, image = divmod(index, self.num_images)
        return self.features[view, image], self.labels[image]


class ViewCyclingSampler(Sampler[int]):
    """Shuffles images each epoch exactly as `RandomSampler` does; epoch e uses view e mod V."""

    def __init__(self, num_images: int, num_views: int, generator: torch.Generator) -> None:
        self.shuffle = RandomSampler(range(num_images), generator=generator)
        self.num_images, self.num_views = num_images, num_views
        self.epoch = 0  # set it to resume in the right view

    def __len__(self) -> int:
        return self.num_images

    def __iter__(self) -> Iterator[int]:
        offset = (self.epoch % self.num_views) * self.num_images
        self.epoch += 1
        for image in self.shuffle:
            yield offset + image


def hash_state(model: nn.Module) -> str:
    """SHA-256 of every backbone tensor's bytes: the identity of the weights features come from."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if is_head(name):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def make_cache_settings(
    model: nn.Module, cfg: Config, device: torch.device, precision: str
) -> dict[str, object]:
    """Everything besides the image itself that changes a feature; it names the cache file."""
    return {
        "format": CACHE_FORMAT,
        "backbone_sha256": hash_state(model),
        # The stride placement changes the computation without changing any tensor.
        "stride_in_1x1": model.layer2[0].conv1.stride == (2, 2),
        "image_size": cfg.image_size,
        "resize_size": resize_size_for(cfg.image_size),
        "train_transform": repr(build_transforms(cfg.image_size, train=True)),
        "eval_transform": repr(build_transforms(cfg.image_size, train=False)),
        "precision": precision,
        "device_type": device.type,
        "torch": str(torch.__version__),
    }


def identify_file(path: Path) -> str:
    """Path, size and modification time: changes whenever the file is rewritten."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def make_view_seed(seed: int, file: str, view: int) -> int:
    """A seed for one augmented view of one file that does not depend on the other files."""
    digest = hashlib.sha256(f"{seed}|{file}|{view}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def load_cache(path: Path, settings: dict) -> dict[str, torch.Tensor]:
    """Entries of a cache file written with `settings`, or none if missing, stale or unreadable."""
    if not path.is_file():
        return {}
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        logger.warning("Ignoring unreadable feature cache %s (%s); rebuilding it.", path, error)
        return {}
    if not isinstance(stored, dict) or stored.get("settings") != settings:
        return {}
    return dict(stored.get("entries", {}))


@torch.no_grad()
def compute_features(
    model: nn.Module,
    images: list[torch.Tensor],
    transform: nn.Module,
    seeds: list[int | None],
    *,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> torch.Tensor:
    """Pooled backbone features (N, 2048) of `images` after `transform` (seeded per image)."""
    backbone = nn.Sequential(*(m for name, m in model.named_children() if name != "fc"))
    backbone.eval()
    features = []
    for start in range(0, len(images), batch_size):
        batch = []
        for image, seed in zip(
            images[start : start + batch_size], seeds[start : start + batch_size], strict=True
        ):
            with torch.random.fork_rng(devices=[]), one_thread():
                if seed is not None:
                    torch.manual_seed(seed)
                batch.append(transform(image))
        with autocast(device, precision):
            pooled = backbone(to_device(torch.stack(batch), device))  # (B, 2048, 1, 1)
        features.append(pooled.flatten(1).float().cpu())
    return torch.cat(features) if features else torch.empty(0, FEATURE_DIM)


def load_features(
    model: nn.Module,
    data: PreparedData,
    cfg: Config,
    *,
    device: torch.device,
    precision: str,
) -> dict[str, torch.Tensor]:
    """Features per split: train (V, N, 2048) with V = cfg.feature_views, val/test (1, N, 2048).

    One view means no augmentation (the evaluation transform); more views are that many
    random augmentations of each training image, reproducible from the seed and the file.
    """
    model.to(device, memory_format=torch.channels_last)
    settings = make_cache_settings(model, cfg, device, precision)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(cfg.checkpoint_dir) / CACHE_DIR / f"{key}.pt"
    entries = load_cache(path, settings)
    transforms = {
        False: build_transforms(cfg.image_size, train=False),
        True: build_transforms(cfg.image_size, train=True),
    }
    augment = cfg.feature_views > 1
    files = [identify_file(Path(cfg.data_dir) / f) for f in data.table["file"]]

    wanted: dict[str, list[list[str]]] = {}  # split -> views -> entry key per image
    sources: dict[str, tuple[int, int | None]] = {}  # entry key -> (row, augmented view or None)
    for split in ("train", "val", "test"):
        views = range(cfg.feature_views) if split == "train" and augment else [None]
        wanted[split] = []
        for view in views:
            keys = []
            for row in data.indices(split):
                name = (
                    f"eval|{files[row]}" if view is None else f"aug|{cfg.seed}|{view}|{files[row]}"
                )
                keys.append(name)
                sources[name] = (row, view)
            wanted[split].append(keys)

    missing = [k for k in sources if k not in entries]
    reused = len(sources) - len(missing)
    start = time.perf_counter()
    for augmented in (False, True):
        todo = [k for k in missing if (sources[k][1] is not None) == augmented]
        if not todo:
            continue
        rows = [sources[k][0] for k in todo]
        seeds = [
            None if view is None else make_view_seed(cfg.seed, files[row], view)
            for row, view in (sources[k] for k in todo)
        ]
        computed = compute_features(
            model,
            [data.images[row] for row in rows],
            transforms[augmented],
            seeds,
            batch_size=cfg.batch_size,
            device=device,
            precision=precision,
        )
        entries.update(zip(todo, computed.unbind(), strict=True))
    if missing:
        # Clone each row: a view into one big tensor would make torch.save store it whole.
        save_torch_atomic(
            {"settings": settings, "entries": {k: v.clone() for k, v in entries.items()}}, path
        )
    logger.info(
        "Frozen backbone features: %d reused from %s, %d computed in %.1f s",
        reused,
        path,
        len(missing),
        time.perf_counter() - start,
    )
    return {
        split: torch.stack([torch.stack([entries[k] for k in keys]) for keys in views])
        for split, views in wanted.items()
    }


def make_feature_loaders(
    model: nn.Module,
    data: PreparedData,
    cfg: Config,
    *,
    device: torch.device,
    precision: str,
) -> dict[str, DataLoader]:
    """train/val/test loaders of (features, labels), shuffled and batched like `make_loaders`."""
    features = load_features(model, data, cfg, device=device, precision=precision)
    labels = torch.tensor(data.labels())
    loaders = {}
    for split in ("train", "val", "test"):
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
