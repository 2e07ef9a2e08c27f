"""The backbone table: a second source model, registered here and nowhere else, trains both
approaches, exports and predicts; checkpoints from before the table read as ResNet50; an
unknown name fails with the known ones."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import cli_args, make_tiny_config, save_test_model
from torch import nn
from torchvision.transforms.v2.functional import pil_to_tensor

from emotion_tl.audit.features import label_check_features
from emotion_tl.cli import main
from emotion_tl.config import Config
from emotion_tl.data.files import load_image
from emotion_tl.data.prepare import prepare_data
from emotion_tl.evaluation.explain import explain_images
from emotion_tl.evaluation.predict import load_predictor, predict_paths
from emotion_tl.model.backbones import (
    BACKBONES,
    Backbone,
    get_backbone,
    register_backbone,
    resolve_config,
)
from emotion_tl.model.checkpoint import CheckpointError, load_checkpoint
from emotion_tl.model.export import read_metadata
from emotion_tl.model.network import build_model
from emotion_tl.model.weights import PretrainedWeights
from emotion_tl.training.context import make_run_context
from emotion_tl.training.resume import compare_configs
from emotion_tl.training.run import run_experiment

FP32 = {"device": "cpu", "precision": "fp32"}


class TinyNet(nn.Module):
    """Two small convolution stages on grey pictures, pooled to 16 numbers, and a 5-class head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.stage = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, 5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stage(self.stem(images))).flatten(1))


def make_tiny_body(model: TinyNet) -> nn.Module:
    return nn.Sequential(model.stem, model.stage, model.pool, nn.Flatten(1))


def load_tiny_weights(weights_path=None, *, allow_download=True) -> PretrainedWeights:
    """'Pretrained' weights: a seeded TinyNet whose BatchNorm statistics are not the defaults."""
    torch.manual_seed(123)
    net = TinyNet()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return PretrainedWeights(net.state_dict(), "tiny test weights", False, tuple("abcde"))


TINY = Backbone(
    name="tiny",
    build=TinyNet,
    load_weights=load_tiny_weights,
    image_size=32,
    channels="grey",
    mean=(0.4,),
    std=(0.3,),
    head="classifier",
    feature_dim=16,
    body=make_tiny_body,
    gradcam_layer="stage",
    audit_layer="stem",
)


@pytest.fixture
def tiny_backbone():
    register_backbone(TINY)
    try:
        yield TINY
    finally:
        BACKBONES.pop(TINY.name)


def body_of(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith("classifier.")}


def check_trained_checkpoints(out: Path) -> dict[str, dict]:
    """Both approaches' best checkpoints name the tiny backbone and carry its normalisation;
    the frozen body is the pretrained one bit for bit, the fine-tuned one has moved (its
    BatchNorm statistics excepted: with pretrained weights they stay frozen by default)."""
    pretrained = body_of(load_tiny_weights().state_dict)
    best = {p: load_checkpoint(out / f"{p}_best.pt") for p in ("frozen_weights", "finetuning")}
    for checkpoint in best.values():
        assert checkpoint["backbone"] == checkpoint["architecture"] == "tiny"
        assert checkpoint["config"]["backbone"] == "tiny"
        assert checkpoint["normalization"] == {"mean": [0.4], "std": [0.3]}
        assert checkpoint["state_dict"]["classifier.weight"].shape == (2, 16)
        assert checkpoint["weights_source"] == "tiny test weights"
    frozen = body_of(best["frozen_weights"]["state_dict"])
    assert frozen.keys() == pretrained.keys()
    assert all(torch.equal(frozen[k], pretrained[k]) for k in pretrained)  # BatchNorm too
    tuned = body_of(best["finetuning"]["state_dict"])
    assert not torch.equal(tuned["stem.0.weight"], pretrained["stem.0.weight"])
    assert not torch.equal(tuned["stem.1.weight"], pretrained["stem.1.weight"])  # BN's scale
    assert torch.equal(tuned["stem.1.running_mean"], pretrained["stem.1.running_mean"])
    return best


