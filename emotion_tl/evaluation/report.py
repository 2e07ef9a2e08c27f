"""The comparison report files: comparison.csv/.json/.md/.png, mistakes.png and gradcam.png."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torchvision.transforms.v2 import functional as TF

from emotion_tl.data.faces.crop import load_seen_image
from emotion_tl.evaluation.comparison import ApproachOutputs, Comparison, load_comparison
from emotion_tl.evaluation.paired import find_only_right
from emotion_tl.evaluation.predict import predictor_from_checkpoint
from emotion_tl.evaluation.predictions import find_hardest
from emotion_tl.evaluation.sources import (
    SourcesComparison,
    build_sources_comparison,
    source_dir,
)
from emotion_tl.figures.evaluation import plot_comparison, plot_mistakes, plot_sources
from emotion_tl.storage import save_figure_atomic, write_atomic

logger = logging.getLogger("emotion_tl")

REPORT_NAME = "comparison"


def format_cell(value: Any) -> str:
    """A table cell for people: thousands separators, three decimals, a dash when empty."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:.3f}"


def format_markdown(comparison: Comparison) -> str:
    """comparison.md: the table, the paired test in words, per-class scores."""
    table = comparison.table().set_index("model").T.map(format_cell)
    lines = [
        "# Frozen weights vs fine-tuning",
        "",
        f"Scores on the same {comparison.num_test_images()} held-out test images; the ensemble "
        "averages both models' probabilities. Source model: "
        f"{comparison.approaches[0].checkpoint['backbone']}, reading "
        f"{comparison.approaches[0].reads} images.",
        "",
        table.to_markdown(colalign=["left"] + ["right"] * table.shape[1], disable_numparse=True),
        "",
        f"**Paired test (McNemar, exact):** {comparison.mcnemar.sentence()}",
        "",
    ]
    stopped = [
        f"**{a.name}** {a.checkpoint['early_stop']}."  # patience ended it early
        for a in comparison.approaches
        if a.checkpoint.get("early_stop")
    ]
    if stopped:
        lines += [*stopped, ""]
    for name, evaluation in comparison.evaluations.items():
        per_class = evaluation.per_class.map(format_cell)
        lines += [
            f"## {name}: per class",
            "",
            per_class.to_markdown(colalign=["left"] + ["right"] * 4, disable_numparse=True),
            "",
        ]
    lines += ["![comparison](comparison.png)", ""]
    return "\n".join(lines)


def plot_comparison_report(comparison: Comparison) -> Figure:
    """comparison.png: both approaches' curves on shared axes and their confusion matrices."""
    names, title = [a.name for a in comparison.approaches], comparison.mcnemar.sentence()
    return plot_comparison(
        {a.name: a.checkpoint["history"] for a in comparison.approaches},
        {name: comparison.evaluations[name].confusion for name in names},
        {name: comparison.evaluations[name].accuracy for name in names},
        title=title,
    )


def plot_hardest_images(
    approaches: Sequence[ApproachOutputs], data_dir: str | Path, count: int = 6
) -> Figure:
    """mistakes.png: each approach's `count` highest-loss test images, one row per approach."""
    hardest = {a.name: find_hardest(a.predictions, a.class_names, count) for a in approaches}
    return plot_mistakes(hardest, data_dir, approaches[0].face_crop)


def pick_disputed_files(comparison: Comparison, count: int = 4) -> list[str]:
    """Test images only one approach gets right first, then those the ensemble finds hardest."""
    labels, probabilities_a, probabilities_b = comparison.read_probabilities()
    only_a, only_b = find_only_right(labels, probabilities_a.argmax(1), probabilities_b.argmax(1))
    confidence = ((probabilities_a + probabilities_b) / 2)[np.arange(len(labels)), labels]
    order = np.lexsort((confidence, ~(only_a | only_b)))  # disputed first, then least confident
    files = comparison.approaches[0].predictions["file"]
    return [files.iloc[i] for i in order[:count]]


def plot_gradcam_report(comparison: Comparison, data_dir: str | Path, count: int = 4) -> Figure:
    """gradcam.png: Grad-CAM of both approaches on the same few test images, disputed ones first."""
    from emotion_tl.evaluation.explain import plot_gradcam_comparison  # captum: only when asked

    files = pick_disputed_files(comparison, count)
    face_crop = comparison.approaches[0].face_crop
    images = [TF.pil_to_tensor(load_seen_image(Path(data_dir) / f, face_crop)) for f in files]
    table = comparison.approaches[0].predictions.set_index("file")
    predictors = {
        a.name: predictor_from_checkpoint(a.checkpoint, a.name) for a in comparison.approaches
    }
    return plot_gradcam_comparison(predictors, images, list(table.loc[files, "label"]))


