import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_test_checkpoint
from torchvision.transforms.functional import pil_to_tensor

from emotion_tl.cli import main
from emotion_tl.config import APPROACHES, OUTPUT_PREFIX
from emotion_tl.data.files import load_image
from emotion_tl.data.loaders import make_loaders
from emotion_tl.data.prepare import prepare_data
from emotion_tl.data.split import save_split
from emotion_tl.data.transforms import build_transforms
from emotion_tl.evaluation.comparison import ApproachOutputs, build_comparison, load_comparison
from emotion_tl.evaluation.feature_map import penultimate_features, plot_feature_map_report, project
from emotion_tl.evaluation.inference import predict_loader
from emotion_tl.evaluation.metrics import evaluate_predictions
from emotion_tl.evaluation.predict import predict_tensors
from emotion_tl.evaluation.predictions import read_predictions_table
from emotion_tl.evaluation.repredict import restore_test_predictions
from emotion_tl.model.checkpoint import CheckpointError, save_checkpoint
from emotion_tl.model.network import build_model, count_trainable, make_param_groups
from emotion_tl.notebook.photo_widget import make_photo_widget

REPORT = ["comparison.csv", "comparison.json", "comparison.md", "comparison.png"]


def fake_run(cfg, approaches=APPROACHES):
    """What training leaves behind (split.csv and best checkpoints), with untrained models."""
    data = prepare_data(cfg)
    out_dir = Path(cfg.checkpoint_dir)
    save_split(data.table, out_dir)
    models = {}
    for seed, approach in enumerate(approaches):
        torch.manual_seed(seed)
        model = build_model(len(data.class_names)).eval()
        make_param_groups(model, approach, backbone_lr=0.1, head_lr=0.1)
        history = [
            {"epoch": e, "train_loss": 1 / e, "train_acc": 0.5, "val_loss": 1 / e,
             "val_acc": 0.4 + 0.1 * e, "seconds": 2.0 * e}
            for e in (1, 2)
        ]  # fmt: skip
        metrics = history[1] | {"trainable_params": count_trainable(model), "peak_memory_mb": 99.0}
        checkpoint = make_test_checkpoint(
            model, class_names=data.class_names, config=cfg, approach=approach, epoch=2,
            metrics=metrics, history=history,
        )  # fmt: skip
        save_checkpoint(checkpoint, out_dir / f"{OUTPUT_PREFIX[approach]}_best.pt")
        models[OUTPUT_PREFIX[approach]] = model
    return data, models


