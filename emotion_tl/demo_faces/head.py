"""The head's outline, ears, neck and shoulders."""

from __future__ import annotations

import numpy as np

from emotion_tl.demo_faces.canvas import Canvas, Points, darken, make_ellipse
from emotion_tl.demo_faces.identity import Identity
from emotion_tl.demo_faces.parts import Layout


def make_face_outline(identity: Identity, layout: Layout, count: int = 120) -> Points:
    """A superellipse head outline whose lower half narrows towards the chin."""
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    exponent = 2.0 / identity.face_squareness
    sin, cos = np.sin(angles), np.cos(angles)
    x = np.sign(sin) * np.abs(sin) ** exponent
    y = -np.sign(cos) * np.abs(cos) ** exponent
    lower = y > 0
    x = np.where(lower, x * (1.0 - identity.chin_taper * y**2), x)
    y = np.where(lower, y * layout.chin_y, y * identity.face_height)
    return np.stack([x, y], axis=1)


def draw_body(canvas: Canvas, identity: Identity, layout: Layout) -> None:
    """Neck and shoulders down to the bottom of the canvas."""
    bottom = (canvas.image.size[1] - canvas.center[1]) / canvas.unit + 0.1
    shoulder_y = identity.face_height + 0.3
    shoulders = np.array(
        [
            (-2.2, bottom),
            (-2.0, shoulder_y + 0.35),
            (-1.5, shoulder_y + 0.05),
            (-0.5, shoulder_y - 0.12),
            (0.5, shoulder_y - 0.12),
            (1.5, shoulder_y + 0.05),
            (2.0, shoulder_y + 0.35),
            (2.2, bottom),
        ]
    )
    neck = np.array(
        [(-0.48, 0.5), (0.48, 0.5), (0.52, shoulder_y + 0.1), (-0.52, shoulder_y + 0.1)]
    )
    canvas.fill_polygon(neck, darken(identity.skin, 0.12), silhouette=True)
    canvas.fill_polygon(shoulders, identity.clothes, silhouette=True)
    collar = np.array(
        [(-0.5, shoulder_y - 0.12), (0.0, shoulder_y + 0.25), (0.5, shoulder_y - 0.12)]
    )
    canvas.fill_polygon(collar, darken(identity.skin, 0.12))
    # The chin casts a shadow on the neck.
    canvas.fill_ellipse((0.0, layout.chin_y - 0.05), (0.5, 0.22), darken(identity.skin, 0.3), 90)


def draw_ears(canvas: Canvas, identity: Identity, layout: Layout) -> None:
    """Ears at eye level, just outside the head outline."""
    for side in (-1.0, 1.0):
        centre = (side * 0.97, layout.eye_y + 0.12)
        canvas.fill_ellipse(centre, (0.12, 0.22), identity.skin, silhouette=True)
        canvas.fill_ellipse(
            (centre[0] + side * 0.02, centre[1]), (0.06, 0.14), darken(identity.skin, 0.2)
        )


def draw_face_skin(canvas: Canvas, identity: Identity, layout: Layout) -> Points:
    """Fill the head outline with skin and return the outline."""
    outline = make_face_outline(identity, layout)
    canvas.fill_polygon(outline, identity.skin, silhouette=True)
    # A slightly darker band along the jaw gives the face some roundness.
    jaw = outline[(outline[:, 1] > layout.nose_bottom) & (np.abs(outline[:, 0]) < 0.98)]
    if len(jaw) > 2:
        jaw = jaw[np.argsort(jaw[:, 0])]
        canvas.draw_line(jaw, darken(identity.skin, 0.12), 0.05, 90)
    canvas.fill_polygon(
        make_ellipse((0.0, layout.chin_y - 0.14), (0.16, 0.06)),
        darken(identity.skin, 0.06),
        80,
    )
    return outline
