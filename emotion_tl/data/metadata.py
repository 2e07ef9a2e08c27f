"""The optional `data_dir/metadata.csv`: who is in each picture (and anything else recorded).

With `file` and `identity` columns it keeps each person in one split. The bundled demo faces
also record each picture's expression `intensity` and how it was drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

METADATA_FILE = "metadata.csv"


def read_metadata(data_dir: str | Path) -> pd.DataFrame | None:
    """`data_dir/metadata.csv` with a `category` column from each file's folder, or None.

    `file` and `identity` are read as text, so identities match however they are written.
    """
    path = Path(data_dir) / METADATA_FILE
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"file": str, "identity": str})
    if "file" in table.columns:
        table["category"] = table["file"].str.split("/").str[0]
    return table


def read_identities(data_dir: str | Path) -> dict[str, str]:
    """file -> identity from metadata.csv, or empty when there is no such file or column."""
    table = read_metadata(data_dir)
    if table is None or not {"file", "identity"} <= set(table.columns):
        return {}
    return dict(zip(table["file"], table["identity"], strict=True))


def summarize_metadata(metadata: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    """Per category: images, distinct people and, when recorded, the expression intensity."""
    chosen = metadata[metadata["category"].isin(categories)]
    summary = chosen.groupby("category").agg(images=("file", "size"))
    if "identity" in chosen.columns:
        summary["people"] = chosen.groupby("category")["identity"].nunique()
    if "intensity" in chosen.columns:
        stats = chosen.groupby("category")["intensity"].agg(["mean", "min", "max"]).round(2)
        summary = summary.join(stats.add_prefix("intensity "))
    return summary.reindex(list(categories))
