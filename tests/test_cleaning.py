"""Reversible cleaning: moves inside data_dir only, a log of every move, undo byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from emotion_tl.data import cleaning
from emotion_tl.data.cleaning import LOG_FILE, SET_ASIDE, Move, apply_moves, read_log, undo_last
from emotion_tl.data.files import DataError, list_categories


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (the log aside) -> sha256 of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOG_FILE
    }


def test_apply_then_undo_restores_every_file_byte_for_byte(image_dir):
    before = snapshot(image_dir)
    rows = apply_moves(
        image_dir,
        [
            Move("circle/circle_000.png", "square", "looks square"),
            Move("square/square_001.png", None, "blurred"),
        ],
    )
    assert [r["to"] for r in rows] == [
        "square/circle_000.png",
        f"{SET_ASIDE}/square/square_001.png",
    ]
    assert (image_dir / "square" / "circle_000.png").is_file()
    assert not (image_dir / "circle" / "circle_000.png").exists()
    assert list_categories(image_dir) == ["circle", "square", "triangle"]  # _set_aside is not one
    log = read_log(image_dir)
    assert [(r["batch"], r["action"], r["reason"]) for r in log] == [
        ("1", "move", "looks square"),
        ("1", "move", "blurred"),
    ]
    assert all(r["time"] for r in log)
    undone = undo_last(image_dir)
    assert len(undone) == 2
    after = snapshot(image_dir)
    assert after == before
    assert undo_last(image_dir) == []  # nothing left to undo


def test_undo_takes_back_only_the_last_batch(image_dir):
    apply_moves(image_dir, [Move("circle/circle_000.png", "square")])
    apply_moves(image_dir, [Move("circle/circle_001.png", "triangle")])
    undo_last(image_dir)
    assert (image_dir / "circle" / "circle_001.png").is_file()
    assert (image_dir / "square" / "circle_000.png").is_file()
    undo_last(image_dir)
    assert (image_dir / "circle" / "circle_000.png").is_file()


def test_a_name_clash_gets_a_suffix_never_an_overwrite(image_dir):
    (image_dir / "square" / "circle_000.png").write_bytes(b"already here")
    rows = apply_moves(image_dir, [Move("circle/circle_000.png", "square")])
    assert rows[0]["to"] == "square/circle_000_1.png"
    assert (image_dir / "square" / "circle_000.png").read_bytes() == b"already here"


def test_a_read_only_folder_moves_nothing(image_dir, monkeypatch):
    before = snapshot(image_dir)
    real_access = cleaning.os.access
    read_only = (image_dir / "square").resolve()
    # Tests run as root here, which writes anywhere; simulate a folder without write permission.
    monkeypatch.setattr(
        cleaning.os,
        "access",
        lambda path, mode: Path(path) != read_only and real_access(path, mode),
    )
    with pytest.raises(DataError, match="no permission to write in .*square"):
        apply_moves(image_dir, [Move("circle/circle_000.png", "triangle"),
                                Move("square/square_000.png", None)])  # fmt: skip
    assert snapshot(image_dir) == before and not (image_dir / LOG_FILE).exists()


def test_nothing_outside_data_dir_is_touched(image_dir, tmp_path):
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"mine")
    with pytest.raises(DataError, match="outside data_dir"):
        apply_moves(image_dir, [Move("../elsewhere.png", "square")])
    with pytest.raises(DataError, match="outside data_dir"):
        apply_moves(image_dir, [Move("circle/circle_000.png", "../../elsewhere")])
    assert outside.read_bytes() == b"mine" and (image_dir / "circle" / "circle_000.png").exists()


def test_undo_refuses_when_the_old_place_is_taken_again(image_dir):
    apply_moves(image_dir, [Move("circle/circle_000.png", "square")])
    (image_dir / "circle" / "circle_000.png").write_bytes(b"new")
    with pytest.raises(DataError, match="exist again"):
        undo_last(image_dir)
    assert (image_dir / "square" / "circle_000.png").is_file()


def test_the_scan_notices_moved_files(tiny_config, image_dir):
    from emotion_tl.data.prepare import prepare_data

    first = prepare_data(tiny_config)
    apply_moves(image_dir, [Move("circle/circle_000.png", "square")])
    again = prepare_data(tiny_config)
    labels = dict(zip(again.table["file"], again.table["label"], strict=True))
    assert labels["square/circle_000.png"] == "square" and "circle/circle_000.png" not in labels
    assert len(again.table) == len(first.table)
