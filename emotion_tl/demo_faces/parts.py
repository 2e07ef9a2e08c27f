"""Eyes, brows, nose, mouth and wrinkles, each placed and shaped by the action parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from emotion_tl.demo_faces.canvas import Canvas, darken, lighten, make_arc, make_ellipse
from emotion_tl.demo_faces.identity import Identity

SIDES = (("left", -1.0), ("right", 1.0))


@dataclass(frozen=True)
class Layout:
    """Where the features sit, in face units (y grows downwards)."""

    eye_y: float
    brow_y: float
    nose_bottom: float
    mouth_y: float
    chin_y: float


def make_layout(identity: Identity, actions: dict[str, float]) -> Layout:
    """Place the features for this identity; an open jaw moves the mouth and chin down."""
    eye_y = -0.02
    nose_bottom = eye_y + identity.nose_length
    jaw = max(actions["jaw_drop"], 0.0)
    return Layout(
        eye_y=eye_y,
        brow_y=eye_y - 0.22,
        nose_bottom=nose_bottom,
        mouth_y=nose_bottom + 0.24 + 0.03 * jaw,
        chin_y=identity.face_height * (1.0 + 0.1 * jaw),
    )


def draw_eyes(canvas: Canvas, identity: Identity, actions: dict[str, float], layout: Layout):
    """Both eyes: whites, iris, lids; wide for a raised upper lid, narrow when tightened."""
    raise_ = actions["upper_lid_raise"]
    tighten = max(actions["lid_tighten"], 0.0)
    cheek = max(actions["cheek_raise"], 0.0)
    upper = identity.eye_opening * (
        1.0 + 0.9 * max(raise_, 0.0) + 0.55 * min(raise_, 0.0) - 0.45 * tighten - 0.15 * cheek
    )
    lower = (
        identity.eye_opening * 0.7 * (1.0 - 0.5 * tighten - 0.6 * cheek + 0.3 * max(raise_, 0.0))
    )
    upper, lower = max(upper, 0.012), max(lower, 0.008)
    eye_mask = Image.new("L", canvas.image.size, 0)
    mask_draw = ImageDraw.Draw(eye_mask)
    outlines = []
    for _, side in SIDES:
        cx, cy = side * identity.eye_spacing, layout.eye_y
        width = identity.eye_width
        u = np.linspace(-1.0, 1.0, 32)
        # The upper lid peaks a little towards the nose, as real lids do.
        top = cy - upper * np.clip(1 - u**2, 0, 1) ** 0.8 * (1 - 0.15 * side * u)
        bottom = cy + lower * np.clip(1 - u**2, 0, 1) ** 0.9
        upper_lid = np.stack([cx + width * u, top], axis=1)
        lower_lid = np.stack([cx + width * u, bottom], axis=1)[::-1]
        outline = np.concatenate([upper_lid, lower_lid])
        outlines.append((upper_lid, lower_lid, cx, cy))
        canvas.fill_polygon(outline, (240, 238, 232))
        mask_draw.polygon(canvas.to_pixels(outline), fill=255)
    # Iris and pupil are drawn on a copy and shown only through the eye openings.
    iris_layer = canvas.image.copy()
    iris_draw = ImageDraw.Draw(iris_layer, "RGBA")
    radius = identity.eye_opening * 1.05
    for _, _, cx, cy in outlines:
        gaze = 0.02 * actions["mouth_skew"]  # confused faces glance towards the skew side
        for points, color in (
            (make_ellipse((cx + gaze, cy + 0.005), (radius, radius)), identity.eye_color),
            (make_ellipse((cx + gaze, cy + 0.005), (radius * 0.45, radius * 0.45)), (12, 10, 10)),
            (make_ellipse((cx + gaze + 0.025, cy - 0.02), (0.014, 0.014)), (250, 250, 250)),
        ):
            iris_draw.polygon(canvas.to_pixels(points), fill=(*color, 255))
    canvas.image.paste(iris_layer, (0, 0), eye_mask)
    lid_color = darken(identity.skin, 0.65)
    for upper_lid, lower_lid, _, _ in outlines:
        canvas.draw_line(upper_lid, (25, 20, 20), 0.024)
        crease = upper_lid.copy()
        crease[:, 1] -= 0.045 + 0.02 * max(raise_, 0.0)
        canvas.draw_line(crease[4:-4], lid_color, 0.012, alpha=110)
        canvas.draw_line(lower_lid, darken(identity.skin, 0.45), 0.01, alpha=150)
        if tighten + cheek > 0.25:  # raised cheeks and squints bunch the skin under the eye
            bag = lower_lid[3:-3].copy()
            bag[:, 1] += 0.035
            canvas.draw_line(bag, lid_color, 0.01, alpha=int(min(1.0, tighten + cheek) * 120))


def draw_brows(canvas: Canvas, identity: Identity, actions: dict[str, float], layout: Layout):
    """Each brow from inner to outer end; raising lifts an end, furrowing pulls it down and in."""
    for name, side in SIDES:
        inner_raise = actions[f"brow_inner_raise_{name}"]
        outer_raise = actions[f"brow_outer_raise_{name}"]
        furrow = actions[f"brow_furrow_{name}"]
        inner = np.array(
            [
                side * (identity.eye_spacing - identity.eye_width * 0.85 - 0.06 * furrow),
                layout.brow_y + 0.02 - 0.14 * inner_raise + 0.1 * furrow,
            ]
        )
        outer = np.array(
            [
                side * (identity.eye_spacing + identity.eye_width * 1.15),
                layout.brow_y + 0.04 - 0.13 * outer_raise + 0.04 * furrow,
            ]
        )
        arch = 0.05 + 0.03 * max(outer_raise, 0.0)
        t = np.linspace(0.0, 1.0, 24)[:, None]
        peak = inner + (outer - inner) * 0.65 - np.array([0.0, arch * 2])
        centre = (1 - t) ** 2 * inner + 2 * (1 - t) * t * peak + t**2 * outer  # Bezier curve
        thickness = identity.brow_thickness * (1.0 - 0.6 * t[:, 0]) / 2
        top = centre - np.stack([np.zeros_like(thickness), thickness], axis=1)
        bottom = centre + np.stack([np.zeros_like(thickness), thickness * 0.8], axis=1)
        canvas.fill_polygon(np.concatenate([top, bottom[::-1]]), identity.brow_color, 235)


def draw_wrinkles(canvas: Canvas, identity: Identity, actions: dict[str, float], layout: Layout):
    """Forehead lines over raised brows, frown lines for a furrow, crow's feet, age lines."""
    line_color = darken(identity.skin, 0.35)
    for name, side in SIDES:
        raised = (actions[f"brow_inner_raise_{name}"] + actions[f"brow_outer_raise_{name}"]) / 2
        alpha = int(np.clip(raised * 0.8 + identity.age * 0.3, 0.0, 1.0) * 130)
        for row in range(3):
            y = layout.brow_y - 0.2 - 0.09 * row
            start, end = (side * 0.05, y), (side * (0.55 - 0.08 * row), y + 0.02)
            canvas.draw_line(make_arc(start, end, 0.025, 12), line_color, 0.012, alpha)
        # Crow's feet at the outer corner of the eye.
        corner = side * (identity.eye_spacing + identity.eye_width + 0.04)
        feet = np.clip(identity.age * 0.7 + actions["cheek_raise"] * 0.6, 0, 1)
        for dy in (-0.03, 0.0, 0.03):
            canvas.draw_line(
                [(corner, layout.eye_y + dy), (corner + side * 0.07, layout.eye_y + 2 * dy)],
                line_color,
                0.008,
                int(feet * 110),
            )
    furrow = (max(actions["brow_furrow_left"], 0.0) + max(actions["brow_furrow_right"], 0.0)) / 2
    for x in (-0.05, 0.05):
        canvas.draw_line(
            [(x, layout.brow_y - 0.02), (x * 0.6, layout.brow_y + 0.11)],
            line_color,
            0.013,
            int(np.clip(furrow, 0, 1) * 170),
        )


