"""The audit's files: audit.csv (every problem), audit.md (in words), audit.png (the worst)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emotion_tl.audit.run import Audit
from emotion_tl.config import Config
from emotion_tl.data.faces.crop import FaceCropSettings
from emotion_tl.data.prepare import PreparedData
from emotion_tl.figures.audit import plot_audit_sheet
from emotion_tl.storage import save_figure_atomic, write_atomic

AUDIT_NAME = "audit"
SHOWN = 5  # suspects per problem in audit.md and audit.png


def worst_per_problem(table: pd.DataFrame, count: int = SHOWN) -> dict[str, pd.DataFrame]:
    """Each problem's `count` highest-scoring rows, problems in order of how many there are."""
    order = table["problem"].value_counts().index
    return {
        problem: table[table["problem"] == problem].nlargest(count, "score") for problem in order
    }


def describe_row(item) -> str:
    text = f"`{item.file}` ({item.label}, {item.split})"
    if isinstance(item.guess, str):
        text += f": the model says {item.guess} ({item.guess_probability:.2f})"
    if isinstance(item.other, str):
        text += f": like `{item.other}`"
    return f"{text}; {item.action}"


def format_audit(data: PreparedData, audit: Audit) -> str:
    """audit.md: counts per problem, then the worst few of each in words."""
    table = audit.table
    images = table["file"].nunique()
    lines = [
        "# Data audit",
        "",
        f"{len(data.table)} images audited in {audit.seconds:.1f} s; {images} have at least one "
        "problem. Nothing was changed: these are suggestions to look at.",
        "",
    ]
    if table.empty:
        return "\n".join(lines + ["No problems found."])
    counts = table["problem"].value_counts()
    lines += ["| problem | found |", "| --- | --- |"]
    lines += [f"| {problem} | {count} |" for problem, count in counts.items()]
    for problem, rows in worst_per_problem(table).items():
        lines += ["", f"## {problem}", ""]
        lines += [f"- {describe_row(item)}" for item in rows.itertuples()]
    return "\n".join(lines + ["", "![the worst of each problem](audit.png)", ""])


def write_audit(data: PreparedData, audit: Audit, cfg: Config) -> dict[str, Path]:
    """Write audit.csv, audit.md and audit.png into cfg.checkpoint_dir."""
    out = Path(cfg.checkpoint_dir)
    paths = {kind: out / f"{AUDIT_NAME}.{kind}" for kind in ("csv", "md", "png")}
    table = audit.table.sort_values(["problem", "score"], ascending=[True, False])
    write_atomic(paths["csv"], table.to_csv(index=False).encode())
    write_atomic(paths["md"], format_audit(data, audit).encode())
    sheet = {
        problem: [(item.file, f"{item.label}: {item.score:.2f}") for item in rows.itertuples()]
        for problem, rows in worst_per_problem(audit.table).items()
    }
    figure = plot_audit_sheet(sheet, cfg.data_dir, FaceCropSettings.from_config(cfg))
    save_figure_atomic(figure, paths["png"])
    return paths
