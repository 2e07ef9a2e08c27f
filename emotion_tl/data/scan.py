"""Check every listed file once (decode, hash, remember the verdict) and find duplicates."""

from __future__ import annotations

import hashlib
import io
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import PIL
import torch
from PIL import Image

from emotion_tl.data.faces.crop import FaceFinder, Framing
from emotion_tl.data.files import MIN_SIDE, ImageTooSmall, Skipped, decode_image
from emotion_tl.data.image_store import ImageStore
from emotion_tl.data.json_cache import read_stamped_json, write_stamped_json
from emotion_tl.data.near_copies import perceptual_hash

logger = logging.getLogger("emotion_tl")

Frame = Callable[[Image.Image], Image.Image | None]

SCAN_CACHE_FILE = ".scan_cache.json"
CACHE_VERSION = 1
# Reasons a listed image file is left out (files.py adds the reasons for non-image files).
EMPTY = "empty files"
UNREADABLE = "files that cannot be read (permissions, broken links, link loops)"
BROKEN = "broken or non-image files (truncated downloads, web pages saved as .jpg)"
TOO_LARGE = "images too large to decode safely (Pillow's decompression-bomb limit)"
TOO_SMALL = f"images under {MIN_SIDE} px a side (icons, web tracking pixels)"
CROSS_CATEGORY = "the same image in two or more categories (its label is unknowable)"
NO_FACE = "images with no face found (--face_crop require)"


@dataclass
class Scan:
    """The usable files, their decoded images and content hashes, row-aligned."""

    paths: list[Path] = field(default_factory=list)
    images: Sequence[torch.Tensor] = field(default_factory=list)  # in memory or on disk
    hashes: list[str] = field(default_factory=list)
    phashes: list[int] = field(default_factory=list)  # 64-bit perceptual hashes
    framings: list[Framing] = field(default_factory=list)


class ScanCache:
    """Verdicts from earlier runs, keyed by path relative to data_dir, size and mtime."""

    def __init__(self, path: Path | None, data_dir: Path) -> None:
        self.path, self.data_dir = path, str(data_dir.resolve())
        self.stamp = {
            "version": CACHE_VERSION,
            "pillow": PIL.__version__,
            "max_image_pixels": Image.MAX_IMAGE_PIXELS,
            "min_side": MIN_SIDE,
            "data_dir": self.data_dir,
        }
        self.entries: dict[str, dict] = read_stamped_json(path, self.stamp, "files") or {}

    def known_contents(self) -> set[str]:
        """Content hashes of the good files this cache knows (after `save`, those still present)."""
        return {entry["sha1"] for entry in self.entries.values() if entry["sha1"]}

    def lookup(self, name: str, size: int, mtime_ns: int) -> dict | None:
        entry = self.entries.get(name)
        if entry and entry["size"] == size and entry["mtime_ns"] == mtime_ns:
            return entry
        return None

    def record(self, name: str, size: int, mtime_ns: int, sha1: str | None, reason: str | None):
        self.entries[name] = {"size": size, "mtime_ns": mtime_ns, "sha1": sha1, "reason": reason}

    def save(self, seen: set[str]) -> None:
        """Write the verdicts for files still present (atomically; a failure only warns)."""
        if self.path is None:
            return
        # Keep other categories' verdicts too, but forget files that are gone.
        root = Path(self.data_dir)
        files = {
            name: entry
            for name, entry in self.entries.items()
            if name in seen or (root / name).exists()
        }
        self.entries = files
        try:
            write_stamped_json(self.path, self.stamp, "files", files)
        except OSError as error:
            logger.warning("could not save the scan cache %s (%s)", self.path, error)


def check_file(
    data: bytes, resize_size: int, frame: Frame | None = None
) -> tuple[torch.Tensor | None, str | None]:
    """Decode a file's bytes (cropped by `frame`): (image, None) when usable, else (None, the
    reason to skip it)."""
    if not data:
        return None, EMPTY
    try:
        image = decode_image(io.BytesIO(data), resize_size, frame)
        return (None, NO_FACE) if image is None else (image, None)
    except Image.DecompressionBombError:
        return None, TOO_LARGE
    except ImageTooSmall:
        return None, TOO_SMALL
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as error:
        logger.debug("cannot decode: %s", error)
        return None, BROKEN


def framer_for(finder: FaceFinder | None, key: str | None, name: str) -> Frame | None:
    """The crop step for one file: the finder's framing under `name`, or none at all."""
    return None if finder is None else lambda image: finder.frame(image, key, name)


