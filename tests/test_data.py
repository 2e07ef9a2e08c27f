import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from emotion_tl.data.files import DataError, list_categories, load_image
from emotion_tl.data.loaders import ImageDataset, make_loaders
from emotion_tl.data.prepare import prepare_data
from emotion_tl.data.split import SPLIT_FILE, save_split
from emotion_tl.data.transforms import build_transforms
from emotion_tl.device import to_device
from emotion_tl.model.backbones import get_backbone


def test_only_the_asked_categories_are_used(tiny_config):
    data = prepare_data(tiny_config)
    assert set(data.table["label"]) == {"circle", "square"}
    assert len(data.table) == len(data.images) == 20


def test_split_is_stratified_disjoint_and_complete(tiny_config):
    data = prepare_data(tiny_config)
    counts = data.table.groupby(["label", "split"]).size().unstack()
    # 10 per category: round(1.5) = 2 test, 2 val, 6 train in each.
    assert counts.loc["circle"].to_dict() == {"test": 2, "train": 6, "val": 2}
    assert counts.loc["square"].to_dict() == {"test": 2, "train": 6, "val": 2}
    assert data.table["file"].is_unique


def test_split_depends_on_the_seed_only(tiny_config):
    first = prepare_data(tiny_config).table
    again = prepare_data(tiny_config).table
    other = prepare_data(dataclasses.replace(tiny_config, seed=7)).table
    pd.testing.assert_frame_equal(first, again)
    assert not first["split"].equals(other["split"])


def test_split_is_saved_as_csv(tiny_config, tmp_path):
    data = prepare_data(tiny_config)
    path = save_split(data.table, tmp_path)
    assert path.name == SPLIT_FILE
    pd.testing.assert_frame_equal(pd.read_csv(path), data.table)


def test_metadata_identities_never_cross_splits(tiny_config, image_dir):
    files = sorted(p.relative_to(image_dir).as_posix() for p in image_dir.rglob("*.png"))
    # Image k of every category shows "person" k, as in the bundled demo data.
    identities = [f"id{int(f.split('_')[-1][:3]) % 5}" for f in files]
    pd.DataFrame({"file": files, "identity": identities}).to_csv(image_dir / "metadata.csv")
    table = prepare_data(tiny_config).table
    table["identity"] = table["file"].map(dict(zip(files, identities, strict=True)))
    assert table.groupby("identity")["split"].nunique().max() == 1
    assert set(table["split"]) == {"train", "val", "test"}


def test_max_images_per_category(tiny_config):
    data = prepare_data(dataclasses.replace(tiny_config, max_images_per_category=5))
    assert data.table["label"].value_counts().to_dict() == {"circle": 5, "square": 5}


def test_images_in_subfolders_and_any_extension_case_are_found(tiny_config, image_dir):
    nested = image_dir / "circle" / "holiday" / "day 2"
    nested.mkdir(parents=True)
    Image.new("RGB", (40, 30), "red").save(nested / "Photo ONE.JPG")
    Image.new("RGB", (40, 30), "red").save(nested / "two.Jpeg", format="JPEG")
    files = set(prepare_data(tiny_config).table["file"])
    assert {"circle/holiday/day 2/Photo ONE.JPG", "circle/holiday/day 2/two.Jpeg"} <= files


def test_unreadable_files_are_skipped_with_a_warning(tiny_config, image_dir, caplog):
    (image_dir / "circle" / "broken.jpg").write_bytes(b"<html>not an image</html>")
    (image_dir / "circle" / "empty.png").write_bytes(b"")
    (image_dir / "circle" / "notes.txt").write_text("hello")
    with caplog.at_level(logging.WARNING, logger="emotion_tl"):
        data = prepare_data(tiny_config)
    assert len(data.table) == 20
    assert "Skipped 3 file(s)" in caplog.text
    assert "broken.jpg" in caplog.text and "empty.png" in caplog.text


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (20, 60)


def test_missing_data_dir_names_the_fix(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="does not exist.*--data_dir"):
        prepare_data(cfg)


