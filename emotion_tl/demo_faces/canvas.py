"""A large drawing surface in face units, so feature code never thinks in pixels.

Face units: the origin is the middle of the face, x to the right, y down, and half the face
width is 1. Everything is drawn several times larger than the final image and scaled down
later, which is what makes the edges smooth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]
Points = np.ndarray  # (N, 2) in face units


class Canvas:
    """An RGB picture plus an alpha mask of what belongs to the person, drawn in face units."""

    def __init__(self, size: int, center: tuple[float, float], unit: float, yaw: float = 0.0):
        self.image = Image.new("RGB", (size, size), (0, 0, 0))
        self.mask = Image.new("L", (size, size), 0)
        self.center = center
        self.unit = unit
        self.yaw = yaw
        # Mode "RGBA" on an RGB image blends translucent ink instead of replacing pixels.
        self.draw = ImageDraw.Draw(self.image, "RGBA")
        self.mask_draw = ImageDraw.Draw(self.mask)

    def to_pixels(self, points: Points, depth: float = 0.0) -> list[tuple[float, float]]:
        """Project face units to pixels, turning the head by `yaw` as if it were a sphere.

        Points near the middle of the face move most when the head turns, points at its
        edge hardly at all; `depth` (e.g. the nose tip) adds extra sideways travel.
        """
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        x, y = points[:, 0], points[:, 1]
        shift = self.yaw * (0.14 * np.sqrt(np.clip(1.0 - (x / 1.05) ** 2, 0.0, 1.0)) + depth)
        px = self.center[0] + (x + shift) * self.unit
        py = self.center[1] + y * self.unit
        return list(zip(px.tolist(), py.tolist(), strict=True))

    def fill_polygon(
        self,
        points: Points,
        color: Color,
        alpha: int = 255,
        *,
        silhouette: bool = False,
        depth: float = 0.0,
    ) -> None:
        """Fill a polygon; with `silhouette` it also becomes part of the person's outline."""
        pixels = self.to_pixels(points, depth)
        self.draw.polygon(pixels, fill=(*color, alpha))
        if silhouette:
            self.mask_draw.polygon(pixels, fill=255)

    def draw_line(
        self,
        points: Points,
        color: Color,
        width: float,
        alpha: int = 255,
        *,
        depth: float = 0.0,
    ) -> None:
        """A polyline `width` face units thick."""
        if alpha <= 0:
            return
        pixels = self.to_pixels(points, depth)
        self.draw.line(pixels, fill=(*color, alpha), width=max(1, round(width * self.unit)))

    def fill_ellipse(
        self,
        center: Sequence[float],
        radii: Sequence[float],
        color: Color,
        alpha: int = 255,
        *,
        silhouette: bool = False,
        depth: float = 0.0,
    ) -> None:
        """Fill an axis-aligned ellipse given in face units."""
        self.fill_polygon(
            make_ellipse(center, radii), color, alpha, silhouette=silhouette, depth=depth
        )


def make_ellipse(center: Sequence[float], radii: Sequence[float], count: int = 48) -> Points:
    """Points around an ellipse."""
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack(
        [center[0] + radii[0] * np.cos(angles), center[1] + radii[1] * np.sin(angles)], axis=1
    )


def make_arc(
    start: Sequence[float], end: Sequence[float], bulge: float, count: int = 24, power: float = 1.0
) -> Points:
    """Points from `start` to `end`, bowed sideways by `bulge` (positive: upwards on screen).

    `power` < 1 gives a rounder, box-like bow (0.5 is half an ellipse), 1 a parabola.
    """
    t = np.linspace(0.0, 1.0, count)
    start_arr, end_arr = np.asarray(start, float), np.asarray(end, float)
    base = start_arr[None, :] + (end_arr - start_arr)[None, :] * t[:, None]
    profile = np.clip(1.0 - (2.0 * t - 1.0) ** 2, 0.0, 1.0) ** power
    base[:, 1] -= bulge * profile
    return base


def darken(color: Color, amount: float) -> Color:
    """The colour made darker by `amount` (0..1)."""
    return tuple(int(round(c * (1.0 - amount))) for c in color)


def lighten(color: Color, amount: float) -> Color:
    """The colour moved towards white by `amount` (0..1)."""
    return tuple(int(round(c + (255 - c) * amount)) for c in color)
