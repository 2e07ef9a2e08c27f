"""Every kind of file users drop into Images/: each case is built here and must end the
documented way (used correctly, skipped with its reason, or a clear error before training)."""

import dataclasses
import logging
import os

import numpy as np
import pandas as pd
import pytest
from conftest import cli_args
from PIL import Image

from emotion_tl.cli import main
from emotion_tl.data import scan
from emotion_tl.data.describe import make_data_report
from emotion_tl.data.files import DataError
from emotion_tl.data.prepare import prepare_data
from emotion_tl.data.scan import (
    BROKEN,
    CROSS_CATEGORY,
    EMPTY,
    TOO_LARGE,
    TOO_SMALL,
    UNREADABLE,
)


def image_of(data, name):
    """The decoded uint8 (H, W, 3) array of `name` (relative to data_dir)."""
    row = data.table.index[data.table["file"] == name]
    assert len(row) == 1, f"{name} was not used: {data.skipped.by_reason}"
    return data.images[row[0]].permute(1, 2, 0).numpy()


def skipped_names(data, reason):
    return sorted(p.name for p in data.skipped.by_reason.get(reason, []))


def save_jpeg(path, image=None, **kwargs):
    (image or Image.new("RGB", (48, 40), (200, 30, 30))).save(path, format="JPEG", **kwargs)


