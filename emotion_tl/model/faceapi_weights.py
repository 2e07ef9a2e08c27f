"""face-api.js's expression model (npm @vladmandic/face-api, MIT), converted once to faceapi_net.py.

The package ships `model/face_expression_model.bin` and its weights manifest: TensorFlow.js
weights, each quantised to 8 bits with its own scale and minimum. `npm_file.PinnedTarball`
fetches the tarball with `npm pack` and checks its sha256; the two members are read from the tar
stream, dequantised as TensorFlow.js does (`q * scale + min`) and rewritten as a PyTorch
state_dict, cached with a checksum sidecar beside the other pretrained weights.
tests/test_faceapi.py checks the conversion against face-api's own network run by TensorFlow.js.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion_tl.model.converted import as_state_dict, fill, load_or_convert, split_state
from emotion_tl.model.faceapi_net import (
    BLOCK_CHANNELS,
    EXPRESSIONS,
    FEATURE_DIM,
    FaceApiExpressions,
    FaceApiNet,
)
from emotion_tl.model.weights import PretrainedWeights, WeightsUnavailableError
from emotion_tl.npm_file import NpmFileError, PinnedTarball, read_members
from emotion_tl.storage import cache_dir

MODEL = "face_expression_model"  # package/model/<MODEL>.bin and its weights manifest
MAX_MEMBER_BYTES = 16 * 2**20  # the largest model read, face recognition's, is 6.2 MB
CONVERTED_NAME = "faceapi_expression-1.7.15.pt"
CONVERTED_FORMAT = "emotion_tl/faceapi-expression/1"


class FaceApiModelError(NpmFileError, WeightsUnavailableError):
    """A face-api.js model could not be fetched, verified or converted."""


TARBALL = PinnedTarball(
    spec="@vladmandic/face-api@1.7.15",
    tarball_name="vladmandic-face-api-1.7.15.tgz",
    sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    env="EMOTION_TL_FACEAPI_TARBALL",
    error=FaceApiModelError,
)
SOURCE = f"face-api.js expression model (npm {TARBALL.spec}, MIT), converted"


def how_to_supply() -> str:
    return (
        f"On a machine with npm and the npm registry run `npm pack {TARBALL.spec}`, copy "
        f"{TARBALL.tarball_name} here and set {TARBALL.env}=/path/to/{TARBALL.tarball_name}; or "
        "choose --backbone resnet50, which needs no face model."
    )


def read_tensors(tarball: Path, model: str = MODEL) -> dict[str, np.ndarray]:
    """Every weight of the package's `model`, dequantised, by its TensorFlow.js name."""
    manifest = f"package/model/{model}-weights_manifest.json"
    weights_bin = f"package/model/{model}.bin"
    wanted = re.compile(f"{re.escape(manifest)}|{re.escape(weights_bin)}")
    members = read_members(tarball, wanted, MAX_MEMBER_BYTES)
    if set(members) != {manifest, weights_bin}:
        raise FaceApiModelError(f"{tarball} lacks {sorted({manifest, weights_bin} - set(members))}")
    buffer, offset, tensors = members[weights_bin], 0, {}
    for spec in [w for group in json.loads(members[manifest]) for w in group["weights"]]:
        count = int(np.prod(spec["shape"]))
        quantization = spec.get("quantization")
        if quantization is None or quantization["dtype"] != "uint8":
            values = np.frombuffer(buffer, "<f4", count, offset)
            offset += 4 * count
        else:
            raw = np.frombuffer(buffer, np.uint8, count, offset).astype(np.float32)
            values = raw * quantization["scale"] + quantization["min"]
            offset += count
        tensors[spec["name"]] = values.reshape(spec["shape"])
    if offset != len(buffer):
        raise FaceApiModelError(f"{weights_bin}: {len(buffer) - offset} bytes left unread")
    return tensors


def convert_tensors(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """TensorFlow.js names and layouts -> faceapi_net.py's state_dict, the original head under
    `expression.` (kernels (H, W, in, out) -> (out, in, H, W))."""
    state = {}
    for block in range(len(BLOCK_CHANNELS)):
        for conv in range(4):
            name, prefix = f"dense{block}/conv{conv}", f"dense{block}.conv{conv}"
            if block == 0 and conv == 0:
                state[f"{prefix}.conv.weight"] = tensors.pop(f"{name}/filters").transpose(
                    3, 2, 0, 1
                )
                state[f"{prefix}.conv.bias"] = tensors.pop(f"{name}/bias")
                continue
            depthwise = tensors.pop(f"{name}/depthwise_filter")
            state[f"{prefix}.depthwise.weight"] = depthwise.transpose(2, 3, 0, 1)
            state[f"{prefix}.pointwise.weight"] = tensors.pop(f"{name}/pointwise_filter").transpose(
                3, 2, 0, 1
            )
            state[f"{prefix}.pointwise.bias"] = tensors.pop(f"{name}/bias")
    state["expression.weight"] = tensors.pop("fc/weights").T
    state["expression.bias"] = tensors.pop("fc/bias")
    if tensors:
        raise FaceApiModelError(f"face-api weights left unconverted: {sorted(tensors)}")
    return as_state_dict(state)


def convert_model(
    given: Path | None,
    model: str,
    convert: Callable[[dict[str, np.ndarray]], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """`convert` the package's `model` from the tarball `given` (checked against the pin), else
    from the one fetched (or cached); a failure says how to supply the tarball."""
    try:
        if given is not None:
            TARBALL.verify(given)
        return convert(read_tensors(given or TARBALL.fetch(cache_dir()), model))
    except NpmFileError as error:
        raise FaceApiModelError(f"{error}\n{how_to_supply()}") from error


def convert_from_tarball(given: Path | None = None) -> dict[str, torch.Tensor]:
    """The expression model converted from the tarball `given`, else the fetched one; the
    shapes checked."""
    state = convert_model(given, MODEL, convert_tensors)
    fill(state, FaceApiNet(), nn.Linear(FEATURE_DIM, len(EXPRESSIONS)))  # the shapes must fit
    return state


def load_converted() -> dict[str, torch.Tensor]:
    """The converted state_dict (body and `expression.` head), converting it on first use."""
    path = cache_dir() / CONVERTED_NAME
    return load_or_convert(path, CONVERTED_FORMAT, SOURCE, convert_from_tarball)


def load_faceapi_weights(
    weights_path: str | None = None, *, allow_download: bool = True
) -> PretrainedWeights:
    """The backbone table's loader: the pretrained body (the head is the run's own);
    `weights_path` may name the package tarball, fetched by hand."""
    state = convert_from_tarball(Path(weights_path)) if weights_path else load_converted()
    body, _ = split_state(state)
    return PretrainedWeights(body, SOURCE, False, EXPRESSIONS)


def load_expression_model() -> FaceApiExpressions:
    """The untrained face-api expression model, its own head included, in eval mode."""
    network, expression = FaceApiNet(), nn.Linear(FEATURE_DIM, len(EXPRESSIONS))
    fill(load_converted(), network, expression)
    return FaceApiExpressions(network, expression).eval()
