"""Grad-CAM (captum's LayerGradCam on the layer the backbone's entry names, its last stage of
maps): where a model looks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from matplotlib.figure import Figure
from torchvision.transforms import v2

from emotion_tl.evaluation.predict import Predictor, check_same_classes
from emotion_tl.figures.evaluation import plot_gradcam_grid
from emotion_tl.model.backbones import DEFAULT_BACKBONE, get_backbone


def compute_gradcam(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor | None = None,
    backbone: str = DEFAULT_BACKBONE,
) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] for normalised images (N, C, H, W).

    `targets` are the class indices to explain; by default each image's predicted class.
    """
    model = model.eval()
    if targets is None:
        with torch.no_grad():
            targets = model(images).argmax(1)
    # The layer's output is (N, channels, h, w); Grad-CAM weighs its channels by their gradients.
    cam = LayerGradCam(model, model.get_submodule(get_backbone(backbone).gradcam_layer))
    maps = cam.attribute(images, target=targets, relu_attributions=True)  # (N, 1, h, w)
    maps = LayerAttribution.interpolate(maps, tuple(images.shape[-2:]), "bilinear")[:, 0]
    maps = maps.detach().float()
    # Scale each map to [0, 1] so maps of different models share a colour scale.
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    span = high - low
    # A flat map (a small image gives the layer a single cell) has no "where": all zeros.
    flat = span <= 1e-5 * high.abs().clamp_min(1e-12)
    scaled = torch.where(flat, torch.zeros_like(maps), (maps - low) / span.clamp_min(1e-12))
    return scaled.cpu().numpy()


def explain_images(
    predictor: Predictor, images: Sequence[torch.Tensor]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grad-CAM maps (N, S, S), probabilities (N, C) and crops (N, S, S, 3) for uint8 images."""
    transform = predictor.transform()
    batch = torch.stack([transform(image) for image in images])
    model = predictor.model.cpu().eval()
    with torch.no_grad():
        probabilities = model(batch).float().softmax(1)
    maps = compute_gradcam(model, batch, probabilities.argmax(1), predictor.backbone)
    crop = v2.Compose(
        [v2.Resize(predictor.resize_size, antialias=True), v2.CenterCrop(predictor.image_size)]
    )
    crops = np.stack([crop(image).permute(1, 2, 0).numpy() for image in images])
    return maps, probabilities.numpy(), crops


def plot_gradcam_comparison(
    predictors: dict[str, Predictor],
    images: Sequence[torch.Tensor],
    labels: Sequence[str] | None = None,
    alpha: float = 0.5,
) -> Figure:
    """One row per image: the crop the models see, then each model's Grad-CAM over it."""
    class_names = check_same_classes(list(predictors.values()))
    results = {name: explain_images(p, images) for name, p in predictors.items()}
    return plot_gradcam_grid(results, class_names, labels, alpha)
