"""Decoded images on disk for datasets too large to hold in memory: one flat uint8 file per setting.

Small datasets keep every decoded image in memory (fastest). A large one writes each image once,
resized as the run needs it, into `checkpoint_dir/image_cache/<setting>/`: `pixels-<n>.u8` holds
the images' bytes end to end, `index.json` each image's place, shape, perceptual hash and face
framing, keyed by the file's content hash. A later run decodes only files whose content is new.

Images are read back with `os.pread`, not through a memory map: mapped pages count towards the
process's resident memory as they are touched, so a memory map of a 10 GB file would grow a
run's RSS to 10 GB over an epoch; `pread` copies one image at a time and the kernel's page cache
(shared by every DataLoader worker, and released under memory pressure) does the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import PIL
import torch
import torchvision

from emotion_tl.data.faces.crop import FaceCropSettings, Framing
from emotion_tl.storage import write_atomic

logger = logging.getLogger("emotion_tl")

IMAGE_CACHE_DIR = "image_cache"
STORE_FORMAT = 1
# auto keeps images in memory up to this many decoded bytes (about 10,900 images at 256 px).
AUTO_DISK_BYTES = 2 * 1024**3
# The pixel file is rewritten when forgotten images fill over half of it and at least this much.
COMPACT_SLACK_BYTES = 64 * 1024**2
READ_BINARY = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def read_at(fd: int, size: int, offset: int) -> bytes:
    """`size` bytes at `offset` of an open file (fewer at its end), without a shared position
    where the system has `pread`; elsewhere (Windows) by seeking this process's descriptor."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    chunks, remaining = [], size
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def use_disk(mode: str, num_files: int, resize_size: int) -> bool:
    """Whether a run over `num_files` images keeps them on disk: `disk`, or `auto` past about
    2 GiB of decoded pixels (counting each image as a square of the resize size)."""
    if mode != "auto":
        return mode == "disk"
    return num_files * 3 * resize_size**2 > AUTO_DISK_BYTES


class StoredImages(Sequence):
    """Some rows of a store's pixel file, read on access as uint8 (3, H, W) tensors."""

    def __init__(self, path: Path, places: np.ndarray) -> None:
        self.path, self.places = Path(path), places  # places: (N, 3) int64 offset, height, width
        self._fd: int | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.places)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return StoredImages(self.path, self.places[index])
        offset, height, width = (int(v) for v in self.places[index])
        size = 3 * height * width
        data = read_at(self._file(), size, offset)
        if len(data) != size:
            raise OSError(f"{self.path} is shorter than its index says; delete {self.path.parent}")
        return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(3, height, width)

    def select(self, rows: Iterable[int]) -> StoredImages:
        """The images at `rows`, still on disk."""
        return StoredImages(self.path, self.places[np.asarray(list(rows), dtype=np.int64)])

    def _file(self) -> int:
        # One descriptor per process: a DataLoader worker (fork or spawn) opens its own on its
        # first read, so no two processes ever close or share one.
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, READ_BINARY), os.getpid()
        return self._fd

    def __getstate__(self) -> dict:
        return {"path": self.path, "places": self.places, "_fd": None, "_pid": None}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)


def take(images: Sequence[torch.Tensor], rows: Iterable[int]) -> Sequence[torch.Tensor]:
    """The images at `rows`: a list for images in memory, a lazy view for images on disk."""
    if isinstance(images, StoredImages):
        return images.select(rows)
    return [images[i] for i in rows]


@dataclasses.dataclass(frozen=True)
class Stored:
    """One image's entry: its place in the pixel file (None: no face under these settings)."""

    place: tuple[int, int, int] | None
    phash: int
    framing: Framing


def store_settings(resize_size: int, face_crop: FaceCropSettings) -> dict[str, object]:
    """Everything besides a file's content that changes its decoded image."""
    return {
        "format": STORE_FORMAT,
        "resize_size": resize_size,
        "face_crop": dataclasses.asdict(face_crop),
        "pillow": PIL.__version__,
        "torchvision": torchvision.__version__,
    }


