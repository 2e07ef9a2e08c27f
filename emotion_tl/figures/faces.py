"""Figures of the face crop: what the detector found in each photo, and what the model sees."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import Affine2D
from PIL import Image

from emotion_tl.data.faces.crop import FaceCropSettings, FaceFinder


def draw_framing(ax, framing) -> None:
    """The chosen face's box (red) and the square crop (dashed yellow, turned if levelled)."""
    if framing.face is not None:
        x0, y0, x1, y1 = framing.face
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="red", lw=2))
    if framing.crop is not None:
        x, y, side, angle = framing.crop
        square = Rectangle((x - side / 2, y - side / 2), side, side, fill=False, ls="--", lw=2)
        square.set_edgecolor("gold")
        # The image is turned by `angle` before cropping, so the crop is turned back here.
        square.set_transform(Affine2D().rotate_deg_around(x, y, -angle) + ax.transData)
        ax.add_patch(square)


def plot_face_crops(
    images: Sequence[Image.Image], titles: Sequence[str], settings: FaceCropSettings
) -> Figure:
    """Top row: each photo with the face found (red) and the crop (dashed); bottom row: the
    picture the model is given (before resizing), with the outcome as its title."""
    finder = FaceFinder(settings)
    figure = Figure(figsize=(3.0 * len(images), 6.0), layout="constrained")
    axes = figure.subplots(2, len(images), squeeze=False)
    for column, (image, title) in enumerate(zip(images, titles, strict=True)):
        seen = finder.frame(image, None, str(column))
        framing = finder.framings[str(column)]
        axes[0, column].imshow(image)
        draw_framing(axes[0, column], framing)
        axes[0, column].set_title(f"{title}\n{framing.faces} face(s) found", size=9)
        axes[1, column].imshow(seen if seen is not None else image)
        axes[1, column].set_title(f"the model sees: {framing.outcome}", size=9)
    for ax in axes.flat:
        ax.axis("off")
    figure.suptitle(settings.describe())
    return figure
