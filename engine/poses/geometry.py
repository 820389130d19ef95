"""Geometry shared by extraction and the camera: weak-perspective fits between 3D world landmarks and 2D keypoints."""

from __future__ import annotations

import numpy as np


def fit_weak_perspective(pixels: np.ndarray, world: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame, the scale ``s`` and offset ``t`` with ``pixels ~= s * world[..., :2] + t``.

    pixels: ``(frames, k, 2)``; world: ``(frames, k, 3)``; weights: ``(frames, k)``
    (0 for points to ignore). Returns ``s (frames,)``, ``t (frames, 2)`` and
    ``ok (frames,)`` — False where fewer than two points carry weight (there
    ``s`` is 1 and ``t`` 0).
    """
    w = weights.astype(np.float64)
    total = w.sum(axis=1, keepdims=True)
    ok = ((w > 0).sum(axis=1) >= 2)
    safe = np.maximum(total, 1e-12)[..., None]
    mean_p = (pixels * w[..., None]).sum(axis=1, keepdims=True) / safe
    mean_w = (world[..., :2] * w[..., None]).sum(axis=1, keepdims=True) / safe
    pc, wc = pixels - mean_p, world[..., :2] - mean_w
    num = (w * (pc * wc).sum(-1)).sum(axis=1)
    den = (w * (wc * wc).sum(-1)).sum(axis=1)
    ok &= den > 1e-12
    s = np.where(ok, num / np.where(ok, den, 1.0), 1.0)
    t = np.where(ok[:, None], (mean_p - s[:, None, None] * mean_w)[:, 0], 0.0)
    return s.astype(np.float32), t.astype(np.float32), ok


def rotate_yaw(world: np.ndarray, yaw_degrees: np.ndarray) -> np.ndarray:
    """Rotate ``world (frames, k, 3)`` about the vertical (y) axis through the origin by ``yaw (frames,)`` degrees.

    Positive yaw orbits the camera towards the person's left when they face it:
    ``x' = x cos + z sin``, ``z' = -x sin + z cos``.
    """
    theta = np.radians(np.asarray(yaw_degrees, dtype=np.float64))[:, None]
    c, s = np.cos(theta), np.sin(theta)
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    return np.stack([x * c + z * s, y, -x * s + z * c], axis=-1).astype(np.float32)