def draw_nose(canvas: Canvas, identity: Identity, layout: Layout):
    """Nose bridge shading, nostrils and the curve of the nose wings."""
    shade = darken(identity.skin, 0.3)
    width = identity.nose_width
    bottom = layout.nose_bottom
    bridge = [(0.07, layout.eye_y + 0.05), (0.09, bottom - 0.12)]
    canvas.draw_line(bridge, shade, 0.02, 70, depth=0.05)
    for side in (-1.0, 1.0):
        wing = make_arc((side * width, bottom - 0.08), (side * width * 0.45, bottom), 0.0)
        wing[:, 0] += side * 0.02 * np.sin(np.linspace(0, np.pi, len(wing)))
        canvas.draw_line(wing, shade, 0.015, 160, depth=0.06)
        canvas.fill_ellipse(
            (side * width * 0.42, bottom - 0.015),
            (0.04, 0.018),
            darken(identity.skin, 0.6),
            200,
            depth=0.07,
        )
    canvas.draw_line(
        make_arc((-0.07, bottom + 0.005), (0.07, bottom + 0.005), -0.02, 10),
        shade,
        0.01,
        90,
        depth=0.08,
    )


def draw_nasolabial_folds(
    canvas: Canvas, identity: Identity, actions: dict[str, float], layout: Layout
):
    """The lines from the nose to the mouth corners; a smile deepens them."""
    strength = np.clip(0.15 + 0.7 * max(actions["lip_corner_pull"], 0) + 0.4 * identity.age, 0, 1)
    for side in (-1.0, 1.0):
        start = (side * (identity.nose_width + 0.04), layout.nose_bottom - 0.05)
        end = (side * (identity.mouth_width + 0.09), layout.mouth_y + 0.06)
        fold = make_arc(start, end, 0.0, 16)
        fold[:, 0] += side * 0.05 * np.sin(np.linspace(0, np.pi, len(fold)))
        canvas.draw_line(fold, darken(identity.skin, 0.3), 0.014, int(strength * 150))


def draw_cheeks(canvas: Canvas, identity: Identity, actions: dict[str, float], layout: Layout):
    """Raised cheeks catch the light: a rounded highlight under each eye."""
    cheek = float(np.clip(actions["cheek_raise"], 0, 1))
    for side in (-1.0, 1.0):
        centre = (side * 0.45, layout.eye_y + 0.3 - 0.06 * cheek)
        canvas.fill_ellipse(centre, (0.2, 0.12), lighten(identity.skin, 0.25), int(cheek * 60))
        canvas.fill_ellipse(centre, (0.16, 0.09), (215, 110, 100), int(cheek * 35))
