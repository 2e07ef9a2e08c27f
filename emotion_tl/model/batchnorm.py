"""BatchNorm made visible: what one pass over the data does to a layer's running statistics.

A BatchNorm layer normalises with the mean and variance of the current batch in train mode, and
updates its *running* mean and variance towards them (by `momentum`, 0.1, per batch); in eval
mode it normalises with the running values and leaves them alone. `requires_grad = False` does
not stop those updates: they are buffers, not parameters. That is why a frozen backbone must also
run in eval mode (`network.set_train_mode`), and why fine-tuning in train mode
(`finetuning_batchnorm="train"`) adapts them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from emotion_tl.device import autocast, resolve_device, resolve_precision, to_device
from emotion_tl.model.backbones import DEFAULT_BACKBONE, get_backbone


class _Reached(Exception):
    """Raised by a hook once the layer has run: the rest of the network cannot change it."""


def batchnorm_layer(model: nn.Module, layer: str) -> nn.modules.batchnorm._BatchNorm:
    """The BatchNorm layer called `layer` (a name from `model.named_modules()`)."""
    module = dict(model.named_modules()).get(layer)
    if not isinstance(module, nn.modules.batchnorm._BatchNorm):
        raise ValueError(
            f"{layer!r} is not a BatchNorm layer of this model; use one of its names such as "
            "'bn1' or 'layer1.0.bn1'."
        )
    return module


def first_batchnorm(model: nn.Module) -> str | None:
    """The name of the model's first BatchNorm layer ('bn1' in ResNet50); None if it has none,
    as face-api's networks have none."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return name
    return None


def running_mean(model: nn.Module, layer: str = "bn1") -> np.ndarray:
    """The running mean of the BatchNorm layer `layer`, one number per channel."""
    return batchnorm_layer(model, layer).running_mean.detach().float().cpu().numpy().copy()


def _stop_after(module: nn.Module, *args: object) -> None:
    raise _Reached


@torch.no_grad()
def pass_in_each_mode(
    model: nn.Module,
    images: Sequence[torch.Tensor],
    image_size: int,
    layer: str = "bn1",
    batch_size: int = 32,
    backbone: str = DEFAULT_BACKBONE,
) -> dict[str, np.ndarray]:
    """`layer`'s running mean before, and after one pass over `images` in train and in eval mode.

    Each pass runs, without gradients, on its own copy of `model`, which is left unchanged. The
    images are uint8 tensors, seen as at evaluation (no augmentation) by `backbone`'s input.
    """
    if not images:
        raise ValueError("the BatchNorm pass needs at least one image.")
    transform = get_backbone(backbone).transform(image_size, train=False)
    device = resolve_device("auto")
    precision = resolve_precision("auto", device)
    means = {"before (as loaded)": running_mean(model, layer)}
    for mode in ("train", "eval"):
        net = copy.deepcopy(model).to(device).train(mode == "train")
        batchnorm_layer(net, layer).register_forward_hook(_stop_after)  # later layers: no need
        for start in range(0, len(images), batch_size):
            batch = torch.stack([transform(image) for image in images[start : start + batch_size]])
            try:
                with autocast(device, precision):
                    net(to_device(batch, device))
            except _Reached:
                pass
        means[f"after a pass in {mode} mode"] = running_mean(net, layer)
    return means


def mean_change(means: dict[str, np.ndarray]) -> dict[str, float]:
    """For each entry after the first: the mean absolute change from the first, per channel."""
    first, *rest = means
    return {name: float(np.abs(means[name] - means[first]).mean()) for name in rest}
