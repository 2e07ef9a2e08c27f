"""The cleaner widget: the audit's suspects in a grid; keep, move or set aside each, then Apply.

    cleaner = make_cleaner(audit.table, cfg.data_dir, cfg.categories)
    display(cleaner.widget)

Choices wait until Apply, whichever problem is shown meanwhile. Apply moves the files (never
deletes them) and logs every move in data_dir/cleaning_log.csv; "Undo last apply" moves them
back (data.cleaning).
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from emotion_tl.data.cleaning import LOG_FILE, Move, apply_moves, undo_last
from emotion_tl.data.faces.crop import FaceCropSettings, load_seen_image
from emotion_tl.data.files import DataError

KEEP, SET_ASIDE = "keep", "set aside"
ALL = "every problem"
THUMBNAIL = 150  # pixels


def list_suspects(table: pd.DataFrame) -> pd.DataFrame:
    """One row per file: its label, the model's guess, every problem found, worst score first."""
    rows = table.sort_values("score", ascending=False)
    grouped = rows.groupby("file", sort=False).agg(
        label=("label", "first"),
        score=("score", "max"),
        guess=("guess", "first"),
        guess_probability=("guess_probability", "first"),
        problems=("problem", lambda found: list(dict.fromkeys(found))),
    )
    return grouped.reset_index()


def thumbnail(path: Path, face_crop: FaceCropSettings | None) -> bytes:
    image = load_seen_image(path, face_crop).convert("RGB")
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Cleaner:
    """The widget and its state: pending choices (file -> choice) kept until Apply."""

    def __init__(
        self,
        table: pd.DataFrame,
        data_dir: str | Path,
        categories: Sequence[str],
        per_page: int = 12,
        face_crop: FaceCropSettings | None = None,
    ) -> None:
        self.data_dir, self.categories = Path(data_dir), list(categories)
        self.suspects, self.per_page, self.face_crop = list_suspects(table), per_page, face_crop
        self.choices: dict[str, str] = {}
        self.moved: dict[str, str] = {}  # file -> where the last applies put it
        problems = sorted({p for found in self.suspects["problems"] for p in found})
        self.problem = widgets.Dropdown(options=[ALL, *problems], description="show")
        self.problem.observe(lambda _: self.render(), names="value")
        self.apply_button = widgets.Button(description="Apply", button_style="warning")
        self.undo_button = widgets.Button(description="Undo last apply")
        self.apply_button.on_click(self.apply)
        self.undo_button.on_click(self.undo)
        self.message = widgets.HTML()
        self.grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns=f"repeat(4, {THUMBNAIL + 40}px)")
        )
        controls = widgets.HBox([self.problem, self.apply_button, self.undo_button])
        self.widget = widgets.VBox([controls, self.grid, self.message])
        self.render()

    def shown(self) -> pd.DataFrame:
        """The suspects on screen: the chosen problem's, worst first."""
        rows = self.suspects
        if self.problem.value != ALL:
            rows = rows[rows["problems"].map(lambda found: self.problem.value in found)]
        return rows.head(self.per_page)

    def options(self, label: str) -> list[str]:
        return [KEEP, *(f"move to {c}" for c in self.categories if c != label), SET_ASIDE]

    def card(self, item) -> widgets.Widget:
        file = item.file
        lines = [f"<b>{html.escape(file)}</b>", f"folder: {html.escape(item.label)}"]
        if isinstance(item.guess, str):
            lines.append(f"model: {html.escape(item.guess)} ({item.guess_probability:.2f})")
        lines.append("flagged: " + html.escape(", ".join(item.problems)))
        if file in self.moved:
            return widgets.VBox(
                [widgets.HTML("<br>".join([*lines, f"moved to {self.moved[file]}"]))]
            )
        choice = widgets.Dropdown(
            options=self.options(item.label),
            value=self.choices.get(file, KEEP),
            layout={"width": f"{THUMBNAIL + 20}px"},  # within the card: no scroll bar
        )
        choice.observe(lambda change, f=file: self.choose(f, change["new"]), names="value")
        picture = widgets.Image(value=thumbnail(self.data_dir / file, self.face_crop), format="png")
        return widgets.VBox([picture, widgets.HTML("<br>".join(lines)), choice])

    def choose(self, file: str, choice: str) -> None:
        if choice == KEEP:
            self.choices.pop(file, None)
        else:
            self.choices[file] = choice
        self.count_pending()

    def count_pending(self) -> None:
        pending = len(self.choices)
        self.apply_button.description = f"Apply ({pending})" if pending else "Apply"

    def render(self) -> None:
        self.grid.children = [self.card(item) for item in self.shown().itertuples()]
        self.count_pending()

    def moves(self) -> list[Move]:
        """The pending choices as moves (None: set aside)."""
        return [
            Move(file, None if choice == SET_ASIDE else choice.removeprefix("move to "), "cleaner")
            for file, choice in self.choices.items()
        ]

    def apply(self, _button=None) -> None:
        try:
            rows = apply_moves(self.data_dir, self.moves())
        except (DataError, OSError) as error:
            self.message.value = f"<span style='color:firebrick'>{html.escape(str(error))}</span>"
            return
        self.moved |= {row["file"]: row["to"] for row in rows}
        self.choices.clear()
        self.message.value = (
            f"Moved {len(rows)} file(s); each move is in {LOG_FILE}. Undo takes them back."
        )
        self.render()

    def undo(self, _button=None) -> None:
        try:
            rows = undo_last(self.data_dir)
        except (DataError, OSError) as error:
            self.message.value = f"<span style='color:firebrick'>{html.escape(str(error))}</span>"
            return
        for row in rows:  # an undo row goes from the moved place back to the file's own
            self.moved.pop(row["to"], None)
        self.message.value = f"Moved {len(rows)} file(s) back." if rows else "Nothing to undo."
        self.render()


def make_cleaner(
    table: pd.DataFrame,
    data_dir: str | Path,
    categories: Sequence[str],
    per_page: int = 12,
    face_crop: FaceCropSettings | None = None,
) -> Cleaner:
    """A Cleaner over an audit table (audit.csv, or `audit_data(cfg)[1].table`)."""
    return Cleaner(table, data_dir, categories, per_page, face_crop)