def test_data_dir_that_is_a_file(tiny_config, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        prepare_data(dataclasses.replace(tiny_config, data_dir=str(tmp_path / "file.txt")))


def test_missing_category_lists_the_available_ones(tiny_config):
    with pytest.raises(DataError, match=r"\['happy'\].*circle, square, triangle"):
        prepare_data(dataclasses.replace(tiny_config, categories=("circle", "happy")))


def test_underscore_folders_are_never_categories(tiny_config, image_dir):
    (image_dir / "_set_aside" / "circle").mkdir(parents=True)
    (image_dir / ".hidden").mkdir()
    assert list_categories(image_dir) == ["circle", "square", "triangle"]
    with pytest.raises(ValueError, match=r"\['_set_aside'\].*never categories"):
        dataclasses.replace(tiny_config, categories=("circle", "_set_aside"))


def test_too_few_images_to_split(tiny_config, image_dir):
    for path in sorted((image_dir / "square").glob("*.png"))[2:]:
        path.unlink()
    with pytest.raises(DataError, match="'square' has 2 usable image"):
        prepare_data(tiny_config)


def test_loaders_shape_and_normalisation(tiny_config):
    data = prepare_data(tiny_config)
    loaders = make_loaders(data, tiny_config)
    images, labels = next(iter(loaders["test"]))
    # uint8 from the loader (a quarter of the bytes); normalised where the batch lands.
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
    assert sorted(labels.tolist()) == [0, 0, 1, 1]  # two test images per category
    normalised = to_device(images, torch.device("cpu"), get_backbone("resnet50").normalize)
    assert normalised.dtype == torch.float32
    assert normalised.min() < -1 and normalised.max() > 1  # ImageNet-normalised, not 0..1
    # Bit for bit what the whole per-image transform gives.
    rows = data.indices("test")
    full = build_transforms(32, train=False)
    expected = torch.stack([full(data.images[i]) for i in rows[: len(images)]])
    assert torch.equal(normalised, expected)


def test_dataset_works_in_spawned_workers(tiny_config):
    # Windows starts DataLoader workers with spawn: the dataset and transforms must pickle.
    data = prepare_data(tiny_config)
    dataset = ImageDataset(data.images[:4], [0, 1, 0, 1], build_transforms(32, train=True))
    loader = DataLoader(dataset, batch_size=2, num_workers=1, multiprocessing_context="spawn")
    batches = [images.shape for images, _ in loader]
    assert batches == [torch.Size([2, 3, 32, 32])] * 2


def test_train_transform_augments_and_eval_transform_does_not(tiny_config):
    image = prepare_data(tiny_config).images[0]
    train, evaluation = build_transforms(32, train=True), build_transforms(32, train=False)
    torch.manual_seed(0)
    assert not torch.equal(train(image), train(image))
    assert torch.equal(evaluation(image), evaluation(image))
    assert np.isfinite(evaluation(image).numpy()).all()


def test_subset_of_a_dataset_with_identities_takes_the_same_people(tiny_config, image_dir):
    files = sorted(p.relative_to(image_dir).as_posix() for p in image_dir.rglob("*.png"))
    identities = [f"id{f.split('_')[-1][:3]}" for f in files]  # image k of each category: person k
    pd.DataFrame({"file": files, "identity": identities}).to_csv(image_dir / "metadata.csv")
    table = prepare_data(dataclasses.replace(tiny_config, max_images_per_category=6)).table
    people = table["file"].str.extract(r"_(\d+)\.png")[0]
    circle, square = (people[table["label"] == c].tolist() for c in ("circle", "square"))
    assert circle == square
    # Whole people per split, and so the same number of each category in every split.
    counts = table.groupby(["split", "label"]).size().unstack()
    assert (counts["circle"] == counts["square"]).all()


def test_a_stamped_json_cache_reads_back_only_under_its_own_settings(tmp_path):
    from emotion_tl.data.json_cache import read_stamped_json, write_stamped_json

    path = tmp_path / "cache.json"
    write_stamped_json(path, {"version": 1}, "files", {"a.png": 3})
    assert read_stamped_json(path, {"version": 1}, "files") == {"a.png": 3}
    assert read_stamped_json(path, {"version": 2}, "files") is None  # other settings: stale
    assert read_stamped_json(tmp_path / "missing.json", {"version": 1}, "files") is None
    for broken in ("not json", "[1, 2]", '{"stamp": {"version": 1}}'):
        path.write_text(broken)  # garbage, a list, no entries: ignored, never a crash
        assert read_stamped_json(path, {"version": 1}, "files") is None
