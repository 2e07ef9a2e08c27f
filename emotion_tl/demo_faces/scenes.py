"""A synthetic person pasted small into a real photo, as in pictures users take themselves.

The face is 15-35% of the frame's width, at a random place; its box (cheek to cheek, mid
forehead to chin) is known exactly, so a face detector can be scored against it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from emotion_tl.demo_faces.actions import EXPRESSIONS
from emotion_tl.demo_faces.render import CANVAS_SIZE, FACE_CENTER, FACE_UNIT
from emotion_tl.demo_faces.scene import BACKGROUND_PHOTOS, load_photo

# Photographs of places and things (the moon and the deep field are left to the tight crops).
SCENE_PHOTOS = tuple(p for p in BACKGROUND_PHOTOS if p not in ("moon", "hubble_deep_field"))
FACE_WIDTH = (0.15, 0.35)  # the face's width as a share of the frame's width
FOREHEAD = 0.6  # the box's top: this many face units above the eyes' level (mid forehead)


def make_scene_rng(seed: int, identity_index: int, expression: str) -> np.random.Generator:
    """The placement's own random stream, apart from the face's (same face, any frame)."""
    key = (identity_index, 100 + EXPRESSIONS.index(expression))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def make_scene_background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random crop of a bundled photo with the frame's aspect, scaled to `size`."""
    photo = load_photo(str(rng.choice(SCENE_PHOTOS)))
    height, width = photo.shape[:2]
    scale = max(size[0] / width, size[1] / height) * rng.uniform(1.0, 1.6)
    scaled = Image.fromarray(photo).resize((round(width * scale), round(height * scale)))
    left = int(rng.integers(0, scaled.width - size[0] + 1))
    top = int(rng.integers(0, scaled.height - size[1] + 1))
    if rng.random() < 0.5:
        scaled = scaled.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return scaled.crop((left, top, left + size[0], top + size[1]))


def compose_scene(
    person: Image.Image, face_height: float, rng: np.random.Generator, size: tuple[int, int]
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Paste an RGBA `person` (render_person's canvas) into a photo of `size` (width, height).

    Returns the RGB picture and the face's box (x0, y0, x1, y1) in its pixels.
    """
    width, height = size
    background = make_scene_background(rng, size).convert("RGBA")
    face_width = rng.uniform(*FACE_WIDTH) * width
    scale = face_width / (2 * FACE_UNIT)
    side = round(CANVAS_SIZE * scale)
    small = person.convert("RGBa").resize((side, side), Image.Resampling.LANCZOS).convert("RGBA")
    # The face centre anywhere the whole face stays inside the frame.
    centre_x = rng.uniform(face_width / 2, width - face_width / 2)
    top_room, bottom_room = FOREHEAD * face_width / 2, face_height * face_width / 2
    centre_y = rng.uniform(top_room, max(top_room, height - bottom_room))
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    corner = (round(centre_x - FACE_CENTER[0] * scale), round(centre_y - FACE_CENTER[1] * scale))
    layer.paste(small, corner)
    background.alpha_composite(layer)
    unit = FACE_UNIT * scale
    box = (
        centre_x - unit,
        centre_y - FOREHEAD * unit,
        centre_x + unit,
        centre_y + face_height * unit,
    )
    return background.convert("RGB"), tuple(round(v, 2) for v in box)  # type: ignore[return-value]
