"""The on-disk image cache: the images memory would hold, decoded once, redone where changed."""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

from emotion_tl.config import Config
from emotion_tl.data import image_store, scan
from emotion_tl.data.image_store import IMAGE_CACHE_DIR, StoredImages, use_disk
from emotion_tl.data.loaders import make_loaders
from emotion_tl.data.prepare import prepare_data


@pytest.fixture
def disk_config(tiny_config: Config) -> Config:
    return dataclasses.replace(tiny_config, image_cache="disk")


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file the scan decodes (by the size of its bytes, enough to count them)."""
    calls: list[str] = []
    real = scan.check_file

    def counting(data, *args, **kwargs):
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(scan, "check_file", counting)
    return calls


def store_folder(cfg: Config) -> Path:
    (folder,) = (Path(cfg.checkpoint_dir) / IMAGE_CACHE_DIR).iterdir()
    return folder


def assert_same_data(first, second) -> None:
    assert first.table.equals(second.table)
    assert (first.phashes == second.phashes).all()
    assert first.framings == second.framings
    assert len(first.images) == len(second.images)
    for a, b in zip(first.images, second.images, strict=True):
        assert torch.equal(a, b)


def test_disk_cache_holds_the_same_images_as_memory(tiny_config, disk_config):
    in_memory = prepare_data(dataclasses.replace(tiny_config, image_cache="memory"))
    on_disk = prepare_data(disk_config)
    assert isinstance(in_memory.images, list)
    assert isinstance(on_disk.images, StoredImages)
    assert_same_data(in_memory, on_disk)
    assert (store_folder(disk_config) / "index.json").is_file()


def test_a_second_run_decodes_nothing_and_reads_the_same(disk_config, monkeypatch):
    first = prepare_data(disk_config)
    decodes = count_decodes(monkeypatch)
    second = prepare_data(disk_config)
    assert decodes == []
    assert_same_data(first, second)


def test_only_a_changed_file_is_decoded_again(disk_config, image_dir, monkeypatch):
    prepare_data(disk_config)
    changed = image_dir / "circle" / "circle_003.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(changed)
    decodes = count_decodes(monkeypatch)
    data = prepare_data(disk_config)
    assert len(decodes) == 1
    row = data.table.index[data.table["file"] == "circle/circle_003.png"][0]
    assert data.images[row][0].float().mean() > 150  # the new red picture, not the old shape
    in_memory = prepare_data(dataclasses.replace(disk_config, image_cache="memory"))
    assert torch.equal(data.images[row], in_memory.images[row])


def test_a_copy_of_a_file_shares_its_pixels(disk_config, image_dir):
    prepare_data(disk_config)
    pixels = store_folder(disk_config) / "pixels-0.u8"
    size = pixels.stat().st_size
    original = image_dir / "circle" / "circle_002.png"
    (image_dir / "circle" / "copy.png").write_bytes(original.read_bytes())
    data = prepare_data(disk_config)
    assert pixels.stat().st_size == size
    rows = {f: i for i, f in enumerate(data.table["file"])}
    copy, first = data.images[rows["circle/copy.png"]], data.images[rows["circle/circle_002.png"]]
    assert torch.equal(copy, first)


def test_forgotten_images_are_compacted_away(disk_config, image_dir, monkeypatch):
    first = prepare_data(disk_config)
    old_pixels = store_folder(disk_config) / "pixels-0.u8"
    old_size = old_pixels.stat().st_size
    for category in ("circle", "square"):
        for path in sorted((image_dir / category).glob("*.png"))[:7]:
            path.unlink()
    monkeypatch.setattr(image_store, "COMPACT_SLACK_BYTES", 0)
    second = prepare_data(disk_config)
    assert not old_pixels.exists()
    new_pixels = store_folder(disk_config) / "pixels-1.u8"
    assert new_pixels.stat().st_size < old_size
    kept = {f: i for i, f in enumerate(first.table["file"])}
    for row, file in enumerate(second.table["file"]):
        assert torch.equal(second.images[row], first.images[kept[file]])


def test_a_truncated_pixel_file_is_rebuilt(disk_config):
    first = prepare_data(disk_config)
    pixels = store_folder(disk_config) / "pixels-0.u8"
    with open(pixels, "r+b") as file:
        file.truncate(pixels.stat().st_size // 2)
    assert_same_data(first, prepare_data(disk_config))


def test_stored_images_survive_pickling_and_slicing(disk_config):
    images = prepare_data(disk_config).images
    copy = pickle.loads(pickle.dumps(images))
    assert torch.equal(copy[3], images[3])
    assert torch.equal(images[2:5][1], images[3])
    assert torch.equal(images.select([4, 1])[1], images[1])


def test_images_read_back_where_there_is_no_pread(disk_config, monkeypatch):
    # Windows has no os.pread: each process seeks its own descriptor instead.
    in_memory = prepare_data(dataclasses.replace(disk_config, image_cache="memory"))
    prepare_data(disk_config)
    monkeypatch.delattr(os, "pread")
    on_disk = prepare_data(disk_config)
    assert_same_data(in_memory, on_disk)


def test_loaders_with_workers_read_the_disk_cache(tiny_config, disk_config):
    batches = []
    for cfg in (tiny_config, disk_config):
        cfg = dataclasses.replace(cfg, num_workers=2)
        loaders = make_loaders(prepare_data(cfg), cfg)
        batches.append(next(iter(loaders["val"])))
    assert torch.equal(batches[0][0], batches[1][0])
    assert torch.equal(batches[0][1], batches[1][1])


def test_auto_goes_to_disk_only_for_large_datasets():
    assert not use_disk("auto", 1_000, 256)
    assert use_disk("auto", 50_000, 256)
    assert use_disk("disk", 10, 256) and not use_disk("memory", 10**6, 256)


def test_unknown_image_cache_names_the_choices(tiny_config):
    with pytest.raises(ValueError, match="image_cache='ram': choose one of auto, memory, disk"):
        dataclasses.replace(tiny_config, image_cache="ram")
