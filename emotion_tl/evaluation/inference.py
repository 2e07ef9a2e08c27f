"""Running a model forward: the one place that turns batches into class probabilities, used for
validation during training, the test split, and predictions on new images alike."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from emotion_tl.device import autocast, to_device
from emotion_tl.distributed import ShardSampler, gather_shards
from emotion_tl.evaluation.metrics import compute_accuracy, compute_mean_loss
from emotion_tl.model.backbones import get_backbone


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    device: torch.device,
    precision: str,
    *,
    tta: bool = False,
    backbone: str | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, C) of `model` in eval mode for each batch (B, C, H, W) or cached
    features (B, feature_dim); `tta` averages in the left-right mirror of each image. uint8
    batches are normalised as `backbone` reads them (None: the batches are the input already)."""
    model.eval()
    normalize = get_backbone(backbone).normalize if backbone is not None else None
    outputs = []
    for batch in batches:
        batch = to_device(batch, device, normalize)
        with autocast(device, precision):
            logits = model(batch)
            flipped = model(torch.flip(batch, dims=[-1])) if tta else None
        probabilities = logits.float().softmax(1)
        if flipped is not None:
            probabilities = (probabilities + flipped.float().softmax(1)) / 2
        outputs.append(probabilities.cpu())
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(outputs).numpy()


def predict_loader(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    precision: str,
    backbone: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and true labels (N,) for every (images, labels) batch of `loader`
    (uint8 images normalised as `backbone` reads them); with several processes, for all of
    them, gathered from each one's share."""
    labels: list[torch.Tensor] = []

    def images() -> Iterable[torch.Tensor]:
        for batch_images, batch_labels in loader:
            labels.append(batch_labels)
            yield batch_images

    probabilities = predict_probabilities(model, images(), device, precision, backbone=backbone)
    labels_array = torch.cat(labels).numpy() if labels else np.zeros(0, dtype=np.int64)
    if isinstance(loader.sampler, ShardSampler):  # each process scored its share
        return gather_shards(probabilities, labels_array)
    return probabilities, labels_array


def evaluate_loader(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    precision: str,
    class_weights: torch.Tensor | None = None,
    backbone: str | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy (weighted by `class_weights` as the training loss is) and accuracy."""
    probabilities, labels = predict_loader(model, loader, device, precision, backbone)
    weights = None if class_weights is None else class_weights.cpu().numpy()
    return compute_mean_loss(labels, probabilities, weights), compute_accuracy(
        labels, probabilities
    )
