"""ONNX export: onnxruntime gives PyTorch's probabilities on the same images, at any batch size,
and the model carries its classes and preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import cli_args
from PIL import Image
from torchvision.transforms.v2.functional import pil_to_tensor

from emotion_tl.cli import main
from emotion_tl.evaluation.predict import load_predictor, predict_paths, predict_tensors
from emotion_tl.model.checkpoint import CheckpointError, load_checkpoint
from emotion_tl.model.export import read_metadata


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A checkpoint trained for one epoch on tiny shapes, and its ONNX export."""
    from conftest import make_image_folder

    from emotion_tl.config import Config

    root = tmp_path_factory.mktemp("export")
    images = make_image_folder(root / "images", {"circle": 8, "square": 8})
    cfg = Config(data_dir=str(images), categories=("circle", "square"), epochs=1, batch_size=4,
                 image_size=32, device="cpu", precision="fp32", pretrained=False,
                 checkpoint_dir=str(root / "ck"))  # fmt: skip
    assert main(cli_args(cfg, "--approach", "finetuning")) == 0
    checkpoint = root / "ck" / "finetuning_best.pt"
    assert main(["export", "--checkpoint", str(checkpoint)]) == 0
    return {"checkpoint": checkpoint, "onnx": checkpoint.with_suffix(".onnx"), "images": images}


def test_onnxruntime_gives_pytorchs_probabilities(exported):
    files = sorted(exported["images"].rglob("*.png"))[:5]
    pictures = [pil_to_tensor(Image.open(f).convert("RGB")) for f in files]
    cpu = torch.device("cpu")
    torch_model, onnx_model = (
        load_predictor(exported["checkpoint"]),
        load_predictor(exported["onnx"]),
    )
    expected = predict_tensors(torch_model, pictures, device=cpu, precision="fp32")
    for batch_size in (1, 2, 5):  # the batch dimension is dynamic
        got = predict_tensors(
            onnx_model, pictures, device=cpu, precision="fp32", batch_size=batch_size
        )
        assert np.abs(got - expected).max() <= 1e-4
    assert not np.allclose(expected, expected[:1])  # the images do get different answers


def test_the_metadata_round_trips_and_predict_takes_the_onnx_file(exported, capsys):
    checkpoint = load_checkpoint(exported["checkpoint"])
    metadata = read_metadata(exported["onnx"])
    assert metadata["class_names"] == checkpoint["class_names"] == ["circle", "square"]
    assert (metadata["image_size"], metadata["resize_size"]) == (32, checkpoint["resize_size"])
    assert metadata["normalization"] == checkpoint["normalization"]
    assert metadata["face_crop"]["face_crop"] == checkpoint["config"]["face_crop"]
    model = onnx.load(str(exported["onnx"]))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    folder = exported["images"] / "square"
    table = predict_paths([exported["onnx"]], [folder], device="cpu", precision="fp32")
    same = predict_paths([exported["checkpoint"]], [folder], device="cpu", precision="fp32")
    assert list(table["predicted"]) == list(same["predicted"])
    assert main(["predict", "--checkpoint", str(exported["onnx"]), str(folder)]) == 0
    assert "square_000.png" in capsys.readouterr().out


def test_an_onnx_file_without_our_metadata_is_refused(tmp_path):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(plain), dynamo=False)
    with pytest.raises(CheckpointError, match="not exported by emotion_tl"):
        load_predictor(plain)
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert not Path(tmp_path / "missing.onnx").exists()