def write_comparison_report(
    checkpoint_dir: str | Path, data_dir: str | Path | None = None
) -> dict[str, Path]:
    """Write comparison.csv/.json/.md/.png (and the figures of images) into checkpoint_dir."""
    checkpoint_dir = Path(checkpoint_dir)
    comparison = load_comparison(checkpoint_dir)
    data_dir = Path(data_dir or comparison.approaches[0].checkpoint["config"]["data_dir"])
    logger.info(comparison.mcnemar.sentence())
    # Every table and figure of the report is made before any of its files is written.
    contents = {
        "csv": comparison.table().to_csv(index=False).encode(),
        "json": json.dumps(comparison.to_dict(), indent=2).encode(),
        "md": format_markdown(comparison).encode(),
    }
    figure = plot_comparison_report(comparison)
    paths = {kind: checkpoint_dir / f"{REPORT_NAME}.{kind}" for kind in (*contents, "png")}
    for kind, content in contents.items():
        write_atomic(paths[kind], content)
    save_figure_atomic(figure, paths["png"])
    figures = {
        "mistakes": lambda: plot_hardest_images(comparison.approaches, data_dir),
        "gradcam": lambda: plot_gradcam_report(comparison, data_dir),
    }
    try:
        for kind, plot in figures.items():
            paths[kind] = checkpoint_dir / f"{kind}.png"
            save_figure_atomic(plot(), paths[kind])
    except OSError as error:  # the images moved: the report stands without these figures
        logger.warning("No mistakes/Grad-CAM figures: cannot read the test images (%s)", error)
        paths = {k: p for k, p in paths.items() if p.is_file()}
    return paths


SOURCE_COLUMNS = {  # sources table column -> its heading in comparison.md
    "reads": "reads",
    "accuracy": "test accuracy",
    "interval": "95% interval",
    "trainable_params": "trainable params",
    "training_seconds": "training s",
    "seconds_per_epoch": "s/epoch",
    "vs_best_p": "McNemar p vs best",
    "over_splits": "mean over splits (interval)",
}


def format_sources_markdown(
    comparison: SourcesComparison, sources: list[str], compared: list[str]
) -> str:
    """comparison.md of a several-source run: every model, then the paired tests in words, and
    links to the reports of the sources in `compared` (those that trained both approaches)."""
    table = comparison.table.copy()
    table["interval"] = [
        f"{lo:.3f} to {hi:.3f}" for lo, hi in zip(table["low"], table["high"], strict=True)
    ]
    if "repeats_mean" in table:
        table["over_splits"] = [
            "-" if pd.isna(m) else f"{m:.3f} ({lo:.3f} to {hi:.3f}, {int(k)} splits)"
            for m, lo, hi, k in table[
                ["repeats_mean", "repeats_low", "repeats_high", "splits"]
            ].itertuples(index=False)
        ]
    columns = [c for c in SOURCE_COLUMNS if c in table]
    shown = table.set_index("model")[columns].rename(columns=SOURCE_COLUMNS)
    shown = shown.map(lambda v: v if isinstance(v, str) else format_cell(v))
    best = table.loc[table["best"], "model"].iloc[0]
    lines = [
        "# Which model to transfer from",
        "",
        f"Sources: {', '.join(sources)}. Every model scored on the same "
        f"{comparison.num_test_images} held-out test images; the interval is the 95% Wilson "
        "interval of the test accuracy, and McNemar's exact test compares each model with the "
        f"most accurate one, **{best}**.",
        "",
        shown.to_markdown(colalign=["left"] + ["right"] * len(columns), disable_numparse=True),
        "",
        *[f"- {sentence}" for sentence in comparison.sentences],
        "",
    ]
    if compared:
        links = ", ".join(f"[{s}]({s}/comparison.md)" for s in compared)
        lines += [f"Each source's own comparison of its two approaches: {links}", ""]
    return "\n".join([*lines, "![comparison](comparison.png)", ""])


def write_sources_report(checkpoint_dir: str | Path, sources: list[str]) -> dict[str, Path]:
    """Write comparison.csv/.json/.md/.png of a several-source run into checkpoint_dir."""
    checkpoint_dir = Path(checkpoint_dir)
    comparison = build_sources_comparison(checkpoint_dir, sources)
    compared = [
        s for s in sources if (source_dir(checkpoint_dir, s) / f"{REPORT_NAME}.md").is_file()
    ]
    table = comparison.table
    contents = {
        "csv": table.to_csv(index=False).encode(),
        "json": json.dumps(
            {
                "sources": sources,
                "models": json.loads(table.to_json(orient="records")),
                "paired_tests": comparison.sentences,
            },
            indent=2,
        ).encode(),
        "md": format_sources_markdown(comparison, sources, compared).encode(),
    }
    best = table.loc[table["best"], "model"].iloc[0]
    figure = plot_sources(table, f"{comparison.num_test_images} test images; best: {best}")
    paths = {kind: checkpoint_dir / f"{REPORT_NAME}.{kind}" for kind in (*contents, "png")}
    for kind, content in contents.items():
        write_atomic(paths[kind], content)
    save_figure_atomic(figure, paths["png"])
    return paths