def test_a_registered_backbone_trains_both_approaches_exports_and_predicts(
    tiny_backbone, image_dir, tmp_path
):
    cfg = make_tiny_config(image_dir, tmp_path / "ck", backbone="tiny", pretrained=True)
    results = run_experiment(cfg)
    assert [r.approach for r in results] == ["frozen", "finetuning"]
    assert results[0].trainable_params == 16 * 2 + 2  # the new head alone
    out = Path(cfg.checkpoint_dir)
    check_trained_checkpoints(out)
    assert (out / "gradcam.png").is_file()  # the report's Grad-CAM read the tiny stage

    best = out / "finetuning_best.pt"
    assert main(["export", "--checkpoint", str(best)]) == 0
    exported = best.with_suffix(".onnx")
    metadata = read_metadata(exported)
    assert (metadata["backbone"], metadata["channels"]) == ("tiny", "grey")
    assert metadata["normalization"] == {"mean": [0.4], "std": [0.3]}
    image_input = onnx.load(str(exported)).graph.input[0].type.tensor_type.shape
    assert [d.dim_value for d in image_input.dim[1:]] == [1, 32, 32]  # one grey channel

    folders = [image_dir / "circle", image_dir / "square"]
    from_pt = predict_paths([best], folders, **FP32)
    from_onnx = predict_paths([exported], folders, **FP32)
    assert len(from_pt) == 20 and set(from_pt["predicted"]) <= {"circle", "square"}
    probabilities = from_pt[["prob_circle", "prob_square"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    assert not np.allclose(probabilities, probabilities[0])  # the pictures do differ
    onnx_probabilities = from_onnx[["prob_circle", "prob_square"]].to_numpy()
    assert np.abs(onnx_probabilities - probabilities).max() <= 1e-4
    assert list(from_onnx["file"]) == list(from_pt["file"])


def test_the_frozen_body_stays_put_without_the_feature_cache_and_the_audit_follows(
    tiny_backbone, image_dir, tmp_path
):
    cfg = make_tiny_config(
        image_dir, tmp_path / "ck", backbone="tiny", approach="frozen", feature_cache=False
    )
    run_experiment(dataclasses.replace(cfg, pretrained=True))
    frozen = load_checkpoint(Path(cfg.checkpoint_dir) / "frozen_weights_best.pt")["state_dict"]
    pretrained = body_of(load_tiny_weights().state_dict)
    assert all(torch.equal(frozen[k], pretrained[k]) for k in pretrained)

    predictor = load_predictor(Path(cfg.checkpoint_dir) / "frozen_weights_best.pt")
    pictures = [pil_to_tensor(load_image(p)) for p in sorted(image_dir.rglob("*.png"))[:3]]
    maps, probabilities, crops = explain_images(predictor, pictures)
    assert maps.shape == (3, 32, 32) and probabilities.shape == (3, 2)
    assert crops.shape == (3, 32, 32, 3)  # shown in colour, read in grey

    model = build_model(2, load_tiny_weights(), backbone="tiny")
    data = prepare_data(cfg)
    features = label_check_features(model, make_run_context(cfg, data))
    assert features.shape == (len(data.table), 8 * 4 * 4)  # the stem's 8 maps on a 4x4 grid


def test_a_checkpoint_from_before_the_table_reads_as_resnet50(image_dir, tmp_path):
    save_test_model(tmp_path / "new.pt")
    old = torch.load(tmp_path / "new.pt", weights_only=True)
    del old["backbone"], old["config"]["backbone"]
    assert old["architecture"] == "resnet50"
    torch.save(old, tmp_path / "old.pt")

    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded["backbone"] == "resnet50"
    # Its settings read as a resnet50 run's, so an interrupted old run can still resume.
    assert compare_configs(loaded["config"], Config(image_size=32).to_dict()) == []
    then = predict_paths([tmp_path / "old.pt"], [image_dir / "circle"], **FP32)
    now = predict_paths([tmp_path / "new.pt"], [image_dir / "circle"], **FP32)
    np.testing.assert_array_equal(then.filter(like="prob_"), now.filter(like="prob_"))
    assert load_predictor(tmp_path / "old.pt").backbone == "resnet50"


def test_an_unknown_backbone_fails_clearly(tiny_config, tmp_path, caplog):
    known = (
        "faceapi_expression, faceapi_landmarks, faceapi_recognition, fer_mini_xception, resnet50"
    )
    with pytest.raises(ValueError, match=f"unknown backbone 'nope': choose one of {known}"):
        get_backbone("nope")
    with pytest.raises(ValueError, match="name a backbone"):
        Config(backbone="")
    with pytest.raises(ValueError, match="already registered"):
        register_backbone(get_backbone("resnet50"))

    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(cli_args(tiny_config, "--backbone", "nope")) == 2
    assert "unknown backbone 'nope'" in caplog.text
    assert not list(Path(tiny_config.checkpoint_dir).glob("*.pt"))

    save_test_model(tmp_path / "other.pt", changes={"backbone": "nope", "architecture": "nope"})
    with pytest.raises(CheckpointError, match=f"backbone 'nope'.*known backbones: {known}"):
        load_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_source_reads_its_smallest_side(name):
    entry = get_backbone(name)
    model = entry.build().eval()
    with torch.no_grad():
        model(torch.zeros(1, entry.input_channels, entry.min_side, entry.min_side))
    if name == "faceapi_recognition":  # its stated minimum is the real one
        with pytest.raises(RuntimeError):
            with torch.no_grad():
                model(torch.zeros(1, 3, entry.min_side - 1, entry.min_side - 1))


def test_a_side_too_small_for_the_source_fails_before_training(tiny_config):
    cfg = dataclasses.replace(tiny_config, backbone="faceapi_recognition", image_size=64)
    with pytest.raises(ValueError, match="at least 103 px: choose --image_size 103 or more"):
        resolve_config(cfg)


def test_a_run_reads_resnet50_at_its_default_side_and_the_audit_at_the_weights_own(
    tiny_config, monkeypatch
):
    """Training's default side (160 for resnet50) is the entry's run_side; a set image_size
    wins; the audit reads at the side the weights saw (224) unless told."""
    from emotion_tl.audit import run as audit_run

    entry = get_backbone("resnet50")
    assert (entry.image_size, entry.default_side) == (224, 160)
    unset = dataclasses.replace(tiny_config, backbone="resnet50", image_size=None)
    assert resolve_config(unset).image_size == 160
    assert resolve_config(dataclasses.replace(unset, image_size=200)).image_size == 200
    assert get_backbone("face").default_side == get_backbone("face").image_size == 112
    seen = []

    def stop_here(cfg, data=None):
        seen.append(cfg.image_size)
        raise RuntimeError("enough")

    monkeypatch.setattr(audit_run, "make_run_context", stop_here)
    for cfg in (unset, dataclasses.replace(unset, image_size=96)):
        with pytest.raises(RuntimeError, match="enough"):
            audit_run.audit_data(cfg)
    assert seen == [224, 96]
