"""Hair styles, facial hair and glasses: identity, never expression."""

from __future__ import annotations

import numpy as np

from emotion_tl.demo_faces.canvas import Canvas, Points, darken, lighten, make_arc, make_ellipse
from emotion_tl.demo_faces.identity import Identity
from emotion_tl.demo_faces.mouth import MouthShape
from emotion_tl.demo_faces.parts import Layout

# style: (volume above the skull, how far down the sides it reaches in radians past the ear
# line, height of the hairline above the eyes)
CAP_SHAPES = {
    "short": (0.08, -0.2, 0.82),
    "side_part": (0.14, -0.05, 0.8),
    "fringe": (0.12, -0.05, 0.0),
    "long": (0.13, 0.35, 0.8),
    "curly": (0.32, 0.2, 0.78),
    "bun": (0.06, -0.15, 0.85),
}


def make_cap(identity: Identity, volume: float, reach: float, bumps: float = 0.0) -> Points:
    """The outer edge of the hair, from one side over the top of the head to the other."""
    angles = np.linspace(-(np.pi / 2 + reach), np.pi / 2 + reach, 60)
    exponent = 2.0 / identity.face_squareness
    sin, cos = np.sin(angles), np.cos(angles)
    radius = 1.0 + bumps * np.abs(np.sin(9 * angles))
    x = (1.0 + volume) * radius * np.sign(sin) * np.abs(sin) ** exponent
    y = -(identity.face_height + volume) * radius * np.sign(cos) * np.abs(cos) ** exponent
    return np.stack([x, y], axis=1)


def make_hairline(identity: Identity, style: str, reach: float, layout: Layout) -> Points:
    """The inner edge of the hair, from the right side back over the forehead to the left."""
    angles = np.linspace(np.pi / 2 + reach, -(np.pi / 2 + reach), 60)
    height = CAP_SHAPES[style][2]
    x = 0.93 * np.sin(angles)
    y = -(height - layout.eye_y) * np.cos(angles)
    if style == "side_part":  # a fringe swept down towards one side
        y += 0.18 * np.clip(np.sin(angles), 0, 1) ** 2 * np.cos(angles)
    if style == "fringe":  # straight bangs just above the brows
        bangs = layout.brow_y - 0.1 + 0.025 * np.abs(np.sin(20 * angles))
        y = np.where(np.abs(x) < 0.8, bangs, y)
    return np.stack([x, y], axis=1)


def draw_hair_back(canvas: Canvas, identity: Identity) -> None:
    """Hair that falls behind the head and neck (long styles), or a bun."""
    if identity.hair_style == "long":
        outline = make_cap(identity, 0.16, 0.3)
        length = identity.face_height + 0.45
        back = np.concatenate([[(-1.25, length)], outline, [(1.25, length)]])
        canvas.fill_polygon(back, darken(identity.hair_color, 0.15), silhouette=True)
    if identity.hair_style == "bun":
        canvas.fill_ellipse(
            (0.0, -identity.face_height - 0.22), (0.3, 0.26), identity.hair_color, silhouette=True
        )


def draw_hair_front(canvas: Canvas, identity: Identity, layout: Layout) -> None:
    """The hair over the skull and forehead, with a few strands for texture."""
    style = identity.hair_style
    if style not in CAP_SHAPES:
        return
    volume, reach, _ = CAP_SHAPES[style]
    bumps = 0.04 if style == "curly" else 0.0
    outer = make_cap(identity, volume, reach, bumps)
    inner = make_hairline(identity, style, reach, layout)
    canvas.fill_polygon(np.concatenate([outer, inner]), identity.hair_color, silhouette=True)
    strand = darken(identity.hair_color, 0.3)
    shine = lighten(identity.hair_color, 0.2)
    for fraction, color in ((0.35, strand), (0.6, shine), (0.8, strand)):
        arc = make_cap(identity, volume * fraction, reach - 0.4, bumps)
        canvas.draw_line(arc, color, 0.012, 90)
    if style == "side_part":
        canvas.draw_line([(-0.3, -identity.face_height - 0.1), (-0.35, -0.8)], strand, 0.015, 140)


def draw_facial_hair(
    canvas: Canvas, identity: Identity, layout: Layout, outline: Points, mouth: MouthShape
) -> None:
    """Stubble, moustache, goatee or beard; drawn before the lips so the mouth stays visible."""
    kind = identity.facial_hair
    color = darken(identity.hair_color, 0.1)
    if kind in ("stubble", "beard"):
        lower = outline[outline[:, 1] > layout.nose_bottom - 0.02]
        lower = lower[np.argsort(lower[:, 0])]
        top = make_arc(lower[-1], lower[0], -0.15, 20)  # right to left under the nose
        region = np.concatenate([lower, top])
        canvas.fill_polygon(region, darken(color, 0.3), 35 if kind == "stubble" else 245)
    if kind in ("moustache", "goatee", "beard"):
        t = np.linspace(-1.0, 1.0, len(mouth.upper_outer))
        bottom = mouth.upper_outer - [0.0, 0.012]
        top = mouth.upper_outer - np.stack([np.zeros_like(t), 0.02 + 0.07 * (1 - t**2) ** 0.5], 1)
        bottom[[0, -1], 1] += 0.03  # the ends droop past the mouth corners
        canvas.fill_polygon(np.concatenate([top, bottom[::-1]]), color, 240)
    if kind == "goatee":
        middle = mouth.lower_outer[len(mouth.lower_outer) // 2]
        width = 0.6 * abs(mouth.corners[1][0] - mouth.corners[0][0]) / 2
        top, bottom = middle[1] + 0.05, layout.chin_y + 0.02
        chin = make_ellipse((middle[0], (top + bottom) / 2), (width, (bottom - top) / 2))
        canvas.fill_polygon(chin, color, 240)


def draw_glasses(canvas: Canvas, identity: Identity, layout: Layout) -> None:
    """Round or rectangular frames with a bridge and arms to the ears."""
    if identity.glasses == "none":
        return
    half_width, half_height = identity.eye_width * 1.35, 0.15
    frames = []
    for side in (-1.0, 1.0):
        centre = (side * identity.eye_spacing, layout.eye_y + 0.02)
        if identity.glasses == "round":
            frame = make_ellipse(centre, (half_width, half_height))
        else:
            corners = make_ellipse(centre, (half_width, half_height), 4 * 12)
            frame = np.clip(
                corners,
                np.subtract(centre, (half_width * 0.97, half_height * 0.85)),
                np.add(centre, (half_width * 0.97, half_height * 0.85)),
            )
        frames.append(frame)
        canvas.fill_polygon(frame, (225, 235, 240), 35)  # faint reflection on the lens
        canvas.draw_line(np.concatenate([frame, frame[:1]]), identity.glasses_color, 0.025)
        arm = [
            (side * (identity.eye_spacing + half_width), layout.eye_y - 0.02),
            (side * 0.99, layout.eye_y + 0.02),
        ]
        canvas.draw_line(arm, identity.glasses_color, 0.025)
    inner = identity.eye_spacing - half_width
    bridge = make_arc((-inner, layout.eye_y - 0.01), (inner, layout.eye_y - 0.01), 0.04, 12)
    canvas.draw_line(bridge, identity.glasses_color, 0.022)
