"""face-api.js's models (npm @vladmandic/face-api, MIT), each converted once: a `FaceApiModel`.

The expression and landmark models are faceapi_net.py's network, face-api's dense feature
extractor, each with its own weights and its own head (7 expressions; the 68 landmarks' 136
coordinates); faceapi_recognition.py describes the third. The package ships each as
`model/<name>.bin` and its weights manifest: TensorFlow.js weights, each quantised to 8 bits with
its own scale and minimum. `npm_file.PinnedTarball`
fetches the tarball with `npm pack` and checks its sha256; the two members are read from the tar
stream, dequantised as TensorFlow.js does (`q * scale + min`) and rewritten as a PyTorch
state_dict, cached with a checksum sidecar beside the other pretrained weights.
tests/test_faceapi.py checks the conversions against face-api's own networks run by TensorFlow.js.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion_tl.model.converted import (
    WithOwnHead,
    as_state_dict,
    fill,
    load_or_convert,
    split_state,
)
from emotion_tl.model.faceapi_net import (
    BLOCK_CHANNELS,
    EXPRESSIONS,
    FEATURE_DIM,
    FaceApiNet,
)
from emotion_tl.model.weights import PretrainedWeights, WeightsUnavailableError
from emotion_tl.npm_file import NpmFileError, PinnedTarball, read_members
from emotion_tl.storage import cache_dir

MAX_MEMBER_BYTES = 16 * 2**20  # the largest model read, face recognition's, is 6.2 MB


class FaceApiModelError(NpmFileError, WeightsUnavailableError):
    """A face-api.js model could not be fetched, verified or converted."""


TARBALL = PinnedTarball(
    spec="@vladmandic/face-api@1.7.15",
    tarball_name="vladmandic-face-api-1.7.15.tgz",
    sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    env="EMOTION_TL_FACEAPI_TARBALL",
    error=FaceApiModelError,
)


def source_line(what: str) -> str:
    """Where a face-api model's weights came from, in one line."""
    return f"face-api.js {what} (npm {TARBALL.spec}, MIT), converted"


def how_to_supply() -> str:
    return (
        f"On a machine with npm and the npm registry run `npm pack {TARBALL.spec}`, copy "
        f"{TARBALL.tarball_name} here and set {TARBALL.env}=/path/to/{TARBALL.tarball_name}; or "
        "choose --backbone resnet50, which needs no face model."
    )


def read_tensors(tarball: Path, model: str) -> dict[str, np.ndarray]:
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


@dataclass(frozen=True)
class FaceApiModel:
    """One model of the package, and how it becomes a PyTorch network with its own head."""

    model: str  # package/model/<model>.bin and its weights manifest
    what: str  # in a few words, for the weights' source line
    converted_name: str  # the conversion's file in the cache
    converted_format: str
    network: Callable[[], nn.Module]  # the architecture, bare (its head an identity)
    own_head: Callable[[], nn.Linear]  # the source's own head, kept under `expression.`
    convert: Callable[[dict[str, np.ndarray]], dict[str, torch.Tensor]]  # TF.js -> state_dict


def convert_from_tarball(given: Path | None, spec: FaceApiModel) -> dict[str, torch.Tensor]:
    """`spec`'s model converted from the tarball `given` (checked against the pin), else from
    the one fetched (or cached), the shapes checked; a failure says how to supply the tarball."""
    try:
        if given is not None:
            TARBALL.verify(given)
        state = spec.convert(read_tensors(given or TARBALL.fetch(cache_dir()), spec.model))
    except NpmFileError as error:
        raise FaceApiModelError(f"{error}\n{how_to_supply()}") from error
    fill(state, spec.network(), spec.own_head())  # the shapes must fit
    return state


def load_converted(spec: FaceApiModel) -> dict[str, torch.Tensor]:
    """The converted state_dict (body and `expression.` head), converting it on first use."""
    path = cache_dir() / spec.converted_name
    return load_or_convert(
        path,
        spec.converted_format,
        source_line(spec.what),
        lambda: convert_from_tarball(None, spec),
    )


def load_body(
    spec: FaceApiModel, weights_path: str | None, classes: tuple[str, ...]
) -> PretrainedWeights:
    """The pretrained body of `spec`'s model (the head is the run's own); `weights_path` may
    name the package tarball, fetched by hand."""
    given = Path(weights_path) if weights_path else None
    state = convert_from_tarball(given, spec) if given else load_converted(spec)
    body, _ = split_state(state)
    return PretrainedWeights(body, source_line(spec.what), False, classes)


def load_own_model(spec: FaceApiModel) -> WithOwnHead:
    """The untrained model, its own head included, as face-api runs it, in eval mode."""
    network, own = spec.network(), spec.own_head()
    fill(load_converted(spec), network, own)
    return WithOwnHead(network, own).eval()


EXPRESSION = FaceApiModel(
    "face_expression_model",
    "expression model",
    "faceapi_expression-1.7.15.pt",
    "emotion_tl/faceapi-expression/1",
    FaceApiNet,
    lambda: nn.Linear(FEATURE_DIM, len(EXPRESSIONS)),  # 7 expression logits
    convert_tensors,
)
LANDMARKS = dataclasses.replace(  # the same network with its own weights
    EXPRESSION,
    model="face_landmark_68_model",
    what="68-point landmark model",
    converted_name="faceapi_landmarks-1.7.15.pt",
    converted_format="emotion_tl/faceapi-landmarks/1",
    own_head=lambda: nn.Linear(FEATURE_DIM, 136),  # x and y of 68 points, shares of the side
)


def load_faceapi_weights(
    weights_path: str | None = None, *, allow_download: bool = True
) -> PretrainedWeights:
    """The backbone table's loader of the expression network's body."""
    return load_body(EXPRESSION, weights_path, EXPRESSIONS)


def load_landmark_weights(
    weights_path: str | None = None, *, allow_download: bool = True
) -> PretrainedWeights:
    """The backbone table's loader of the landmark network's body."""
    return load_body(LANDMARKS, weights_path, ())


def load_expression_model() -> WithOwnHead:
    """The untrained face-api expression model, its own head included: 7 expression logits."""
    return load_own_model(EXPRESSION)
