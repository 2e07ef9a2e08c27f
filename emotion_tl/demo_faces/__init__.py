"""Procedural facial-expression pictures: synthetic demo data for emotion_tl.

Expressions are driven by facial-action parameters (actions), identities are random people
(identity), the drawing happens large and is scaled down (render), and everything unrelated
to the label is varied on purpose (scene). `render_scene` pastes a person small into a photo
(scenes); `generate_dataset` writes a whole folder.
"""

from emotion_tl.demo_faces.actions import (
    ACTION_NAMES,
    DEFAULT_DIFFICULTY,
    EXPRESSIONS,
    PROTOTYPES,
    make_actions,
    measure_brow_asymmetry,
    sample_intensity,
)
from emotion_tl.demo_faces.dataset import (
    DEFAULT_SIZE,
    FaceSample,
    generate_dataset,
    make_file_name,
    make_sample,
    render_sample,
    render_scene,
)
from emotion_tl.demo_faces.identity import Identity, make_identity
from emotion_tl.demo_faces.render import render_person
from emotion_tl.demo_faces.scene import Nuisance, make_nuisance
from emotion_tl.demo_faces.sheet import make_contact_sheet

__all__ = [
    "ACTION_NAMES",
    "DEFAULT_DIFFICULTY",
    "DEFAULT_SIZE",
    "EXPRESSIONS",
    "PROTOTYPES",
    "FaceSample",
    "Identity",
    "Nuisance",
    "generate_dataset",
    "make_actions",
    "make_contact_sheet",
    "make_file_name",
    "make_identity",
    "make_nuisance",
    "make_sample",
    "measure_brow_asymmetry",
    "render_person",
    "render_sample",
    "render_scene",
    "sample_intensity",
]
