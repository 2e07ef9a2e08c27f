"""A contact sheet: a grid of pictures, one row per expression, for looking at the output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

LABEL_HEIGHT = 16


def make_contact_sheet(
    rows: Sequence[dict[str, object]],
    image_dir: Path,
    expressions: Sequence[str],
    columns: int = 8,
    cell: int = 160,
) -> Image.Image:
    """Grid of the first `columns` pictures of each expression, labelled with their intensity."""
    sheet = Image.new("RGB", (columns * cell, len(expressions) * (cell + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    for row_index, expression in enumerate(expressions):
        chosen = [row for row in rows if row["expression"] == expression][:columns]
        top = row_index * (cell + LABEL_HEIGHT)
        for column, row in enumerate(chosen):
            picture = Image.open(Path(image_dir) / str(row["file"])).convert("RGB")
            sheet.paste(
                picture.resize((cell, cell), Image.Resampling.LANCZOS),
                (column * cell, top + LABEL_HEIGHT),
            )
            label = f"{expression} id{row['identity']} i={float(row['intensity']):.2f}"
            draw.text((column * cell + 3, top + 2), label, fill="black")
    return sheet
