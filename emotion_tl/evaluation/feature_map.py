"""Where a model puts each image: the numbers its last layer reads (the pooled output of the
backbone, 2,048 of them for ResNet50), projected onto the two directions along which they vary
most (PCA).

For frozen weights these are the pretrained features, the same whatever the head learns; after
fine-tuning they are the features the whole network reshaped for the task. Categories that
form separate clouds here are easy for a linear last layer; overlapping clouds may still be
separable along the other directions, so the map is a view, not a proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from torch import nn
from torchvision.transforms.v2 import functional as TF

from emotion_tl.data.faces.crop import load_seen_image
from emotion_tl.device import autocast, resolve_device, resolve_precision, to_device
from emotion_tl.evaluation.comparison import Comparison
from emotion_tl.evaluation.predict import predictor_from_checkpoint
from emotion_tl.figures.data import plot_source_inputs
from emotion_tl.figures.evaluation import plot_feature_maps
from emotion_tl.model.backbones import DEFAULT_BACKBONE, get_backbone, load_backbone_weights
from emotion_tl.model.network import build_model


@torch.no_grad()
def penultimate_features(
    model: nn.Module,
    images: Sequence[torch.Tensor],
    transform: nn.Module,
    *,
    backbone: str,
    batch_size: int = 32,
) -> np.ndarray:
    """(N, feature_dim): each uint8 image's pooled backbone output, the input of the head."""
    device = resolve_device("auto")
    precision = resolve_precision("auto", device)
    body = get_backbone(backbone).body(model.eval()).to(device)
    rows = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([transform(image) for image in images[start : start + batch_size]])
        with autocast(device, precision):
            pooled = body(to_device(batch, device))
        rows.append(pooled.float().cpu().numpy())
    return np.concatenate(rows)


def project(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 2) PCA projection and the share of the variance each of the two axes holds."""
    if len(features) < 2:
        raise ValueError(f"a map needs at least two images; got {len(features)}.")
    pca = PCA(2, random_state=0).fit(features)
    return pca.transform(features), pca.explained_variance_ratio_


def map_images(
    models: dict[str, nn.Module],
    images: Sequence[torch.Tensor],
    labels: Sequence[str],
    image_size: int,
    backbone: str = DEFAULT_BACKBONE,
) -> Figure:
    """One panel per model (each a `backbone`): its features of `images` (evaluation view),
    coloured by label."""
    transform = get_backbone(backbone).transform(image_size, train=False)
    maps = {
        name: project(penultimate_features(m, images, transform, backbone=backbone))
        for name, m in models.items()
    }
    return plot_feature_maps(maps, labels)


def plot_feature_map_report(comparison: Comparison, data_dir: str | Path) -> Figure:
    """Both approaches' maps of the test images, side by side, each from its best checkpoint."""
    first = comparison.approaches[0]
    files = list(first.predictions["file"])
    images = [TF.pil_to_tensor(load_seen_image(Path(data_dir) / f, first.face_crop)) for f in files]
    maps = {}
    for outputs in comparison.approaches:
        predictor = predictor_from_checkpoint(outputs.checkpoint, outputs.name)
        features = penultimate_features(
            predictor.model, images, predictor.transform(), backbone=predictor.backbone
        )
        maps[outputs.name] = project(features)
    return plot_feature_maps(maps, list(first.predictions["label"]))


def map_sources(
    sources: Sequence[str],
    images: Sequence[torch.Tensor],
    labels: Sequence[str],
    *,
    pretrained: bool = True,
) -> Figure:
    """One panel per source model: its pretrained features of `images` (uint8, each read at
    the side a run of that source reads by default), before any training, coloured by label."""
    maps = {}
    for name in sources:
        entry = get_backbone(name)
        weights = load_backbone_weights(pretrained, None, entry.name).weights
        model = build_model(2, weights, backbone=entry.name)  # the head plays no part here
        transform = entry.transform(entry.default_side, train=False)
        features = penultimate_features(model, images, transform, backbone=entry.name)
        maps[f"{entry.name} ({features.shape[1]:,} features)"] = project(features)
    return plot_feature_maps(maps, labels)


def show_source_inputs(sources: Sequence[str], images: Sequence[torch.Tensor]) -> Figure:
    """What each source model reads of the same uint8 images (at the side a run of it reads by
    default, colour or grey)."""
    views = {}
    for name in sources:
        entry = get_backbone(name)
        views[entry.name] = (
            entry.transform(entry.default_side, train=False),
            entry.mean,
            entry.std,
        )
    return plot_source_inputs(images, views)
