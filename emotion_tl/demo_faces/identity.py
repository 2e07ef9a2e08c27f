"""Random identities: everything about a face that stays the same across its expressions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from emotion_tl.demo_faces.actions import make_resting_actions

Color = tuple[int, int, int]

# Skin tones from very light to very dark; an identity interpolates between neighbours.
SKIN_TONES: tuple[Color, ...] = (
    (255, 226, 204),
    (241, 194, 167),
    (224, 172, 135),
    (198, 140, 100),
    (165, 110, 72),
    (130, 84, 54),
    (96, 62, 40),
    (68, 44, 30),
)
HAIR_COLORS: dict[str, Color] = {
    "black": (28, 24, 22),
    "dark_brown": (60, 40, 28),
    "brown": (105, 70, 42),
    "auburn": (130, 58, 30),
    "blonde": (205, 170, 110),
    "grey": (150, 148, 145),
    "white": (225, 222, 215),
}
EYE_COLORS: dict[str, Color] = dict(
    brown=(80, 50, 30),
    dark=(40, 28, 22),
    hazel=(120, 95, 50),
    green=(70, 110, 70),
    blue=(70, 110, 160),
    grey=(110, 120, 130),
)
HAIR_STYLES = ("none", "short", "side_part", "long", "curly", "bun", "fringe")
FACIAL_HAIR = ("none", "stubble", "moustache", "goatee", "beard")
GLASSES = ("none", "round", "rectangular")


@dataclass(frozen=True)
class Identity:
    """One person's fixed look; lengths are in face units (half the face width is 1)."""

    face_height: float  # half-height of the head outline
    face_squareness: float  # superellipse exponent: 2 is an ellipse, higher is squarer
    chin_taper: float  # how much the lower face narrows towards the chin
    skin: Color
    hair_style: str
    hair_color: Color
    hair_color_name: str
    brow_thickness: float
    brow_color: Color
    eye_spacing: float
    eye_width: float
    eye_opening: float
    eye_color: Color
    eye_color_name: str
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_thickness: float
    lip_color: Color
    facial_hair: str
    glasses: str
    glasses_color: Color
    age: float  # 0 young .. 1 old: age lines and grey hair
    clothes: Color
    resting: dict[str, float]

    def describe(self) -> dict[str, object]:
        """The identity as flat, CSV-friendly columns (no colours or resting actions)."""
        keep = {
            "face_height",
            "face_squareness",
            "hair_style",
            "facial_hair",
            "glasses",
            "age",
        }
        row = {f"identity_{k}": v for k, v in asdict(self).items() if k in keep}
        row["identity_skin_lightness"] = round(sum(self.skin) / 3 / 255, 3)
        row["identity_hair_color"] = self.hair_color_name
        row["identity_eye_color"] = self.eye_color_name
        return row


def mix_colors(a: Color, b: Color, t: float) -> Color:
    """Linear interpolation between two colours."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))


def sample_skin(rng: np.random.Generator) -> Color:
    """A skin tone anywhere along the human range, with a slight warm/cool jitter."""
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES) - 1)
    base = mix_colors(SKIN_TONES[low], SKIN_TONES[high], position - low)
    jitter = rng.normal(0, 5, size=3)
    return tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(base, jitter, strict=True))


def make_identity(rng: np.random.Generator) -> Identity:
    """Draw a random identity."""
    skin = sample_skin(rng)
    age = float(rng.beta(1.6, 2.2))
    hair_names = list(HAIR_COLORS)
    hair_weights = np.array([4, 3, 3, 1.2, 1.5, 0.6, 0.4])
    if age > 0.6:  # older people grey more often
        hair_weights[hair_names.index("grey")] += 3
        hair_weights[hair_names.index("white")] += 2
    hair_color_name = str(rng.choice(hair_names, p=hair_weights / hair_weights.sum()))
    hair_color = HAIR_COLORS[hair_color_name]
    hair_style = str(rng.choice(HAIR_STYLES, p=[0.1, 0.22, 0.18, 0.2, 0.12, 0.08, 0.1]))
    facial_hair = str(rng.choice(FACIAL_HAIR, p=[0.6, 0.1, 0.1, 0.08, 0.12]))
    eye_color_name = str(rng.choice(list(EYE_COLORS), p=[0.35, 0.2, 0.12, 0.1, 0.15, 0.08]))
    # Brows are usually darker than blonde or grey hair, never lighter than the skin.
    brow_color = mix_colors(hair_color, (30, 22, 18), float(rng.uniform(0.5, 0.85)))
    # Brows at most 60% as bright as the skin, so brow movements show on every skin tone.
    brow_color = mix_colors(
        (0, 0, 0), brow_color, min(1.0, 0.6 * sum(skin) / max(sum(brow_color), 1))
    )
    lip_color = mix_colors(skin, (150, 60, 60), float(rng.uniform(0.25, 0.45)))
    return Identity(
        face_height=float(rng.uniform(1.22, 1.42)),
        face_squareness=float(rng.uniform(2.0, 2.7)),
        chin_taper=float(rng.uniform(0.15, 0.45)),
        skin=skin,
        hair_style=hair_style,
        hair_color=hair_color,
        hair_color_name=hair_color_name,
        brow_thickness=float(rng.uniform(0.08, 0.13)),
        brow_color=brow_color,
        eye_spacing=float(rng.uniform(0.36, 0.44)),
        eye_width=float(rng.uniform(0.2, 0.25)),
        eye_opening=float(rng.uniform(0.085, 0.105)),
        eye_color=EYE_COLORS[eye_color_name],
        eye_color_name=eye_color_name,
        nose_length=float(rng.uniform(0.4, 0.5)),
        nose_width=float(rng.uniform(0.13, 0.2)),
        mouth_width=float(rng.uniform(0.32, 0.41)),
        lip_thickness=float(rng.uniform(0.045, 0.08)),
        lip_color=lip_color,
        facial_hair=facial_hair,
        glasses=str(rng.choice(GLASSES, p=[0.75, 0.12, 0.13])),
        glasses_color=tuple(int(c) for c in rng.integers(10, 120, size=3)),
        age=age,
        clothes=tuple(int(c) for c in rng.integers(20, 235, size=3)),
        resting=make_resting_actions(rng),
    )
