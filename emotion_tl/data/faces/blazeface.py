"""BlazeFace, MediaPipe's face detector, run by LiteRT on the CPU: one of `detect.DETECTORS`.

Its model files come from a PyPI wheel (model_file.py), so nothing downloads from a model hub at
run time.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.ops import nms

from emotion_tl.data.faces.face import MIN_SCORE, Face
from emotion_tl.data.faces.model_file import FaceModelError, face_model_path


@dataclass(frozen=True)
class BlazeFaceSpec:
    """One BlazeFace variant: model file, input side and SSD anchor layout."""

    model: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]


# MediaPipe's anchor settings for each model (face_detection_*_range.pbtxt).
FULL_RANGE = BlazeFaceSpec("face_detection_full_range.tflite", 192, (4,), (1,))
SHORT_RANGE = BlazeFaceSpec("face_detection_short_range.tflite", 128, (8, 16), (2, 6))
NMS_IOU = 0.3


def make_anchors(spec: BlazeFaceSpec) -> np.ndarray:
    """Anchor centres (N, 2) in 0..1 input coordinates, in the model's output order."""
    centres = []
    for stride, count in zip(spec.strides, spec.anchors_per_cell, strict=True):
        cells = spec.input_size // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, count, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


def load_interpreter(model_path: str):
    """A LiteRT interpreter (ai-edge-litert; else tflite-runtime or TensorFlow, where present)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                from tensorflow.lite import Interpreter
            except ImportError:
                raise FaceModelError(
                    "face detection needs a LiteRT interpreter: pip install ai-edge-litert "
                    "(or train with --face_crop off)"
                ) from None
    interpreter = Interpreter(model_path=model_path, num_threads=1)
    with native_stderr_silenced():
        interpreter.allocate_tensors()  # where LiteRT sets up XNNPACK and says so on stderr
    return interpreter


@contextmanager
def native_stderr_silenced():
    """Send what C++ code writes to stderr (file descriptor 2) nowhere for a moment: LiteRT's
    "INFO: Created TensorFlow Lite XNNPACK delegate" would otherwise land in every notebook."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class BlazeFace:
    """Callable detector: letterbox to the model's square input, decode anchors, NMS."""

    def __init__(self, spec: BlazeFaceSpec, min_score: float = MIN_SCORE) -> None:
        self.spec, self.min_score = spec, min_score
        self.anchors = make_anchors(spec)
        self.interpreter = load_interpreter(str(face_model_path(spec.model)))
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        # Regressors (N, 16) and scores (N, 1), told apart by their last dimension.
        outputs.sort(key=lambda d: -int(d["shape"][-1]))
        self.boxes_out, self.scores_out = outputs[0]["index"], outputs[1]["index"]

    def letterbox(self, image: Image.Image) -> tuple[np.ndarray, float, float, float]:
        """The model input in -1..1, and the scale and padding that map it back to pixels."""
        size = self.spec.input_size
        scale = size / max(image.size)
        width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        small = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
        canvas = np.zeros((size, size, 3), dtype=np.float32)
        pad_x, pad_y = (size - width) // 2, (size - height) // 2
        canvas[pad_y : pad_y + height, pad_x : pad_x + width] = np.asarray(small, np.float32)
        return canvas[None] / 127.5 - 1.0, scale, pad_x, pad_y

    def __call__(self, image: Image.Image) -> list[Face]:
        tensor, scale, pad_x, pad_y = self.letterbox(image)
        self.interpreter.set_tensor(self.input, tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.boxes_out)[0]
        logits = self.interpreter.get_tensor(self.scores_out)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        size = self.spec.input_size
        centre = raw[:, 0:2] / size + anchors
        half = raw[:, 2:4] / size / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * size
        eyes = (raw[:, 4:8].reshape(-1, 2, 2) / size + anchors[:, None]).reshape(-1, 4) * size
        order = nms(torch.from_numpy(boxes), torch.from_numpy(scores), NMS_IOU).numpy()
        offset = np.array([pad_x, pad_y] * 2, dtype=np.float32)
        faces = []
        for i in order:
            box = (boxes[i] - offset) / scale
            left, right = sorted(np.split((eyes[i] - offset) / scale, 2), key=lambda p: p[0])
            faces.append(
                Face(
                    tuple(round(float(v), 2) for v in box),  # type: ignore[arg-type]
                    round(float(scores[i]), 4),
                    tuple(round(float(v), 2) for v in (*left, *right)),  # type: ignore[arg-type]
                )
            )
        return faces
