"""Several source models compared: every model of every source on the same test images.

`python -m emotion_tl --backbone resnet50 face` trains both approaches from each source, each
into its own folder `checkpoint_dir/<source>/` (a whole run, with its own comparison of the two
approaches), and then writes `checkpoint_dir/comparison.*`: one row per model (each source's
frozen and fine-tuned model, and its zero-shot baseline where it has one) with its test accuracy
and 95% interval, trainable parameters, seconds of training, and McNemar's test against the most
accurate model. With `--repeats K`, each model's mean accuracy over the K splits and its
interval join the row. `sources.json` lists the sources, in order, so that
`python -m emotion_tl compare` can write the report again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from emotion_tl.config import APPROACHES
from emotion_tl.data.files import DataError
from emotion_tl.evaluation.comparison import (
    ZERO_SHOT,
    ZERO_SHOT_FILE,
    load_approach_outputs,
    saved_files,
)
from emotion_tl.evaluation.paired import evaluate_mcnemar
from emotion_tl.evaluation.predictions import read_predictions_table
from emotion_tl.evaluation.repeats import read_repeats
from emotion_tl.model.backbones import get_backbone
from emotion_tl.model.checkpoint import CheckpointError

SOURCES_FILE = "sources.json"
NOTEBOOK_FOLDER = "sources"  # notebook 05 writes under checkpoint_dir/sources/
LEVEL = 0.95


def describe_sources(sources: list[str]) -> pd.DataFrame:
    """The source models as a table: what each learnt from, what it reads, its size, and the
    classes it can name itself (its zero-shot answers)."""
    rows = []
    for name in sources:
        entry = get_backbone(name)
        body = sum(p.numel() for p in entry.body(entry.build()).parameters())
        rows.append(
            {
                "source": entry.name,
                "pretrained on": entry.pretrained_on,
                "reads": entry.describe_input(),
                "parameters below the head": body,
                "features per image": entry.feature_dim,
                "names itself": ", ".join(entry.source_classes) if entry.zero_shot else "-",
            }
        )
    return pd.DataFrame(rows).set_index("source")


def source_dir(checkpoint_dir: str | Path, source: str) -> Path:
    """Where a several-source run keeps the outputs of `source` (an entry's name)."""
    return Path(checkpoint_dir) / source


def read_sources(checkpoint_dir: str | Path) -> list[str] | None:
    """The sources a several-source run in `checkpoint_dir` compared; None if it was not one."""
    path = Path(checkpoint_dir) / SOURCES_FILE
    if not path.is_file():
        return None
    sources = json.loads(path.read_text()).get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise CheckpointError(f"'{path}' does not list sources; train the sources again.")
    return sources


@dataclass
class ModelAnswers:
    """One model's test predictions, as a row of the sources table reads them."""

    source: str
    model: str  # frozen_weights, finetuning or zero_shot
    files: list[str]
    labels: np.ndarray
    predicted: np.ndarray
    facts: dict


def collect_answers(source: str, folder: Path) -> list[ModelAnswers]:
    """The predictions of every approach one source's run trained (and of its zero-shot
    baseline, where it wrote one)."""
    trained = [a for a in APPROACHES if saved_files(folder, a)[0].is_file()]
    if not trained:
        raise CheckpointError(
            f"no trained approach of {source} in '{folder}'; train the sources first "
            "(python -m emotion_tl --backbone A B)."
        )
    outputs = [load_approach_outputs(folder, approach) for approach in trained]
    class_names = outputs[0].class_names
    reads = outputs[0].reads  # one run: every model of the source read the same input
    tables = {o.name: (o.predictions, o.facts() | {"reads": reads}) for o in outputs}
    if (folder / ZERO_SHOT_FILE).is_file():
        facts = {"trainable_params": 0, "reads": reads}
        tables[ZERO_SHOT] = (pd.read_csv(folder / ZERO_SHOT_FILE), facts)
    answers = []
    for model, (table, facts) in tables.items():
        labels, probabilities = read_predictions_table(table, class_names)
        files = [str(f) for f in table["file"]]
        answers.append(ModelAnswers(source, model, files, labels, probabilities.argmax(1), facts))
    return answers


def wilson_interval(correct: int, total: int) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy of `correct` out of `total`."""
    interval = binomtest(correct, total).proportion_ci(LEVEL, method="wilson")
    return float(interval.low), float(interval.high)


def repeats_accuracy(folder: Path) -> dict[str, tuple[float, float, float, int]]:
    """model -> (mean, low, high, splits) of the test accuracy over a --repeats run's splits."""
    found = read_repeats(folder)
    if found is None:
        return {}
    summary = found[1]
    rows = summary[(summary["score"] == "accuracy") & ~summary["approach"].str.contains(" - ")]
    return {
        r.approach: (float(r.mean), float(r.low), float(r.high), int(r.splits))
        for r in rows.itertuples()
    }


@dataclass
class SourcesComparison:
    """The sources table and, in words, each model's paired test against the best one."""

    table: pd.DataFrame
    sentences: list[str]
    num_test_images: int

    def summary(self) -> str:
        """The result in words (Markdown): the best model, then each paired test against it."""
        best = self.table[self.table["best"]].iloc[0]
        lines = [
            f"On these {self.num_test_images} test images the most accurate model is "
            f"**{best['model']}**: {best['accuracy']:.3f} (95% interval {best['low']:.3f} to "
            f"{best['high']:.3f}).",
            "",
        ]
        return "\n".join(lines + [f"- {sentence}" for sentence in self.sentences])


def build_sources_comparison(checkpoint_dir: str | Path, sources: list[str]) -> SourcesComparison:
    """One row per model of every source: accuracy and interval, cost, McNemar against the best
    (the most test images right; ties: the fewest trainable parameters)."""
    answers, repeats = [], {}
    for source in sources:
        folder = source_dir(checkpoint_dir, source)
        answers += collect_answers(source, folder)
        repeats[source] = repeats_accuracy(folder)
    first = answers[0]
    for other in answers[1:]:
        if other.files != first.files or not np.array_equal(other.labels, first.labels):
            raise DataError(
                f"{other.source}'s {other.model} was tested on other images than "
                f"{first.source}'s; train the sources in one run (one --seed, one data_dir)."
            )
    correct = [int((a.predicted == a.labels).sum()) for a in answers]
    names = [f"{a.source}/{a.model}" for a in answers]
    best = max(
        range(len(answers)),
        key=lambda i: (correct[i], -(answers[i].facts.get("trainable_params") or 0)),
    )
    rows, sentences = [], []
    for index, model in enumerate(answers):
        low, high = wilson_interval(correct[index], len(model.labels))
        row = {
            "model": names[index],
            "reads": model.facts["reads"],
            "accuracy": correct[index] / len(model.labels),
            "low": low,
            "high": high,
            "trainable_params": model.facts.get("trainable_params"),
            "training_seconds": model.facts.get("training_seconds"),
            "seconds_per_epoch": model.facts.get("seconds_per_epoch"),
            "vs_best_p": None,
        }
        if index != best:
            test = evaluate_mcnemar(
                model.labels, answers[best].predicted, model.predicted, (names[best], names[index])
            )
            row["vs_best_p"] = test.p_value
            sentences.append(test.sentence())
        if (over_splits := repeats[model.source].get(model.model)) is not None:
            keys = ("repeats_mean", "repeats_low", "repeats_high", "splits")
            row |= dict(zip(keys, over_splits, strict=True))
        rows.append(row)
    table = pd.DataFrame(rows).astype({"trainable_params": "Int64"})
    table["best"] = table.index == best
    return SourcesComparison(table, sentences, len(first.labels))


def find_sources_comparison(checkpoint_dir: str | Path) -> SourcesComparison | None:
    """The sources comparison of a several-source run in `checkpoint_dir` (the command line's)
    or in its `sources/` folder (notebook 05's); None when neither holds one."""
    for folder in (Path(checkpoint_dir), Path(checkpoint_dir) / NOTEBOOK_FOLDER):
        if (sources := read_sources(folder)) is not None:
            return build_sources_comparison(folder, sources)
    return None
