"""The face detectors, one entry each: `load_detector(name)` returns a callable that takes an
upright RGB PIL image and returns the `Face`s in that image's pixels.

An entry says how to build its detector and which model file it runs (model_file.MODELS), whose
sha256 stamps the face cache, so another detector never reuses this one's detections. The
names must match `config.FACE_DETECTORS` (the `--face_detector` choices); a test checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from emotion_tl.data.faces.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace
from emotion_tl.data.faces.face import MIN_SCORE, Detector, Face
from emotion_tl.data.faces.model_file import MODELS


@dataclass(frozen=True)
class DetectorEntry:
    """One face detector: how to build it, and the model file it runs."""

    build: Callable[[], Detector]  # loads the model; called once per process
    model: str  # a key of model_file.MODELS

    @property
    def model_sha256(self) -> str:
        """What identifies this detector's results (the face cache's stamp)."""
        return MODELS[self.model][1]


DETECTORS = {
    "blazeface": DetectorEntry(lambda: BlazeFace(FULL_RANGE), FULL_RANGE.model),
    "blazeface-short": DetectorEntry(lambda: BlazeFace(SHORT_RANGE), SHORT_RANGE.model),
}


@cache
def load_detector(name: str) -> Detector:
    """The named detector, loaded once per process (FaceModelError when it cannot be)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[name].build()


__all__ = ["DETECTORS", "MIN_SCORE", "Detector", "DetectorEntry", "Face", "load_detector"]
