"""Decide and apply each image's face crop: the largest face, a square with a margin, padded.

`FaceFinder.frame(image, key)` is the one entry point training, evaluation and prediction
share; it returns the picture the model should see and a `Framing` that says why.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from emotion_tl.config import Config
from emotion_tl.data.faces.cache import FaceCache
from emotion_tl.data.faces.detect import Detector, Face, load_detector
from emotion_tl.data.faces.model_file import FaceModelError
from emotion_tl.data.files import load_image

logger = logging.getLogger("emotion_tl")

# auto crops only where the face's box covers under this share of the image (the bundled tight
# crops: 0.25 and more; a person in a room or a street: far less). docs/faces.md has the numbers.
AUTO_MAX_FACE_AREA = 0.2
CROPPED, NO_FACE, FILLS_FRAME, WHOLE = "cropped", "no face", "fills the frame", "off"
FACES_FILE = "faces.csv"
FACES_COLUMNS = ["file", "faces", "outcome", "face_x0", "face_y0", "face_x1", "face_y1"]
FACES_COLUMNS += ["crop_x", "crop_y", "crop_side", "crop_angle"]


@dataclass(frozen=True)
class FaceCropSettings:
    """The face-crop part of a Config (what a checkpoint needs to crop as in training)."""

    mode: str = Config.face_crop
    margin: float = Config.face_margin
    detector: str = Config.face_detector
    level: bool = Config.face_level

    @classmethod
    def from_config(cls, cfg: Config) -> FaceCropSettings:
        """A run's face-crop settings."""
        return cls(cfg.face_crop, cfg.face_margin, cfg.face_detector, cfg.face_level)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> FaceCropSettings:
        """The settings a checkpoint's saved config (or an exported model's metadata) records."""
        defaults = cls()
        return cls(
            saved.get("face_crop", "off"),  # checkpoints from before face crops saw whole images
            saved.get("face_margin", defaults.margin),
            saved.get("face_detector", defaults.detector),
            saved.get("face_level", defaults.level),
        )

    def describe(self) -> str:
        if self.mode == "off":
            return "face crop: off (whole images)"
        level = ", eyes levelled" if self.level else ""
        return f"face crop: {self.mode} ({self.detector}, margin {self.margin:g}{level})"


@dataclass(frozen=True)
class Framing:
    """What was done to one image: faces found, outcome, the chosen face and the crop."""

    faces: int = 0
    outcome: str = WHOLE
    face: tuple[float, float, float, float] | None = None
    crop: tuple[float, float, float, float] | None = None  # centre x, centre y, side, degrees

    def row(self, file: str) -> dict:
        face, crop = self.face or (None,) * 4, self.crop or (None,) * 4
        return dict(zip(FACES_COLUMNS, (file, self.faces, self.outcome, *face, *crop), strict=True))


def choose_face(faces: list[Face]) -> Face:
    """The largest face: in a photo of one person, theirs; in a group, the one in front."""
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def plan_framing(faces: list[Face], size: tuple[int, int], settings: FaceCropSettings) -> Framing:
    """The framing for an image of `size` (width, height) in which `faces` were found."""
    if settings.mode == "off":
        return Framing()
    if not faces:
        return Framing(0, NO_FACE)
    face = choose_face(faces)
    x0, y0, x1, y1 = face.box
    if settings.mode == "auto" and (x1 - x0) * (y1 - y0) >= AUTO_MAX_FACE_AREA * size[0] * size[1]:
        return Framing(len(faces), FILLS_FRAME, face.box)
    side = face.side * (1 + 2 * settings.margin)
    angle = 0.0
    if settings.level and face.eyes is not None:
        left_x, left_y, right_x, right_y = face.eyes
        angle = math.degrees(math.atan2(right_y - left_y, right_x - left_x))
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    return Framing(len(faces), CROPPED, face.box, (*centre, side, round(angle, 2)))


def apply_framing(image: Image.Image, framing: Framing) -> Image.Image:
    """The square crop (rotated to level the eyes if planned); outside the photo is black."""
    if framing.crop is None:
        return image
    x, y, side, angle = framing.crop
    if angle:
        # PIL turns counter-clockwise; a positive angle means the eye line falls to the right.
        image = image.rotate(angle, Image.Resampling.BILINEAR, center=(x, y))
    pixels = max(1, round(side))
    left, top = round(x - side / 2), round(y - side / 2)
    return image.crop((left, top, left + pixels, top + pixels))


@dataclass
class FaceFinder:
    """Detect (or recall) faces, plan and apply the crop, and remember each image's framing."""

    settings: FaceCropSettings
    cache: FaceCache | None = None
    framings: dict[str, Framing] = field(default_factory=dict)
    detector: Detector | None = None
    unavailable: str | None = None

    def find(self, image: Image.Image, key: str | None) -> list[Face] | None:
        """Faces in `image`; None when no detector can run (auto mode carries on uncropped)."""
        cached = self.cache.lookup(key) if self.cache is not None and key else None
        if cached is not None:
            return cached
        if self.detector is None and self.unavailable is None:
            try:
                self.detector = load_detector(self.settings.detector)
            except FaceModelError as error:
                if self.settings.mode != "auto":
                    raise
                self.unavailable = str(error)
                logger.warning("No face detector, so no face crops (auto): %s", error)
        if self.detector is None:
            return None
        faces = self.detector(image)
        if self.cache is not None and key:
            self.cache.record(key, faces)
        return faces

    def frame(self, image: Image.Image, key: str | None, name: str) -> Image.Image | None:
        """The picture the model sees; None in require mode when no face is found."""
        faces = [] if self.settings.mode == "off" else self.find(image, key)
        framing = Framing() if faces is None else plan_framing(faces, image.size, self.settings)
        self.framings[name] = framing
        if framing.outcome == NO_FACE and self.settings.mode == "require":
            return None
        return apply_framing(image, framing)

    def save(self) -> None:
        if self.cache is not None:
            self.cache.save()


def load_seen_image(path: Path, settings: FaceCropSettings | None = None) -> Image.Image:
    """The picture a model trained with `settings` sees of a file (before resizing): upright,
    cropped to the face as in training. For figures; detection is deterministic."""
    image = load_image(path)
    if settings is None or settings.mode == "off":
        return image
    return FaceFinder(settings).frame(image, None, str(path)) or image


def make_faces_table(files: list[str], framings: list[Framing]) -> pd.DataFrame:
    """One row per image: faces found, outcome, the chosen face's box and the crop (faces.csv)."""
    rows = [framing.row(file) for file, framing in zip(files, framings, strict=True)]
    return pd.DataFrame(rows, columns=FACES_COLUMNS)