def test_broken_and_non_image_files_are_skipped(tiny_config, image_dir):
    circle = image_dir / "circle"
    save_jpeg(circle / "whole.jpg")
    whole = (circle / "whole.jpg").read_bytes()
    (circle / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (circle / "page.jpg").write_text("<!DOCTYPE html><html><body>404</body></html>")
    (circle / "empty.png").write_bytes(b"")
    data = prepare_data(tiny_config)
    assert skipped_names(data, BROKEN) == ["page.jpg", "truncated.jpg"]
    assert skipped_names(data, EMPTY) == ["empty.png"]
    assert "circle/whole.jpg" in set(data.table["file"])


def test_transparency_becomes_white_not_black(tiny_config, image_dir):
    rgba = Image.new("RGBA", (48, 48), (0, 0, 0, 0))  # fully transparent black
    rgba.paste((0, 0, 255, 255), (0, 0, 24, 48))  # opaque blue left half
    rgba.save(image_dir / "circle" / "alpha.png")
    pixels = image_of(prepare_data(tiny_config), "circle/alpha.png")
    assert (pixels[:, -5:] == 255).all()  # transparent -> white
    assert pixels[:, :5, 2].min() > 250 and pixels[:, :5, 0].max() < 5  # blue stays blue


def test_palette_grayscale_cmyk_and_webp_keep_their_colours(tiny_config, image_dir):
    red = Image.new("RGB", (48, 48), (220, 20, 20))
    red.convert("P", palette=Image.Palette.ADAPTIVE).save(image_dir / "circle" / "palette.png")
    Image.new("L", (48, 48), 90).save(image_dir / "circle" / "gray.png")
    red.convert("CMYK").save(image_dir / "circle" / "cmyk.jpg", quality=95)
    red.save(image_dir / "circle" / "photo.webp", quality=95)
    data = prepare_data(tiny_config)
    for name in ("palette.png", "cmyk.jpg", "photo.webp"):
        mean = image_of(data, f"circle/{name}").reshape(-1, 3).mean(0)
        np.testing.assert_allclose(mean, (220, 20, 20), atol=12, err_msg=name)
    gray = image_of(data, "circle/gray.png")
    assert gray.shape[2] == 3 and (gray == 90).all()


def test_16_bit_png_is_scaled_to_8_bits_not_clipped(tiny_config, image_dir):
    ramp = np.tile(np.linspace(0, 65535, 48).astype(np.uint16), (48, 1))  # left dark, right bright
    Image.fromarray(ramp).save(image_dir / "circle" / "deep.png")
    assert Image.open(image_dir / "circle" / "deep.png").mode.startswith("I;16")
    pixels = image_of(prepare_data(tiny_config), "circle/deep.png")[..., 0].astype(int)
    row = pixels[pixels.shape[0] // 2]
    assert row[0] < 10 and row[-1] > 245 and 100 < row[len(row) // 2] < 155
    assert (np.diff(row) >= -1).all()  # still a ramp, not a wall of 255


def test_exif_rotation_is_shown_upright(tiny_config, image_dir):
    # Stored landscape with red on the left; orientation 6 means "rotate 90 degrees clockwise
    # to display", so the upright picture is portrait with red on top.
    stored = Image.new("RGB", (80, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    save_jpeg(image_dir / "circle" / "phone.jpg", stored, exif=exif, quality=95)
    pixels = image_of(prepare_data(tiny_config), "circle/phone.jpg")
    assert pixels.shape[0] > pixels.shape[1]  # portrait
    top, bottom = pixels[: pixels.shape[0] // 4], pixels[-pixels.shape[0] // 4 :]
    assert top[..., 0].mean() > 200 and bottom[..., 2].mean() > 200


def test_animated_gif_uses_its_first_frame(tiny_config, image_dir):
    frames = [Image.new("RGB", (48, 48), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(image_dir / "circle" / "anim.gif", save_all=True, append_images=frames[1:])
    pixels = image_of(prepare_data(tiny_config), "circle/anim.gif")
    assert pixels[..., 0].mean() > 200 and pixels[..., 2].mean() < 50


def test_decompression_bomb_and_tiny_images_are_skipped(tiny_config, image_dir, monkeypatch):
    # A real bomb would be gigabytes; lowering Pillow's limit makes a 100x100 image one.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # refuses above 2 x 3000 pixels
    Image.new("RGB", (100, 100), "white").save(image_dir / "circle" / "huge.png")
    Image.new("RGB", (1, 1), "white").save(image_dir / "circle" / "pixel.gif")
    Image.new("RGB", (12, 40), "white").save(image_dir / "circle" / "icon.png")
    data = prepare_data(tiny_config)
    assert skipped_names(data, TOO_LARGE) == ["huge.png"]
    assert skipped_names(data, TOO_SMALL) == ["icon.png", "pixel.gif"]
    assert len(data.table) == 20


def test_names_extensions_and_nested_folders(tiny_config, image_dir):
    nested = image_dir / "circle" / "2024" / "trip à Zürich"
    nested.mkdir(parents=True)
    for name in ("UPPER.JPG", "Mixed.Jpeg", "café ünïcode 笑.png", "with  spaces.PNG"):
        Image.new("RGB", (48, 48), "green").save(nested / name, format="PNG")
    data = prepare_data(tiny_config)
    files = set(data.table["file"])
    for name in ("UPPER.JPG", "Mixed.Jpeg", "café ünïcode 笑.png", "with  spaces.PNG"):
        assert f"circle/2024/trip à Zürich/{name}" in files
    path = tiny_config.checkpoint_dir + "/split.csv"
    data.table.to_csv(path, index=False)
    pd.testing.assert_frame_equal(pd.read_csv(path), data.table)  # round-trips as UTF-8


def test_system_hidden_and_resource_fork_files_are_skipped(tiny_config, image_dir):
    circle = image_dir / "circle"
    for name in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (circle / name).write_bytes(b"\0\1\2")
    Image.new("RGB", (48, 48)).save(circle / "._circle_000.png", format="PNG")  # a valid image!
    (circle / ".hidden.png").write_bytes((circle / "circle_000.png").read_bytes())
    (circle / "notes.txt").write_text("not an image")
    data = prepare_data(tiny_config)
    assert set(skipped_names(data, "system files")) == {
        "._circle_000.png",
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
    }
    assert skipped_names(data, "hidden files") == [".hidden.png"]
    assert skipped_names(data, "files without an image extension") == ["notes.txt"]
    assert len(data.table) == 20


def test_symlink_loops_end_the_scan(tiny_config, image_dir):
    circle = image_dir / "circle"
    os.symlink("..", circle / "parent")  # a folder loop: circle/parent/circle/parent/...
    os.symlink("b.jpg", circle / "a.jpg")  # a file loop: a -> b -> a
    os.symlink("a.jpg", circle / "b.jpg")
    os.symlink("gone.png", circle / "dangling.png")
    data = prepare_data(tiny_config)
    assert skipped_names(data, "linked folders (not followed)") == ["parent"]
    assert skipped_names(data, UNREADABLE) == ["a.jpg", "b.jpg", "dangling.png"]
    assert len(data.table) == 20


def test_same_image_in_two_categories_is_left_out_with_a_warning(tiny_config, image_dir, caplog):
    copy = image_dir / "square" / "copied from circle.png"
    copy.write_bytes((image_dir / "circle" / "circle_003.png").read_bytes())
    with caplog.at_level(logging.WARNING, logger="emotion_tl"):
        data = prepare_data(tiny_config)
    assert skipped_names(data, CROSS_CATEGORY) == ["circle_003.png", "copied from circle.png"]
    assert "circle/circle_003.png = square/copied from circle.png" in caplog.text
    assert len(data.table) == 19
    assert data.duplicates.across == [["circle/circle_003.png", "square/copied from circle.png"]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_copies_within_a_category_stay_in_one_split(tiny_config, image_dir, seed):
    for index in range(4):
        original = image_dir / "circle" / f"circle_00{index}.png"
        (image_dir / "circle" / f"copy {index}.png").write_bytes(original.read_bytes())
    data = prepare_data(dataclasses.replace(tiny_config, seed=seed))
    table = data.table.set_index("file")
    for index in range(4):
        original, copy = f"circle/circle_00{index}.png", f"circle/copy {index}.png"
        assert table.loc[original, "split"] == table.loc[copy, "split"]
    assert len(data.duplicates.within) == 4
    assert set(table["split"]) == {"train", "val", "test"}


def test_identities_and_copies_are_merged(tiny_config, image_dir):
    files = sorted(p.relative_to(image_dir).as_posix() for p in image_dir.rglob("*.png"))
    identities = {f: f"id{int(f.split('_')[-1][:3]) % 5}" for f in files}
    # A copy of person 0's picture filed as if it showed person 1: the two people must merge.
    (image_dir / "circle" / "circle_011.png").write_bytes(
        (image_dir / "circle" / "circle_000.png").read_bytes()
    )
    identities["circle/circle_011.png"] = "id1"
    pd.DataFrame({"file": list(identities), "identity": list(identities.values())}).to_csv(
        image_dir / "metadata.csv"
    )
    table = prepare_data(tiny_config).table
    table["identity"] = table["file"].map(identities)
    split_of = table.groupby("identity")["split"].unique()
    assert all(len(s) == 1 for s in split_of)
    assert split_of["id0"][0] == split_of["id1"][0]


@pytest.mark.parametrize("count", [0, 1])
def test_empty_or_single_image_category_fails_before_training(tiny_config, image_dir, count):
    for path in sorted((image_dir / "square").glob("*.png"))[count:]:
        path.unlink()
    with pytest.raises(DataError, match=f"'square' has {count} usable image.*Add images"):
        prepare_data(tiny_config)


def test_three_copies_of_one_image_are_not_three_images(tiny_config, image_dir):
    for path in sorted((image_dir / "square").glob("*.png"))[1:]:
        path.unlink()
    first = image_dir / "square" / "square_000.png"
    for name in ("a.png", "b.png"):
        (image_dir / "square" / name).write_bytes(first.read_bytes())
    with pytest.raises(DataError, match=r"'square' has 3 usable image\(s\) \(1 distinct\)"):
        prepare_data(tiny_config)


def test_second_scan_reopens_nothing_it_already_judged(tiny_config, image_dir, monkeypatch):
    (image_dir / "circle" / "page.jpg").write_text("<html></html>")
    (image_dir / "circle" / "empty.png").write_bytes(b"")
    first = prepare_data(tiny_config)

    decoded, hashed = [], []
    real_check, real_sha1 = scan.check_file, scan.hashlib.sha1
    monkeypatch.setattr(
        scan,
        "check_file",
        lambda data, size, frame=None: decoded.append(1) or real_check(data, size, frame),
    )
    monkeypatch.setattr(scan.hashlib, "sha1", lambda data: hashed.append(1) or real_sha1(data))
    again = prepare_data(tiny_config)
    assert len(decoded) == 20 and not hashed  # the good images only (training needs them)
    assert again.skipped.by_reason == first.skipped.by_reason
    for a, b in zip(first.images, again.images, strict=True):
        assert (a == b).all()

    # A file that changes is judged again.
    Image.new("RGB", (48, 48), "red").save(image_dir / "circle" / "page.jpg", format="JPEG")
    decoded.clear()
    fixed = prepare_data(tiny_config)
    assert "circle/page.jpg" in set(fixed.table["file"]) and len(decoded) == 21


def test_data_report_names_counts_skips_duplicates_and_imbalance(tiny_config, image_dir):
    for path in sorted((image_dir / "square").glob("*.png"))[5:]:
        path.unlink()
    (image_dir / "circle" / "page.jpg").write_text("<html></html>")
    (image_dir / "circle" / "again.png").write_bytes(
        (image_dir / "circle" / "circle_001.png").read_bytes()
    )
    data = prepare_data(tiny_config)
    report = make_data_report(data, "auto")
    lines = report.splitlines()
    assert lines[0] == "Data: 16 images in 2 categories"
    train = data.table[data.table["split"] == "train"]["label"].value_counts()
    for category in ("circle", "square"):
        counts = data.table[data.table["label"] == category]["split"].value_counts()
        row = [category, *(str(counts[s]) for s in ("train", "val", "test")), str(counts.sum())]
        assert row in [line.split() for line in lines], report
    ratio = train["circle"] / train["square"]  # 10 distinct circles, 5 squares: about 2
    assert ratio > 1.5
    assert f"training category): {ratio:.2f} -> balanced sampling" in report
    assert f"1 {BROKEN}: page.jpg" in report
    assert "circle/again.png = circle/circle_001.png" in report or (
        "circle/circle_001.png = circle/again.png" in report
    )


def test_a_run_over_a_messy_folder_trains_on_the_good_images(tiny_config, image_dir, caplog):
    circle = image_dir / "circle"
    save_jpeg(circle / "Good Photo.JPG")
    whole = (circle / "Good Photo.JPG").read_bytes()
    (circle / "broken.jpg").write_bytes(whole[:300])
    (circle / "page.jpeg").write_text("<html></html>")
    (circle / "empty.png").write_bytes(b"")
    (circle / ".DS_Store").write_bytes(b"\0")
    (circle / "._Good Photo.JPG").write_bytes(b"\0\5")
    Image.new("RGB", (1, 1)).save(circle / "pixel.gif")
    os.symlink("..", circle / "loop")
    (image_dir / "square" / "dup.png").write_bytes((circle / "circle_002.png").read_bytes())
    args = cli_args(tiny_config, "--approach", "frozen", "--epochs", "1")
    with caplog.at_level(logging.INFO, logger="emotion_tl"):
        assert main(args) == 0
    split = pd.read_csv(f"{tiny_config.checkpoint_dir}/split.csv")
    assert len(split) == 20  # 20 + Good Photo.JPG - circle_002 (also filed as square/dup.png)
    assert "circle/Good Photo.JPG" in set(split["file"])
    assert "Skipped 9 file(s)" in caplog.text
    for reason in (BROKEN, EMPTY, TOO_SMALL, CROSS_CATEGORY, "system files", "linked folders"):
        assert reason in caplog.text
