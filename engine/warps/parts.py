"""Body parts for the explicit pose correspondence: which keypoints define each part, and its shape.

A part is either a *limb* — a segment between two body keypoints, drawn as a capsule and
warped by an affine map that follows the segment (stretch along it, the body's scale across
it) — or a *region* — head or torso, fitted by least squares over several keypoints. Indices
are into the 128-keypoint layout of :mod:`engine.poses.track` (OpenPose-18 body first).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..poses.track import BODY_INDEX, FACE

_ = BODY_INDEX  # names below are spelled out for readability; the indices are OpenPose-18's


@dataclass(frozen=True)
class Part:
    """One body part.

    name: what the part is called in previews and reports.
    kind: ``"limb"`` (two keypoints, a capsule) or ``"region"`` (head or torso).
    points: the body keypoints that define the part (limb: start, end).
    extend: a limb reaches this fraction of its length past its end (hands past the wrist, shoes past the ankle).
    radius: half the limb's thickness, in units of the body scale (see :func:`engine.warps.compose.body_scale`).
    layer: drawing order, back to front.
    """

    name: str
    kind: str
    points: tuple[int, ...]
    extend: float = 0.0
    radius: float = 0.0
    layer: int = 0


NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = range(8)
R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EYE, L_EYE, R_EAR, L_EAR = range(8, 18)
HEAD_POINTS = (NOSE, R_EYE, L_EYE, R_EAR, L_EAR, NECK)
TORSO_POINTS = (NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP)
FACE_POINTS = tuple(range(FACE.start, FACE.stop))

PARTS: tuple[Part, ...] = (
    Part("torso", "region", TORSO_POINTS, layer=0),
    Part("right thigh", "limb", (R_HIP, R_KNEE), radius=0.30, layer=1),
    Part("left thigh", "limb", (L_HIP, L_KNEE), radius=0.30, layer=1),
    Part("right shin", "limb", (R_KNEE, R_ANKLE), radius=0.24, layer=2),
    Part("left shin", "limb", (L_KNEE, L_ANKLE), radius=0.24, layer=2),
    Part("right foot", "limb", (R_KNEE, R_ANKLE), extend=0.0, radius=0.26, layer=3),
    Part("left foot", "limb", (L_KNEE, L_ANKLE), extend=0.0, radius=0.26, layer=3),
    Part("right upper arm", "limb", (R_SHOULDER, R_ELBOW), radius=0.20, layer=4),
    Part("left upper arm", "limb", (L_SHOULDER, L_ELBOW), radius=0.20, layer=4),
    Part("right forearm", "limb", (R_ELBOW, R_WRIST), extend=0.35, radius=0.17, layer=5),
    Part("left forearm", "limb", (L_ELBOW, L_WRIST), extend=0.35, radius=0.17, layer=5),
    Part("head", "region", HEAD_POINTS, layer=6),
)
# A foot is the end of the shin and past it: drawn from the ankle to this fraction of the shin's length beyond.
FOOT_REACH = 0.45
PART_NAMES = tuple(p.name for p in PARTS)
