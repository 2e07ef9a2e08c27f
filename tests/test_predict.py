import numpy as np
import pytest
import torch
from conftest import save_test_model as save_model
from PIL import Image
from torch.utils.data import DataLoader

from emotion_tl.data.files import DataError, Skipped, list_image_files
from emotion_tl.data.loaders import ImageDataset
from emotion_tl.data.scan import decode_images
from emotion_tl.data.transforms import build_transforms, resize_size_for
from emotion_tl.evaluation.inference import predict_loader
from emotion_tl.evaluation.predict import load_predictor, predict_paths, predict_tensors
from emotion_tl.model.checkpoint import CheckpointError

CPU = torch.device("cpu")
FP32 = {"device": "cpu", "precision": "fp32"}  # predict_paths' options, as on the command line


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two different random models saved as checkpoints, shared by this module's tests."""
    folder = tmp_path_factory.mktemp("checkpoints")
    models = {
        name: save_model(folder / f"{name}.pt", seed=seed) for name, seed in (("a", 0), ("b", 1))
    }
    return folder, models


def test_saved_checkpoint_predicts_what_the_model_in_memory_does(image_dir, saved):
    folder, models = saved
    model = models["a"]
    # The training pipeline: decode once at the resize size, then the evaluation transform.
    paths = list_image_files(image_dir / "circle", Skipped()) + list_image_files(
        image_dir / "square", Skipped()
    )
    _, images = decode_images(paths, resize_size_for(32), Skipped())
    loader = DataLoader(
        ImageDataset(images, [0] * len(images), build_transforms(32, train=False)), batch_size=8
    )
    expected, _ = predict_loader(model, loader, CPU, "fp32")

    table = predict_paths([folder / "a.pt"], [image_dir / "circle", image_dir / "square"], **FP32)
    columns = ["file", "predicted", "prob_circle", "prob_square", "faces", "face"]
    assert list(table.columns) == columns
    assert set(table["face"]) == {"no face"}  # face_crop auto: drawn shapes are kept whole
    assert table["file"].tolist() == [str(p) for p in paths]
    actual = table[["prob_circle", "prob_square"]].to_numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(actual, actual[0])  # the images really differ in what they give
    np.testing.assert_allclose(actual.sum(1), 1.0, rtol=1e-5)


def test_an_ensemble_of_a_model_with_itself_is_the_model(image_dir, saved):
    folder, _ = saved
    a, b = load_predictor(folder / "a.pt"), load_predictor(folder / "b.pt")
    one = predict_paths([a], [image_dir / "circle"], **FP32)
    twice = predict_paths([folder / "a.pt", folder / "a.pt"], [image_dir / "circle"], **FP32)
    np.testing.assert_allclose(twice.filter(like="prob_"), one.filter(like="prob_"), rtol=1e-6)
    # An ensemble of two different models is the average of their probabilities.
    other = predict_paths([b], [image_dir / "circle"], **FP32)
    both = predict_paths([a, b], [image_dir / "circle"], **FP32)
    np.testing.assert_allclose(
        both.filter(like="prob_"),
        (one.filter(like="prob_") + other.filter(like="prob_")) / 2,
        rtol=1e-5,
    )


def test_flip_tta_changes_nothing_on_a_mirror_symmetric_image(tmp_path):
    # image_size 56 -> resize 64: a 64 px image is neither resized nor cropped off-centre.
    save_model(tmp_path / "model.pt", image_size=56)
    predictor = load_predictor(tmp_path / "model.pt")
    rng = np.random.default_rng(0)
    half = rng.integers(0, 255, (3, 64, 32), dtype=np.uint8)
    symmetric = torch.from_numpy(np.concatenate([half, half[:, :, ::-1]], axis=2).copy())
    lopsided = torch.from_numpy(rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))
    plain = predict_tensors(predictor, [symmetric, lopsided], device=CPU, precision="fp32")
    tta = predict_tensors(predictor, [symmetric, lopsided], tta=True, device=CPU, precision="fp32")
    np.testing.assert_array_equal(tta[0], plain[0])
    assert not np.allclose(tta[1], plain[1])  # TTA is really applied


def test_models_with_other_classes_cannot_be_ensembled(image_dir, tmp_path, saved):
    save_model(tmp_path / "b.pt", class_names=("square", "circle"))
    with pytest.raises(CheckpointError, match="same categories in the same order"):
        predict_paths([saved[0] / "a.pt", tmp_path / "b.pt"], [image_dir])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"architecture": "vgg16"}, "vgg16"),
        ({"class_names": None}, "does not name its classes"),
        ({"class_names": ["a", "b", "c"]}, "3 classes"),
    ],
)
def test_unusable_checkpoints_give_a_clear_error(image_dir, tmp_path, changes, message):
    save_model(tmp_path / "bad.pt", changes=changes)
    with pytest.raises(CheckpointError, match=message):
        predict_paths([tmp_path / "bad.pt"], [image_dir])


def test_a_broken_file_is_skipped_and_a_missing_path_is_an_error(image_dir, tmp_path, saved):
    predictor = load_predictor(saved[0] / "a.pt")
    (image_dir / "circle" / "broken.jpg").write_bytes(b"not an image")
    Image.new("RGB", (40, 50), "white").save(image_dir / "circle" / "tall.png")
    table = predict_paths([predictor], [image_dir / "circle"])
    assert len(table) == 11 and not table["file"].str.endswith("broken.jpg").any()
    with pytest.raises(DataError, match="does not exist"):
        predict_paths([predictor], [tmp_path / "nowhere"])
