"""Crash-safe writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


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


def save_figure_atomic(figure, path: Path, **kwargs: Any) -> None:
    """Save a matplotlib Figure as PNG through `write_atomic`."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", **kwargs)
    write_atomic(path, buffer.getvalue())
