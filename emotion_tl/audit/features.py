"""What the label check reads: the frozen backbone's finer maps, pooled to a 4x4 grid.

The pooled numbers the frozen approach learns from average away *where* things are in the
picture, and an expression is a matter of where: a raised inner brow, a lowered lip corner.
Pooling the maps of an earlier, finer layer (the entry's `audit_layer`: for ResNet50 its third
stage, 1024 channels, 14x14 at 224 px) to a 4x4 grid keeps that. Each picture's maps are
averaged with those of its mirror image (mirrored back), a two-view average that favours
neither side.
On the bundled faces this doubled the flipped labels found (docs/audit.md). The features are
cached under checkpoint_dir/feature_cache/ like the frozen approach's, keyed the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from emotion_tl.data.image_store import take
from emotion_tl.data.transforms import one_thread
from emotion_tl.device import autocast, to_device
from emotion_tl.model.backbones import Backbone
from emotion_tl.training.context import RunContext
from emotion_tl.training.feature_cache import (
    cache_path,
    cached_entries,
    identify_file,
    make_cache_settings,
)

logger = logging.getLogger("emotion_tl")

GRID = 4


@torch.no_grad()
def grid_features(
    model: nn.Module,
    images: Sequence[torch.Tensor],
    *,
    backbone: Backbone,
    image_size: int,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> torch.Tensor:
    """(N, channels x GRID x GRID) float16: each image's map of the `backbone`'s audit layer
    averaged with its mirror's (mirrored back) and pooled to a GRID x GRID grid, on the
    evaluation view."""
    extractor = create_feature_extractor(model, {backbone.audit_layer: "map"}).eval()
    transform = backbone.transform(image_size, train=False)
    features = []
    for start in range(0, len(images), batch_size):
        with one_thread():
            batch = torch.stack([transform(image) for image in images[start : start + batch_size]])
        batch = to_device(batch, device)
        with autocast(device, precision):
            maps = extractor(batch)["map"].float()
            mirrored = extractor(batch.flip(-1))["map"].float().flip(-1)
        pooled = F.adaptive_avg_pool2d((maps + mirrored) / 2, GRID)
        features.append(pooled.flatten(1).half().cpu())
    return torch.cat(features)


def label_check_features(model: nn.Module, run: RunContext) -> np.ndarray:
    """`grid_features` of every image of `run.data` in table order, computed once per file,
    then read."""
    cfg, data = run.cfg, run.data
    model.to(run.device, memory_format=torch.channels_last)
    settings = make_cache_settings(model, run)
    layer = run.backbone.audit_layer
    settings |= {"audit_features": f"{layer} pooled {GRID}x{GRID}, mirrored"}
    names = [identify_file(Path(cfg.data_dir) / file) for file in data.table["file"]]
    rows = dict(zip(names, range(len(names)), strict=True))
    start = time.perf_counter()

    def compute(missing: list[str]) -> dict[str, torch.Tensor]:
        features = grid_features(
            model,
            take(data.images, [rows[name] for name in missing]),
            backbone=run.backbone,
            image_size=cfg.image_size,
            batch_size=cfg.batch_size,
            device=run.device,
            precision=run.precision,
        )
        return dict(zip(missing, features.unbind(), strict=True))

    path = cache_path(run, settings, prefix="audit-")
    entries, computed = cached_entries(path, settings, names, compute)
    logger.info(
        "Label-check features: %d reused from %s, %d computed in %.1f s",
        len(names) - computed,
        path,
        computed,
        time.perf_counter() - start,
    )
    return torch.stack([entries[name] for name in names]).float().numpy()
