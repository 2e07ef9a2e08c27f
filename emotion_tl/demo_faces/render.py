"""Draw one person, head and shoulders, as a large RGBA picture on a transparent background."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops

from emotion_tl.demo_faces.canvas import Canvas
from emotion_tl.demo_faces.hair import (
    draw_facial_hair,
    draw_glasses,
    draw_hair_back,
    draw_hair_front,
)
from emotion_tl.demo_faces.head import draw_body, draw_ears, draw_face_skin
from emotion_tl.demo_faces.identity import Identity
from emotion_tl.demo_faces.mouth import draw_mouth, make_mouth_shape
from emotion_tl.demo_faces.parts import (
    draw_brows,
    draw_cheeks,
    draw_eyes,
    draw_nasolabial_folds,
    draw_nose,
    draw_wrinkles,
    make_layout,
)

CANVAS_SIZE = 640  # pixels; about three times the final face size, for anti-aliasing
FACE_CENTER = (320.0, 280.0)
FACE_UNIT = 150.0  # pixels per face unit (half the face width)
TILT_DEGREES = 15.0  # head_tilt = 1 tilts the head this much


def draw_head(canvas: Canvas, identity: Identity, actions: dict[str, float]) -> None:
    """Everything above the neck, in back-to-front order."""
    layout = make_layout(identity, actions)
    draw_hair_back(canvas, identity)
    draw_ears(canvas, identity, layout)
    outline = draw_face_skin(canvas, identity, layout)
    draw_cheeks(canvas, identity, actions, layout)
    draw_wrinkles(canvas, identity, actions, layout)
    draw_nasolabial_folds(canvas, identity, actions, layout)
    draw_eyes(canvas, identity, actions, layout)
    draw_nose(canvas, identity, layout)
    mouth = make_mouth_shape(identity, actions, layout)
    draw_facial_hair(canvas, identity, layout, outline, mouth)
    draw_mouth(canvas, identity, mouth)
    draw_brows(canvas, identity, actions, layout)
    draw_hair_front(canvas, identity, layout)
    draw_glasses(canvas, identity, layout)


@lru_cache(maxsize=2)
def make_face_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets from the face centre, in units of the head's radius."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return (xs - FACE_CENTER[0]) / (FACE_UNIT * 1.3), (ys - FACE_CENTER[1]) / (FACE_UNIT * 1.3)


def apply_lighting(image: Image.Image, angle: float, strength: float) -> Image.Image:
    """Shade as if lit from `angle` (radians, 0 = from the right): one side bright, edges dark."""
    rgb = np.asarray(image, dtype=np.float32)
    dx, dy = make_face_grid(rgb.shape[0])
    directional = 1.0 + strength * np.clip(dx * np.cos(angle) - dy * np.sin(angle), -1.2, 1.2)
    rounding = 1.0 - 0.15 * np.clip(dx**2 + dy**2, 0.0, 1.5) ** 2  # a head is not flat
    shaded = rgb * (directional * rounding)[:, :, None]
    return Image.fromarray(np.clip(shaded, 0, 255).astype(np.uint8))


def render_person(
    identity: Identity,
    actions: dict[str, float],
    *,
    yaw: float = 0.0,
    light_angle: float = 0.0,
    light_strength: float = 0.0,
) -> Image.Image:
    """Render head and shoulders as RGBA at CANVAS_SIZE; the head tilts by `head_tilt`."""
    body = Canvas(CANVAS_SIZE, FACE_CENTER, FACE_UNIT)
    draw_body(body, identity, make_layout(identity, actions))
    head = Canvas(CANVAS_SIZE, FACE_CENTER, FACE_UNIT, yaw=yaw)
    draw_head(head, identity, actions)
    # The head tilts about the top of the neck; PIL rotates counter-clockwise.
    pivot = (FACE_CENTER[0], FACE_CENTER[1] + FACE_UNIT * identity.face_height)
    degrees = -TILT_DEGREES * actions["head_tilt"]
    head_image = head.image.rotate(degrees, Image.Resampling.BILINEAR, center=pivot)
    head_mask = head.mask.rotate(degrees, Image.Resampling.BILINEAR, center=pivot)
    body.image.paste(head_image, (0, 0), head_mask)
    mask = ImageChops.lighter(body.mask, head_mask)
    lit = apply_lighting(body.image, light_angle, light_strength)
    lit.putalpha(mask)
    return lit
