"""What is particular to the ImageNet ResNet50: its architecture, its body, its stride variant and
the check that a state_dict is one of it. `backbones.py` makes its entry from these."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet, resnet50

FEATURE_DIM = 2048  # ResNet50's pooled feature size, the head's input
HEAD = "fc"  # the final layer a new head replaces


def build_resnet50() -> ResNet:
    """torchvision's ResNet50 with random weights and its own 1000-class `fc`."""
    return resnet50(weights=None)


def make_resnet_body(model: ResNet) -> nn.Module:
    """Every layer before `fc`, in order, then flattened: (B, 3, H, W) -> (B, 2048)."""
    return nn.Sequential(*(m for name, m in model.named_children() if name != HEAD), nn.Flatten(1))


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
