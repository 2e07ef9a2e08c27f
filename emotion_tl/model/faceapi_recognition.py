"""face-api.js's face-recognition model (npm @vladmandic/face-api, MIT), converted once.

The same tarball as the expression model (faceapi_weights.py) ships
`model/face_recognition_model.bin` and its manifest, read and dequantised the same way, and
rewritten for faceapi_resnet.py. face-api adds each convolution's bias and then scales and
shifts every channel (its `scale` layers); the conversion folds the scale and shift into the
convolution: (x * W + b) * s + c = x * (W s) + (b s + c), the same numbers. The descriptor layer
is kept under `expression.` (the source's own head) for the conversion test, and no run uses it:
its 128 numbers tell people apart and name no expression.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from emotion_tl.model.converted import WithOwnHead, as_state_dict
from emotion_tl.model.faceapi_resnet import DESCRIPTOR_DIM, FEATURE_DIM, STAGES, FaceApiResNet
from emotion_tl.model.faceapi_weights import (
    FaceApiModel,
    FaceApiModelError,
    load_body,
    load_own_model,
)
from emotion_tl.model.weights import PretrainedWeights


def _layer_names() -> list[tuple[str, str]]:
    """(TensorFlow.js prefix, state_dict prefix) of every convolution, in the network's order."""
    names = [("conv32_down", "conv_down")]
    for stage, _, blocks in STAGES:
        for block in range(blocks):
            # conv32_1..3 are the first stage's blocks; conv64_down, conv64_1.. the next one's
            downs = block == 0 and stage != "conv32"
            tfjs = f"{stage}_down" if downs else f"{stage}_{block + (stage == 'conv32')}"
            names += [(f"{tfjs}/{conv}", f"{stage}.{block}.{conv}") for conv in ("conv1", "conv2")]
    names += [(f"conv256_down_out/{conv}", f"down_out.{conv}") for conv in ("conv1", "conv2")]
    return names


def convert_tensors(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """TensorFlow.js names and layouts -> faceapi_resnet.py's state_dict, each scale folded into
    its convolution, the descriptor layer under `expression.`."""
    state = {}
    for tfjs, name in _layer_names():
        scale, shift = tensors.pop(f"{tfjs}/scale/weights"), tensors.pop(f"{tfjs}/scale/biases")
        kernel = tensors.pop(f"{tfjs}/conv/filters").transpose(3, 2, 0, 1)  # (H, W, in, out)
        state[f"{name}.weight"] = kernel * scale[:, None, None, None]
        state[f"{name}.bias"] = tensors.pop(f"{tfjs}/conv/bias") * scale + shift
    state["expression.weight"] = tensors.pop("fc").T
    if tensors:
        raise FaceApiModelError(f"face-api weights left unconverted: {sorted(tensors)}")
    return as_state_dict(state)


RECOGNITION = FaceApiModel(
    "face_recognition_model",
    "face-recognition model",
    "faceapi_recognition-1.7.15.pt",
    "emotion_tl/faceapi-recognition/1",
    FaceApiResNet,
    lambda: nn.Linear(FEATURE_DIM, DESCRIPTOR_DIM, bias=False),  # the 128-number descriptor
    convert_tensors,
)


def load_recognition_weights(
    weights_path: str | None = None, *, allow_download: bool = True
) -> PretrainedWeights:
    """The backbone table's loader of the recognition network's body."""
    return load_body(RECOGNITION, weights_path, ())


def load_descriptor_model() -> WithOwnHead:
    """The untrained network with its own descriptor layer, as face-api runs it, in eval mode."""
    return load_own_model(RECOGNITION)
