"""The comparison report: both approaches and their ensemble on the same test images."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotion_tl.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from emotion_tl.config import APPROACHES, OUTPUT_PREFIX
from emotion_tl.data import SPLIT_FILE
from emotion_tl.evaluate import (
    Evaluation,
    McNemar,
    evaluate_mcnemar,
    evaluate_predictions,
    make_predictions_table,
    read_predictions_table,
)
from emotion_tl.figures_eval import (
    plot_comparison_report,
    plot_gradcam_report,
    plot_mistakes_report,
)
from emotion_tl.files import DataError
from emotion_tl.io import save_figure_atomic, write_atomic
from emotion_tl.model import count_trainable, make_param_groups
from emotion_tl.predict import predict_files, predictor_from_checkpoint

logger = logging.getLogger("emotion_tl")

ENSEMBLE = "ensemble"
REPORT_NAME = "comparison"


@dataclass
class ApproachOutputs:
    """What one approach left in checkpoint_dir: its best model's metadata and test predictions."""

    name: str  # the output prefix, e.g. "frozen_weights"
    checkpoint: dict[str, Any]
    predictions: pd.DataFrame  # file, label, predicted, prob_<class> per test image

    @property
    def class_names(self) -> list[str]:
        return list(self.checkpoint["class_names"])

    def facts(self) -> dict[str, float | int | None]:
        """Trainable parameters, seconds per epoch, best epoch, peak memory."""
        metrics, history = self.checkpoint.get("metrics", {}), self.checkpoint.get("history", [])
        peak = metrics.get("peak_memory_mb")
        return {
            "trainable_params": count_checkpoint_trainable(self.checkpoint),
            "seconds_per_epoch": float(np.mean([row["seconds"] for row in history]))
            if history
            else None,
            "best_epoch": int(self.checkpoint["epoch"]),
            "peak_memory_mb": None if peak is None or math.isnan(peak) else round(peak, 1),
        }


def count_checkpoint_trainable(checkpoint: dict[str, Any]) -> int:
    """Trainable parameters as recorded, or recounted for checkpoints that predate the record."""
    recorded = checkpoint.get("metrics", {}).get("trainable_params")
    if recorded is not None:
        return int(recorded)
    model = model_from_checkpoint(checkpoint)
    make_param_groups(model, checkpoint["approach"], backbone_lr=0.0, head_lr=0.0)
    return count_trainable(model)


def predict_test_split(
    checkpoint: dict[str, Any], checkpoint_dir: Path, data_dir: Path
) -> pd.DataFrame:
    """Re-create a predictions table from the checkpoint and the saved split's test images."""
    split_path = checkpoint_dir / SPLIT_FILE
    if not split_path.is_file():
        raise DataError(f"'{split_path}' not found: the test images are unknown. Train again.")
    split = pd.read_csv(split_path)
    test = split[split["split"] == "test"].reset_index(drop=True)
    predictor = predictor_from_checkpoint(checkpoint)
    _, probabilities, skipped = predict_files([predictor], [data_dir / f for f in test["file"]])
    if skipped.total():
        raise DataError(
            f"{skipped.total()} test image(s) could not be read from '{data_dir}':\n"
            f"{skipped.summary()}\nPass --data_dir with the folder the models were trained on."
        )
    labels = test["label"].map({c: i for i, c in enumerate(predictor.class_names)}).to_numpy()
    return make_predictions_table(list(test["file"]), probabilities, predictor.class_names, labels)


def load_approach_outputs(
    checkpoint_dir: str | Path, approach: str, data_dir: str | Path | None = None
) -> ApproachOutputs:
    """Read `<prefix>_best.pt` and `<prefix>_test_predictions.csv` (re-predicted when missing)."""
    checkpoint_dir = Path(checkpoint_dir)
    prefix = OUTPUT_PREFIX[approach]
    checkpoint = load_checkpoint(checkpoint_dir / f"{prefix}_best.pt")
    path = checkpoint_dir / f"{prefix}_test_predictions.csv"
    if path.is_file():
        predictions = pd.read_csv(path, dtype={"file": str, "label": str, "predicted": str})
    else:
        data_dir = Path(data_dir or checkpoint["config"]["data_dir"])
        logger.info("%s missing; predicting the test split of %s again", path.name, data_dir)
        predictions = predict_test_split(checkpoint, checkpoint_dir, data_dir)
        write_atomic(path, predictions.to_csv(index=False).encode())
    return ApproachOutputs(prefix, checkpoint, predictions)


