"""Checkpoints that carry everything needed to use a model later, and load without pickle.

A checkpoint names its backbone (`"backbone"`, and `"architecture"` with the same value for
readers from before the backbone table); a file without the name is a ResNet50 one, as every
checkpoint written before was.
"""

from __future__ import annotations

import pickle
import platform
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from emotion_tl import __version__
from emotion_tl.data.transforms import resize_size_for
from emotion_tl.model.backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, get_backbone
from emotion_tl.model.network import build_model
from emotion_tl.storage import save_torch_atomic

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def library_versions() -> dict[str, str]:
    """Versions that produced a checkpoint, for anyone trying to reproduce it."""
    return {
        "emotion_tl": __version__,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "python": platform.python_version(),
    }


def make_checkpoint(
    model: nn.Module,
    *,
    class_names: list[str],
    config: dict[str, Any],
    approach: str,
    weights_source: str,
    stride_in_1x1: bool,
    epoch: int,
    metrics: dict[str, float],
    history: list[dict[str, float]],
    device: str,
    precision: str,
    kind: str,
) -> dict[str, Any]:
    """A dict of tensors and plain values only, so `torch.load(weights_only=True)` accepts it.

    The backbone is the one `config` names (its normalisation is the checkpoint's)."""
    image_size = int(config["image_size"])
    backbone = find_backbone(config.get("backbone", DEFAULT_BACKBONE), "this run")
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,  # "best", "final" or "interrupted"
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "backbone": backbone.name,
        "architecture": backbone.name,  # the key readers before the backbone table check
        "stride_in_1x1": stride_in_1x1,
        "class_names": list(class_names),
        "image_size": image_size,
        "resize_size": resize_size_for(image_size),
        "normalization": {"mean": list(backbone.mean), "std": list(backbone.std)},
        "approach": approach,
        "config": dict(config),
        "weights_source": weights_source,
        "epoch": epoch,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "history": [dict(row) for row in history],
        "device": device,
        "precision": precision,
        "versions": library_versions(),
    }


def find_backbone(name: str, where: str) -> Backbone:
    """The registered entry `name` that `where` (a file, a run) names; a CheckpointError else."""
    try:
        return get_backbone(name)
    except ValueError:
        raise CheckpointError(
            f"{where} names backbone {name!r}, which is not registered here; known backbones: "
            f"{', '.join(sorted(BACKBONES))}."
        ) from None


def checkpoint_backbone(checkpoint: dict[str, Any]) -> str:
    """The backbone a checkpoint was trained from; files from before the table: ResNet50's."""
    return str(checkpoint.get("backbone", checkpoint.get("architecture", DEFAULT_BACKBONE)))


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """Write atomically: a crash leaves the previous file intact."""
    save_torch_atomic(checkpoint, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with `weights_only=True`; refuse files that would need to run code to load."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found; train first or check the path.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refusing to load '{path}': it contains objects that would run code when unpickled "
            f"({str(error).splitlines()[0]}). Only load checkpoints written by emotion_tl "
            "or another source you trust."
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(
            f"'{path}' is not a readable checkpoint (truncated or corrupt?): {error}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"'{path}' is not an emotion_tl checkpoint (no state_dict and metadata)."
        )
    backbone = checkpoint_backbone(checkpoint)
    if checkpoint.get("architecture", backbone) != backbone:
        raise CheckpointError(
            f"'{path}' holds architecture {checkpoint['architecture']!r} but backbone "
            f"{backbone!r}; the file is inconsistent."
        )
    find_backbone(backbone, f"'{path}'")
    # Older files read as the ResNet50 ones they are, their settings included (for resume).
    checkpoint["backbone"] = backbone
    if isinstance(checkpoint.get("config"), dict):
        checkpoint["config"].setdefault("backbone", backbone)
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the trained model from a loaded checkpoint alone (no pretrained weights needed)."""
    backbone = find_backbone(checkpoint_backbone(checkpoint), "the checkpoint")
    class_names = checkpoint.get("class_names") or []
    head_weight = checkpoint["state_dict"].get(f"{backbone.head}.weight", torch.empty(0))
    if len(class_names) != head_weight.shape[0]:
        raise CheckpointError(
            f"checkpoint names {len(class_names)} classes {class_names} but its final layer has "
            f"{head_weight.shape[0]} outputs; the file is inconsistent."
        )
    model = build_model(
        len(class_names),
        stride_in_1x1=bool(checkpoint.get("stride_in_1x1")),
        backbone=backbone.name,
    )
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model.eval()
