"""A lost `<prefix>_test_predictions.csv` made again from the best checkpoint and `split.csv`.

Training writes each approach's test predictions; the comparison reads them
(`evaluation.comparison`). When such a file is missing (deleted, or from a run that stopped
before writing it), `python -m emotion_tl compare` calls `restore_test_predictions` first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from emotion_tl.config import APPROACHES, Config
from emotion_tl.data.files import DataError
from emotion_tl.data.split import read_split
from emotion_tl.device import resolve_device, resolve_precision
from emotion_tl.evaluation.comparison import saved_files
from emotion_tl.evaluation.predict import predict_files, predictor_from_checkpoint
from emotion_tl.evaluation.predictions import make_predictions_table
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.storage import write_atomic

logger = logging.getLogger("emotion_tl")


def predict_test_split(
    checkpoint: dict[str, Any], checkpoint_dir: Path, data_dir: Path
) -> pd.DataFrame:
    """Re-create a predictions table from the checkpoint and the saved split's test images,
    on the device and in the precision the checkpoint's run used."""
    split = read_split(checkpoint_dir)
    test = split[split["split"] == "test"].reset_index(drop=True)
    predictor = predictor_from_checkpoint(checkpoint)
    config = checkpoint.get("config", {})
    device = resolve_device(config.get("device", Config.device))
    precision = resolve_precision(config.get("precision", Config.precision), device)
    _, probabilities, skipped, _ = predict_files(
        [predictor], [data_dir / f for f in test["file"]], device=device, precision=precision
    )
    if skipped.total():
        raise DataError(
            f"{skipped.total()} test image(s) could not be read from '{data_dir}':\n"
            f"{skipped.summary()}\nPass --data_dir with the folder the models were trained on."
        )
    labels = test["label"].map({c: i for i, c in enumerate(predictor.class_names)}).to_numpy()
    return make_predictions_table(list(test["file"]), probabilities, predictor.class_names, labels)


def restore_test_predictions(
    checkpoint_dir: str | Path, data_dir: str | Path | None = None
) -> list[Path]:
    """Predict the test split again for each approach whose best checkpoint is in
    `checkpoint_dir` but whose predictions file is not; the files written. The images are read
    from `data_dir`, or else from the `data_dir` the checkpoint records."""
    checkpoint_dir, written = Path(checkpoint_dir), []
    for approach in APPROACHES:
        best, path = saved_files(checkpoint_dir, approach)
        if path.is_file() or not best.is_file():
            continue
        checkpoint = load_checkpoint(best)
        images = Path(data_dir or checkpoint["config"]["data_dir"])
        logger.info("%s missing; predicting the test split of %s again", path.name, images)
        predictions = predict_test_split(checkpoint, checkpoint_dir, images)
        write_atomic(path, predictions.to_csv(index=False).encode())
        written.append(path)
    return written
