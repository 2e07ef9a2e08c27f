"""Make a folder of face pictures, one per identity and expression, plus their metadata.

Every picture has its own random generator, derived from the base seed, the identity number
and the expression, so a picture is the same whichever other pictures are made with it, in
whatever order, by however many processes.
"""

from __future__ import annotations

import csv
import multiprocessing
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from emotion_tl.data.metadata import METADATA_FILE
from emotion_tl.demo_faces.actions import (
    ACTION_NAMES,
    DEFAULT_DIFFICULTY,
    EXPRESSIONS,
    make_actions,
    sample_intensity,
)
from emotion_tl.demo_faces.identity import Identity, make_identity
from emotion_tl.demo_faces.render import render_person
from emotion_tl.demo_faces.scene import Nuisance, compose_picture, encode_jpeg, make_nuisance
from emotion_tl.demo_faces.scenes import compose_scene, make_scene_rng

DEFAULT_SIZE = 224


@dataclass(frozen=True)
class FaceSample:
    """Everything that decides one picture."""

    expression: str
    identity_index: int
    identity: Identity
    intensity: float
    actions: dict[str, float]
    nuisance: Nuisance


def make_identity_for(seed: int, identity_index: int) -> Identity:
    """The identity numbered `identity_index` under `seed`."""
    sequence = np.random.SeedSequence(seed, spawn_key=(identity_index,))
    return make_identity(np.random.default_rng(sequence))


def make_sample(
    seed: int, identity_index: int, expression: str, difficulty: float = DEFAULT_DIFFICULTY
) -> FaceSample:
    """Draw intensity, actions and nuisance for one (identity, expression) picture."""
    identity = make_identity_for(seed, identity_index)
    # Keyed by the expression's place in the full list, so choosing fewer expressions
    # does not change the pictures of the ones chosen.
    key = (identity_index, 1 + EXPRESSIONS.index(expression))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
    intensity = sample_intensity(rng, difficulty)
    if expression == "neutral":
        intensity = 0.0
    actions = make_actions(expression, intensity, rng, identity.resting)
    return FaceSample(expression, identity_index, identity, intensity, actions, make_nuisance(rng))


def render_sample_person(sample: FaceSample) -> Image.Image:
    """The sample's person (expression, head turn, lighting) as RGBA on a transparent canvas."""
    nuisance = sample.nuisance
    return render_person(
        sample.identity,
        sample.actions,
        yaw=nuisance.yaw,
        light_angle=nuisance.light_angle,
        light_strength=nuisance.light_strength,
    )


def render_sample(sample: FaceSample, size: int = DEFAULT_SIZE) -> Image.Image:
    """The finished picture for a sample, before JPEG compression."""
    return compose_picture(render_sample_person(sample), sample.nuisance, size)


def render_scene(
    sample: FaceSample, seed: int, size: tuple[int, int]
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The sample's person pasted small into a photo of `size`; (picture, the face's box)."""
    rng = make_scene_rng(seed, sample.identity_index, sample.expression)
    return compose_scene(render_sample_person(sample), sample.identity.face_height, rng, size)


def make_file_name(expression: str, identity_index: int) -> str:
    """Path of a picture relative to the output folder, with forward slashes."""
    return f"{expression}/{expression}_{identity_index:04d}.jpg"


def describe_sample(sample: FaceSample, seed: int, difficulty: float) -> dict[str, object]:
    """One metadata row: file, label, identity, intensity, actions, nuisance, settings."""
    row: dict[str, object] = {
        "file": make_file_name(sample.expression, sample.identity_index),
        "expression": sample.expression,
        "identity": sample.identity_index,
        "intensity": round(sample.intensity, 4),
    }
    row.update({name: round(sample.actions[name], 4) for name in ACTION_NAMES})
    row.update(asdict(sample.nuisance))
    row.update(sample.identity.describe())
    row.update({"seed": seed, "difficulty": difficulty})
    return {key: format_value(value) for key, value in row.items()}


def format_value(value: object) -> object:
    """CSV-stable values: floats rounded, booleans as 0/1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value, 4)
    return value


Task = tuple[int, int, str, float, int, tuple[int, int] | None]


def make_picture(task: Task) -> tuple[str, bytes, dict[str, object]]:
    """Worker job: (seed, identity, expression, difficulty, size, scene) -> (file, JPEG, row).

    With a scene size (width, height) the person is pasted small into a photo of that size
    and the row records the face's box (face_x0, face_y0, face_x1, face_y1, pixels)."""
    seed, identity_index, expression, difficulty, size, scene = task
    sample = make_sample(seed, identity_index, expression, difficulty)
    row = describe_sample(sample, seed, difficulty)
    if scene is None:
        picture = render_sample(sample, size)
    else:
        picture, box = render_scene(sample, seed, scene)
        row |= dict(zip(("face_x0", "face_y0", "face_x1", "face_y1"), box, strict=True))
    jpeg = encode_jpeg(picture, sample.nuisance.jpeg_quality)
    return make_file_name(expression, identity_index), jpeg, row


def generate_dataset(
    out_dir: Path,
    identities: int,
    seed: int,
    expressions: Sequence[str] = EXPRESSIONS,
    difficulty: float = DEFAULT_DIFFICULTY,
    size: int = DEFAULT_SIZE,
    workers: int = 1,
    scene: tuple[int, int] | None = None,
) -> list[dict[str, object]]:
    """Write out_dir/<expression>/*.jpg and out_dir/metadata.csv; return the metadata rows.
    `scene` (width, height): people pasted small into photos instead of tight crops."""
    unknown = set(expressions) - set(EXPRESSIONS)
    if unknown:
        raise ValueError(f"unknown expressions {sorted(unknown)}; choose from {EXPRESSIONS}")
    tasks = [
        (seed, identity_index, expression, difficulty, size, scene)
        for expression in expressions
        for identity_index in range(identities)
    ]
    out_dir = Path(out_dir)
    for expression in expressions:
        (out_dir / expression).mkdir(parents=True, exist_ok=True)
    rows = []
    for file_name, jpeg, row in run_tasks(tasks, workers):
        (out_dir / file_name).write_bytes(jpeg)
        rows.append(row)
    write_metadata(rows, out_dir / METADATA_FILE)
    return rows


def run_tasks(tasks: list[Task], workers: int) -> Iterable[tuple[str, bytes, dict[str, object]]]:
    """Make the pictures in task order, in this process or in a pool of spawned ones."""
    if workers <= 1:
        yield from map(make_picture, tasks)
        return
    # "spawn" behaves the same on every platform; results still come back in task order.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(make_picture, tasks, chunksize=8)


def write_metadata(rows: list[dict[str, object]], path: Path) -> None:
    """Write the rows as CSV with a header."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
