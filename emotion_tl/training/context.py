"""One run as the training code sees it: the Config, the values derived from it once (where the
outputs go, how faces are cropped, the device and precision, the backbone's entry), the prepared
data and the weights.

`make_run_context(cfg)` builds it; `training.run.prepare_run` calls it between checking the
output folder and writing the split; the audit calls it on its own. Whoever trains, resumes or
reads back an approach takes these values from the run instead of deriving them from the Config
again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from emotion_tl.config import APPROACHES, Config
from emotion_tl.data.faces.crop import FaceCropSettings
from emotion_tl.data.prepare import PreparedData, prepare_data, take_main_split
from emotion_tl.device import resolve_device, resolve_precision
from emotion_tl.distributed import main_first
from emotion_tl.model.backbones import (
    Backbone,
    get_backbone,
    load_backbone_weights,
    resolve_config,
)
from emotion_tl.model.weights import Pretrained
from emotion_tl.training.outputs import make_output_paths


@dataclass(frozen=True)
class RunContext:
    """A run's settings, what is derived from them, its data and its backbone weights."""

    cfg: Config
    out_dir: Path  # where the approaches' files go (checkpoint_dir, or a folder of a repeat)
    face_crop: FaceCropSettings
    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16", as resolved for `device`
    data: PreparedData
    pretrained: Pretrained
    backbone: Backbone  # the entry `cfg.backbone` names (model/backbones.py)
    # approach -> kind -> path under out_dir (`training.outputs.OUTPUT_KINDS`); not to be changed
    outputs: dict[str, dict[str, Path]] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Made from out_dir, so `dataclasses.replace(run, out_dir=...)` moves them along.
        paths = {approach: make_output_paths(self.out_dir, approach) for approach in APPROACHES}
        object.__setattr__(self, "outputs", paths)


def make_run_context(cfg: Config, data: PreparedData | None = None) -> RunContext:
    """The run's derived values, its backbone weights (downloaded once) and its prepared data
    (`data`, or prepared here); it writes nothing but the caches in checkpoint_dir.

    With several processes (torchrun), rank 0 goes first: it downloads the weights and writes
    the caches, which the others then read; all of them take rank 0's split.
    """
    backbone = get_backbone(cfg.backbone)  # an unknown name fails before any work
    cfg = resolve_config(cfg)
    with main_first():
        pretrained = load_backbone_weights(cfg.pretrained, cfg.weights, backbone.name)
        face_crop = FaceCropSettings.from_config(cfg)
        data = prepare_data(cfg, face_crop) if data is None else data
    data = take_main_split(data)
    device = resolve_device(cfg.device)
    return RunContext(
        cfg=cfg,
        out_dir=Path(cfg.checkpoint_dir),
        face_crop=face_crop,
        device=device,
        precision=resolve_precision(cfg.precision, device),
        data=data,
        pretrained=pretrained,
        backbone=backbone,
    )
