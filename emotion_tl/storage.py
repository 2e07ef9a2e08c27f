"""Crash-safe outputs: writes that a reader sees whole or not at all, and checks before a run
that the output folder can take them."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger("emotion_tl")

CACHE_ENV = "EMOTION_TL_CACHE"


def cache_dir() -> Path:
    """The per-user cache of downloaded models ($EMOTION_TL_CACHE overrides)."""
    if override := os.environ.get(CACHE_ENV):
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emotion_tl"


def compute_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_torch_atomic(obj: Any, path: Path) -> None:
    """torch.save through `write_atomic`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


def sidecar_path(path: Path) -> Path:
    """The checksum file written next to a file `save_vouched` saved."""
    return path.with_name(path.name + ".sha256")


def save_vouched(obj: Any, path: Path) -> None:
    """torch.save atomically, then a `.sha256` sidecar that vouches for the bytes.

    The sidecar lands last: a crash in between leaves a mismatch, which reads as "rebuild".
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    write_atomic(path, data)
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(sidecar_path(path), f"{digest}  {path.name}\n".encode())


def load_vouched(path: Path) -> Any | None:
    """What `save_vouched` saved at `path` (weights_only), or None when it is missing, truncated,
    corrupted or unreadable: a cache to rebuild, never to use."""
    sidecar = sidecar_path(path)
    if not path.is_file() or not sidecar.is_file():
        return None
    if sidecar.read_text().split()[:1] != [compute_sha256(path)]:
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 -- any unreadable cache is rebuilt, never used
        return None


def figure_png(figure, **kwargs: Any) -> bytes:
    """A matplotlib Figure as PNG bytes (`kwargs` go to savefig)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **kwargs)
    return buffer.getvalue()


def save_figure_atomic(figure, path: Path, **kwargs: Any) -> None:
    """Save a matplotlib Figure as PNG through `write_atomic`."""
    write_atomic(path, figure_png(figure, bbox_inches="tight", **kwargs))


def check_writable(directory: Path) -> None:
    """Fail before training if outputs cannot be written to `directory`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write_test_"):
            pass
    except OSError as error:
        raise OSError(
            f"cannot write to checkpoint_dir '{directory}' ({error.strerror or error}). "
            "Pass --checkpoint_dir with a folder you can write to."
        ) from error


def estimate_output_bytes(approaches: int) -> int:
    """Disk space a run may need at its peak: per approach a best and a final checkpoint, one
    being rewritten (the atomic write holds old and new), an interrupted one with Adam's two
    moments, and the figures."""
    model_bytes = 25_557_032 * 4  # ResNet50's parameters in fp32
    return approaches * (6 * model_bytes + 5_000_000)


def check_free_space(directory: Path, needed: int) -> None:
    """Fail before training if `directory`'s disk has less than `needed` bytes free."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OSError(
            f"checkpoint_dir '{directory}' has {free / 1e6:,.0f} MB free; a run needs about "
            f"{needed / 1e6:,.0f} MB for its checkpoints. Free some space or pass --checkpoint_dir "
            "on another disk."
        )


def remove_stale_temporaries(directory: Path) -> None:
    """Delete half-written files a killed run left behind (`write_atomic`'s `.name.*.tmp`)."""
    for path in directory.glob(".*.tmp"):
        logger.info("Removing %s, left by an interrupted write", path.name)
        path.unlink(missing_ok=True)
