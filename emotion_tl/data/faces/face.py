"""What every face detector returns: `Face`s in the pixels of the image it was given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

MIN_SCORE = 0.5  # detections below this confidence are dropped


@dataclass(frozen=True)
class Face:
    """One detection, in pixels of the image it was found in."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    eyes: tuple[float, float, float, float] | None = None  # the eye on the image's left, then right

    @property
    def side(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def to_list(self) -> list[float]:
        return [*self.box, self.score, *(self.eyes or ())]

    @classmethod
    def from_list(cls, values: list[float]) -> Face:
        eyes = tuple(values[5:9]) if len(values) >= 9 else None
        return cls(tuple(values[:4]), values[4], eyes)  # type: ignore[arg-type]


Detector = Callable[[Image.Image], list[Face]]  # an upright RGB image -> the faces in it
