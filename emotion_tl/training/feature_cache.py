"""Frozen approach in one backbone pass: each image's pooled features, computed once and cached.

A frozen backbone in eval mode maps an image to the same feature_dim numbers every epoch, so
running it once per image (and per augmented view) and training the head on the stored numbers
gives the head the plain loop would give, at a small fraction of the cost. The cache lives under
`checkpoint_dir/feature_cache/`: one file per setting (backbone and its weights, transforms,
image size, precision, device type), one entry per image file (its path, size and modification
time) and view, so a changed setting misses the whole file and a changed image misses only its
entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from emotion_tl.data.image_store import take
from emotion_tl.data.split import SPLITS
from emotion_tl.data.transforms import one_thread, resize_size_for
from emotion_tl.device import autocast, to_device
from emotion_tl.distributed import all_gather_objects, is_main, rank, world_size
from emotion_tl.model.backbones import Backbone
from emotion_tl.storage import save_torch_atomic
from emotion_tl.training.context import RunContext

logger = logging.getLogger("emotion_tl")

CACHE_DIR = "feature_cache"
CACHE_FORMAT = 1


def hash_state(model: nn.Module, backbone: Backbone) -> str:
    """SHA-256 of every body tensor's bytes: the identity of the weights features come from."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if backbone.is_head(name):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def make_cache_settings(model: nn.Module, run: RunContext) -> dict[str, object]:
    """Everything besides the image itself that changes a feature; it names the cache file."""
    entry, image_size = run.backbone, run.cfg.image_size
    return {
        "format": CACHE_FORMAT,
        "backbone": entry.name,
        "backbone_sha256": hash_state(model, entry),
        # The layers' settings (where they stride, for one) change the computation without
        # changing any tensor; their description holds them.
        "body_sha256": hashlib.sha256(repr(entry.body(model)).encode()).hexdigest(),
        "image_size": image_size,
        # The face crop changes the picture itself (the cache is keyed by file, not content).
        "face_crop": run.face_crop.describe(),
        "resize_size": resize_size_for(image_size),
        "train_transform": repr(entry.transform(image_size, train=True)),
        "eval_transform": repr(entry.transform(image_size, train=False)),
        "precision": run.precision,
        "device_type": run.device.type,
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


def cache_path(run: RunContext, settings: dict, prefix: str = "") -> Path:
    """The cache file for `settings`: named by their hash, under checkpoint_dir/feature_cache/
    (the run's own folder, which its repeated splits share)."""
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    return Path(run.cfg.checkpoint_dir) / CACHE_DIR / f"{prefix}{key}.pt"


def cached_entries(
    path: Path,
    settings: dict,
    names: list[str],
    compute: Callable[[list[str]], dict[str, torch.Tensor]],
) -> tuple[dict[str, torch.Tensor], int]:
    """The entries `names` of the cache file at `path`: read, computing (and then saving) only the
    missing ones; also how many were computed. With several processes, each computes a share of
    the missing entries, all of them get every entry, and rank 0 alone saves."""
    entries = load_cache(path, settings)
    missing = [name for name in names if name not in entries]
    if world_size() > 1:  # the processes may see different caches (one per machine): pool them
        pooled = set().union(*all_gather_objects(set(missing)))
        missing = [name for name in names if name in pooled]
    if missing:
        # Rows cloned apart: a view would carry (and pickle) the whole batch's tensor along.
        mine = {k: v.clone() for k, v in compute(missing[rank() :: world_size()]).items()}
        for share in all_gather_objects(mine):
            entries.update(share)
    if missing and is_main():
        save_torch_atomic({"settings": settings, "entries": entries}, path)
    return entries, len(missing)


@torch.no_grad()
def compute_features(
    model: nn.Module,
    images: Sequence[torch.Tensor],
    rows: Sequence[int],
    transform: nn.Module,
    seeds: list[int | None],
    *,
    backbone: Backbone,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> torch.Tensor:
    """Pooled body features (N, feature_dim) of the N `images` at `rows` after `transform`
    (seeded per image); the images are taken a batch at a time."""
    body = backbone.body(model).eval()
    features = []
    for start in range(0, len(rows), batch_size):
        batch = []
        for image, seed in zip(
            take(images, rows[start : start + batch_size]),
            seeds[start : start + batch_size],
            strict=True,
        ):
            with torch.random.fork_rng(devices=[]), one_thread():
                if seed is not None:
                    torch.manual_seed(seed)
                batch.append(transform(image))
        with autocast(device, precision):
            pooled = body(to_device(torch.stack(batch), device))  # (B, feature_dim)
        features.append(pooled.float().cpu())
    return torch.cat(features) if features else torch.empty(0, backbone.feature_dim)


def plan_entries(
    run: RunContext,
) -> tuple[dict[str, list[list[str]]], dict[str, tuple[int, int | None]]]:
    """The cache entries each split needs: split -> views -> entry name per image, and each
    entry's (table row, seed of its augmented view, or None for the evaluation transform)."""
    cfg, data = run.cfg, run.data
    files = [identify_file(Path(cfg.data_dir) / f) for f in data.table["file"]]
    wanted: dict[str, list[list[str]]] = {}
    sources: dict[str, tuple[int, int | None]] = {}
    for split in SPLITS:
        augment = split == "train" and cfg.feature_views > 1
        views = range(cfg.feature_views) if augment else [None]
        wanted[split] = []
        for view in views:
            keys = []
            for row in data.indices(split):
                if view is None:
                    name, seed = f"eval|{files[row]}", None
                else:
                    name = f"aug|{cfg.seed}|{view}|{files[row]}"
                    seed = make_view_seed(cfg.seed, files[row], view)
                keys.append(name)
                sources[name] = (row, seed)
            wanted[split].append(keys)
    return wanted, sources


def compute_missing(
    model: nn.Module, run: RunContext, todo: list[str], sources: dict[str, tuple[int, int | None]]
) -> dict[str, torch.Tensor]:
    """Features of the entries `todo`: evaluation views first, then seeded augmented views."""
    cfg, entry = run.cfg, run.backbone
    computed: dict[str, torch.Tensor] = {}
    for augmented in (False, True):
        keys = [k for k in todo if (sources[k][1] is not None) == augmented]
        if not keys:
            continue
        features = compute_features(
            model,
            run.data.images,
            [sources[k][0] for k in keys],
            entry.transform(cfg.image_size, train=augmented),
            [sources[k][1] for k in keys],
            backbone=entry,
            batch_size=cfg.batch_size,
            device=run.device,
            precision=run.precision,
        )
        computed.update(zip(keys, features.unbind(), strict=True))
    return computed


def load_features(model: nn.Module, run: RunContext) -> dict[str, torch.Tensor]:
    """Features per split of `run.data`: train (V, N, feature_dim) with V = cfg.feature_views,
    val/test (1, N, feature_dim), from the body of `model`, a `run.backbone`.

    One view means no augmentation (the evaluation transform); more views are that many
    random augmentations of each training image, reproducible from the seed and the file.
    """
    model.to(run.device, memory_format=torch.channels_last)
    settings = make_cache_settings(model, run)
    wanted, sources = plan_entries(run)
    start = time.perf_counter()
    path = cache_path(run, settings)
    entries, computed = cached_entries(
        path, settings, list(sources), lambda missing: compute_missing(model, run, missing, sources)
    )
    logger.info(
        "Frozen backbone features: %d reused from %s, %d computed in %.1f s",
        len(sources) - computed,
        path,
        computed,
        time.perf_counter() - start,
    )
    return {
        split: torch.stack([torch.stack([entries[k] for k in keys]) for keys in views])
        for split, views in wanted.items()
    }
