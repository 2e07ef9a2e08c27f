"""Reversible data cleaning: files are moved, never deleted, and every move is logged.

A move goes to another category's folder or to `data_dir/_set_aside/<label>/` (folders whose
names start with `_` are never categories). Moves are renames inside `data_dir`; a name already
taken gets a suffix; `data_dir/cleaning_log.csv` records each move (batch, time, file, to,
reason, action), and `undo_last` moves the last batch back.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from emotion_tl.data.files import DataError
from emotion_tl.storage import write_atomic

LOG_FILE = "cleaning_log.csv"
SET_ASIDE = "_set_aside"
LOG_COLUMNS = ["batch", "time", "file", "to", "reason", "action"]


@dataclass(frozen=True)
class Move:
    """Move `file` (relative to data_dir) into `category`'s folder, or set it aside (None)."""

    file: str
    category: str | None
    reason: str = ""

    def folder(self) -> str:
        label = Path(self.file).parts[0]
        return self.category if self.category is not None else f"{SET_ASIDE}/{label}"


def inside(data_dir: Path, relative: str) -> Path:
    """data_dir / relative, refusing anything that would leave data_dir."""
    root = data_dir.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise DataError(f"'{relative}' is outside data_dir '{data_dir}'; nothing was moved.")
    return path


def free_name(folder: Path, name: str) -> Path:
    """folder/name, or folder/stem_1.ext, stem_2.ext, ... if that is taken."""
    path, stem, suffix, number = folder / name, Path(name).stem, Path(name).suffix, 1
    while path.exists():
        path, number = folder / f"{stem}_{number}{suffix}", number + 1
    return path


def check_writable(folders: set[Path]) -> None:
    """Fail before moving anything if a folder cannot be written."""
    blocked = sorted(str(f) for f in folders if f.exists() and not os.access(f, os.W_OK))
    if blocked:
        raise DataError(
            f"cannot move files: no permission to write in {', '.join(blocked)}. Nothing was "
            "moved; make those folders writable and apply again."
        )


def read_log(data_dir: Path) -> list[dict[str, str]]:
    path = Path(data_dir) / LOG_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def append_log(data_dir: Path, rows: list[dict[str, str]]) -> None:
    """Rewrite the log with `rows` added (atomically: a crash leaves the old log whole)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(read_log(data_dir) + rows)
    write_atomic(Path(data_dir) / LOG_FILE, buffer.getvalue().encode())


def rename_all(data_dir: Path, pairs: list[tuple[str, Path]], batch: str, action: str, reasons):
    """Rename each (file, destination) and log it; the log is written even if a rename fails."""
    rows, now = [], datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        for (file, target), reason in zip(pairs, reasons, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(inside(data_dir, file), target)
            to = target.relative_to(data_dir.resolve()).as_posix()
            rows.append(dict(batch=batch, time=now, file=file, to=to, reason=reason, action=action))
    finally:
        if rows:
            append_log(data_dir, rows)
    return rows


def apply_moves(data_dir: str | Path, moves: list[Move]) -> list[dict[str, str]]:
    """Move the files as asked, log the moves as one batch, and return the log rows."""
    data_dir = Path(data_dir)
    moves = [m for m in moves if m.category is None or Path(m.file).parts[0] != m.category]
    if not moves:
        return []
    sources = [inside(data_dir, m.file) for m in moves]
    missing = [m.file for m, s in zip(moves, sources, strict=True) if not s.is_file()]
    if missing:
        raise DataError(f"not found in '{data_dir}': {missing}; nothing was moved.")
    folders = [inside(data_dir, m.folder()) for m in moves]
    check_writable({s.parent for s in sources} | {f if f.exists() else data_dir for f in folders})
    taken: set[Path] = set()
    pairs = []
    for move, folder in zip(moves, folders, strict=True):
        target = free_name(folder, Path(move.file).name)
        while target in taken:  # two files of the same name going to one folder
            target = free_name(folder, f"{target.stem}_{len(taken)}{target.suffix}")
        taken.add(target)
        pairs.append((move.file, target))
    batch = str(1 + max((int(r["batch"]) for r in read_log(data_dir)), default=0))
    return rename_all(data_dir, pairs, batch, "move", [m.reason for m in moves])


def undo_last(data_dir: str | Path) -> list[dict[str, str]]:
    """Move the last batch not yet undone back where it came from; return the log rows."""
    data_dir = Path(data_dir)
    log = read_log(data_dir)
    undone = {r["batch"] for r in log if r["action"] == "undo"}
    batches = [r["batch"] for r in log if r["action"] == "move" and r["batch"] not in undone]
    if not batches:
        return []
    last = batches[-1]
    rows = [r for r in log if r["batch"] == last and r["action"] == "move"]
    blocked = [r["file"] for r in rows if inside(data_dir, r["file"]).exists()]
    if blocked:
        raise DataError(
            f"cannot undo: {blocked} exist again in '{data_dir}'. Nothing was moved; move those "
            "files away first."
        )
    check_writable({inside(data_dir, r[k]).parent for r in rows for k in ("to", "file")})
    pairs = [(r["to"], inside(data_dir, r["file"])) for r in rows]
    return rename_all(data_dir, pairs, last, "undo", [f"undo: {r['reason']}" for r in rows])
