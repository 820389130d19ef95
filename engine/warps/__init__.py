"""Explicit pose correspondence: reference photos warped into a target pose part by part and composed.

The strongest non-learned baseline, a preview in the studio, and an input of the network (through a
zero-initialised path of the pose guider, see :mod:`engine.models.pose_guider`).
"""

from .compose import Composite, ReferenceWarper, body_scale, compose_references, fit_affine, fit_similarity, limb_map
from .parts import PART_NAMES, PARTS, Part

__all__ = [
    "Composite", "PARTS", "PART_NAMES", "Part", "ReferenceWarper", "body_scale", "compose_references", "fit_affine",
    "fit_similarity", "limb_map",
]
