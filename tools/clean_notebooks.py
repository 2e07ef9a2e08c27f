"""Normalise notebooks for committing: plain metadata, outputs cleared or cleaned.

python tools/clean_notebooks.py notebooks/*.ipynb                 # clear every output
python tools/clean_notebooks.py --keep-outputs run.ipynb          # keep a real run's outputs

Cleared notebooks have no execution counts. Kept outputs lose only what changes from run to run
without meaning (timing and papermill metadata, progress-bar widgets that cannot be shown outside
a live kernel); their execution counts become 1, 2, 3... in order, as a fresh top-to-bottom run
numbers them (nbval needs counts on cells whose outputs it compares).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def clean_notebook(notebook: nbformat.NotebookNode, keep_outputs: bool) -> nbformat.NotebookNode:
    """Return `notebook` normalised in place (see the module docstring)."""
    notebook.metadata = nbformat.from_dict(
        {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    )
    code_cells = 0
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})
        cell["id"] = "parameters" if "parameters" in tags else f"cell-{index:02d}"
        if cell.cell_type != "code":
            continue
        code_cells += 1
        cell.execution_count = code_cells if keep_outputs else None
        if keep_outputs:
            cell.outputs = [
                clean_output(o, code_cells)
                for o in cell.outputs
                if WIDGET_VIEW not in o.get("data", {})
            ]
        else:
            cell.outputs = []
    return notebook


def clean_output(output: nbformat.NotebookNode, execution_count: int) -> nbformat.NotebookNode:
    """An output without metadata, numbered like its cell."""
    if "execution_count" in output:
        output.execution_count = execution_count
    if "metadata" in output:
        output.metadata = nbformat.from_dict({})
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--keep-outputs", action="store_true", help="keep (cleaned) outputs")
    parser.add_argument("--out", type=Path, help="write here instead of in place (one notebook)")
    args = parser.parse_args()
    if args.out is not None and len(args.notebooks) != 1:
        parser.error("--out takes exactly one notebook")
    for path in args.notebooks:
        notebook = clean_notebook(nbformat.read(path, as_version=4), args.keep_outputs)
        notebook.nbformat_minor = max(notebook.nbformat_minor, 5)  # cell ids need 4.5
        nbformat.write(notebook, args.out or path)


if __name__ == "__main__":
    main()
