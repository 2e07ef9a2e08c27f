"""face-api.js's face-recognition network, rebuilt in PyTorch so that both approaches can train it.

The network (`FaceRecognitionNet` in @vladmandic/face-api) reads one 150x150 colour face, less a
mean colour and over 255: a 7x7 convolution and a max pool, then residual blocks of two 3x3
convolutions at 32, 64, 128 and 256 channels, each stage but the first opening with a strided
block, make 256 maps of 2x2, which are averaged to 256 numbers. Its own head, a linear layer
without bias, makes the 128-number face descriptor that face-api compares between faces to tell
people apart. In the backbone table the body ends at the 256 numbers and `classifier`, a new
linear layer, is the head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 256
DESCRIPTOR_DIM = 128  # face-api's own head: the face descriptor
HEAD = "classifier"
MEAN_RGB = (122.782, 117.001, 104.298)  # on 0-255, as face-api subtracts it
# the smallest side whose maps stay 3 px or more up to the last strided block (4 px at 150)
MIN_SIDE = 103
# (name, channels, blocks): each stage's first block halves the side, but the first stage's
STAGES = (("conv32", 32, 3), ("conv64", 64, 4), ("conv128", 128, 3), ("conv256", 256, 3))


def join_shortcut(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A strided block's sum as face-api takes it: `x` averaged over 2x2 windows, zeros added
    for its missing channels (after its own) and `out` given zeros at the bottom and right where
    it is a pixel smaller, then their sum."""
    pooled = F.avg_pool2d(x, 2, 2)
    pooled = F.pad(pooled, (0, 0, 0, 0, 0, out.shape[1] - pooled.shape[1]))
    out = F.pad(out, (0, pooled.shape[3] - out.shape[3], 0, pooled.shape[2] - out.shape[2]))
    return pooled + out


torch.fx.wrap("join_shortcut")  # one call in a symbolic trace: its pads depend on the shapes


class Residual(nn.Module):
    """Two 3x3 convolutions and the input added: face-api's `residual`, or with `down`, its
    `residualDown` (the first convolution unpadded at stride 2, the input pooled to match)."""

    def __init__(self, in_channels: int, out_channels: int, down: bool) -> None:
        super().__init__()
        self.down = down
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        return F.relu(join_shortcut(out, x) if self.down else out + x)


class FaceApiResNet(nn.Module):
    """(B, 3, H, W) faces -> (B, 256) pooled features, or the head's scores once one is set.

    Built bare (`classifier` is an identity), as the table's `build` gives it; the pretrained
    weights cover the body, and `network.build_model` puts the new head in `classifier`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv_down = nn.Conv2d(3, 32, 7, 2)  # face-api's conv32_down, unpadded
        in_channels = 32
        for name, channels, blocks in STAGES:
            stage = [Residual(in_channels, channels, name != "conv32")]
            stage += [Residual(channels, channels, False) for _ in range(blocks - 1)]
            self.add_module(name, nn.Sequential(*stage))
            in_channels = channels
        self.down_out = Residual(256, 256, True)  # face-api's conv256_down_out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier: nn.Module = nn.Identity()

    def maps(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the last block's maps (B, 256, 2, 2 at 150 px)."""
        out = F.max_pool2d(F.relu(self.conv_down(images)), 3, 2)
        for name, _, _ in STAGES:
            out = self.get_submodule(name)(out)
        return self.down_out(out)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.maps(images)).flatten(1))


class Stem(nn.Module):
    """The first convolution, its ReLU and the max pool, as one layer of the body."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.conv(images)), 3, 2)


def make_faceapi_resnet_body(model: FaceApiResNet) -> nn.Module:
    """Every layer before the head, sharing them: (B, 3, H, W) -> (B, 256)."""
    stages = [model.get_submodule(name) for name, _, _ in STAGES]
    return nn.Sequential(Stem(model.conv_down), *stages, model.down_out, model.pool, nn.Flatten(1))
