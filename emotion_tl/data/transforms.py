"""What the network sees: the evaluation crop, training augmentation and normalisation.

A backbone's entry (`model/backbones.py`) says which normalisation and colour its network
reads; the defaults here are ImageNet's colour ones, and this module is the one home of the
ImageNet mean and standard deviation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNELS = ("rgb", "grey")  # what a network reads: colour (3 channels) or grey (1)


def resize_size_for(image_size: int) -> int:
    """Shorter side before the centre crop, in torchvision's 256 -> 224 proportion."""
    return round(image_size * 256 / 224)


def build_transforms(
    image_size: int,
    *,
    train: bool,
    resize_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    normalize: bool = True,
    channels: str = "rgb",
) -> v2.Compose:
    """uint8 (3, H, W) tensor -> normalised float tensor; augmentation only when `train`.

    `resize_size` defaults to this project's, `mean`, `std` and `channels` to ImageNet's colour
    input; a backbone or a checkpoint gives its own. `normalize=False` stops before the float
    conversion: uint8 colour out, for `normalize_batch` to finish a whole batch at once where
    it is used.
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
    if not normalize:
        return v2.Compose(steps)
    return v2.Compose([*steps, *build_normalization(mean, std, channels)])


def build_normalization(
    mean: Sequence[float], std: Sequence[float], channels: str
) -> list[v2.Transform]:
    """The steps from uint8 colour to the network's input: floats in [0, 1], grey if it reads
    grey (one channel), then each channel less `mean`, over `std`."""
    if channels not in CHANNELS:
        raise ValueError(f"channels={channels!r}: use one of {', '.join(CHANNELS)}")
    grey = [v2.Grayscale(num_output_channels=1)] if channels == "grey" else []
    return [v2.ToDtype(torch.float32, scale=True), *grey, v2.Normalize(mean, std)]


def normalize_batch(
    images: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    channels: str = "rgb",
) -> torch.Tensor:
    """uint8 (B, 3, H, W) from `build_transforms(..., normalize=False)` -> the float batch the
    full transform gives, bit for bit, computed on whatever device the batch is on.

    The image loaders deliver uint8 batches: a quarter of the bytes of float ones to pass from
    their worker processes and to copy to a GPU, where the conversion costs next to nothing.
    """
    return v2.Compose(build_normalization(mean, std, channels))(images)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Undo the (default) ImageNet normalisation of a float (3, H, W) image: back in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)


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
