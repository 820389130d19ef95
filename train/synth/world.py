"""One clip of the synthetic world: a character, a motion, a camera and a backdrop, rendered frame by frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera import SHOTS, make_camera
from .character import Character, make_character
from .motion import FPS, make_motion
from .render import Backdrop, Renderer


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides a clip; the same spec always renders the same pixels."""

    identity_seed: int
    motion_seed: int
    camera_seed: int
    shot: str
    num_frames: int
    size: int
    zoom: float = 1.0
    cut_at: int | None = None
    supersample: int = 2
    backdrop_seed: int | None = None  # None: the camera's seed (a new place for every clip)

    def __post_init__(self) -> None:
        if self.shot not in SHOTS:
            raise ValueError(f"unknown shot {self.shot!r}; expected one of {', '.join(SHOTS)}")


@dataclass
class Clip:
    """A rendered clip.

    frames: ``(F, H, W, 3)`` uint8 RGB; keypoints: ``(F, 128, 3)`` normalised x, y, visibility;
    world: ``(F, 128, 3)`` metres; in_frame: ``(F, 128)`` bool; K, R, t: cameras; cut: ``(F,)`` bool.
    """

    spec: ClipSpec
    character: Character
    frames: np.ndarray
    keypoints: np.ndarray
    world: np.ndarray
    in_frame: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    cut: np.ndarray
    backdrop: Backdrop = field(default=None)


def render_clip(spec: ClipSpec) -> Clip:
    character = make_character(spec.identity_seed)
    motion = make_motion(character, spec.num_frames, spec.motion_seed)
    camera = make_camera(character, motion, spec.shot, spec.size, spec.camera_seed, spec.zoom, spec.cut_at)
    place = spec.camera_seed if spec.backdrop_seed is None else spec.backdrop_seed
    backdrop = Backdrop.random(np.random.default_rng(np.random.SeedSequence([place, 0xBD])))
    renderer = Renderer(character, spec.size, spec.supersample)
    n, s = spec.num_frames, spec.size
    frames = np.zeros((n, s, s, 3), np.uint8)
    keypoints = np.zeros((n, 128, 3), np.float32)
    in_frame = np.zeros((n, 128), bool)
    for i in range(n):
        frames[i], keypoints[i], in_frame[i] = renderer.render(motion, camera, i, backdrop)
    return Clip(spec, character, frames, keypoints, motion.joints.copy(), in_frame,
                camera.K.astype(np.float32), camera.R.astype(np.float32), camera.t.astype(np.float32), camera.cut, backdrop)


__all__ = ["Clip", "ClipSpec", "FPS", "render_clip"]
