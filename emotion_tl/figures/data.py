"""Figures of the data before training: class balance, samples, augmentation, metadata."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from emotion_tl.data.describe import count_images
from emotion_tl.data.prepare import PreparedData
from emotion_tl.data.transforms import build_transforms, denormalize


def to_displayable(image: torch.Tensor) -> np.ndarray:
    """A uint8 or normalised float (3, H, W) tensor as a (H, W, 3) array in [0, 1] for imshow."""
    if image.dtype == torch.uint8:
        return image.permute(1, 2, 0).numpy() / 255
    return denormalize(image).permute(1, 2, 0).numpy()


def plot_class_balance(data: PreparedData) -> Figure:
    """Bar chart of images per category, one colour per split."""
    counts = count_images(data).drop(index="all", columns="all")
    figure = Figure(figsize=(1.2 * len(counts) + 3, 3.5), layout="constrained")
    ax = figure.subplots()
    counts.plot.bar(stacked=True, ax=ax, rot=0)
    ax.set_ylabel("images")
    ax.set_title("Images per category and split")
    return figure


def plot_samples(data: PreparedData, per_category: int = 6, seed: int = 0) -> Figure:
    """A grid of randomly chosen images: one row per category."""
    rng = np.random.default_rng(seed)
    rows, columns = len(data.class_names), per_category
    figure = Figure(figsize=(1.6 * columns, 1.7 * rows), layout="constrained")
    axes = np.atleast_2d(figure.subplots(rows, columns, squeeze=False))
    for row, category in enumerate(data.class_names):
        members = np.flatnonzero(data.table["label"].to_numpy() == category)
        picked = rng.choice(members, min(columns, len(members)), replace=False)
        for column, ax in enumerate(axes[row]):
            ax.set_axis_off()
            if column < len(picked):
                ax.imshow(to_displayable(data.images[picked[column]]))
        axes[row, 0].set_title(category, loc="left", fontsize=10)
    return figure


def plot_augmentations(
    image: torch.Tensor, image_size: int, count: int = 5, seed: int = 0
) -> Figure:
    """One image as the model sees it at evaluation, then `count` random training versions."""
    evaluation = build_transforms(image_size, train=False)(image)
    augment = build_transforms(image_size, train=True)
    with torch.random.fork_rng():  # the caller's random state stays as it was
        torch.manual_seed(seed)
        versions = [evaluation] + [augment(image) for _ in range(count)]
    figure = Figure(figsize=(1.8 * len(versions), 2.2), layout="constrained")
    for index, (ax, version) in enumerate(
        zip(figure.subplots(1, len(versions), squeeze=False)[0], versions, strict=True)
    ):
        ax.imshow(to_displayable(version))
        ax.set_title("evaluation" if index == 0 else f"training {index}", fontsize=9)
        ax.set_axis_off()
    return figure


def plot_metadata_histogram(
    metadata: pd.DataFrame, column: str, categories: Sequence[str]
) -> Figure:
    """Distribution of one metadata column (for example intensity), one histogram per category."""
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    ax = figure.subplots()
    bins = np.histogram_bin_edges(metadata[column].dropna(), bins=15)
    for category in categories:
        values = metadata.loc[metadata["category"] == category, column]
        ax.hist(values, bins=bins, alpha=0.5, label=category)
    ax.set_xlabel(column)
    ax.set_ylabel("images")
    ax.legend()
    return figure


def plot_source_inputs(
    images: Sequence[torch.Tensor],
    views: dict[str, tuple[torch.nn.Module, Sequence[float], Sequence[float]]],
) -> Figure:
    """What each source model reads of the same uint8 (3, H, W) images: one row per source
    (`views`: name -> (its evaluation transform, mean, std)), one column per image, each shown
    at the side and in the colours the model gets."""
    figure = Figure(figsize=(1.8 * len(images), 2.0 * len(views)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(views), len(images), squeeze=False))
    for row, (name, (transform, mean, std)) in enumerate(views.items()):
        for column, image in enumerate(images):
            seen = transform(image)  # (C, S, S), normalised
            shown = seen * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
            shown = shown.clamp(0, 1).permute(1, 2, 0).numpy()
            ax = axes[row, column]
            ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(f"{name}\n{seen.shape[-1]} px", fontsize=9)
    return figure
