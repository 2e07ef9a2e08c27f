"""Test-split metrics (scikit-learn) and McNemar's exact test for two models on the same images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from emotion_tl.metrics import make_confusion_table

SIGNIFICANCE_LEVEL = 0.05
PROBABILITY_PREFIX = "prob_"  # predictions tables: one `prob_<class>` column per class


@dataclass
class Evaluation:
    """One model's scores on the test split."""

    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    roc_auc: float | None  # two classes only
    num_images: int
    per_class: pd.DataFrame  # rows: classes; columns: precision, recall, f1, support
    confusion: pd.DataFrame  # counts; rows true, columns predicted
    confusion_normalized: pd.DataFrame  # each row divided by its total (recall on the diagonal)

    def scores(self) -> dict[str, float | int | None]:
        """The single-number scores, for tables."""
        return {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "roc_auc": self.roc_auc,
            "test_images": self.num_images,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON."""
        return self.scores() | {
            "per_class": self.per_class.to_dict(orient="index"),
            "confusion": self.confusion.to_numpy().tolist(),
            "confusion_normalized": self.confusion_normalized.to_numpy().round(4).tolist(),
        }


def evaluate_predictions(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> Evaluation:
    """Score probabilities (N, C) against integer labels (N,) with scikit-learn."""
    labels = np.asarray(labels)
    predictions = np.asarray(probabilities).argmax(1)
    classes = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index(class_names, name="class"),
    )
    roc_auc = None
    if len(class_names) == 2 and len(set(labels.tolist())) == 2:
        roc_auc = float(roc_auc_score(labels, probabilities[:, 1]))
    confusion = make_confusion_table(labels, predictions, class_names)
    row_totals = confusion.sum(axis=1).replace(0, 1)  # a class absent from the test split: zeros
    return Evaluation(
        accuracy=float(accuracy_score(labels, predictions)),
        balanced_accuracy=float(balanced_accuracy_score(labels, predictions)),
        macro_f1=float(
            f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)
        ),
        roc_auc=roc_auc,
        num_images=len(labels),
        per_class=per_class,
        confusion=confusion,
        confusion_normalized=confusion.div(row_totals, axis=0),
    )


@dataclass
class McNemar:
    """McNemar's exact test on the images where exactly one of two models is right."""

    name_a: str
    name_b: str
    only_a_right: int  # A right, B wrong
    only_b_right: int  # B right, A wrong
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE_LEVEL

    def sentence(self) -> str:
        """The result in plain words."""
        if self.only_a_right + self.only_b_right == 0:
            return (
                f"{self.name_a} and {self.name_b} got exactly the same test images right; "
                "p = 1: no evidence of a difference."
            )
        # Lead with the model that won more of the disputed images.
        (winner, wins), (loser, losses) = sorted(
            [(self.name_a, self.only_a_right), (self.name_b, self.only_b_right)],
            key=lambda pair: -pair[1],
        )
        verdict = (
            f"significant at the {SIGNIFICANCE_LEVEL:.0%} level"
            if self.significant
            else "not significant at this test-set size"
        )
        return (
            f"{winner} got {wins} test image{'s' * (wins != 1)} right that {loser} got wrong "
            f"and {losses} the other way; p = {self.p_value:.2g}: {verdict}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON."""
        return {
            "name_a": self.name_a,
            "name_b": self.name_b,
            "only_a_right": self.only_a_right,
            "only_b_right": self.only_b_right,
            "p_value": self.p_value,
            "significant": self.significant,
            "sentence": self.sentence(),
        }


def compute_mcnemar_p_value(only_a_right: int, only_b_right: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2."""
    discordant = only_a_right + only_b_right
    if discordant == 0:
        return 1.0
    return float(binomtest(only_a_right, discordant, 0.5, alternative="two-sided").pvalue)


def evaluate_mcnemar(
    labels: np.ndarray,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    names: tuple[str, str] = ("A", "B"),
) -> McNemar:
    """Compare two models' predicted classes on the same images, paired image by image."""
    labels = np.asarray(labels)
    right_a = np.asarray(predictions_a) == labels
    right_b = np.asarray(predictions_b) == labels
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    return McNemar(names[0], names[1], only_a, only_b, compute_mcnemar_p_value(only_a, only_b))


def compute_losses(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Cross-entropy of each image (N,): how wrong the model is about it."""
    picked = np.asarray(probabilities)[np.arange(len(labels)), np.asarray(labels)]
    return -np.log(np.clip(picked, 1e-12, None))


def make_predictions_table(
    files: list[str],
    probabilities: np.ndarray,
    class_names: list[str],
    labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """file, [label,] predicted, prob_<class>... : one row per image."""
    table = pd.DataFrame({"file": list(files)})
    if labels is not None:
        table["label"] = [class_names[i] for i in labels]
    table["predicted"] = [class_names[i] for i in np.asarray(probabilities).argmax(1)]
    for index, name in enumerate(class_names):
        table[f"{PROBABILITY_PREFIX}{name}"] = probabilities[:, index]
    return table


def read_predictions_table(
    table: pd.DataFrame, class_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), probabilities (N, C)) back from a table made by `make_predictions_table`."""
    columns = [f"{PROBABILITY_PREFIX}{name}" for name in class_names]
    missing = [c for c in ["label", *columns] if c not in table.columns]
    if missing:
        raise ValueError(f"predictions table lacks column(s) {missing}; re-create it.")
    unknown = sorted(set(table["label"]) - set(class_names))
    if unknown:
        raise ValueError(f"predictions table has labels {unknown} outside {class_names}.")
    labels = table["label"].map({name: i for i, name in enumerate(class_names)}).to_numpy()
    return labels.astype(int), table[columns].to_numpy(dtype=float)
