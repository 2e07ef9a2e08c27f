"""The zero-shot baseline: the source model's own answer, before any training.

An expression model already names expressions. When every category of a run is one of its
classes (`happy neutral` for the FER2013 model, say), its scores for those classes alone,
renormalised, are a classifier that trained on nothing of ours: the bar a trained model must
clear. ImageNet's objects are no categories of faces, so ResNet50 has no such baseline.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_tl.data.loaders import make_loaders
from emotion_tl.evaluation.comparison import ZERO_SHOT_FILE
from emotion_tl.evaluation.inference import predict_loader
from emotion_tl.evaluation.predictions import make_predictions_table
from emotion_tl.model.backbones import Backbone
from emotion_tl.storage import write_atomic
from emotion_tl.training.context import RunContext

logger = logging.getLogger("emotion_tl")


def match_source_classes(backbone: Backbone, class_names: list[str]) -> list[int] | None:
    """The index of each category among the source model's own classes (case and spaces
    ignored), or None unless the source can answer and has every one of them."""
    if backbone.zero_shot is None:
        return None
    own = {name.strip().lower(): index for index, name in enumerate(backbone.source_classes)}
    indices = [own.get(name.strip().lower()) for name in class_names]
    return None if None in indices else [int(i) for i in indices]


def restrict_probabilities(probabilities: np.ndarray, indices: list[int]) -> np.ndarray:
    """(N, K) probabilities over the source's classes -> (N, C) over the chosen ones (sum 1)."""
    chosen = probabilities[:, indices]
    return chosen / np.clip(chosen.sum(axis=1, keepdims=True), 1e-12, None)


def predict_zero_shot(run: RunContext) -> pd.DataFrame | None:
    """The untrained source model's predictions on the run's test split, in the table format
    of the approaches' own (`*_test_predictions.csv`); None where there is no such baseline."""
    backbone, data = run.backbone, run.data
    indices = match_source_classes(backbone, data.class_names)
    if indices is None or not run.cfg.pretrained:
        return None
    model = backbone.zero_shot().to(run.device)
    loader = make_loaders(data, run.cfg, device=run.device)["test"]
    probabilities, labels = predict_loader(model, loader, run.device, run.precision, backbone.name)
    probabilities = restrict_probabilities(probabilities, indices)
    files = data.table["file"].to_numpy()[data.indices("test")]
    return make_predictions_table(list(files), probabilities, data.class_names, labels)


def write_zero_shot(run: RunContext) -> Path | None:
    """Write the zero-shot baseline's test predictions where the source has one and log its
    accuracy (elsewhere remove an earlier run's); the file written, or None."""
    predictions, path = predict_zero_shot(run), run.out_dir / ZERO_SHOT_FILE
    if predictions is None:
        path.unlink(missing_ok=True)  # an earlier run's, from another source or categories
        return None
    write_atomic(path, predictions.to_csv(index=False).encode())
    accuracy = float((predictions["label"] == predictions["predicted"]).mean())
    logger.info(
        "Zero-shot baseline (%s's own %s scores, no training): test accuracy %.3f",
        run.backbone.name,
        "/".join(run.data.class_names),
        accuracy,
    )
    return path
