"""Both approaches and their ensemble scored on the same test images, from what training saved."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotion_tl.config import APPROACHES, OUTPUT_PREFIX
from emotion_tl.data.faces.crop import FaceCropSettings
from emotion_tl.data.files import DataError
from emotion_tl.evaluation.metrics import Evaluation, evaluate_predictions
from emotion_tl.evaluation.paired import McNemar, evaluate_mcnemar
from emotion_tl.evaluation.predictions import read_predictions_table
from emotion_tl.model.backbones import get_backbone
from emotion_tl.model.checkpoint import CheckpointError, load_checkpoint

ENSEMBLE = "ensemble"
ZERO_SHOT = "zero_shot"  # the untrained source model's own answer (training/zero_shot.py)
ZERO_SHOT_FILE = "zero_shot_test_predictions.csv"


@dataclass
class ApproachOutputs:
    """What one approach left in checkpoint_dir: its best model's metadata and test predictions."""

    name: str  # the output prefix, e.g. "frozen_weights"
    checkpoint: dict[str, Any]
    predictions: pd.DataFrame  # file, label, predicted, prob_<class> per test image

    @property
    def class_names(self) -> list[str]:
        return list(self.checkpoint["class_names"])

    @property
    def reads(self) -> str:
        """What the model read, in words: '224x224 colour'."""
        backbone = get_backbone(self.checkpoint["backbone"])
        return backbone.describe_input(int(self.checkpoint["image_size"]))

    @property
    def face_crop(self) -> FaceCropSettings:
        """The face-crop settings the model was trained with (as its checkpoint records)."""
        return FaceCropSettings.from_dict(self.checkpoint.get("config") or {})

    def facts(self) -> dict[str, float | int | None]:
        """Trainable parameters, seconds per epoch, seconds before the first epoch (None in
        checkpoints older than that record), best epoch, peak memory (as recorded)."""
        metrics, history = self.checkpoint.get("metrics", {}), self.checkpoint.get("history", [])
        peak, trainable = metrics.get("peak_memory_mb"), metrics.get("trainable_params")
        setup = metrics.get("setup_seconds")
        return {
            "trainable_params": None if trainable is None else int(trainable),
            "seconds_per_epoch": float(np.mean([row["seconds"] for row in history]))
            if history
            else None,
            "setup_seconds": None if setup is None else float(setup),
            "training_seconds": None
            if setup is None
            else float(setup) + sum(row["seconds"] for row in history),
            "best_epoch": int(self.checkpoint["epoch"]),
            "peak_memory_mb": None if peak is None or math.isnan(peak) else round(peak, 1),
        }


@dataclass
class Comparison:
    """Each approach's and the ensemble's test scores, and the paired test between approaches."""

    approaches: list[ApproachOutputs]
    evaluations: dict[str, Evaluation]  # each approach's name, then "ensemble"
    mcnemar: McNemar

    @property
    def class_names(self) -> list[str]:
        return self.approaches[0].class_names

    def read_probabilities(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Test labels (N,) and both approaches' probabilities (N, C), row-aligned."""
        return read_paired_predictions(self.approaches, self.class_names)

    def table(self) -> pd.DataFrame:
        """One row per model: training facts and test scores (the ensemble and the zero-shot
        baseline train nothing)."""
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
            "class_names": self.class_names,
            "models": {
                name: facts.get(name, {}) | evaluation.to_dict()
                for name, evaluation in self.evaluations.items()
            },
            "mcnemar": self.mcnemar.to_dict(),
        }

    def num_test_images(self) -> int:
        return next(iter(self.evaluations.values())).num_images


def read_paired_predictions(
    approaches: list[ApproachOutputs], class_names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (N,) and the two approaches' probabilities (N, C) from their predictions tables."""
    first, second = approaches
    labels, probabilities_a = read_predictions_table(first.predictions, class_names)
    _, probabilities_b = read_predictions_table(second.predictions, class_names)
    return labels, probabilities_a, probabilities_b


def build_comparison(
    approaches: list[ApproachOutputs], zero_shot: pd.DataFrame | None = None
) -> Comparison:
    """Score each approach and their ensemble, and the zero-shot baseline's predictions where
    there are any; McNemar's test on the first two approaches."""
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
    labels, probabilities_a, probabilities_b = read_paired_predictions(approaches, class_names)
    ensemble = (probabilities_a + probabilities_b) / 2
    evaluations = {
        first.name: evaluate_predictions(labels, probabilities_a, class_names),
        second.name: evaluate_predictions(labels, probabilities_b, class_names),
        ENSEMBLE: evaluate_predictions(labels, ensemble, class_names),
    }
    if zero_shot is not None:
        if list(zero_shot["file"]) != list(first.predictions["file"]):
            raise DataError(
                f"{ZERO_SHOT_FILE} scores other test images than {first.name}; delete it and "
                "train again, or leave it out of the comparison."
            )
        evaluations[ZERO_SHOT] = evaluate_predictions(
            labels, read_predictions_table(zero_shot, class_names)[1], class_names
        )
    mcnemar = evaluate_mcnemar(
        labels, probabilities_a.argmax(1), probabilities_b.argmax(1), (first.name, second.name)
    )
    return Comparison(approaches, evaluations, mcnemar)


def saved_files(checkpoint_dir: Path, approach: str) -> tuple[Path, Path]:
    """Where training saved `approach`'s best checkpoint and its test predictions."""
    prefix = OUTPUT_PREFIX[approach]
    return checkpoint_dir / f"{prefix}_best.pt", checkpoint_dir / f"{prefix}_test_predictions.csv"


def load_approach_outputs(checkpoint_dir: str | Path, approach: str) -> ApproachOutputs:
    """Read `<prefix>_best.pt` and `<prefix>_test_predictions.csv` (the `compare` command
    predicts a missing predictions file again: `evaluation.repredict`)."""
    checkpoint_dir = Path(checkpoint_dir)
    best, path = saved_files(checkpoint_dir, approach)
    if best.is_file() and not path.is_file():
        raise CheckpointError(
            f"no {path.name} in '{checkpoint_dir}'; `python -m emotion_tl compare "
            f"--checkpoint_dir {checkpoint_dir}` predicts the saved test split again."
        )
    checkpoint = load_checkpoint(best)
    predictions = pd.read_csv(path, dtype={"file": str, "label": str, "predicted": str})
    return ApproachOutputs(OUTPUT_PREFIX[approach], checkpoint, predictions)


def load_comparison(checkpoint_dir: str | Path) -> Comparison:
    """The comparison of both approaches (and the zero-shot baseline, where the run wrote one)
    from a checkpoint_dir's saved outputs."""
    checkpoint_dir = Path(checkpoint_dir)
    missing = [
        OUTPUT_PREFIX[a] for a in APPROACHES if not saved_files(checkpoint_dir, a)[0].is_file()
    ]
    if missing:
        raise CheckpointError(
            f"no {', '.join(m + '_best.pt' for m in missing)} in '{checkpoint_dir}'; "
            "train both approaches first (python -m emotion_tl --approach both)."
        )
    zero_shot = checkpoint_dir / ZERO_SHOT_FILE
    return build_comparison(
        [load_approach_outputs(checkpoint_dir, a) for a in APPROACHES],
        pd.read_csv(zero_shot, dtype={"file": str, "label": str, "predicted": str})
        if zero_shot.is_file()
        else None,
    )
