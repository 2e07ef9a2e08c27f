"""The network a run trains: a backbone's body with a new head, and what learns in each approach.

Every function takes the backbone's name (an entry of `backbones.py`, which also says where its
head and body are), so no caller needs to know what a backbone calls its layers. The default is
`Config.backbone`'s, the ImageNet ResNet50 the notebooks train.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd
import torch
from torch import nn

from emotion_tl.model.backbones import DEFAULT_BACKBONE, get_backbone


class PretrainedState(Protocol):
    """What `build_model` needs of pretrained weights (model.weights.PretrainedWeights has it)."""

    state_dict: dict[str, torch.Tensor]  # the architecture's keys, its own head included
    stride_in_1x1: bool  # True: the weights were trained striding in the 1x1 convolutions


def build_model(
    num_classes: int,
    weights: PretrainedState | None = None,
    *,
    stride_in_1x1: bool = False,
    backbone: str = DEFAULT_BACKBONE,
) -> nn.Module:
    """Build `backbone`, load its pretrained weights if given, and give it a new head."""
    entry = get_backbone(backbone)
    model = entry.build()
    if weights is not None:
        stride_in_1x1 = weights.stride_in_1x1
        model.load_state_dict(weights.state_dict, strict=True)
    if stride_in_1x1:
        if entry.set_stride_in_1x1 is None:
            raise ValueError(f"backbone {backbone!r} has no stride-in-1x1 variant")
        entry.set_stride_in_1x1(model)
    setattr(model, entry.head, nn.Linear(entry.feature_dim, num_classes))
    return model


def make_param_groups(
    model: nn.Module,
    approach: str,
    backbone: str = DEFAULT_BACKBONE,
    *,
    backbone_lr: float,
    head_lr: float,
    layer_decay: float = 1.0,
) -> list[dict]:
    """Freeze or unfreeze parameters for `approach` and return the optimiser's groups.

    frozen:     only the head trains, at `head_lr`; `backbone_lr` is ignored.
    finetuning: every layer trains, the backbone at `backbone_lr` and the head at `head_lr`;
                with `layer_decay` under 1, each block of the body (a top-level child: in
                ResNet50 conv1, bn1, layer1 to layer4) is a group of its own, the top one at
                `backbone_lr` and each one below at `layer_decay` times the rate above it.
    """
    entry = get_backbone(backbone)
    head = [p for n, p in model.named_parameters() if entry.is_head(n)]
    body = [p for n, p in model.named_parameters() if not entry.is_head(n)]
    if approach not in ("frozen", "finetuning"):
        raise ValueError(f"unknown approach {approach!r}: use 'frozen' or 'finetuning'")
    if not head:
        raise ValueError(
            f"this model has no head {entry.head!r}: is it a {backbone!r}? "
            "Pass the backbone it was built as."
        )
    for p in head:
        p.requires_grad_(True)
    for p in body:
        p.requires_grad_(approach == "finetuning")
    head_group = {"params": head, "lr": head_lr, "name": "head"}
    if approach == "frozen":
        return [head_group]
    if layer_decay == 1.0:
        return [{"params": body, "lr": backbone_lr, "name": "backbone"}, head_group]
    blocks = [
        (name, list(block.parameters()))
        for name, block in model.named_children()
        if name != entry.head and any(True for _ in block.parameters())
    ]
    groups = [
        {"params": params, "lr": backbone_lr * layer_decay**depth, "name": f"backbone.{name}"}
        for depth, (name, params) in enumerate(reversed(blocks))
    ]
    return [*reversed(groups), head_group]


def count_trainable(model: nn.Module) -> int:
    """Number of parameters that will receive gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_parameter_table(model: nn.Module) -> pd.DataFrame:
    """Parameters per top-level block (for ResNet50: conv1, layer1..4, fc) and how many train."""
    rows = []
    for name, block in model.named_children():
        total = sum(p.numel() for p in block.parameters())
        if total:
            trainable = sum(p.numel() for p in block.parameters() if p.requires_grad)
            rows.append((name, total, trainable))
    table = pd.DataFrame(rows, columns=["block", "parameters", "trainable"]).set_index("block")
    table.loc["total"] = table.sum()
    return table


def set_train_mode(
    model: nn.Module, approach: str, backbone: str = DEFAULT_BACKBONE, batchnorm: str = "train"
) -> None:
    """Train mode for what learns; a frozen backbone stays in eval so BatchNorm stays put.
    Fine-tuning with `batchnorm="frozen"` keeps every BatchNorm layer in eval mode too."""
    if approach == "frozen":
        model.eval()
        get_backbone(backbone).head_of(model).train()
        return
    model.train()
    if batchnorm == "frozen":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


@torch.no_grad()
def backbone_state(model: nn.Module, backbone: str = DEFAULT_BACKBONE) -> dict[str, torch.Tensor]:
    """A copy of every body tensor (parameters and buffers), for before/after checks."""
    entry = get_backbone(backbone)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not entry.is_head(k)}
