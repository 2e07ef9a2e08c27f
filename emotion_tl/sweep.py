"""Sweeps: one training notebook (02 or 03) run with papermill for every cell of a parameter grid.

A sweep file (YAML) names the notebook, the grid and the settings every run shares:

    notebook: 02_frozen_weights.ipynb     # relative to the sweep file's folder
    grid:                                 # every combination runs, in this order
      learning_rate: [0.0003, 0.001, 0.003]
      epochs: [5, 10]
    parameters:                           # the same for every run (optional)
      max_images_per_category: 40
    output: output/sweep                  # relative to the sweep file's folder (optional)

Each cell of the grid gets its own folder under `output`, named by its values, holding the
executed notebook and its `checkpoints/`. A cell whose folder already holds a finished run with
the same parameters is skipped, so an interrupted sweep continues where it stopped; a cell whose
notebook fails is reported and retried on the next call, and the others still run. At the end
every finished run's scores are gathered into `sweep.csv`, and `sweep.png` maps the best
validation accuracy over the grid (validation, not test: choosing settings by their test score
would make that score optimistic).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emotion_tl.config import APPROACHES, OUTPUT_PREFIX, Config
from emotion_tl.figures.sweep import plot_sweep
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.storage import save_figure_atomic, write_atomic
from emotion_tl.training.outputs import make_output_paths

logger = logging.getLogger("emotion_tl")

SWEEP_KEYS = {"notebook", "grid", "parameters", "output"}
DONE_FILE = "sweep_run.json"  # written in a cell's folder once its notebook ran to the end
TABLE_FILE, FIGURE_FILE = "sweep.csv", "sweep.png"


class SweepError(ValueError):
    """The sweep file cannot be run; the message says what to change."""


@dataclass(frozen=True)
class Sweep:
    notebook: Path
    grid: dict[str, list[Any]]
    parameters: dict[str, Any]
    output: Path

    def cells(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values, the first name varying slowest."""
        names = list(self.grid)
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]

    def folder(self, cell: dict[str, Any]) -> Path:
        """The cell's folder, named by its values: learning_rate=0.001_epochs=5."""
        return self.output / "_".join(f"{name}={_slug(value)}" for name, value in cell.items())


def _slug(value: Any) -> str:
    """A value as a piece of a folder name: lists joined by '-', odd characters as '-'."""
    text = "-".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)


def _check_names(names: list[str], where: str) -> None:
    fields = [f.name for f in dataclasses.fields(Config)]
    for name in names:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SweepError(
                f"'{name}' in {where} is not a setting{hint}. Settings: {', '.join(fields)}."
            )


def read_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; paths in it are relative to its folder."""
    try:
        import papermill  # noqa: F401  (what runs the notebooks; it brings yaml)
        import yaml
    except ImportError:
        raise SweepError(
            "sweeps need papermill: pip install -e '.[notebooks]' (make setup installs it)."
        ) from None

    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file '{path}' not found; notebooks/sweep.yaml is an example.")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(spec) - SWEEP_KEYS) if isinstance(spec, dict) else ["(not a mapping)"]
    if unknown:
        raise SweepError(
            f"{path}: unknown key(s) {unknown}; a sweep file has {sorted(SWEEP_KEYS)}."
        )
    grid, parameters = spec.get("grid") or {}, spec.get("parameters") or {}
    if not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepError(f"{path}: 'grid' must map each setting to a non-empty list of values.")
    _check_names(list(grid), "grid")
    _check_names(list(parameters), "parameters")
    shared = sorted(set(grid) & set(parameters))
    if shared or "checkpoint_dir" in grid or "checkpoint_dir" in parameters:
        raise SweepError(
            f"{path}: {shared or ['checkpoint_dir']} set twice or by hand; each run's "
            "checkpoint_dir is its own folder under 'output'."
        )
    notebook = path.parent / str(spec.get("notebook", ""))
    if not notebook.is_file() or notebook.suffix != ".ipynb":
        raise SweepError(f"{path}: notebook '{notebook}' not found; name 02 or 03's file.")
    output = path.parent / str(spec.get("output", "output/sweep"))
    return Sweep(notebook, dict(grid), dict(parameters), output)


def run_cell(sweep: Sweep, cell: dict[str, Any]) -> str:
    """Run the notebook for one grid cell unless already finished: "done", "skipped" or "failed"."""
    import papermill

    folder = sweep.folder(cell)
    parameters = (
        sweep.parameters | cell | {"checkpoint_dir": str((folder / "checkpoints").resolve())}
    )
    marker = folder / DONE_FILE
    if marker.is_file() and json.loads(marker.read_text()) == parameters:
        return "skipped"
    marker.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("Sweep: %s", folder.name)
    try:
        papermill.execute_notebook(
            sweep.notebook,
            folder / sweep.notebook.name,
            parameters=parameters,
            kernel_name="python3",
            cwd=sweep.notebook.parent,
            progress_bar=False,
        )
    except Exception as error:  # one bad cell must not end the sweep
        logger.warning("Sweep: %s failed (%s); the next call runs it again.", folder.name, error)
        return "failed"
    write_atomic(marker, json.dumps(parameters, sort_keys=True).encode())
    return "done"


def gather(sweep: Sweep) -> pd.DataFrame:
    """One row per finished cell and approach: its values and its best checkpoint's scores."""
    rows = []
    for cell in sweep.cells():
        folder = sweep.folder(cell)
        if not (folder / DONE_FILE).is_file():
            continue
        for approach in APPROACHES:
            paths = make_output_paths(folder / "checkpoints", approach)
            if paths["best"].is_file() and paths["history_csv"].is_file():
                checkpoint = load_checkpoint(paths["best"])
                metrics = checkpoint["metrics"]
                epochs = pd.read_csv(paths["history_csv"])["seconds"].sum()
                rows.append(
                    cell
                    | {
                        "approach": OUTPUT_PREFIX[approach],
                        "best_epoch": int(checkpoint["epoch"]),
                        "best_val_acc": metrics["val_acc"],
                        "test_acc": metrics["test_acc"],
                        "seconds": round(metrics.get("setup_seconds", 0.0) + epochs, 2),
                        "folder": folder.name,
                    }
                )
    return pd.DataFrame(rows)


def run_sweep(path: str | Path) -> dict[str, Any]:
    """Run every cell of the sweep file at `path` (skipping finished ones), then gather them."""
    sweep = read_sweep(path)
    cells = sweep.cells()
    logger.info("Sweep of %s: %d runs into %s", sweep.notebook.name, len(cells), sweep.output)
    outcomes = [run_cell(sweep, cell) for cell in cells]
    table = gather(sweep)
    counts = {kind: outcomes.count(kind) for kind in ("done", "skipped", "failed")}
    result: dict[str, Any] = {"counts": counts, "table": table}
    if table.empty:
        return result
    write_atomic(sweep.output / TABLE_FILE, table.to_csv(index=False).encode())
    result["csv"] = sweep.output / TABLE_FILE
    if len(sweep.grid) <= 2:
        save_figure_atomic(plot_sweep(table, list(sweep.grid)), sweep.output / FIGURE_FILE)
        result["png"] = sweep.output / FIGURE_FILE
    else:
        logger.info("Sweep: a heatmap needs one or two grid settings; see %s", TABLE_FILE)
    return result
