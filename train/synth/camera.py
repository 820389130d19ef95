"""Perspective cameras for the synthetic world: shot framing, slow zooms, small orbits and cuts.

Camera convention (OpenCV): camera x right, y down, z forward. A world point X
maps to camera coordinates ``R @ X + t`` and to pixels through ``K``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .character import Character
from .motion import Motion

SHOTS = ("close-up", "medium", "wide")


@dataclass
class CameraTrack:
    """Per-frame cameras: ``K`` (frames, 3, 3) pixels, ``R`` (frames, 3, 3), ``t`` (frames, 3); ``cut`` (frames,) bool."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    cut: np.ndarray

    def position(self, i: int) -> np.ndarray:
        return -self.R[i].T @ self.t[i]


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera rotation for a camera at ``eye`` looking at ``target`` with world y down."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def shot_span(character: Character, shot: str, floor_y: float) -> tuple[float, float]:
    """World y of the top and bottom of the frame for a shot of a standing ``character``."""
    ch = character
    head_top = -ch.torso_length - ch.neck_length - 1.45 * ch.head_radii[1]
    top = head_top - 0.05 * ch.height
    if shot == "close-up":
        bottom = -ch.torso_length + 0.13 * ch.height
    elif shot == "medium":
        bottom = 0.05 * ch.height
    elif shot == "wide":
        bottom = floor_y + 0.06 * ch.height
    else:
        raise ValueError(f"unknown shot {shot!r}; expected one of {', '.join(SHOTS)}")
    return top, bottom


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(x) < 2:
        return x
    radius = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(x, [(radius, radius)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    return np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(x.shape[1])], 1) if x.ndim == 2 else np.convolve(padded, k, mode="valid")


def make_camera(character: Character, motion: Motion, shot: str, size: int, seed: int,
                zoom: float = 1.0, cut_at: int | None = None) -> CameraTrack:
    """A camera following ``motion`` at ``shot`` scale.

    ``zoom`` is the focal-length factor reached at the last frame (1 = none;
    the frame top stays on the head so zooming in tightens toward the face).
    ``cut_at`` switches to a second angle (new small yaw and framing) at that frame.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA3]))
    n = len(motion)
    top, bottom = shot_span(character, shot, motion.floor_y)
    root = _smooth(motion.pelvis_pos[:, [0, 2]].astype(float), sigma=6.0)
    K = np.zeros((n, 3, 3))
    R = np.zeros((n, 3, 3))
    t = np.zeros((n, 3))
    cut = np.zeros(n, bool)

    def angle_params():
        return dict(
            distance=rng.uniform(2.6, 4.0), yaw=rng.uniform(-0.3, 0.3), drift=rng.uniform(-0.08, 0.08),
            height=rng.uniform(-0.08, 0.06) * character.height, offset=rng.uniform(-0.06, 0.06),
            tight=rng.uniform(0.95, 1.08),
        )

    angles = [angle_params()]
    if cut_at is not None:
        second = angle_params()
        second["yaw"] = angles[0]["yaw"] + rng.choice([-1, 1]) * rng.uniform(0.2, 0.45)
        angles.append(second)
    ramp = np.linspace(0, 1, n)
    ramp = ramp * ramp * (3 - 2 * ramp)
    for i in range(n):
        a = angles[1] if cut_at is not None and i >= cut_at else angles[0]
        cut[i] = cut_at is not None and i == cut_at
        z = 1.0 + (zoom - 1.0) * ramp[i]
        span = (bottom - top) / (z * a["tight"])
        centre_y = top + span / 2
        target = np.array([root[i, 0] + a["offset"] * span, centre_y, root[i, 1]])
        yaw = a["yaw"] + a["drift"] * i / max(n - 1, 1)
        eye = target + np.array([np.sin(yaw) * -a["distance"], a["height"], -np.cos(yaw) * a["distance"]])
        rot = look_at(eye, target)
        focal = size * np.linalg.norm(target - eye) / span
        K[i] = [[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]]
        R[i] = rot
        t[i] = -rot @ eye
    return CameraTrack(K, R, t, cut)


def project(points: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``(n, 2)`` and camera depth ``(n,)`` of world ``points`` ``(n, 3)``."""
    cam = points @ R.T + t
    z = np.maximum(cam[:, 2], 1e-3)
    uv = cam[:, :2] / z[:, None] * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    return uv, cam[:, 2]
