"""The course notebooks: they run headless with smoke parameters, nbval agrees, and they are clean.

One module-scoped fixture runs all five notebooks in order with papermill (02 and 03 write
checkpoints that 04 reads; 05 trains each source in a sub-folder of its own); the tests then check
what each run produced.
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
import torch
from conftest import make_image_folder

from emotion_tl.config import Config

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ORDER = ["01_explore_data", "02_frozen_weights", "03_finetuning", "04_compare", "05_which_source"]
OWN_PARAMETERS = {"05_which_source": {"sources"}}  # a notebook's parameters that are no field
# faceapi_recognition, one of 05's sources, reads 103 px or more (the smoke's 32 px is too small)
OWN_SIDE = {"05_which_source": {"image_size": 104}}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def make_smoke_data(root: Path) -> Path:
    """Three tiny categories plus a metadata.csv with one identity per image number."""
    data_dir = make_image_folder(root, {"circle": 6, "square": 6, "triangle": 6})
    rows = [
        {"file": f"{category}/{category}_{index:03d}.png", "identity": index, "intensity": 0.5}
        for category in ("circle", "square", "triangle")
        for index in range(6)
    ]
    pd.DataFrame(rows).to_csv(data_dir / "metadata.csv", index=False)
    return data_dir


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    """Run 01 -> 05 with smoke parameters; return the parameters and the executed notebooks."""
    root = tmp_path_factory.mktemp("notebooks")
    parameters = {
        "data_dir": str(make_smoke_data(root / "images")),
        "categories": ["circle", "square"],  # a list: papermill's Python API keeps it one
        "epochs": 1,
        "batch_size": 8,
        "device": "cpu",
        "checkpoint_dir": str(root / "checkpoints"),
        "image_size": 32,
        "max_images_per_category": 6,
        "pretrained": False,
    }
    executed = {}
    for name in ORDER:
        output = root / f"{name}.ipynb"
        papermill.execute_notebook(
            NOTEBOOKS / f"{name}.ipynb",
            output,
            parameters=parameters | OWN_SIDE.get(name, {}),
            kernel_name="python3",
            cwd=root,
            progress_bar=False,
        )
        executed[name] = nbformat.read(output, as_version=4)
    return {"root": root, "parameters": parameters, "executed": executed}


def code_outputs(notebook: nbformat.NotebookNode, contains: str) -> list:
    """The outputs of the one code cell whose source contains `contains`."""
    cells = [c for c in notebook.cells if c.cell_type == "code" and contains in c.source]
    assert len(cells) == 1, f"expected one cell containing {contains!r}, found {len(cells)}"
    return cells[0].outputs


def count_figures(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_explore_notebook_counts_and_shows_the_data(smoke):
    notebook = smoke["executed"]["01_explore_data"]
    (table,) = code_outputs(notebook, "count_images(data)")
    text = table["data"]["text/plain"]
    # 6 images per category, 2 categories; split by identity (metadata.csv): 4/1/1 each.
    assert "circle" in text and "square" in text and "triangle" not in text
    assert text.splitlines()[-1].split() == ["all", "8", "2", "2", "12"]
    (summary,) = code_outputs(notebook, "summarize_metadata(metadata")
    assert "people" in summary["data"]["text/plain"]
    (faces,) = code_outputs(notebook, "describe_faces(data.framings)")
    # Drawn shapes have no faces: all 12 are counted and kept whole (face_crop auto).
    assert faces["text"].startswith("Faces: 0 cropped to the face")
    assert "12 with no face found (kept whole)" in faces["text"]
    # class balance, samples, face crops, intensity histogram, augmentation
    assert count_figures(notebook) == 5
    (problems,) = code_outputs(notebook, "audit_data(cfg, data)")
    assert "problem" in problems["data"]["text/plain"]
    (cleaner,) = code_outputs(notebook, "make_cleaner(")
    assert WIDGET_VIEW in cleaner["data"]


@pytest.mark.parametrize(
    ("name", "prefix", "trainable"),
    [("02_frozen_weights", "frozen_weights", 2048 * 2 + 2), ("03_finetuning", "finetuning", None)],
)
def test_training_notebooks_write_checkpoints_and_metrics(smoke, name, prefix, trainable):
    out_dir = Path(smoke["parameters"]["checkpoint_dir"])
    for suffix in ("best.pt", "final.pt", "history.csv", "confusion_matrix.csv"):
        assert (out_dir / f"{prefix}_{suffix}").is_file(), suffix
    history = pd.read_csv(out_dir / f"{prefix}_history.csv")
    assert len(history) == smoke["parameters"]["epochs"]
    # The CSV is the history the final checkpoint records, and accuracies are shares of the
    # 8 training and 2 validation images.
    final = torch.load(out_dir / f"{prefix}_final.pt", weights_only=True)
    pd.testing.assert_frame_equal(history, pd.DataFrame(final["history"]), check_dtype=False)
    for column, count in (("train_acc", 8), ("val_acc", 2)):
        assert ((history[column] * count).round(9) % 1 == 0).all(), history[column]
    assert history["train_loss"].notna().all() and (history["train_loss"] > 0).all()
    confusion = pd.read_csv(out_dir / f"{prefix}_confusion_matrix.csv", index_col=0)
    assert confusion.to_numpy().sum() == 2 * 1  # one test image per category

    notebook = smoke["executed"][name]
    (parameter_table,) = [
        o for o in code_outputs(notebook, "make_parameter_table(model)") if "data" in o
    ]
    total_row = parameter_table["data"]["text/plain"].splitlines()[-1].split()
    assert total_row[0] == "total"
    parameters, trained = int(total_row[1]), int(total_row[2])
    assert trained == (trainable or parameters)
    assert count_figures(notebook) >= 2  # curves and confusion matrix


def test_widget_cells_display_but_do_not_train_headless(smoke):
    for name in ("02_frozen_weights", "03_finetuning"):
        outputs = code_outputs(smoke["executed"][name], "make_training_widgets(")
        assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs), name
    assert not (Path(smoke["parameters"]["checkpoint_dir"]) / "widget_runs").exists()


def test_compare_notebook_reads_both_runs(smoke):
    notebook = smoke["executed"]["04_compare"]
    assert count_figures(notebook) >= 3  # curves, confusion matrices, disagreements
    text = "\n".join(
        output.get("data", {}).get("text/markdown", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "frozen" in text and "fine-tuning" in text


def test_sources_notebook_trains_and_compares_each_source(smoke):
    notebook = smoke["executed"]["05_which_source"]
    assert count_figures(notebook) == 3  # inputs, feature maps, the sources' accuracies
    outputs = code_outputs(notebook, "build_sources_comparison(")
    (table,) = [o for o in outputs if o.get("output_type") == "execute_result"]
    rows = table["data"]["text/plain"]
    for model in (
        "resnet50/frozen_weights",
        "faceapi_expression/finetuning",
        "fer_mini_xception/finetuning",
        "faceapi_recognition/finetuning",
    ):
        assert model in rows
    assert "zero_shot" not in rows  # circles and squares are no expressions
    out = Path(smoke["parameters"]["checkpoint_dir"]) / "sources"  # beside 02's and 03's
    assert (out / "resnet50" / "finetuning_best.pt").is_file()
    assert (out / "faceapi_expression" / "frozen_weights_best.pt").is_file()
    assert (out / "fer_mini_xception" / "frozen_weights_best.pt").is_file()
    assert (out / "faceapi_recognition" / "frozen_weights_best.pt").is_file()
    assert (out / "comparison.md").read_text().startswith("# Which model to transfer from")


def test_nbval_reruns_the_notebooks(smoke):
    """nbval re-executes notebooks and compares the cells marked NBVAL_CHECK_OUTPUT.

    The smoke runs above are re-run (their outputs must repeat exactly), and so is the committed
    01 at its defaults on the bundled Images/, whose stored counts and split sizes must still hold.
    """
    paths = [str(smoke["root"] / f"{name}.ipynb") for name in ORDER]
    paths.append(str(NOTEBOOKS / "01_explore_data.ipynb"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-q",
            *paths,
        ],
        capture_output=True,
        text=True,
        cwd=smoke["root"],
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "passed" in result.stdout


def test_misspelt_parameter_stops_the_notebook(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="did you mean 'epochs'"):
        papermill.execute_notebook(
            NOTEBOOKS / "01_explore_data.ipynb",
            tmp_path / "out.ipynb",
            parameters={"epoch": 3},
            kernel_name="python3",
            cwd=tmp_path,
            progress_bar=False,
        )


def parameter_names(cell: nbformat.NotebookNode) -> list[str]:
    """Names assigned in a parameters cell; each value must be a plain literal."""
    names = []
    for statement in ast.parse(cell.source).body:
        assert isinstance(statement, ast.Assign), ast.dump(statement)
        ast.literal_eval(statement.value)  # raises unless a plain literal
        names += [target.id for target in statement.targets]
    return names


@pytest.mark.parametrize("name", ORDER)
def test_committed_notebooks_are_clean(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert set(notebook.metadata) == {"kernelspec", "language_info"}
    assert notebook.metadata.kernelspec.name == "python3"
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    fields = {f.name for f in dataclasses.fields(Config)}
    assert set(parameter_names(parameters[0])) <= fields | OWN_PARAMETERS.get(name, set())
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    executed = any(cell.outputs for cell in code)
    # Without outputs, no counts; with a real run's outputs, the counts of a fresh run: 1, 2, ...
    expected = list(range(1, len(code) + 1)) if executed else [None] * len(code)
    assert [cell.execution_count for cell in code] == expected
    for cell in notebook.cells:
        assert "injected-parameters" not in cell.metadata.get("tags", [])
        assert set(cell.metadata) <= {"tags"}
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error"
            assert output.get("execution_count") in (None, cell.execution_count)
            assert WIDGET_VIEW not in output.get("data", {})


def test_01s_committed_config_is_what_todays_code_prints():
    # 01 shows the Config its parameters make; a field added or a default changed without
    # running 01 again leaves that output stale, and this test says so.
    from emotion_tl.notebook import config_from_parameters

    notebook = nbformat.read(NOTEBOOKS / "01_explore_data.ipynb", as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(parameters.source, namespace)  # plain literals: the notebook's own settings
    namespace.pop("__builtins__")
    shown = next(c for c in notebook.cells if c.source.startswith("cfg = config_from_parameters"))
    (output,) = [o for o in shown.outputs if o.output_type == "execute_result"]
    expected = repr(config_from_parameters(namespace))
    assert output.data["text/plain"] == expected, (
        "notebooks/01_explore_data.ipynb shows an old Config: run it again and commit its outputs"
    )
