"""Pictures hard to learn from: blurred, too dark or bright, tiny, or no readable face."""

from __future__ import annotations

import torch
from scipy.ndimage import laplace

from emotion_tl.data.faces.crop import CROPPED, FILLS_FRAME, NO_FACE, Framing

BLUR_VARIANCE = 20.0  # variance of the Laplacian of the grey image (0-255) below this: blurred
DARK, BRIGHT = 40.0, 215.0  # mean grey level outside these: too dark or too bright
MIN_SIDE = 96  # pixels: a stored picture smaller than this on its shorter side is too small
MIN_FACE = 40  # pixels: a face smaller than this is hard to read


def measure_quality(image: torch.Tensor) -> tuple[float, float]:
    """(variance of the Laplacian, mean grey level) of a uint8 (3, H, W) image."""
    grey = image.float().mean(0).numpy()
    return float(laplace(grey).var()), float(grey.mean())


def find_quality_problems(
    images: list[torch.Tensor], sizes: list[tuple[int, int]], framings: list[Framing]
) -> list[list[tuple[str, float]]]:
    """Per image, the (problem, score) pairs found; the score grows with the problem."""
    problems = []
    for image, size, framing in zip(images, sizes, framings, strict=True):
        found = []
        sharpness, level = measure_quality(image)
        if sharpness < BLUR_VARIANCE:
            found.append(("blurred", round(1 - sharpness / BLUR_VARIANCE, 3)))
        if level < DARK:
            found.append(("too dark", round((DARK - level) / DARK, 3)))
        if level > BRIGHT:
            found.append(("too bright", round((level - BRIGHT) / (255 - BRIGHT), 3)))
        if min(size) < MIN_SIDE:
            found.append(("low resolution", round(1 - min(size) / MIN_SIDE, 3)))
        if framing.outcome == NO_FACE:
            found.append(("no face found", 1.0))
        elif framing.outcome in (CROPPED, FILLS_FRAME) and framing.face is not None:
            side = max(framing.face[2] - framing.face[0], framing.face[3] - framing.face[1])
            if side < MIN_FACE:
                found.append(("face too small", round(1 - side / MIN_FACE, 3)))
        problems.append(found)
    return problems
