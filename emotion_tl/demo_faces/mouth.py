"""The mouth: corners and lip curves computed from the lip and jaw actions, then drawn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from emotion_tl.demo_faces.canvas import Canvas, Points, darken
from emotion_tl.demo_faces.identity import Identity
from emotion_tl.demo_faces.parts import Layout

CURVE_POINTS = 33


@dataclass(frozen=True)
class MouthShape:
    """Lip curves from the left corner to the right one, in face units."""

    upper_outer: Points
    upper_inner: Points
    lower_inner: Points
    lower_outer: Points
    opening: float  # gap between the lips at the middle

    @property
    def corners(self) -> tuple[np.ndarray, np.ndarray]:
        """The left and right mouth corners."""
        return self.upper_inner[0], self.upper_inner[-1]


def make_curve(left: np.ndarray, right: np.ndarray, middle_y: float, power: float) -> Points:
    """A curve from corner to corner passing through `middle_y` halfway across."""
    t = np.linspace(0.0, 1.0, CURVE_POINTS)
    points = left[None, :] + (right - left)[None, :] * t[:, None]
    bump = middle_y - (left[1] + right[1]) / 2
    points[:, 1] += bump * np.clip(1 - (2 * t - 1) ** 2, 0, 1) ** power
    return points


def make_mouth_shape(identity: Identity, actions: dict[str, float], layout: Layout) -> MouthShape:
    """Place corners and lips: pull lifts corners, depress lowers them, skew shifts sideways."""
    pull = actions["lip_corner_pull"]
    depress = actions["lip_corner_depress"]
    press = float(np.clip(actions["lip_press"], 0, 1))
    purse = float(np.clip(actions["lip_purse"], 0, 1))
    jaw = float(np.clip(actions["jaw_drop"], 0, 1.3))
    skew = actions["mouth_skew"]
    middle_x = 0.09 * skew
    half_width = identity.mouth_width * (
        1.0 + 0.22 * max(pull, 0) - 0.4 * purse - 0.1 * press - 0.12 * jaw
    )
    corner_y = layout.mouth_y - 0.1 * pull + 0.09 * depress
    # A skewed mouth pulls one corner up and out; the other follows inwards.
    towards_right, towards_left = max(skew, 0.0), max(-skew, 0.0)
    left = np.array(
        [middle_x - half_width + 0.03 * skew, corner_y + 0.03 * towards_right - 0.09 * towards_left]
    )
    right = np.array(
        [middle_x + half_width + 0.03 * skew, corner_y + 0.03 * towards_left - 0.09 * towards_right]
    )
    opening = 0.26 * jaw + 0.03 * purse * jaw
    round_ = np.clip(jaw + purse, 0, 1)
    power = 1.0 - 0.45 * round_  # open and pursed mouths are rounder
    middle_y = layout.mouth_y + 0.005 * pull
    upper_inner = make_curve(left, right, middle_y - 0.25 * opening, power)
    lower_inner = make_curve(left, right, middle_y + 0.75 * opening, power)
    thickness = identity.lip_thickness * (1.0 - 0.75 * press + 0.35 * purse)
    t = np.linspace(-1.0, 1.0, CURVE_POINTS)
    profile = np.clip(1 - t**2, 0, 1) ** 0.6
    bow = 1.0 - 0.3 * np.exp(-((t / 0.13) ** 2))  # the dip of the cupid's bow
    upper_outer = upper_inner.copy()
    upper_outer[:, 1] -= thickness * profile * bow
    lower_outer = lower_inner.copy()
    lower_outer[:, 1] += thickness * 1.3 * np.clip(1 - t**2, 0, 1) ** 0.7
    return MouthShape(upper_outer, upper_inner, lower_inner, lower_outer, opening)


def draw_mouth(canvas: Canvas, identity: Identity, shape: MouthShape) -> None:
    """Lips, and when open the dark inside with a row of upper teeth."""
    canvas.fill_polygon(
        np.concatenate([shape.upper_outer, shape.lower_outer[::-1]]), identity.lip_color
    )
    line_color = darken(identity.lip_color, 0.55)
    if shape.opening > 0.012:
        inside = np.concatenate([shape.upper_inner, shape.lower_inner[::-1]])
        canvas.fill_polygon(inside, (55, 22, 25))
        # Teeth are drawn on a copy and shown only through the opening.
        teeth_height = min(0.35 * shape.opening, 0.05)
        teeth = np.concatenate([shape.upper_inner, (shape.upper_inner + [0, teeth_height])[::-1]])
        mask = Image.new("L", canvas.image.size, 0)
        ImageDraw.Draw(mask).polygon(canvas.to_pixels(inside), fill=255)
        layer = canvas.image.copy()
        ImageDraw.Draw(layer).polygon(canvas.to_pixels(teeth), fill=(238, 234, 222))
        canvas.image.paste(layer, (0, 0), mask)
        canvas.draw_line(inside, line_color, 0.008, 200)
    else:
        canvas.draw_line(shape.upper_inner, line_color, 0.014, 230)
    for corner in shape.corners:  # small shadowed dimples at the corners
        canvas.fill_ellipse(corner, (0.012, 0.012), darken(identity.skin, 0.45), 150)
    chin_fold = shape.lower_outer[10:-10].copy()
    chin_fold[:, 1] += 0.07
    canvas.draw_line(chin_fold, darken(identity.skin, 0.25), 0.012, 60)
