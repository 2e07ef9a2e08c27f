"""The cleaner widget, driven as a user would: choose, switch the problem shown, Apply, Undo."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from emotion_tl.data.cleaning import LOG_FILE, read_log
from emotion_tl.notebook.cleaner import KEEP, SET_ASIDE, make_cleaner


def audit_table() -> pd.DataFrame:
    rows = [
        ("circle/circle_000.png", "circle", "label", 0.9, "square", 0.9),
        ("circle/circle_001.png", "circle", "blurred", 0.7, None, None),
        ("square/square_000.png", "square", "label", 0.6, "circle", 0.6),
        ("square/square_000.png", "square", "too dark", 0.8, None, None),
    ]
    columns = ["file", "label", "problem", "score", "guess", "guess_probability"]
    return pd.DataFrame(rows, columns=columns)


def files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != LOG_FILE
    }


def dropdown(cleaner, file):
    """The choice widget of `file`'s card on screen."""
    for card in cleaner.grid.children:
        if file in card.children[-2].value:
            return card.children[-1]
    raise AssertionError(f"{file} is not shown")


def test_choices_survive_switching_problems_and_apply_then_undo(image_dir):
    before = files(image_dir)
    cleaner = make_cleaner(audit_table(), image_dir, ["circle", "square", "triangle"])
    assert len(cleaner.grid.children) == 3  # one card per file, worst score first
    assert dropdown(cleaner, "circle/circle_000.png").options[0] == KEEP
    dropdown(cleaner, "circle/circle_000.png").value = "move to square"
    assert cleaner.apply_button.description == "Apply (1)"  # counted at once, not on a redraw
    cleaner.problem.value = "blurred"
    assert [c.children[-2].value.count("circle_001") for c in cleaner.grid.children] == [1]
    dropdown(cleaner, "circle/circle_001.png").value = SET_ASIDE
    cleaner.problem.value = "every problem"
    assert dropdown(cleaner, "circle/circle_000.png").value == "move to square"  # not lost
    assert cleaner.apply_button.description == "Apply (2)"
    cleaner.apply_button.click()
    assert (image_dir / "square" / "circle_000.png").is_file()
    assert (image_dir / "_set_aside" / "circle" / "circle_001.png").is_file()
    assert "Moved 2 file(s)" in cleaner.message.value
    assert len(read_log(image_dir)) == 2 and cleaner.choices == {}
    cleaner.undo_button.click()
    assert files(image_dir) == before
    assert "back" in cleaner.message.value


def test_an_error_is_shown_and_nothing_moves(image_dir):
    cleaner = make_cleaner(audit_table(), image_dir, ["circle", "square"])
    dropdown(cleaner, "circle/circle_000.png").value = "move to square"
    (image_dir / "circle" / "circle_000.png").unlink()  # gone before Apply
    cleaner.apply_button.click()
    assert "not found" in cleaner.message.value
    assert not (image_dir / "square" / "circle_000.png").exists()
    assert cleaner.choices == {"circle/circle_000.png": "move to square"}  # still pending
