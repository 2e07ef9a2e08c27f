"""Use trained checkpoints on new images: one model or an ensemble, optionally with flip TTA."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchvision.transforms import v2

from emotion_tl.config import Config
from emotion_tl.data.faces.cache import FaceCache
from emotion_tl.data.faces.crop import FaceCropSettings, FaceFinder, Framing
from emotion_tl.data.files import IMAGE_EXTENSIONS, DataError, Skipped, list_image_files
from emotion_tl.data.scan import decode_images
from emotion_tl.data.transforms import build_transforms
from emotion_tl.device import resolve_device, resolve_precision
from emotion_tl.evaluation.inference import predict_probabilities
from emotion_tl.evaluation.predictions import make_predictions_table
from emotion_tl.model.backbones import DEFAULT_BACKBONE, get_backbone
from emotion_tl.model.checkpoint import (
    CheckpointError,
    checkpoint_backbone,
    load_checkpoint,
    model_from_checkpoint,
)

logger = logging.getLogger("emotion_tl")


@dataclass
class Predictor:
    """A trained model with the preprocessing its checkpoint records."""

    model: nn.Module
    class_names: list[str]
    image_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str  # for messages and figure titles, e.g. "finetuning_best.pt"
    face_crop: FaceCropSettings = FaceCropSettings(mode="off")
    channels: str = "rgb"  # what the model reads: colour, or the pictures' grey level
    backbone: str = DEFAULT_BACKBONE  # the entry it was trained from (Grad-CAM's layer)

    def face_finder(self) -> FaceFinder | None:
        """A finder that crops new images as training did (None when training saw whole images)."""
        if self.face_crop.mode == "off":
            return None
        return FaceFinder(self.face_crop, FaceCache(None, self.face_crop.detector))

    def transform(self) -> v2.Compose:
        """uint8 (3, H, W) -> the normalised centre crop the model was evaluated on."""
        return build_transforms(
            self.image_size,
            train=False,
            resize_size=self.resize_size,
            mean=self.mean,
            std=self.std,
            channels=self.channels,
        )


def predictor_from_checkpoint(checkpoint: dict, name: str = "model") -> Predictor:
    """A Predictor from a loaded checkpoint; a clear CheckpointError if its metadata is unusable."""
    class_names = checkpoint.get("class_names")
    if not (
        isinstance(class_names, list)
        and len(class_names) >= 2
        and all(isinstance(c, str) and c for c in class_names)
    ):
        raise CheckpointError(
            f"'{name}' does not name its classes (class_names={class_names!r}); "
            "only checkpoints written by emotion_tl can be used for prediction."
        )
    missing = [k for k in ("image_size", "resize_size", "normalization") if k not in checkpoint]
    if missing:
        raise CheckpointError(f"'{name}' lacks {missing}; re-save it with emotion_tl.")
    normalization, backbone = checkpoint["normalization"], checkpoint_backbone(checkpoint)
    return Predictor(
        model=model_from_checkpoint(checkpoint),
        class_names=list(class_names),
        image_size=int(checkpoint["image_size"]),
        resize_size=int(checkpoint["resize_size"]),
        mean=tuple(float(v) for v in normalization["mean"]),
        std=tuple(float(v) for v in normalization["std"]),
        name=name,
        face_crop=FaceCropSettings.from_dict(checkpoint.get("config") or {}),
        channels=get_backbone(backbone).channels,
        backbone=backbone,
    )


def load_predictor(path: str | Path) -> Predictor:
    """Load a checkpoint file (weights_only; no pretrained weights needed), or a model exported
    to ONNX by `python -m emotion_tl export` (run with onnxruntime), into a Predictor."""
    if Path(path).suffix.lower() == ".onnx":
        return predictor_from_onnx(path)
    return predictor_from_checkpoint(load_checkpoint(path), name=Path(path).name)


def predictor_from_onnx(path: str | Path) -> Predictor:
    """A Predictor that runs an exported ONNX model, with the preprocessing its metadata holds."""
    from emotion_tl.model.export import OnnxModel

    model = OnnxModel(path)
    metadata, normalization = model.metadata, model.metadata["normalization"]
    return Predictor(
        model=model,
        class_names=list(metadata["class_names"]),
        image_size=metadata["image_size"],
        resize_size=metadata["resize_size"],
        mean=tuple(float(v) for v in normalization["mean"]),
        std=tuple(float(v) for v in normalization["std"]),
        name=Path(path).name,
        face_crop=FaceCropSettings.from_dict(metadata["face_crop"]),
        channels=metadata["channels"],
        backbone=metadata["backbone"],
    )


def check_same_classes(predictors: Sequence[Predictor]) -> list[str]:
    """The shared class names; an ensemble's models must list the same classes in the same order."""
    if not predictors:
        raise ValueError("give at least one checkpoint.")
    first = predictors[0]
    for other in predictors[1:]:
        if other.class_names != first.class_names:
            raise CheckpointError(
                f"cannot ensemble '{first.name}' (classes {first.class_names}) with "
                f"'{other.name}' (classes {other.class_names}): the models must be trained on "
                "the same categories in the same order."
            )
    return list(first.class_names)


