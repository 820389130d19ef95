"""Procedural characters of the synthetic world: proportions, face, hair, clothes, all from one seed.

Colours are RGB tuples of ints. Lengths are metres. A character never changes
between clips, so every shot of one identity shows the same person.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SKIN_TONES = (
    (255, 223, 196), (240, 200, 168), (226, 178, 136), (200, 142, 104),
    (170, 112, 78), (132, 86, 58), (96, 62, 44),
)
HAIR_COLOURS = (
    (28, 24, 24), (66, 42, 28), (118, 76, 42), (214, 180, 110),
    (168, 72, 36), (176, 176, 176), (52, 84, 196), (214, 96, 160),
)
GARMENT_COLOURS = (
    (206, 40, 46), (236, 120, 30), (242, 200, 40), (60, 160, 70), (30, 150, 150),
    (40, 90, 200), (120, 60, 170), (230, 110, 170), (245, 245, 240), (36, 36, 40),
    (130, 130, 136), (150, 200, 240), (110, 60, 40),
)
LOWER_COLOURS = (
    (30, 40, 80), (28, 28, 30), (190, 160, 110), (110, 110, 116), (60, 90, 150),
    (100, 66, 40), (80, 96, 50), (150, 36, 40), (235, 232, 220),
)
SHOE_COLOURS = (
    (250, 250, 250), (20, 20, 22), (215, 30, 36), (120, 70, 36), (30, 90, 220),
    (250, 210, 30), (40, 170, 80), (250, 120, 190),
)
EYE_COLOURS = ((60, 40, 25), (40, 90, 160), (60, 120, 70), (25, 20, 18))
FRAME_COLOURS = ((20, 20, 20), (190, 30, 40), (40, 70, 190), (150, 100, 40))

HAIR_STYLES = ("short", "long", "bun", "bald", "curly", "ponytail")
PATTERNS = ("plain", "stripes", "checks")
LOGOS = ("none", "circle", "star", "triangle", "diamond", "ring")
GLASSES = ("none", "round", "square")
SLEEVES = ("short", "long")
LOWER = ("trousers", "shorts")


@dataclass(frozen=True)
class Character:
    """One identity. ``height`` is head top to floor; the other lengths derive from it."""

    seed: int
    height: float
    build: float                 # 0 slim .. 1 broad
    skin: tuple
    hair_style: str
    hair_colour: tuple
    eye_colour: tuple
    lip_colour: tuple
    brow_weight: float           # brow thickness relative to the head
    glasses: str
    glasses_colour: tuple
    beard: bool
    shirt_colour: tuple
    pattern: str
    pattern_colour: tuple
    pattern_count: int           # stripes or check rows on the torso
    logo: str
    logo_colour: tuple
    sleeves: str
    lower: str
    lower_colour: tuple
    shoe_colour: tuple

    # Derived proportions (metres).
    @property
    def head_radii(self) -> tuple[float, float, float]:
        h = self.height
        return 0.058 * h, 0.072 * h, 0.062 * h

    @property
    def shoulder_half(self) -> float:
        return self.height * (0.105 + 0.025 * self.build)

    @property
    def hip_half(self) -> float:
        return self.height * (0.05 + 0.008 * self.build)

    @property
    def torso_length(self) -> float:
        return 0.29 * self.height

    @property
    def neck_length(self) -> float:
        return 0.085 * self.height

    @property
    def upper_arm(self) -> float:
        return 0.165 * self.height

    @property
    def forearm(self) -> float:
        return 0.145 * self.height

    @property
    def thigh(self) -> float:
        return 0.235 * self.height

    @property
    def shin(self) -> float:
        return 0.215 * self.height

    @property
    def ankle_height(self) -> float:
        return 0.04 * self.height

    @property
    def limb_radius(self) -> float:
        return self.height * (0.024 + 0.008 * self.build)

    def describe(self) -> dict:
        """JSON-ready description (the index stores it so a dataset documents its people)."""
        return asdict(self)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _contrast(rng: np.random.Generator, base: tuple, options) -> tuple:
    """A colour from ``options`` far enough from ``base`` to stay legible."""
    base_arr = np.array(base, float)
    far = [c for c in options if np.abs(np.array(c, float) - base_arr).sum() > 220]
    return _pick(rng, far or options)


def make_character(seed: int) -> Character:
    """The character of identity ``seed`` (deterministic)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC4A2]))
    skin = _pick(rng, SKIN_TONES)
    hair_style = _pick(rng, HAIR_STYLES)
    hair_colour = _pick(rng, HAIR_COLOURS[:6] if rng.random() < 0.85 else HAIR_COLOURS)
    shirt = _pick(rng, GARMENT_COLOURS)
    pattern = _pick(rng, PATTERNS)
    lower_colour = _contrast(rng, shirt, LOWER_COLOURS)
    return Character(
        seed=int(seed),
        height=float(rng.uniform(1.58, 1.92)),
        build=float(rng.uniform(0.0, 1.0)),
        skin=skin,
        hair_style=hair_style,
        hair_colour=hair_colour,
        eye_colour=_pick(rng, EYE_COLOURS),
        lip_colour=tuple(int(c) for c in np.clip(np.array(skin) * np.array([0.85, 0.55, 0.55]) + [20, 0, 0], 0, 255)),
        brow_weight=float(rng.uniform(0.6, 1.4)),
        glasses=_pick(rng, GLASSES) if rng.random() < 0.45 else "none",
        glasses_colour=_pick(rng, FRAME_COLOURS),
        beard=bool(rng.random() < 0.3),
        shirt_colour=shirt,
        pattern=pattern,
        pattern_colour=_contrast(rng, shirt, GARMENT_COLOURS),
        pattern_count=int(rng.integers(3, 6)),
        logo=_pick(rng, LOGOS[1:]) if rng.random() < 0.6 else "none",
        logo_colour=_contrast(rng, shirt, GARMENT_COLOURS),
        sleeves=_pick(rng, SLEEVES),
        lower=_pick(rng, LOWER) if rng.random() < 0.35 else "trousers",
        lower_colour=lower_colour,
        shoe_colour=_contrast(rng, lower_colour, SHOE_COLOURS),
    )
