"""Scores over repeated splits: each approach's mean with a confidence interval, and the paired
difference between the approaches with its interval.

The K splits share most of their training images, so their scores are correlated and the plain
t-interval over K scores is too narrow (it treats them as independent). Nadeau and Bengio's
corrected resampled t-test (Machine Learning 52, 2003) widens the variance of the mean from
s^2 / K to (1 / K + n_test / n_train) s^2, where n_test and n_train are the images tested on and
trained on in each split. They show that the plain test rejects a true "no difference" far more
often than its nominal level on such splits, and that the correction brings it close. It assumes
roughly normal per-split scores; with few splits the interval is wide, as it should be, and the
summary cuts it to the possible range (a score in [0, 1], a difference in [-1, 1]). The same
correction serves for one approach's scores and for the
per-split differences between two approaches (paired: both trained and tested on the same split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

REPEATS_FILE = "repeats.csv"
SUMMARY_FILE = "repeats_summary.csv"
SCORES = ("accuracy", "balanced_accuracy", "macro_f1")
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its corrected confidence interval and, for differences, the test's p-value."""

    mean: float
    low: float
    high: float
    p_value: float  # two-sided, against a true mean of zero

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def corrected_interval(values: np.ndarray, test_fraction: float, level: float = LEVEL) -> Interval:
    """Mean of `values` (one per split) with the corrected resampled t-interval, where
    `test_fraction` is n_test / n_train. With one value the interval is unknown (NaN)."""
    values = np.asarray(values, dtype=float)
    k = len(values)
    mean = float(values.mean())
    if k < 2:
        return Interval(mean, float("nan"), float("nan"), float("nan"))
    standard_error = float(np.sqrt((1 / k + test_fraction) * values.var(ddof=1)))
    half = float(stats.t.ppf((1 + level) / 2, df=k - 1)) * standard_error
    if standard_error == 0:
        p_value = 1.0 if mean == 0 else 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(mean) / standard_error, df=k - 1))
    return Interval(mean, mean - half, mean + half, p_value)


def summarize_repeats(table: pd.DataFrame) -> pd.DataFrame:
    """One row per approach, then one per difference (each approach minus the first), for each
    score: mean, interval and (differences) p-value. `table` is repeats.csv: one row per split and
    approach with the scores, `train_images` and `test_images`."""
    ratio = float((table["test_images"] / table["train_images"]).mean())
    approaches = list(dict.fromkeys(table["approach"]))
    wide = {score: table.pivot(index="split", columns="approach", values=score) for score in SCORES}
    rows = []
    for name in approaches:
        rows += [_row(name, score, wide[score][name], ratio) for score in SCORES]
    first = approaches[0]
    for name in approaches[1:]:
        label = f"{name} - {first}"
        rows += [_row(label, s, wide[s][name] - wide[s][first], ratio) for s in SCORES]
    return pd.DataFrame(rows)


def _row(name: str, score: str, values: pd.Series, ratio: float) -> dict[str, object]:
    values = values.dropna()
    interval = corrected_interval(values.to_numpy(), ratio)
    difference = " - " in name
    floor = -1.0 if difference else 0.0  # a score lies in [0, 1], a difference in [-1, 1]
    return {
        "approach": name,
        "score": score,
        "splits": len(values),
        "mean": interval.mean,
        "low": max(interval.low, floor) if np.isfinite(interval.low) else interval.low,
        "high": min(interval.high, 1.0) if np.isfinite(interval.high) else interval.high,
        "p_value": interval.p_value if difference else float("nan"),
    }


def describe_repeats(summary: pd.DataFrame, score: str = "accuracy") -> str:
    """What the summary says about `score`, in plain sentences."""
    rows = summary[summary["score"] == score].set_index("approach")
    splits = int(rows["splits"].max())
    if splits < 2:
        return f"Only {splits} split: run with --repeats 2 or more for an interval."
    level = f"{LEVEL:.0%}"
    lines = [f"Over {splits} different splits, {score.replace('_', ' ')} (mean, {level} interval):"]
    for name, row in rows.iterrows():
        if " - " not in name:
            lines.append(f"- {name}: {row['mean']:.3f} ({row['low']:.3f} to {row['high']:.3f})")
    for name, row in rows.iterrows():
        if " - " in name:
            lines.append(_difference_sentence(name, row))
    return "\n".join(lines)


def _difference_sentence(name: str, row: pd.Series) -> str:
    better, worse = name.split(" - ")
    span = f"{row['low']:+.3f} to {row['high']:+.3f}, p = {row['p_value']:.3g}"
    head = f"- {better} minus {worse}: {row['mean']:+.3f} on average ({span}). "
    if row["low"] > 0 or row["high"] < 0:
        leader = better if row["mean"] > 0 else worse
        return head + (
            f"The interval leaves out zero: across splits like these, {leader} is the better "
            "approach, by somewhere in that range."
        )
    return head + (
        "The interval includes zero: these splits cannot tell which approach is better. That is "
        "not evidence that they are equal; more images or more splits narrow the interval."
    )


def read_repeats(checkpoint_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """repeats.csv in `checkpoint_dir` and its summary; None when no --repeats run wrote one."""
    path = Path(checkpoint_dir) / REPEATS_FILE
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    missing = {"split", "approach", "train_images", "test_images", *SCORES} - set(table.columns)
    if missing:
        raise ValueError(
            f"'{path}' lacks column(s) {sorted(missing)}; run `python -m emotion_tl --repeats K` "
            "again to rewrite it."
        )
    return table, summarize_repeats(table)
