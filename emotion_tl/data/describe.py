"""Tables that describe a prepared dataset: counts per category and split, the report printed
before training, and the files' sizes and colour modes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from PIL import Image

from emotion_tl.data.balance import compute_imbalance, describe_balance, resolve_balance
from emotion_tl.data.faces.crop import CROPPED, FILLS_FRAME, NO_FACE, WHOLE, Framing
from emotion_tl.data.prepare import PreparedData
from emotion_tl.data.split import SPLITS


def count_images(data: PreparedData) -> pd.DataFrame:
    """Images per category (rows) and split (columns), with totals ("all")."""
    table = pd.crosstab(data.table["label"], data.table["split"], margins=True, margins_name="all")
    table = table.reindex(index=[*data.class_names, "all"], columns=[*SPLITS, "all"], fill_value=0)
    table.index.name, table.columns.name = "category", "split"
    return table


def make_data_report(data: PreparedData, balance: str, examples: int = 3) -> str:
    """The short text printed before training: images per category and split, imbalance,
    skipped files by reason, duplicates."""
    lines = [
        f"Data: {len(data.table)} images in {len(data.class_names)} categories",
        count_images(data).to_string(),
    ]
    train_counts = data.train_counts()
    method = describe_balance(resolve_balance(balance, train_counts))
    ratio = compute_imbalance(train_counts)
    lines.append(f"Imbalance (largest/smallest training category): {ratio:.2f} -> {method}")
    lines.append(describe_faces(data.framings))
    skipped = data.skipped
    if skipped.total():
        lines.append(f"Skipped {skipped.total()} file(s):\n{skipped.summary(examples)}")
    else:
        lines.append("Skipped: none")
    for title, groups in (
        ("identical images in two categories, left out", data.duplicates.across),
        ("sets of identical images within a category, kept in one split", data.duplicates.within),
        (
            "sets of near-identical images (resized or re-encoded) within a category, kept in "
            "one split",
            data.duplicates.near,
        ),
    ):
        if groups:
            shown = "; ".join(" = ".join(names) for names in groups[:examples])
            more = "; ..." if len(groups) > examples else ""
            lines.append(f"{len(groups)} {title}: {shown}{more}")
    return "\n".join(lines)


def describe_faces(framings: Sequence[Framing]) -> str:
    """One line on the face crop: how many images were cropped, left whole and why, and how
    many showed more than one face."""
    counts = Counter(f.outcome for f in framings)
    if not framings or counts[WHOLE] == len(framings):
        return "Face crop: off (whole images)"
    parts = [f"{counts[CROPPED]} cropped to the face"]
    if counts[FILLS_FRAME]:
        parts.append(f"{counts[FILLS_FRAME]} left whole (the face fills the frame)")
    parts.append(f"{counts[NO_FACE]} with no face found (kept whole)")
    several = sum(f.faces > 1 for f in framings)
    parts.append(f"{several} with more than one face (the largest used)")
    return "Faces: " + ", ".join(parts)


def describe_image_files(data_dir: str | Path, files: Sequence[str]) -> pd.DataFrame:
    """Width, height, colour mode and format of each file as stored (read from headers only)."""
    rows = []
    for file in files:
        with Image.open(Path(data_dir) / file) as image:
            rows.append((file, image.width, image.height, image.mode, image.format))
    return pd.DataFrame(rows, columns=["file", "width", "height", "mode", "format"])


def summarize_image_files(described: pd.DataFrame) -> pd.DataFrame:
    """How many files share each size, mode and format."""
    columns = ["width", "height", "mode", "format"]
    return described.groupby(columns).size().rename("images").reset_index()
