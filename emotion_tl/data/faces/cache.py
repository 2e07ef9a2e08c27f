"""Detections remembered per file content, so a second run detects nothing again.

Keyed by the file's sha1 (the scan cache's content hash) and stamped with the detector, so a
changed margin or crop mode reuses every detection, and another detector starts afresh.
"""

from __future__ import annotations

import logging
from pathlib import Path

from emotion_tl.data.faces.detect import DETECTORS, MIN_SCORE, Face
from emotion_tl.data.json_cache import read_stamped_json, write_stamped_json

logger = logging.getLogger("emotion_tl")

FACE_CACHE_FILE = ".face_cache.json"
CACHE_VERSION = 1


class FaceCache:
    """sha1 -> faces found, loaded from and saved to one JSON file (None: memory only)."""

    def __init__(self, path: Path | None, detector: str) -> None:
        self.path = path
        self.stamp = {
            "version": CACHE_VERSION,
            "detector": detector,
            "model_sha256": DETECTORS[detector].model_sha256,
            "min_score": MIN_SCORE,
        }
        self.entries: dict[str, list[list[float]]] = (
            read_stamped_json(path, self.stamp, "faces") or {}
        )
        self.changed = False

    def lookup(self, key: str) -> list[Face] | None:
        found = self.entries.get(key)
        return None if found is None else [Face.from_list(values) for values in found]

    def record(self, key: str, faces: list[Face]) -> None:
        self.entries[key] = [face.to_list() for face in faces]
        self.changed = True

    def save(self) -> None:
        """Write the cache if anything new was detected (atomically; a failure only warns)."""
        if self.path is None or not self.changed:
            return
        try:
            write_stamped_json(self.path, self.stamp, "faces", self.entries)
            self.changed = False
        except OSError as error:
            logger.warning("could not save the face cache %s (%s)", self.path, error)
