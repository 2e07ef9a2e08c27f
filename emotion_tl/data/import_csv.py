"""FER2013-style CSV files turned into the folder layout every command reads.

The layout (FER2013, and the datasets that copy it): a header, then one row per picture with
`emotion` (an index, 0 to 6), `pixels` (48 x 48 = 2,304 grey values, 0 to 255, separated by
spaces) and optionally `Usage` (Training, PublicTest, PrivateTest). Each good row becomes
`out/<expression>/<usage>_<row>.png` (an 8-bit grey PNG), where expression is one of the seven
names below; `out/metadata.csv` records each file's usage and source row. A row that cannot be
read is reported and skipped, never fatal; the file is read row by row, so its size does not
matter. Running the import again writes the same files.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from emotion_tl.data.files import DataError
from emotion_tl.data.metadata import METADATA_FILE
from emotion_tl.storage import write_atomic

logger = logging.getLogger("emotion_tl")

# FER2013's emotion indices, in order.
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
REQUIRED = ("emotion", "pixels")


@dataclass
class ImportReport:
    """What an import wrote and skipped."""

    written: dict[str, int] = field(default_factory=dict)  # expression -> pictures
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row number, why)

    def summary(self, shown: int = 10) -> str:
        lines = [
            f"{sum(self.written.values())} pictures written: "
            + ", ".join(f"{name} {count}" for name, count in sorted(self.written.items()))
        ]
        if self.skipped:
            lines.append(f"{len(self.skipped)} row(s) skipped:")
            lines += [f"  row {row}: {why}" for row, why in self.skipped[:shown]]
            if len(self.skipped) > shown:
                lines.append(f"  ... and {len(self.skipped) - shown} more")
        return "\n".join(lines)


def parse_row(row: dict[str, str]) -> tuple[str, np.ndarray]:
    """(expression, 48x48 uint8 picture) of one CSV row; ValueError saying what is wrong."""
    try:
        index = int(row["emotion"])
    except (TypeError, ValueError):
        raise ValueError(f"emotion {row['emotion']!r} is not a whole number") from None
    if not 0 <= index < len(EXPRESSIONS):
        raise ValueError(f"emotion {index} is outside 0-{len(EXPRESSIONS) - 1}")
    try:
        values = np.array((row["pixels"] or "").split(), dtype=np.int64)
    except ValueError:
        raise ValueError("pixels holds something other than whole numbers") from None
    side = math.isqrt(len(values))
    if len(values) == 0 or side * side != len(values):
        raise ValueError(f"{len(values)} pixel values do not make a square picture")
    if values.min() < 0 or values.max() > 255:
        raise ValueError("pixel values outside 0-255")
    return EXPRESSIONS[index], values.astype(np.uint8).reshape(side, side)


def png_bytes(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def import_csv(path: str | Path, out_dir: str | Path) -> ImportReport:
    """Write every readable row of the CSV at `path` under `out_dir` (see the module docstring)."""
    path, out_dir = Path(path), Path(out_dir)
    if not path.is_file():
        raise DataError(f"'{path}' not found: give the path of a FER2013-style CSV file.")
    existing = out_dir / METADATA_FILE
    if existing.is_file() and "source_row" not in pd.read_csv(existing, nrows=0).columns:
        raise DataError(
            f"'{existing}' belongs to another dataset; importing would replace it. Choose a new "
            "folder for --out."
        )
    report, records = ImportReport(), []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"'{path}' has no column(s) {missing}; a FER2013-style CSV has 'emotion', "
                f"'pixels' and optionally 'Usage' (found {reader.fieldnames})."
            )
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            try:
                expression, picture = parse_row(row)
            except ValueError as error:
                report.skipped.append((number, str(error)))
                continue
            usage = (row.get("Usage") or "all").strip() or "all"
            file = f"{expression}/{usage}_{number:06d}.png"
            write_atomic(out_dir / file, png_bytes(picture))
            records.append({"file": file, "usage": usage, "source_row": number})
            report.written[expression] = report.written.get(expression, 0) + 1
    if records:
        table = pd.DataFrame(records).to_csv(index=False).encode()
        write_atomic(out_dir / METADATA_FILE, table)
    return report