def predict_tensors(
    predictor: Predictor,
    images: Sequence[torch.Tensor],
    *,
    tta: bool = False,
    device: torch.device,
    precision: str,
    batch_size: int = Config.batch_size,
) -> np.ndarray:
    """Softmax probabilities (N, C) for uint8 images (3, H, W); `tta` averages in the mirror."""
    model = predictor.model.to(device, memory_format=torch.channels_last)
    transform = predictor.transform()
    batches = (
        torch.stack([transform(image) for image in images[start : start + batch_size]])
        for start in range(0, len(images), batch_size)
    )
    probabilities = predict_probabilities(model, batches, device, precision, tta=tta)
    return probabilities.reshape(len(images), len(predictor.class_names))


def predict_files(
    predictors: Sequence[Predictor],
    paths: Sequence[Path],
    *,
    tta: bool = False,
    device: torch.device,
    precision: str,
    batch_size: int = Config.batch_size,
) -> tuple[list[Path], np.ndarray, Skipped, dict[str, Framing]]:
    """Average the predictors' probabilities on image files; unreadable files are skipped.
    Each model sees the files cropped as its own training images were; the framings returned
    (by path string) are the first model's."""
    check_same_classes(predictors)
    skipped = Skipped()
    kept: list[Path] = []
    total = None
    finders = [p.face_finder() for p in predictors]
    # Decode a batch at a time so a big folder never sits in memory at full size.
    for start in range(0, len(paths), batch_size):
        chunk = list(paths[start : start + batch_size])
        chunk_kept, chunk_total = None, None
        for predictor, finder in zip(predictors, finders, strict=True):
            chunk_kept, images = decode_images(
                chunk, predictor.resize_size, skipped if chunk_kept is None else Skipped(), finder
            )
            chunk = chunk_kept  # later models only see the files that decoded
            probabilities = predict_tensors(
                predictor,
                images,
                tta=tta,
                device=device,
                precision=precision,
                batch_size=batch_size,
            )
            chunk_total = probabilities if chunk_total is None else chunk_total + probabilities
        kept += chunk_kept
        part = chunk_total / len(predictors)
        total = part if total is None else np.concatenate([total, part])
    if total is None:
        total = np.zeros((0, len(predictors[0].class_names)), dtype=np.float32)
    return kept, total, skipped, finders[0].framings if finders[0] is not None else {}


def collect_image_paths(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files from a mix of files and folders (folders searched recursively)."""
    paths: list[Path] = []
    ignored = Skipped()
    for item in map(Path, inputs):
        if item.is_dir():
            paths += list_image_files(item, ignored)
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_EXTENSIONS:
                raise DataError(f"'{item}' is not an image file (extensions: jpg, png, ...).")
            paths.append(item)
        else:
            raise DataError(f"'{item}' does not exist; give image files or folders of images.")
    if not paths:
        raise DataError(f"no image files found in {[str(i) for i in inputs]}.")
    return paths


def predict_paths(
    checkpoints: Sequence[str | Path | Predictor],
    inputs: Sequence[str | Path],
    *,
    tta: bool = False,
    device: str = Config.device,
    precision: str = Config.precision,
    batch_size: int = Config.batch_size,
) -> pd.DataFrame:
    """What `python -m emotion_tl predict` prints: file, predicted, prob_<class> per image, and
    where the model crops to faces, the faces found and what was done (`face`).

    `device` and `precision` take the values of the `--device` and `--precision` options.
    """
    predictors = [c if isinstance(c, Predictor) else load_predictor(c) for c in checkpoints]
    class_names = check_same_classes(predictors)
    target = resolve_device(device)
    kept, probabilities, skipped, framings = predict_files(
        predictors,
        collect_image_paths(inputs),
        tta=tta,
        device=target,
        precision=resolve_precision(precision, target),
        batch_size=batch_size,
    )
    if skipped.total():
        logger.warning("Skipped %d file(s):\n%s", skipped.total(), skipped.summary())
    table = make_predictions_table([str(p) for p in kept], probabilities, class_names)
    if framings:
        table["faces"] = [framings[str(p)].faces for p in kept]
        table["face"] = [framings[str(p)].outcome for p in kept]
    return table
