"""Two models on the same images: where each one alone is right, and McNemar's exact test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

SIGNIFICANCE_LEVEL = 0.05


def find_only_right(
    labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (N,): the images only model A gets right, and those only model B does."""
    labels = np.asarray(labels)
    right_a = np.asarray(predictions_a) == labels
    right_b = np.asarray(predictions_b) == labels
    return right_a & ~right_b, right_b & ~right_a


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
    masks = find_only_right(labels, predictions_a, predictions_b)
    only_a, only_b = (int(mask.sum()) for mask in masks)
    return McNemar(names[0], names[1], only_a, only_b, compute_mcnemar_p_value(only_a, only_b))
