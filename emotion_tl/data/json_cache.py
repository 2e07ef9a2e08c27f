"""A cache kept as one JSON file whose entries hold only under the settings they were made with.

The file is `{"stamp": settings, FIELD: entries}`; a reader whose settings differ, or that finds
the file missing or unreadable, starts empty. The scan cache and the face cache use it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from emotion_tl.storage import write_atomic

logger = logging.getLogger("emotion_tl")


def read_stamped_json(path: Path | None, stamp: dict[str, Any], field: str) -> Any:
    """The `field` of the JSON cache at `path` when it was written with `stamp`; None when the
    file is missing, stale or unreadable."""
    if path is None or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        return saved[field] if saved.get("stamp") == stamp else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        logger.debug("ignoring an unreadable cache at %s", path)
        return None


def write_stamped_json(path: Path, stamp: dict[str, Any], field: str, value: Any) -> None:
    """Write `value` as the `field` of a JSON cache that `read_stamped_json` reads back
    (atomically)."""
    write_atomic(path, json.dumps({"stamp": stamp, field: value}).encode())
