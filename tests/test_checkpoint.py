import os

import numpy as np
import pytest
import torch
from conftest import make_test_checkpoint
from torch.utils.data import DataLoader

from emotion_tl.data.loaders import ImageDataset
from emotion_tl.data.transforms import build_transforms
from emotion_tl.evaluation.inference import predict_loader
from emotion_tl.model.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from emotion_tl.model.network import build_model

CPU = torch.device("cpu")


def make_example_checkpoint(model, stride_in_1x1=False):
    return make_test_checkpoint(model) | {"stride_in_1x1": stride_in_1x1}


@pytest.mark.parametrize("stride_in_1x1", [False, True])
def test_round_trip_predicts_the_same_probabilities(tmp_path, stride_in_1x1):
    torch.manual_seed(0)
    model = build_model(2, stride_in_1x1=stride_in_1x1).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(make_example_checkpoint(model, stride_in_1x1), path)

    raw = torch.load(path, weights_only=True)  # no pickle needed to read it
    assert raw["class_names"] == ["circle", "square"] and raw["image_size"] == 32
    assert raw["config"]["categories"] == ["confused", "neutral"]
    assert {"torch", "torchvision", "emotion_tl"} <= raw["versions"].keys()

    restored = model_from_checkpoint(load_checkpoint(path))
    images = torch.randint(0, 255, (4, 3, 40, 40), dtype=torch.uint8)
    loader = DataLoader(ImageDataset(images, [0, 1, 0, 1], build_transforms(32, train=False)))
    expected, _ = predict_loader(model, loader, CPU, "fp32")
    actual, _ = predict_loader(restored, loader, CPU, "fp32")
    np.testing.assert_array_equal(actual, expected)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="would run code"):
        load_checkpoint(path)


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(make_example_checkpoint(build_model(2)), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_other_architecture_or_inconsistent_classes_are_refused(tmp_path):
    checkpoint = make_example_checkpoint(build_model(2))
    save_checkpoint(checkpoint | {"architecture": "vgg16"}, tmp_path / "vgg.pt")
    with pytest.raises(CheckpointError, match="vgg16"):
        load_checkpoint(tmp_path / "vgg.pt")
    with pytest.raises(CheckpointError, match="3 classes"):
        model_from_checkpoint(checkpoint | {"class_names": ["a", "b", "c"]})


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