def decode_images(
    paths: list[Path], resize_size: int, skipped: Skipped, finder: FaceFinder | None = None
) -> tuple[list[Path], list[torch.Tensor]]:
    """Decode files without a cache (new images to predict); bad ones go to `skipped`. With a
    `finder`, each is cropped to its face; its framing is kept under the path's string."""
    kept, images = [], []
    for path in paths:
        try:
            image, reason = check_file(
                path.read_bytes(), resize_size, framer_for(finder, str(path), str(path))
            )
        except OSError:
            image, reason = None, UNREADABLE
        if image is None:
            skipped.add(reason, path)
        else:
            kept.append(path)
            images.append(image)
    return kept, images


@dataclass(frozen=True)
class Found:
    """One usable file: its decoded image (None: it is in the image store) and what it is."""

    image: torch.Tensor | None
    sha1: str
    phash: int
    framing: Framing


def scan_file(
    path: Path,
    name: str,
    resize_size: int,
    cache: ScanCache,
    finder: FaceFinder | None,
    store: ImageStore | None,
) -> Found | str:
    """Check one file: what it holds, or the reason to leave it out. An unchanged file whose
    content the `store` already holds is not read at all."""
    try:
        stat = path.stat()
        entry = cache.lookup(name, stat.st_size, stat.st_mtime_ns)
        if entry is not None and entry["reason"] is not None:
            return entry["reason"]
        stored = None if store is None or entry is None else store.lookup(entry["sha1"])
        if stored is not None:
            if stored.place is None:
                return NO_FACE
            return Found(None, entry["sha1"], stored.phash, stored.framing)
        data = path.read_bytes()
    except OSError as error:
        logger.debug("cannot read %s: %s", path, error)
        return UNREADABLE
    sha1 = entry["sha1"] if entry is not None else hashlib.sha1(data).hexdigest()
    image, reason = check_file(data, resize_size, framer_for(finder, sha1, name))
    # A file without a face is a good file: only this run's settings leave it out.
    usable = image is not None or reason == NO_FACE
    cache.record(
        name, stat.st_size, stat.st_mtime_ns, sha1 if usable else None, None if usable else reason
    )
    if not usable:
        return reason
    framing = finder.framings[name] if finder is not None else Framing()
    phash = 0 if image is None else perceptual_hash(image)
    if store is not None:
        store.add(sha1, image, phash, framing)  # no image: remembered as no face found
    if image is None:
        return NO_FACE
    return Found(None if store is not None else image, sha1, phash, framing)


def scan_images(
    paths: list[Path],
    data_dir: Path,
    resize_size: int,
    skipped: Skipped,
    cache: ScanCache,
    finder: FaceFinder | None = None,
    store: ImageStore | None = None,
) -> Scan:
    """Decode and hash every file once; files cached as bad are skipped without opening them.
    With a `finder`, each image is cropped to its face (detections cached by content). With a
    `store`, decoded images go to disk and `Scan.images` reads them back on access."""
    from tqdm.auto import tqdm

    scan, seen = Scan(), set()
    for path in tqdm(
        paths, desc="Checking images", unit="img", leave=False, disable=len(paths) < 50
    ):
        name = path.relative_to(data_dir).as_posix()
        seen.add(name)
        found = scan_file(path, name, resize_size, cache, finder, store)
        if isinstance(found, str):
            skipped.add(found, path)
            continue
        scan.paths.append(path)
        if found.image is not None:
            scan.images.append(found.image)
        scan.hashes.append(found.sha1)
        scan.phashes.append(found.phash)
        scan.framings.append(found.framing)
    cache.save(seen)
    if finder is not None:
        finder.save()
    if store is not None:  # the images themselves, read back from where saving left them
        store.save(cache.known_contents())
        scan.images = store.images(scan.hashes)
    return scan


@dataclass
class Duplicates:
    """Byte-identical files: across categories (left out) and within one (kept, one split)."""

    across: list[list[str]] = field(default_factory=list)
    within: list[list[str]] = field(default_factory=list)
    near: list[list[str]] = field(default_factory=list)  # resized or re-encoded, one category


def find_duplicates(files: list[str], labels: list[str], hashes: list[str]) -> Duplicates:
    """Group identical files (relative names) by whether their categories agree."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for index, sha1 in enumerate(hashes):
        by_hash[sha1].append(index)
    duplicates = Duplicates()
    for members in by_hash.values():
        if len(members) < 2:
            continue
        names = [files[i] for i in members]
        if len({labels[i] for i in members}) > 1:
            duplicates.across.append(names)
        else:
            duplicates.within.append(names)
    return duplicates