def format_cell(value: Any) -> str:
    """A table cell for people: thousands separators, three decimals, a dash when empty."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:.3f}"


@dataclass
class Comparison:
    """Each approach's and the ensemble's test scores, and the paired test between approaches."""

    approaches: list[ApproachOutputs]
    evaluations: dict[str, Evaluation]  # each approach's name, then "ensemble"
    mcnemar: McNemar

    def table(self) -> pd.DataFrame:
        """One row per model: training facts and test scores (the ensemble trains nothing)."""
        facts = {a.name: a.facts() for a in self.approaches}
        rows = [
            {"model": name} | facts.get(name, {}) | evaluation.scores()
            for name, evaluation in self.evaluations.items()
        ]
        # Nullable integers: the ensemble's empty cells must not turn the counts into floats.
        return pd.DataFrame(rows).astype({"trainable_params": "Int64", "best_epoch": "Int64"})

    def to_dict(self) -> dict[str, Any]:
        """Everything in plain types, for comparison.json."""
        facts = {a.name: a.facts() for a in self.approaches}
        return {
            "class_names": self.approaches[0].class_names,
            "models": {
                name: facts.get(name, {}) | evaluation.to_dict()
                for name, evaluation in self.evaluations.items()
            },
            "mcnemar": self.mcnemar.to_dict(),
        }

    def to_markdown(self) -> str:
        """A short summary for people: the table, the paired test in words, per-class scores."""
        table = self.table().set_index("model").T.map(format_cell)
        lines = [
            "# Frozen weights vs fine-tuning",
            "",
            f"Scores on the same {self.num_test_images()} held-out test images; the ensemble "
            "averages both models' probabilities.",
            "",
            table.to_markdown(
                colalign=["left"] + ["right"] * table.shape[1], disable_numparse=True
            ),
            "",
            f"**Paired test (McNemar, exact):** {self.mcnemar.sentence()}",
            "",
        ]
        for name, evaluation in self.evaluations.items():
            lines += [
                f"## {name}: per class",
                "",
                evaluation.per_class.map(format_cell).to_markdown(
                    colalign=["left"] + ["right"] * 4, disable_numparse=True
                ),
                "",
            ]
        lines += ["![comparison](comparison.png)", ""]
        return "\n".join(lines)

    def num_test_images(self) -> int:
        return next(iter(self.evaluations.values())).num_images


def build_comparison(approaches: list[ApproachOutputs]) -> Comparison:
    """Score each approach and their ensemble; McNemar's test on the first two approaches."""
    if len(approaches) != 2:
        raise ValueError("a comparison needs exactly two approaches.")
    first, second = approaches
    if first.class_names != second.class_names:
        raise CheckpointError(
            f"{first.name} has classes {first.class_names} but {second.name} has "
            f"{second.class_names}; train both on the same categories (--approach both)."
        )
    if list(first.predictions["file"]) != list(second.predictions["file"]):
        raise DataError(
            f"{first.name} and {second.name} were tested on different images; "
            "train both in one run (--approach both) so they share split.csv."
        )
    class_names = first.class_names
    labels, probabilities_a = read_predictions_table(first.predictions, class_names)
    _, probabilities_b = read_predictions_table(second.predictions, class_names)
    evaluations = {
        first.name: evaluate_predictions(labels, probabilities_a, class_names),
        second.name: evaluate_predictions(labels, probabilities_b, class_names),
        ENSEMBLE: evaluate_predictions(
            labels, (probabilities_a + probabilities_b) / 2, class_names
        ),
    }
    mcnemar = evaluate_mcnemar(
        labels, probabilities_a.argmax(1), probabilities_b.argmax(1), (first.name, second.name)
    )
    return Comparison(approaches, evaluations, mcnemar)


def load_comparison(checkpoint_dir: str | Path, data_dir: str | Path | None = None) -> Comparison:
    """The comparison of both approaches from a checkpoint_dir's saved outputs."""
    checkpoint_dir = Path(checkpoint_dir)
    missing = [
        OUTPUT_PREFIX[a]
        for a in APPROACHES
        if not (checkpoint_dir / f"{OUTPUT_PREFIX[a]}_best.pt").is_file()
    ]
    if missing:
        raise CheckpointError(
            f"no {', '.join(m + '_best.pt' for m in missing)} in '{checkpoint_dir}'; "
            "train both approaches first (python -m emotion_tl --approach both)."
        )
    return build_comparison(
        [load_approach_outputs(checkpoint_dir, a, data_dir) for a in APPROACHES]
    )


def write_comparison_report(
    checkpoint_dir: str | Path, data_dir: str | Path | None = None
) -> dict[str, Path]:
    """Write comparison.csv/.json/.md/.png into checkpoint_dir; return their paths."""
    checkpoint_dir = Path(checkpoint_dir)
    comparison = load_comparison(checkpoint_dir, data_dir)
    paths = {
        kind: checkpoint_dir / f"{REPORT_NAME}.{kind}" for kind in ("csv", "json", "md", "png")
    }
    write_atomic(paths["csv"], comparison.table().to_csv(index=False).encode())
    write_atomic(paths["json"], json.dumps(comparison.to_dict(), indent=2).encode())
    write_atomic(paths["md"], comparison.to_markdown().encode())
    save_figure_atomic(plot_comparison_report(comparison), paths["png"])
    data_dir = Path(data_dir or comparison.approaches[0].checkpoint["config"]["data_dir"])
    try:
        for kind, plot in (("mistakes", plot_mistakes_report), ("gradcam", plot_gradcam_report)):
            paths[kind] = checkpoint_dir / f"{kind}.png"
            save_figure_atomic(plot(comparison, data_dir), paths[kind])
    except OSError as error:  # the images moved: the report stands without these figures
        logger.warning("No mistakes/Grad-CAM figures: cannot read the test images (%s)", error)
        paths = {k: p for k, p in paths.items() if p.is_file()}
    logger.info(comparison.mcnemar.sentence())
    return paths
