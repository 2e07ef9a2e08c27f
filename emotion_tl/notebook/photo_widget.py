"""Notebook 04's "try your own photo": upload a picture and see what both trained models make of
it, their probabilities and their Grad-CAM side by side, on the picture cropped to the face as
their training images were. Nothing is written to disk: the upload stays in memory.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from emotion_tl.data.faces.crop import CROPPED, FILLS_FRAME, NO_FACE, FaceFinder
from emotion_tl.data.files import load_image
from emotion_tl.evaluation.comparison import Comparison
from emotion_tl.evaluation.explain import explain_images
from emotion_tl.evaluation.predict import check_same_classes, predictor_from_checkpoint
from emotion_tl.figures.evaluation import plot_gradcam_grid
from emotion_tl.storage import figure_png

SEEN = {
    CROPPED: "cropped to the face, as in training",
    FILLS_FRAME: "the face fills the picture, so it is used whole, as in training",
    NO_FACE: "no face found, so the whole picture is used",
}


def read_upload(content: bytes, name: str) -> Image.Image:
    """The uploaded picture, upright, in RGB; a ValueError that says what to upload instead."""
    try:
        return load_image(io.BytesIO(content))
    except Exception as error:  # Pillow raises several kinds for a file that is not a picture
        raise ValueError(
            f"'{name}' could not be read as a picture ({error}); upload a JPEG, PNG or WebP "
            "photo of a face."
        ) from error


class PhotoTry:
    """The widget: `photo.widget` is what the notebook displays; `show(bytes, name)` is what an
    upload does."""

    def __init__(self, comparison: Comparison) -> None:
        import ipywidgets as widgets

        self.predictors = {
            a.name: predictor_from_checkpoint(a.checkpoint, a.name) for a in comparison.approaches
        }
        self.class_names = check_same_classes(list(self.predictors.values()))
        self.face_crop = comparison.approaches[0].face_crop
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Photo")
        self.status = widgets.HTML("Upload a photo of a face.")
        self.table = widgets.HTML()
        self.table.add_class("emotion-tl-photo-table")  # how the browser test finds it
        self.figure = widgets.Image(format="png", layout={"display": "none"})
        self.upload.observe(self.on_upload, names="value")
        self.widget = widgets.VBox([self.upload, self.status, self.table, self.figure])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def on_upload(self, change: dict) -> None:
        if change["new"]:
            upload = change["new"][0]
            self.show(bytes(upload["content"]), upload["name"])

    def show(self, content: bytes, name: str) -> pd.DataFrame | None:
        """Predict `content` with both models; the probabilities (a row per model), or None
        with the reason in the status line."""
        try:
            image = read_upload(content, name)
        except ValueError as error:
            self.status.value = f"<b>{error}</b>"
            return None
        seen, words = image, "the whole picture (the models were trained on whole pictures)"
        if self.face_crop.mode != "off":
            finder = FaceFinder(self.face_crop)
            seen = finder.frame(image, None, name) or image
            words = SEEN.get(finder.framings[name].outcome, words)
        results = {n: explain_images(p, [pil_to_tensor(seen)]) for n, p in self.predictors.items()}
        table = pd.DataFrame(
            {n: probabilities[0] for n, (_, probabilities, _) in results.items()},
            index=self.class_names,
        ).T
        self.status.value = f"{name}: {words}. Probability of each category:"
        self.table.value = table.to_html(float_format="{:.3f}".format)
        figure = plot_gradcam_grid(results, self.class_names)
        self.figure.value, self.figure.layout.display = figure_png(figure, dpi=80), ""
        return table


def make_photo_widget(comparison: Comparison) -> PhotoTry:
    """The upload widget for the two approaches in `comparison`."""
    return PhotoTry(comparison)
