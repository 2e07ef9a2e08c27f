"""TensorFlow's "same" padding, which Keras and TensorFlow.js models were trained with.

For a window of `kernel` pixels at `stride`, "same" pads so that the output has ceil(n / stride)
pixels, putting the odd pixel left over at the bottom and right. PyTorch pads both sides alike,
which for a stride of 2 on an even side shifts every window by one pixel, so the converted
models pad their input with `pad_same` and then run with no padding of their own. A module that
calls it also calls `torch.fx.wrap("pad_same")`, so that a symbolic trace (the audit's and
Grad-CAM's feature extractors) keeps it as one call: the padding depends on the input's size,
which a trace does not know.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """(B, C, H, W) padded with `value` as TensorFlow pads a `kernel` x `kernel` window at
    `stride` ("same")."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad lists the last dimension first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)
