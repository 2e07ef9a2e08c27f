"""face-api.js's expression network, rebuilt in PyTorch so that both approaches can train it.

The network (`FaceFeatureExtractor` and `FaceExpressionNet` in @vladmandic/face-api) reads one
112x112 colour face, less a mean colour and over 255; four densely connected blocks of
depthwise-separable convolutions, each halving the side, make 256 maps of 7x7, which are
averaged to 256 numbers; its own head, one linear layer, names one of seven expressions. In the
backbone table the body ends at the 256 numbers and `classifier`, a new linear layer, is the
head; the original head is kept apart for the zero-shot baseline. TensorFlow.js pads its
strided convolutions as TensorFlow does ("same": the odd pixel at the bottom and right), which
`keras_padding.pad_same` reproduces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emotion_tl.model.keras_padding import pad_same

torch.fx.wrap("pad_same")  # one call in a symbolic trace (keras_padding.py says why)

FEATURE_DIM = 256
HEAD = "classifier"
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
MEAN_RGB = (122.782, 117.001, 104.298)  # on 0-255, as face-api subtracts it
BLOCK_CHANNELS = ((3, 32), (32, 64), (64, 128), (128, 256))


class SeparableConv(nn.Module):
    """A 3x3 depthwise convolution at `stride`, a 1x1 one, and a bias: tf.separableConv2d."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(pad_same(x, 3, self.stride)))


class FirstConv(nn.Module):
    """The first block's plain 3x3 convolution at stride 2, with TensorFlow's padding."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(pad_same(x, 3, 2))


class DenseBlock(nn.Module):
    """Four convolutions, each reading the ReLU of the sum of the ones before: halves H and W."""

    def __init__(self, in_channels: int, out_channels: int, first: bool) -> None:
        super().__init__()
        self.conv0 = (
            FirstConv(in_channels, out_channels)
            if first
            else SeparableConv(in_channels, out_channels, 2)
        )
        self.conv1 = SeparableConv(out_channels, out_channels, 1)
        self.conv2 = SeparableConv(out_channels, out_channels, 1)
        self.conv3 = SeparableConv(out_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class FaceApiNet(nn.Module):
    """(B, 3, H, W) faces -> (B, 256) pooled features, or the head's scores once one is set.

    Built bare (`classifier` is an identity), as the table's `build` gives it; the pretrained
    weights cover the body, and `network.build_model` puts the new head in `classifier`.
    """

    def __init__(self) -> None:
        super().__init__()
        for index, (in_channels, out_channels) in enumerate(BLOCK_CHANNELS):
            self.add_module(f"dense{index}", DenseBlock(in_channels, out_channels, index == 0))
        self.pool = nn.AdaptiveAvgPool2d(1)  # face-api: a 7x7 average of the 7x7 maps at 112 px
        self.classifier: nn.Module = nn.Identity()

    def maps(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the last block's maps (B, 256, H/16, W/16)."""
        return self.dense3(self.dense2(self.dense1(self.dense0(images))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.maps(images)).flatten(1))


def make_faceapi_body(model: FaceApiNet) -> nn.Module:
    """Every layer before the head, sharing them: (B, 3, H, W) -> (B, 256)."""
    blocks = [model.get_submodule(f"dense{i}") for i in range(len(BLOCK_CHANNELS))]
    return nn.Sequential(*blocks, model.pool, nn.Flatten(1))
