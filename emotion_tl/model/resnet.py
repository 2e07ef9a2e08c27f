"""ResNet50 with a new head, and the parameter groups that make the two approaches."""

from __future__ import annotations

from typing import Protocol

import pandas as pd
import torch
from torch import nn
from torchvision.models import ResNet, resnet50

ARCHITECTURE = "resnet50"
FEATURE_DIM = 2048  # ResNet50's pooled feature size, the head's input


class ImageNetWeights(Protocol):
    """What `build_model` needs of pretrained weights (model.weights.PretrainedWeights has it)."""

    state_dict: dict[str, torch.Tensor]  # torchvision resnet50 keys, the 1000-class fc included
    stride_in_1x1: bool  # True: the weights were trained striding in the 1x1 convolutions


def set_stride_in_1x1(model: ResNet) -> ResNet:
    """Move each down-sampling block's stride from the 3x3 to the first 1x1 convolution.

    The original (Caffe/Keras) ResNet50 strides in the 1x1; torchvision ("v1.5") in the 3x3.
    The state_dict shapes are the same either way, so weights trained one way need this to
    compute what they were trained to compute.
    """
    for layer in (model.layer2, model.layer3, model.layer4):
        block = layer[0]
        block.conv1.stride = (2, 2)
        block.conv2.stride = (1, 1)
    return model


def build_model(
    num_classes: int,
    weights: ImageNetWeights | None = None,
    *,
    stride_in_1x1: bool = False,
) -> ResNet:
    """Build ResNet50, load ImageNet weights if given, and replace `fc` with a new head."""
    model = resnet50(weights=None)
    if weights is not None:
        stride_in_1x1 = weights.stride_in_1x1
        model.load_state_dict(weights.state_dict, strict=True)
    if stride_in_1x1:
        set_stride_in_1x1(model)
    model.fc = nn.Linear(FEATURE_DIM, num_classes)
    return model


def is_head(name: str) -> bool:
    """True for the parameters of the new final layer."""
    return name.startswith("fc.")


def make_param_groups(
    model: nn.Module, approach: str, *, backbone_lr: float, head_lr: float
) -> list[dict]:
    """Freeze or unfreeze parameters for `approach` and return the optimiser's groups.

    frozen:     only the head trains, at `head_lr`; `backbone_lr` is ignored.
    finetuning: every layer trains, the backbone at `backbone_lr` and the head at `head_lr`.
    """
    head = [p for n, p in model.named_parameters() if is_head(n)]
    backbone = [p for n, p in model.named_parameters() if not is_head(n)]
    if approach not in ("frozen", "finetuning"):
        raise ValueError(f"unknown approach {approach!r}: use 'frozen' or 'finetuning'")
    for p in head:
        p.requires_grad_(True)
    for p in backbone:
        p.requires_grad_(approach == "finetuning")
    head_group = {"params": head, "lr": head_lr, "name": "head"}
    if approach == "frozen":
        return [head_group]
    return [{"params": backbone, "lr": backbone_lr, "name": "backbone"}, head_group]


def count_trainable(model: nn.Module) -> int:
    """Number of parameters that will receive gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_parameter_table(model: nn.Module) -> pd.DataFrame:
    """Parameters per top-level block (conv1, layer1..4, fc) and how many of them train."""
    rows = []
    for name, block in model.named_children():
        total = sum(p.numel() for p in block.parameters())
        if total:
            trainable = sum(p.numel() for p in block.parameters() if p.requires_grad)
            rows.append((name, total, trainable))
    table = pd.DataFrame(rows, columns=["block", "parameters", "trainable"]).set_index("block")
    table.loc["total"] = table.sum()
    return table


def set_train_mode(model: nn.Module, approach: str) -> None:
    """Train mode for what learns; a frozen backbone stays in eval so BatchNorm stays put."""
    if approach == "frozen":
        model.eval()
        model.fc.train()
    else:
        model.train()


@torch.no_grad()
def backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every backbone tensor (parameters and buffers), for before/after checks."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not is_head(k)}


def check_resnet50_state_dict(state_dict: dict[str, torch.Tensor]) -> None:
    """Raise ValueError unless the keys and shapes are exactly torchvision resnet50's."""
    with torch.device("meta"):  # shapes only, no memory, no init cost
        reference = resnet50().state_dict()
    missing = sorted(reference.keys() - state_dict.keys())
    extra = sorted(state_dict.keys() - reference.keys())
    wrong = [
        k for k in reference.keys() & state_dict.keys() if state_dict[k].shape != reference[k].shape
    ]
    if missing or extra or wrong:
        raise ValueError(
            f"not a torchvision resnet50 state_dict: missing {missing[:3]}, "
            f"unexpected {extra[:3]}, wrong shape {sorted(wrong)[:3]} "
            f"({len(missing)}, {len(extra)}, {len(wrong)} in all)"
        )
