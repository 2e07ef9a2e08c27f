import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from emotion_tl import weights as weights_module
from emotion_tl.cli import main
from emotion_tl.predict import predict_paths
from emotion_tl.weights import WeightsUnavailableError

OUTPUTS = [
    "frozen_weights_best.pt",
    "frozen_weights_final.pt",
    "finetuning_best.pt",
    "finetuning_final.pt",
    "frozen_weights_history.png",
    "finetuning_history.png",
    "frozen_weights_history.csv",
    "finetuning_history.csv",
    "frozen_weights_confusion_matrix.png",
    "frozen_weights_confusion_matrix.csv",
    "finetuning_confusion_matrix.png",
    "finetuning_confusion_matrix.csv",
    "split.csv",
    "frozen_weights_test_predictions.csv",
    "finetuning_test_predictions.csv",
    "comparison.csv",
    "comparison.json",
    "comparison.md",
    "comparison.png",
    "mistakes.png",
    "gradcam.png",
    "feature_cache",  # the frozen approach's backbone features (emotion_tl.features)
    ".scan_cache.json",
]


def args_for(cfg, *extra):
    return [
        "--data_dir",
        cfg.data_dir,
        "--checkpoint_dir",
        cfg.checkpoint_dir,
        "--categories",
        *cfg.categories,
        "--epochs",
        "2",
        "--batch_size",
        "8",
        "--image_size",
        "32",
        "--device",
        "cpu",
        "--no_pretrained",
        *extra,
    ]


def test_both_approaches_write_every_output(tiny_config, tmp_path, capsys):
    # fp32, so the saved test predictions can be checked exactly against `predict` below.
    assert main(args_for(tiny_config, "--approach", "both", "--precision", "fp32")) == 0
    out_dir = tmp_path / "checkpoints"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(OUTPUTS)

    best = torch.load(out_dir / "finetuning_best.pt", weights_only=True)
    assert best["class_names"] == ["circle", "square"]
    assert best["approach"] == "finetuning" and best["kind"] == "best"
    assert best["config"]["epochs"] == 2 and best["image_size"] == 32
    assert best["weights_source"].startswith("none")
    assert 0.0 <= best["metrics"]["test_acc"] <= 1.0
    assert best["metrics"]["val_acc"] == max(row["val_acc"] for row in best["history"])
    final = torch.load(out_dir / "frozen_weights_final.pt", weights_only=True)
    assert final["epoch"] == 2 and final["kind"] == "final"

    confusion = pd.read_csv(out_dir / "frozen_weights_confusion_matrix.csv", index_col=0)
    assert list(confusion.index) == list(confusion.columns) == ["circle", "square"]
    assert confusion.to_numpy().sum() == 4  # the test split: 2 images per category
    history = pd.read_csv(out_dir / "finetuning_history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"} <= set(history.columns)

    # The report compares both best models and their ensemble on the same test images.
    report = pd.read_csv(out_dir / "comparison.csv").set_index("model")
    assert list(report.index) == ["frozen_weights", "finetuning", "ensemble"]
    assert report.loc["finetuning", "accuracy"] == pytest.approx(best["metrics"]["test_acc"])
    assert report.loc["frozen_weights", "trainable_params"] == 4098
    assert report.loc["finetuning", "peak_memory_mb"] > 0
    assert "McNemar" in (out_dir / "comparison.md").read_text()

    # Predicting from the saved checkpoint gives what the model in memory gave during the run.
    predictions = pd.read_csv(out_dir / "finetuning_test_predictions.csv")
    files = [Path(tiny_config.data_dir) / f for f in predictions["file"]]
    again = predict_paths([out_dir / "finetuning_best.pt"], files)
    columns = ["prob_circle", "prob_square"]
    np.testing.assert_allclose(again[columns], predictions[columns], rtol=1e-5, atol=1e-6)

    table = capsys.readouterr().out
    assert "frozen_weights" in table and "finetuning" in table and "test acc" in table
    assert "4,098" in table  # frozen: 2048 * 2 + 2 trainable parameters


def test_one_approach_writes_only_its_outputs(tiny_config, tmp_path):
    assert main(args_for(tiny_config, "--approach", "frozen", "--epochs", "1")) == 0
    names = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert "frozen_weights_best.pt" in names and "finetuning_best.pt" not in names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--data_dir", "no/such/folder"], "does not exist"),
        (["--categories", "circle", "happy"], "Available categories: circle, square, triangle"),
        (["--categories", "circle"], "at least two categories"),
    ],
)
def test_bad_input_fails_before_training(tiny_config, tmp_path, caplog, change, message):
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args_for(tiny_config) + change) == 2
    assert message in caplog.text
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


def test_too_few_images_fails_before_training(tiny_config, image_dir, tmp_path, caplog):
    for path in sorted((image_dir / "square").glob("*.png"))[1:]:
        path.unlink()
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args_for(tiny_config)) == 2
    assert "'square' has 1 usable image" in caplog.text
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


def test_missing_weights_stop_the_run_before_training(tiny_config, tmp_path, caplog, monkeypatch):
    def unavailable(*args, **kwargs):
        raise WeightsUnavailableError("no ImageNet weights: try --weights PATH")

    monkeypatch.setattr(weights_module, "load_pretrained_weights", unavailable)
    args = [a for a in args_for(tiny_config) if a != "--no_pretrained"]
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args) == 2
    assert "--weights PATH" in caplog.text
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


def test_help_lists_the_original_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--data_dir",
        "--categories",
        "--approach",
        "--epochs",
        "--batch_size",
        "--learning_rate",
        "--device",
        "--checkpoint_dir",
        "--seed",
        "--image_size",
        "--num_workers",
        "--no_pretrained",
        "--weights",
    ):
        assert option in text
