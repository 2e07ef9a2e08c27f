"""Everything in a picture that has nothing to do with the expression.

Background (plain, gradient, or a crop of a photo that ships with scikit-image or
scikit-learn), position, scale, rotation, a slight turn of the head, lighting and shadow,
blur, noise, grayscale and JPEG quality.
"""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageFilter

from emotion_tl.demo_faces.render import CANVAS_SIZE, FACE_CENTER

# Photos without people or animal faces in them, so a background never shows a second face.
SKIMAGE_PHOTOS = ("coffee", "rocket", "brick", "grass", "gravel", "moon", "hubble_deep_field")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
BACKGROUND_PHOTOS = SKIMAGE_PHOTOS + SKLEARN_PHOTOS


@dataclass(frozen=True)
class Nuisance:
    """One picture's label-free settings."""

    background: str  # "plain", "gradient" or "photo"
    background_photo: str  # photo name, or "" when not a photo
    background_color_a: str  # "#rrggbb"; plain colour or gradient start
    background_color_b: str  # gradient end
    background_angle: float  # gradient direction, degrees
    crop_x: float  # photo crop: left and top as fractions of the free room, side as fraction
    crop_y: float
    crop_size: float
    crop_flip: bool
    offset_x: float  # face position as a fraction of the image size
    offset_y: float
    scale: float  # drawing canvas side / image side
    rotation: float  # in-plane rotation of the whole picture, degrees
    yaw: float  # slight turn of the head, about -1..1
    light_angle: float  # radians, 0 = light from the right
    light_strength: float
    shadow_strength: float
    blur_sigma: float
    noise_sigma: float
    noise_seed: int
    grayscale: bool
    jpeg_quality: int


def make_random_color(rng: np.random.Generator) -> str:
    """A muted colour as "#rrggbb"."""
    hue, saturation, value = rng.random(), rng.uniform(0.05, 0.5), rng.uniform(0.25, 0.95)
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (red, green, blue)))


def make_nuisance(rng: np.random.Generator) -> Nuisance:
    """Draw every label-free setting for one picture."""
    background = str(rng.choice(["plain", "gradient", "photo"], p=[0.25, 0.3, 0.45]))
    photo = str(rng.choice(BACKGROUND_PHOTOS)) if background == "photo" else ""
    return Nuisance(
        background=background,
        background_photo=photo,
        background_color_a=make_random_color(rng),
        background_color_b=make_random_color(rng),
        background_angle=round(float(rng.uniform(0, 360)), 2),
        crop_x=round(float(rng.random()), 4),
        crop_y=round(float(rng.random()), 4),
        crop_size=round(float(rng.uniform(0.35, 1.0)), 4),
        crop_flip=bool(rng.random() < 0.5),
        offset_x=round(float(rng.uniform(-0.1, 0.1)), 4),
        offset_y=round(float(rng.uniform(-0.07, 0.07)), 4),
        scale=round(float(rng.uniform(1.3, 1.75)), 4),
        rotation=round(float(rng.normal(0, 5)), 3),
        yaw=round(float(rng.uniform(-0.7, 0.7)), 4),
        light_angle=round(float(rng.uniform(0, 2 * np.pi)), 4),
        light_strength=round(float(rng.uniform(0.0, 0.35)), 4),
        shadow_strength=round(float(rng.uniform(0.0, 0.5)), 4),
        blur_sigma=round(float(rng.choice([0.0, 0.0, rng.uniform(0.3, 1.4)])), 4),
        noise_sigma=round(float(rng.choice([0.0, rng.uniform(1.0, 7.0)])), 4),
        noise_seed=int(rng.integers(2**31)),
        grayscale=bool(rng.random() < 0.12),
        jpeg_quality=int(rng.integers(70, 96)),
    )


@cache
def load_photo(name: str) -> np.ndarray:
    """A bundled photo as an (H, W, 3) uint8 array; loaded once per process, offline."""
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        photo = load_sample_image(name)
    else:
        import skimage.data

        photo = getattr(skimage.data, name)()
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    return np.ascontiguousarray(photo[:, :, :3].astype(np.uint8))


def hex_to_rgb(color: str) -> np.ndarray:
    """'#rrggbb' as a float array of three channels."""
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def make_background(nuisance: Nuisance, size: int) -> Image.Image:
    """The background picture, `size` pixels square."""
    if nuisance.background == "photo":
        photo = load_photo(nuisance.background_photo)
        height, width = photo.shape[:2]
        side = max(16, int(nuisance.crop_size * min(height, width)))
        left = int(nuisance.crop_x * (width - side))
        top = int(nuisance.crop_y * (height - side))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        if nuisance.crop_flip:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return crop.resize((size, size), Image.Resampling.BILINEAR)
    start = hex_to_rgb(nuisance.background_color_a)
    if nuisance.background == "plain":
        return Image.new("RGB", (size, size), tuple(int(c) for c in start))
    end = hex_to_rgb(nuisance.background_color_b)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) - 0.5
    angle = np.deg2rad(nuisance.background_angle)
    t = np.clip(xs * np.cos(angle) + ys * np.sin(angle) + 0.5, 0.0, 1.0)[:, :, None]
    return Image.fromarray((start * (1 - t) + end * t).astype(np.uint8))


def place_person(person: Image.Image, nuisance: Nuisance, size: int) -> Image.Image:
    """Rotate, scale and move the RGBA person onto a transparent `size` square."""
    rotated = person.convert("RGBa").rotate(
        nuisance.rotation, Image.Resampling.BICUBIC, center=FACE_CENTER
    )
    side = round(size * nuisance.scale)
    # Premultiplied alpha, so the transparent black around the person does not bleed in.
    small = rotated.resize((side, side), Image.Resampling.LANCZOS).convert("RGBA")
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    face_x = size * (0.5 + nuisance.offset_x) - side * FACE_CENTER[0] / CANVAS_SIZE
    face_y = size * (0.5 + nuisance.offset_y) - side * FACE_CENTER[1] / CANVAS_SIZE
    layer.paste(small, (round(face_x), round(face_y)))
    return layer


def compose_picture(person: Image.Image, nuisance: Nuisance, size: int) -> Image.Image:
    """The finished picture (before JPEG): background, shadow, person, blur, noise, grey."""
    picture = make_background(nuisance, size).convert("RGBA")
    layer = place_person(person, nuisance, size)
    if nuisance.shadow_strength > 0:
        # The shadow falls away from the light, softened.
        shift = 0.03 * size
        dx = round(-shift * np.cos(nuisance.light_angle))
        dy = round(shift * np.sin(nuisance.light_angle))
        alpha = layer.getchannel("A").filter(ImageFilter.GaussianBlur(0.02 * size))
        alpha = alpha.point(lambda a: int(a * nuisance.shadow_strength))
        shadow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        shadow.paste((0, 0, 0, 255), (dx, dy), alpha)
        picture.alpha_composite(shadow)
    picture.alpha_composite(layer)
    picture = picture.convert("RGB")
    if nuisance.blur_sigma > 0:
        picture = picture.filter(ImageFilter.GaussianBlur(nuisance.blur_sigma))
    if nuisance.noise_sigma > 0:
        noise_rng = np.random.default_rng(nuisance.noise_seed)
        pixels = np.asarray(picture, dtype=np.float32)
        pixels += noise_rng.normal(0.0, nuisance.noise_sigma, pixels.shape)
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if nuisance.grayscale:
        picture = picture.convert("L")
    return picture


def encode_jpeg(picture: Image.Image, quality: int) -> bytes:
    """JPEG bytes at the given quality."""
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