def test_compare_predicts_the_saved_test_split_and_writes_the_report(tiny_config, capsys):
    data, models = fake_run(tiny_config)
    out_dir = Path(tiny_config.checkpoint_dir)
    assert main(["compare", "--checkpoint_dir", str(out_dir)]) == 0
    for name in [*REPORT, "mistakes.png", "gradcam.png"]:
        assert (out_dir / name).stat().st_size > 0, name

    # Missing predictions were re-created from the checkpoints: the same as the models in memory.
    test_loader = make_loaders(data, tiny_config)["test"]
    probabilities = {}
    for name, model in models.items():
        table = pd.read_csv(out_dir / f"{name}_test_predictions.csv")
        labels, probabilities[name] = read_predictions_table(table, data.class_names)
        expected, expected_labels = predict_loader(
            model, test_loader, torch.device("cpu"), "fp32", "resnet50"
        )
        np.testing.assert_allclose(probabilities[name], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(labels, expected_labels)

    report = json.loads((out_dir / "comparison.json").read_text())
    assert list(report["models"]) == ["frozen_weights", "finetuning", "ensemble"]
    ensemble = (probabilities["frozen_weights"] + probabilities["finetuning"]) / 2
    expected = evaluate_predictions(labels, ensemble, data.class_names)
    assert report["models"]["ensemble"]["accuracy"] == pytest.approx(expected.accuracy)
    assert report["models"]["ensemble"]["confusion"] == expected.confusion.to_numpy().tolist()
    right = {n: p.argmax(1) == labels for n, p in probabilities.items()}
    only_frozen = int((right["frozen_weights"] & ~right["finetuning"]).sum())
    assert report["mcnemar"]["only_a_right"] == only_frozen

    table = pd.read_csv(out_dir / "comparison.csv").set_index("model")
    assert table.loc["frozen_weights", "trainable_params"] == 4098
    assert table.loc["finetuning", "trainable_params"] == 23_512_130
    assert table.loc["finetuning", "seconds_per_epoch"] == pytest.approx(3.0)
    assert table.loc["frozen_weights", "best_epoch"] == 2
    assert table.loc["finetuning", "peak_memory_mb"] == pytest.approx(99.0)
    assert table.loc["ensemble", "accuracy"] == pytest.approx(expected.accuracy)
    assert np.isnan(table.loc["ensemble", "trainable_params"])

    size = tiny_config.image_size  # the report says which model read what
    text = (out_dir / "comparison.md").read_text()
    assert f"Source model: resnet50, reading {size}x{size} colour images." in text

    printed = capsys.readouterr().out
    assert "McNemar" in printed and report["mcnemar"]["sentence"] in printed
    assert "comparison.png" in printed


def test_reading_a_comparison_without_predictions_names_the_command_that_makes_them(
    tiny_config,
):
    fake_run(tiny_config)  # best checkpoints, no predictions files
    with pytest.raises(CheckpointError, match="frozen_weights_test_predictions.csv.*compare"):
        load_comparison(tiny_config.checkpoint_dir)


def test_compare_needs_both_approaches(tiny_config, caplog):
    fake_run(tiny_config, approaches=("frozen",))
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(["compare", "--checkpoint_dir", tiny_config.checkpoint_dir]) == 2
    assert "no finetuning_best.pt" in caplog.text and "--approach both" in caplog.text


def test_compare_without_the_images_says_which_folder_to_pass(tiny_config, tmp_path, caplog):
    fake_run(tiny_config)
    args = ["compare", "--checkpoint_dir", tiny_config.checkpoint_dir]
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main([*args, "--data_dir", str(tmp_path / "elsewhere")]) == 2
    assert "could not be read" in caplog.text and "--data_dir" in caplog.text
    assert not (Path(tiny_config.checkpoint_dir) / "comparison.csv").exists()


def test_models_of_different_classes_are_not_compared():
    table = pd.DataFrame({"file": ["a.png"], "label": ["x"], "predicted": ["x"],
                          "prob_x": [0.9], "prob_y": [0.1]})  # fmt: skip
    first = ApproachOutputs("frozen_weights", {"class_names": ["x", "y"]}, table)
    second = ApproachOutputs("finetuning", {"class_names": ["y", "x"]}, table)
    with pytest.raises(CheckpointError, match="same categories"):
        build_comparison([first, second])


def test_predict_command_prints_a_table_and_writes_csv(tiny_config, image_dir, tmp_path, capsys):
    fake_run(tiny_config, approaches=("frozen",))
    checkpoint = str(Path(tiny_config.checkpoint_dir) / "frozen_weights_best.pt")
    out = tmp_path / "predictions.csv"
    args = ["predict", "--checkpoint", checkpoint, "--checkpoint", checkpoint, "--tta"]
    assert main([*args, "--csv", str(out), str(image_dir / "circle")]) == 0
    printed = capsys.readouterr().out
    assert "prob_circle" in printed and "circle_009.png" in printed
    table = pd.read_csv(out)
    assert len(table) == 10 and set(table["predicted"]) <= {"circle", "square"}
    np.testing.assert_allclose(table[["prob_circle", "prob_square"]].sum(axis=1), 1.0, rtol=1e-5)


def test_predict_command_with_a_missing_checkpoint_fails_clearly(image_dir, tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(["predict", "--checkpoint", str(tmp_path / "no.pt"), str(image_dir)]) == 2
    assert "not found" in caplog.text


def test_photo_widget_shows_both_models_on_an_uploaded_picture(tiny_config, image_dir):
    """What notebook 04's upload does: each model's probabilities for the picture (the same as
    predicting the file), their Grad-CAM, and a clear message for a file that is no picture."""
    fake_run(tiny_config)
    restore_test_predictions(tiny_config.checkpoint_dir)
    comparison = load_comparison(tiny_config.checkpoint_dir)
    photo = make_photo_widget(comparison)
    path = image_dir / "triangle" / "triangle_000.png"
    table = photo.show(path.read_bytes(), "mine.png")
    assert list(table.index) == ["frozen_weights", "finetuning"]
    assert list(table.columns) == ["circle", "square"]
    for name, predictor in photo.predictors.items():
        image = pil_to_tensor(load_image(path))
        expected = predict_tensors(predictor, [image], device=torch.device("cpu"), precision="fp32")
        np.testing.assert_allclose(table.loc[name].to_numpy(), expected[0], atol=1e-4)
    assert photo.figure.value[:4] == b"\x89PNG" and "mine.png" in photo.status.value
    assert "<table" in photo.table.value

    assert photo.show(b"not a picture", "notes.txt") is None
    assert "could not be read as a picture" in photo.status.value


def test_feature_maps_show_what_fc_reads(tiny_config):
    """The mapped features are exactly fc's input (fc of them gives the model's own outputs),
    and notebook 04's figure has one panel per approach."""
    data, models = fake_run(tiny_config)
    model = models["finetuning"]
    transform = build_transforms(tiny_config.image_size, train=False)
    features = penultimate_features(model, data.images[:6], transform, backbone="resnet50")
    assert features.shape == (6, 2048)
    with torch.no_grad():
        logits = model(torch.stack([transform(image) for image in data.images[:6]]))
        from_features = model.fc(torch.from_numpy(features))
    # bf16 autocast where the CPU has it: close, not equal.
    np.testing.assert_allclose(from_features, logits, atol=0.05 * float(logits.abs().max()))
    points, ratios = project(features)
    assert points.shape == (6, 2) and 0 < ratios[1] <= ratios[0] <= 1

    restore_test_predictions(tiny_config.checkpoint_dir)
    comparison = load_comparison(tiny_config.checkpoint_dir)
    figure = plot_feature_map_report(comparison, tiny_config.data_dir)
    assert [ax.get_title() for ax in figure.axes] == ["frozen_weights", "finetuning"]
    test_images = len(comparison.approaches[0].predictions)
    assert all(len(ax.collections[0].get_offsets()) == test_images for ax in figure.axes)
