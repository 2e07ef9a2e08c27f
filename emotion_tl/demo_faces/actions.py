"""Expressions as facial-action parameters, and how strongly each image shows its expression.

Every face is drawn from the same numbers (`ACTION_NAMES`), loosely modelled on the Facial
Action Coding System. An expression is a prototype: the actions it moves at full intensity.
An image scales its prototype by an intensity drawn from a distribution set by `difficulty`,
so that weak expressions come close to neutral. "left" and "right" mean the left and right
of the image, not of the person.
"""

from __future__ import annotations

import numpy as np

EXPRESSIONS = ("confused", "neutral", "happy", "sad", "angry", "surprised")

ACTION_NAMES = (
    "brow_inner_raise_left",  # AU1, per side: inner end of the brow goes up
    "brow_inner_raise_right",
    "brow_outer_raise_left",  # AU2, per side: outer end goes up (negative: down)
    "brow_outer_raise_right",
    "brow_furrow_left",  # AU4, per side: brow goes down and towards the nose
    "brow_furrow_right",
    "upper_lid_raise",  # AU5: eyes wide (negative: drooping lids)
    "lid_tighten",  # AU7: narrowed, squinting eyes
    "cheek_raise",  # AU6: raised cheeks that push the lower lids up
    "lip_corner_pull",  # AU12: corners up and out (a smile)
    "lip_corner_depress",  # AU15: corners down
    "jaw_drop",  # AU26/27: mouth open
    "lip_press",  # AU24: lips pressed thin
    "lip_purse",  # AU18: lips pushed together into a small mouth
    "mouth_skew",  # AU14 on one side: mouth pulled to the right (negative: left)
    "head_tilt",  # in-plane tilt of the head, in units of 15 degrees (positive: clockwise)
)

# Full-intensity prototypes. Confused is written for "left brow up, mouth and head to the
# right"; `make_actions` mirrors it at random so neither side is a shortcut.
PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "confused": {
        "brow_inner_raise_left": 0.8,
        "brow_outer_raise_left": 1.2,
        "brow_furrow_right": 1.0,
        "brow_inner_raise_right": -0.2,
        "lid_tighten": 0.2,
        "lip_purse": 0.7,
        "lip_press": 0.3,
        "mouth_skew": 1.0,
        "head_tilt": 1.0,
    },
    "happy": {
        "lip_corner_pull": 1.0,
        "cheek_raise": 0.8,
        "lid_tighten": 0.25,
        "brow_outer_raise_left": 0.1,
        "brow_outer_raise_right": 0.1,
    },
    "sad": {
        "brow_inner_raise_left": 0.9,
        "brow_inner_raise_right": 0.9,
        "brow_outer_raise_left": -0.4,
        "brow_outer_raise_right": -0.4,
        "brow_furrow_left": 0.3,
        "brow_furrow_right": 0.3,
        "upper_lid_raise": -0.6,
        "lip_corner_depress": 1.0,
        "lip_press": 0.2,
    },
    "angry": {
        "brow_furrow_left": 1.0,
        "brow_furrow_right": 1.0,
        "brow_outer_raise_left": 0.15,
        "brow_outer_raise_right": 0.15,
        "upper_lid_raise": 0.25,
        "lid_tighten": 0.8,
        "lip_press": 0.9,
        "lip_corner_depress": 0.3,
    },
    "surprised": {
        "brow_inner_raise_left": 1.0,
        "brow_inner_raise_right": 1.0,
        "brow_outer_raise_left": 0.9,
        "brow_outer_raise_right": 0.9,
        "upper_lid_raise": 1.0,
        "jaw_drop": 0.9,
    },
}

MIRRORED_PAIRS = (
    ("brow_inner_raise_left", "brow_inner_raise_right"),
    ("brow_outer_raise_left", "brow_outer_raise_right"),
    ("brow_furrow_left", "brow_furrow_right"),
)
SIGNED_SIDEWAYS = ("mouth_skew", "head_tilt")  # these change sign when the face is mirrored

# Calibrated so that frozen ImageNet ResNet50 features + logistic regression tell confused
# from neutral well above chance but far from perfectly (see benchmarks/calibrate_demo_faces.py).
DEFAULT_DIFFICULTY = 0.15


def sample_intensity(rng: np.random.Generator, difficulty: float = DEFAULT_DIFFICULTY) -> float:
    """Draw an expression intensity in [0, 1]; higher difficulty puts more mass near neutral.

    Beta(a, b) with mean 0.9 at difficulty 0, 0.81 at the default 0.15 and 0.3 at
    difficulty 1, so at any setting some expressions are faint and some full.
    """
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    mean = 0.9 - 0.6 * difficulty
    concentration = 4.0
    return float(rng.beta(mean * concentration, (1.0 - mean) * concentration))


def mirror_actions(actions: dict[str, float]) -> dict[str, float]:
    """The same expression with left and right swapped."""
    mirrored = dict(actions)
    for left, right in MIRRORED_PAIRS:
        mirrored[left], mirrored[right] = actions.get(right, 0.0), actions.get(left, 0.0)
    for name in SIGNED_SIDEWAYS:
        mirrored[name] = -actions.get(name, 0.0)
    return mirrored


def make_resting_actions(rng: np.random.Generator) -> dict[str, float]:
    """An identity's own resting face: small asymmetries and tilts that every image shares."""
    return {name: float(rng.normal(0.0, 0.06)) for name in ACTION_NAMES}


def make_actions(
    expression: str,
    intensity: float,
    rng: np.random.Generator,
    resting: dict[str, float] | None = None,
) -> dict[str, float]:
    """Action parameters for one image: resting face + intensity x jittered prototype + noise."""
    if expression not in PROTOTYPES:
        raise ValueError(f"unknown expression {expression!r}; choose from {EXPRESSIONS}")
    prototype = dict(PROTOTYPES[expression])
    if expression == "confused":
        # Not every confused face tilts its head or skews its mouth the same way.
        if rng.random() < 0.3:
            prototype["head_tilt"] = 0.0
        if rng.random() < 0.3:
            prototype["mouth_skew"] = -prototype["mouth_skew"]
    if expression == "happy":
        prototype["jaw_drop"] = float(rng.choice([0.0, 0.0, 0.3, 0.6]))  # sometimes open
    if rng.random() < 0.5:
        prototype = mirror_actions(prototype)
    resting = resting or {}
    actions = {}
    for name in ACTION_NAMES:
        target = prototype.get(name, 0.0) * float(rng.uniform(0.8, 1.2))
        noise = float(rng.normal(0.0, 0.04))
        actions[name] = resting.get(name, 0.0) + intensity * target + noise
    return actions


def measure_brow_asymmetry(actions: dict[str, float]) -> float:
    """How differently the two brows moved: 0 for a symmetric face."""
    left = (
        actions["brow_inner_raise_left"]
        + actions["brow_outer_raise_left"]
        - actions["brow_furrow_left"]
    )
    right = (
        actions["brow_inner_raise_right"]
        + actions["brow_outer_raise_right"]
        - actions["brow_furrow_right"]
    )
    return abs(left - right)
