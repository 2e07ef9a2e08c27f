"""A checkpoint as an ONNX model, for inference without PyTorch (onnxruntime, or any ONNX
runtime on a server, a phone or in a browser).

The model takes `image`: float32 (batch, channels, image_size, image_size), normalised as the
metadata says, with any batch size, and returns `logits` (batch, classes): apply softmax for
probabilities. Everything needed to prepare a picture travels in the model's metadata
(`metadata_props`, strings): `class_names` and `normalization` (JSON), `channels` ("rgb": 3,
"grey": 1, the grey level of the colour picture), `image_size` and `resize_size` (resize the
shorter side to resize_size, then centre-crop image_size), `face_crop` (JSON: crop to the face
first as training did), the backbone and where the weights came from.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from emotion_tl.model.backbones import DEFAULT_BACKBONE, get_backbone
from emotion_tl.model.checkpoint import (
    CheckpointError,
    checkpoint_backbone,
    load_checkpoint,
    model_from_checkpoint,
)
from emotion_tl.storage import write_atomic

OPSET = 17
INPUT, OUTPUT = "image", "logits"


def export_metadata(checkpoint: dict[str, Any], name: str) -> dict[str, str]:
    """The preprocessing and provenance an ONNX file carries, as strings."""
    config = checkpoint.get("config") or {}
    face_crop = {key: config.get(key) for key in ("face_crop", "face_margin", "face_detector")}
    backbone = get_backbone(checkpoint_backbone(checkpoint))
    return {
        "class_names": json.dumps(list(checkpoint["class_names"])),
        "image_size": str(int(checkpoint["image_size"])),
        "resize_size": str(int(checkpoint["resize_size"])),
        "normalization": json.dumps(checkpoint["normalization"]),
        "channels": backbone.channels,
        "backbone": backbone.name,
        "face_crop": json.dumps(face_crop | {"face_level": bool(config.get("face_level", False))}),
        "approach": str(checkpoint.get("approach", "")),
        "source_checkpoint": name,
        "weights_source": str(checkpoint.get("weights_source", "")),
        "producer": "emotion_tl",
    }


def export_onnx(checkpoint_path: str | Path, out_path: str | Path) -> Path:
    """Write the checkpoint at `checkpoint_path` as an ONNX model at `out_path` (atomically)."""
    import onnx

    checkpoint_path, out_path = Path(checkpoint_path), Path(out_path)
    checkpoint = load_checkpoint(checkpoint_path)
    if not checkpoint.get("class_names") or "image_size" not in checkpoint:
        raise CheckpointError(f"'{checkpoint_path}' lacks class names or image size; re-save it.")
    model = model_from_checkpoint(checkpoint).eval().float()
    size = int(checkpoint["image_size"])
    channels = get_backbone(checkpoint_backbone(checkpoint)).input_channels
    example = torch.zeros(2, channels, size, size)
    temporary = out_path.with_name(f".{out_path.name}.export")
    temporary.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # Sizes the trace reads as constants (the face models' padding) are constants
            # here: the exported model takes `size` x `size` images only.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                model,
                (example,),
                str(temporary),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        exported = onnx.load(str(temporary))
    finally:
        temporary.unlink(missing_ok=True)
    onnx.helper.set_model_props(exported, export_metadata(checkpoint, checkpoint_path.name))
    onnx.checker.check_model(exported)
    write_atomic(out_path, exported.SerializeToString())
    return out_path


def parse_metadata(props: dict[str, str], name: str) -> dict[str, Any]:
    """An exported model's metadata (`metadata_props` as a dict), parsed back."""
    if props.get("producer") != "emotion_tl":
        raise CheckpointError(
            f"'{name}' was not exported by emotion_tl (no class names or preprocessing in "
            "its metadata); export it with `python -m emotion_tl export`."
        )
    return {
        "class_names": json.loads(props["class_names"]),
        "image_size": int(props["image_size"]),
        "resize_size": int(props["resize_size"]),
        "normalization": json.loads(props["normalization"]),
        "face_crop": json.loads(props["face_crop"]),
        # Exports from before the backbone table: ResNet50, colour.
        "channels": props.get("channels", "rgb"),
        "backbone": props.get("backbone", DEFAULT_BACKBONE),
    }


def read_metadata(model_path: str | Path) -> dict[str, Any]:
    """The metadata of the exported model at `model_path`, parsed back."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return parse_metadata({p.key: p.value for p in model.metadata_props}, str(model_path))


class OnnxModel(torch.nn.Module):
    """An exported model run by onnxruntime, behind the nn.Module interface prediction uses:
    float images in (any device, any dtype), logits out (float32, on the images' device)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = parse_metadata(dict(props), str(path))  # read with the model, once

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.detach().float().cpu().contiguous().numpy()
        (logits,) = self.session.run([OUTPUT], {INPUT: batch})
        return torch.from_numpy(logits).to(images.device)
