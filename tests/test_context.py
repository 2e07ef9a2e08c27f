"""The run context: values derived from the Config once, and the output paths that follow its
folder when a repeat or a demo moves it."""

import dataclasses

import torch

from emotion_tl.config import Config
from emotion_tl.data.faces.crop import FaceCropSettings
from emotion_tl.model.backbones import get_backbone
from emotion_tl.training.context import RunContext


def make_context(tmp_path) -> RunContext:
    cfg = Config(checkpoint_dir=str(tmp_path), face_crop="on", face_margin=0.3)
    return RunContext(
        cfg=cfg,
        out_dir=tmp_path,
        face_crop=FaceCropSettings.from_config(cfg),
        device=torch.device("cpu"),
        precision="fp32",
        data=None,  # not needed for the paths
        pretrained=None,
        backbone=get_backbone(cfg.backbone),
    )


def test_output_paths_are_made_once_for_both_approaches(tmp_path):
    run = make_context(tmp_path)
    assert run.outputs["frozen"]["best"] == tmp_path / "frozen_weights_best.pt"
    assert (
        run.outputs["finetuning"]["predictions_csv"] == tmp_path / "finetuning_test_predictions.csv"
    )


def test_moving_the_run_moves_its_output_paths(tmp_path):
    moved = dataclasses.replace(make_context(tmp_path), out_dir=tmp_path / "repeats" / "seed_43")
    assert moved.outputs["frozen"]["history_csv"].parent == tmp_path / "repeats" / "seed_43"
    assert moved.face_crop == FaceCropSettings("on", 0.3, "blazeface", False)