class ImageStore:
    """One setting's decoded images on disk; open it with `open_store` (which locks it)."""

    def __init__(self, folder: Path, settings: dict) -> None:
        self.folder, self.settings = folder, settings
        self.entries: dict[str, list] = {}
        self.pixels = "pixels-0.u8"
        index = folder / "index.json"
        try:
            saved = json.loads(index.read_text())
            if saved.get("settings") == settings:
                self.entries, self.pixels = saved["entries"], saved["pixels"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        end = self._size()
        # Entries past the end of a truncated file cannot be read back.
        self.entries = {k: e for k, e in self.entries.items() if e[0] is None or _end(e) <= end}
        self._writer = None

    def _size(self) -> int:
        path = self.folder / self.pixels
        return path.stat().st_size if path.exists() else 0

    def lookup(self, sha1: str) -> Stored | None:
        """The entry for a file's content, or None if it was never decoded under this setting."""
        entry = self.entries.get(sha1)
        if entry is None:
            return None
        offset, height, width, phash, framing = entry
        place = None if offset is None else (offset, height, width)
        return Stored(place, int(phash, 16), _to_framing(framing))

    def add(self, sha1: str, image: torch.Tensor | None, phash: int, framing: Framing) -> None:
        """Append one decoded uint8 (3, H, W) image (None: no face found) and index it; a second
        file with the same content shares the first one's pixels."""
        if sha1 in self.entries:
            return
        place = None
        if image is not None:
            if self._writer is None:
                self._writer = open(self.folder / self.pixels, "ab")  # noqa: SIM115
            offset = self._writer.seek(0, os.SEEK_END)
            self._writer.write(image.contiguous().numpy().tobytes())
            place = (offset, image.shape[1], image.shape[2])
        framing_values = dataclasses.asdict(framing)
        self.entries[sha1] = [*(place or (None, 0, 0)), f"{phash:016x}", framing_values]

    def images(self, contents: list[str]) -> StoredImages:
        """A lazy sequence over the stored images of these content hashes (call after `save`,
        which may move them)."""
        places = [self.entries[sha1][:3] for sha1 in contents]
        array = np.array(places, dtype=np.int64).reshape(-1, 3)
        return StoredImages(self.folder / self.pixels, array)

    def save(self, live: set[str]) -> None:
        """Forget entries whose content no known file has, rewrite the pixel file when over half
        of it is forgotten images, and write the index atomically."""
        if self._writer is not None:
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._writer.close()
            self._writer = None
        self.entries = {k: e for k, e in self.entries.items() if k in live}
        used = sum(_end(e) - e[0] for e in self.entries.values() if e[0] is not None)
        if self._size() - used > max(used, COMPACT_SLACK_BYTES):
            self._compact()
        index = {"settings": self.settings, "pixels": self.pixels, "entries": self.entries}
        write_atomic(self.folder / "index.json", json.dumps(index).encode())
        for stale in self.folder.glob("pixels-*.u8"):
            if stale.name != self.pixels:
                stale.unlink(missing_ok=True)  # readers that hold it open keep reading it

    def _compact(self) -> None:
        """Copy the live images, one at a time, into a new pixel file."""
        number = int(self.pixels.removeprefix("pixels-").removesuffix(".u8")) + 1
        new_name = f"pixels-{number}.u8"
        source = os.open(self.folder / self.pixels, READ_BINARY)
        try:
            with open(self.folder / new_name, "wb") as target:
                for entry in self.entries.values():
                    if entry[0] is not None:
                        data = read_at(source, _end(entry) - entry[0], entry[0])
                        entry[0] = target.tell()
                        target.write(data)
                target.flush()
                os.fsync(target.fileno())
        finally:
            os.close(source)
        logger.info("Image cache compacted into %s", self.folder / new_name)
        self.pixels = new_name


def _end(entry: list) -> int:
    offset, height, width = entry[:3]
    return offset + 3 * height * width


def _to_framing(values: dict) -> Framing:
    face, crop = values.get("face"), values.get("crop")
    face, crop = tuple(face) if face else None, tuple(crop) if crop else None
    return Framing(values["faces"], values["outcome"], face, crop)


@contextlib.contextmanager
def open_store(
    checkpoint_dir: Path, resize_size: int, face_crop: FaceCropSettings
) -> Iterator[ImageStore]:
    """The store for this setting, locked against other runs adding to it at the same time."""
    settings = store_settings(resize_size, face_crop)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(checkpoint_dir) / IMAGE_CACHE_DIR / f"{resize_size}px-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; do not run two scans at once there
            fcntl = None
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield ImageStore(folder, settings)
