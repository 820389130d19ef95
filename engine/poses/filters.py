"""Track clean-up: One-Euro smoothing, filling frames without a person, retargeting body proportions."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from .track import BODY, BODY_INDEX, FACE, LEFT_HAND, RIGHT_HAND, PoseTrack

logger = logging.getLogger(__name__)


def _alpha(cutoff: np.ndarray | float, rate: float) -> np.ndarray:
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau * rate)


def one_euro(values: np.ndarray, rate: float, valid: np.ndarray | None = None, min_cutoff: float = 1.0,
             beta: float = 5.0, d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al., CHI 2012) along axis 0 of ``values (frames, ...)``.

    ``valid (frames, ...)`` (broadcastable) marks samples to filter; invalid ones
    pass through and restart the filter. ``rate`` is the sample rate in Hz.
    """
    values = np.asarray(values, np.float64)
    out = values.copy()
    if len(values) == 0:
        return out
    valid = np.ones(values.shape, bool) if valid is None else np.broadcast_to(valid, values.shape)
    x_prev = values[0].copy()
    dx_prev = np.zeros_like(values[0])
    a_d = _alpha(d_cutoff, rate)
    for i in range(1, len(values)):
        x = values[i]
        dx = (x - x_prev) * rate
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        a = _alpha(min_cutoff + beta * np.abs(dx_hat), rate)
        x_hat = a * x + (1 - a) * x_prev
        keep = valid[i] & valid[i - 1]
        out[i] = np.where(keep, x_hat, x)
        dx_prev = np.where(keep, dx_hat, 0.0)
        x_prev = out[i]
    return out


def smooth_track(track: PoseTrack, min_cutoff: float = 1.0, beta: float = 5.0, threshold: float = 0.3) -> PoseTrack:
    """One-Euro smoothing of the keypoints (normalised units per second) and world landmarks; confidences kept."""
    visible = track.keypoints[..., 2:3] > threshold
    keypoints = track.keypoints.copy()
    keypoints[..., :2] = one_euro(track.keypoints[..., :2], track.fps, visible, min_cutoff, beta)
    world = None
    if track.world is not None:
        world = one_euro(track.world, track.fps, visible, min_cutoff, beta).astype(np.float32)
    return PoseTrack(keypoints, track.width, track.height, track.fps, world, track.detected.copy())


@dataclass(frozen=True)
class GapReport:
    """What :func:`fill_gaps` did: frames filled (interpolated or held), gaps filled, frames left empty; of the
    filled ones, ``held`` frames in ``ends`` gaps (0-2) before the first or after the last detected frame, where
    the nearest pose is held (a person lost for good, say, is held from where they were last seen). ``spans``:
    every gap as ``(start, stop, how)``, ``how`` one of :data:`GAP_FILLS`."""

    filled: int
    gaps: int
    unfilled: int
    held: int = 0
    ends: int = 0
    spans: tuple[tuple[int, int, str], ...] = ()

    def how(self, frame: int) -> str | None:
        """What was done at ``frame`` (one of :data:`GAP_FILLS`), or None where the person was detected."""
        return next((how for start, stop, how in self.spans if start <= frame < stop), None)


GAP_FILLS = ("interpolated", "held", "empty")  # between the person's own poses; the nearest one; none (too long)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/stop of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2], edges[1::2]))


def fill_gaps(track: PoseTrack, max_gap: int | None = None) -> tuple[PoseTrack, GapReport]:
    """Fill frames where no person was found: interpolate inside the track, hold at both ends.

    Inner gaps longer than ``max_gap`` frames (default: one second) stay empty. The
    returned track keeps ``detected`` False on filled frames.
    """
    max_gap = int(round(track.fps)) if max_gap is None else max_gap
    detected = np.asarray(track.detected, bool)
    keypoints = track.keypoints.copy()
    world = None if track.world is None else track.world.copy()
    if not detected.any():
        return track.slice(0), GapReport(0, 0, len(track), spans=((0, len(track), "empty"),) if len(track) else ())
    filled = gaps = unfilled = held = ends = 0
    spans = []
    n = len(track)
    for start, stop in _runs(~detected):
        start, stop = int(start), int(stop)
        length = stop - start
        if 0 < start and stop < n and length > max_gap:
            unfilled += length
            spans.append((start, stop, "empty"))
            continue
        if start == 0 or stop == n:
            weights = np.zeros(length)
            left = right = stop if start == 0 else start - 1
            held, ends = held + length, ends + 1
            spans.append((start, stop, "held"))
        else:
            left, right = start - 1, stop
            weights = (np.arange(start, stop) - left) / (right - left)
            spans.append((start, stop, "interpolated"))
        w = weights[:, None, None].astype(np.float32)
        keypoints[start:stop] = (1 - w) * keypoints[left] + w * keypoints[right]
        if world is not None:
            world[start:stop] = (1 - w) * world[left] + w * world[right]
        filled += length
        gaps += 1
    if filled or unfilled:
        logger.info("filled %d frames in %d gaps; %d frames left without a person", filled, gaps, unfilled)
    out = PoseTrack(keypoints, track.width, track.height, track.fps, world, detected.copy())
    return out, GapReport(filled, gaps, unfilled, held, ends, tuple(spans))


# The body as a tree from the neck: (parent, child) in the order they are rebuilt.
BONES = (
    ("neck", "nose"), ("nose", "r_eye"), ("nose", "l_eye"), ("r_eye", "r_ear"), ("l_eye", "l_ear"),
    ("neck", "r_shoulder"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"),
    ("neck", "l_shoulder"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"),
    ("neck", "r_hip"), ("r_hip", "r_knee"), ("r_knee", "r_ankle"),
    ("neck", "l_hip"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
)
_BONE_INDEX = np.array([[BODY_INDEX[a], BODY_INDEX[b]] for a, b in BONES])
_TORSO = (BONES.index(("neck", "r_hip")), BONES.index(("neck", "l_hip")))
_SHOULDERS = (BONES.index(("neck", "r_shoulder")), BONES.index(("neck", "l_shoulder")))


def bone_lengths(keypoints: np.ndarray, width: int, height: int, threshold: float = 0.3) -> np.ndarray:
    """Median pixel length of each bone in :data:`BONES` over frames ``(frames, 128, 3)``; NaN where never seen."""
    px = keypoints[..., :2] * np.array([width, height], np.float32)
    a, b = _BONE_INDEX[:, 0], _BONE_INDEX[:, 1]
    seen = (keypoints[:, a, 2] > threshold) & (keypoints[:, b, 2] > threshold)
    length = np.linalg.norm(px[:, a] - px[:, b], axis=-1)
    length = np.where(seen, length, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: bones never seen
        return np.nanmedian(length, axis=0)


def _scale(lengths: np.ndarray, use: tuple[int, int]) -> float:
    values = lengths[list(use)]
    return float(np.nanmean(values)) if np.isfinite(values).any() else np.nan


def bone_ratios(driving: PoseTrack, reference: PoseTrack, threshold: float = 0.3) -> np.ndarray:
    """Per bone, reference length / driving length after normalising each by its body size; 1 where unknown.

    Body size is the torso (neck to hips) when both show it, otherwise the shoulder span.
    """
    drv = bone_lengths(driving.keypoints, driving.width, driving.height, threshold)
    ref = bone_lengths(reference.keypoints, reference.width, reference.height, threshold)
    use = _TORSO if np.isfinite(drv[list(_TORSO)]).any() and np.isfinite(ref[list(_TORSO)]).any() else _SHOULDERS
    drv_size, ref_size = _scale(drv, use), _scale(ref, use)
    if not (np.isfinite(drv_size) and np.isfinite(ref_size)) or drv_size <= 0 or ref_size <= 0:
        return np.ones(len(BONES))
    ratios = (ref / ref_size) / (drv / drv_size)
    return np.where(np.isfinite(ratios) & (ratios > 0), ratios, 1.0)


def _rebuild(points: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """Scale every bone vector of ``points (frames, 18, d)`` by ``ratios``, walking the tree from the neck."""
    out = points.copy()
    for (parent, child), ratio in zip(_BONE_INDEX, ratios):
        out[:, child] = out[:, parent] + (points[:, child] - points[:, parent]) * ratio
    return out


def retarget(driving: PoseTrack, reference: PoseTrack, threshold: float = 0.3) -> PoseTrack:
    """Give the driving track the reference person's body proportions (bone-length ratios from its pose).

    ``reference`` is usually the one-frame track of a reference photo. The
    driving track keeps its position, size (torso) and motion; hands follow
    their wrists and the face its nose, scaled like the forearm and the head.
    World landmarks, when present, get the same bone ratios.
    """
    ratios = bone_ratios(driving, reference, threshold)
    size = np.array([driving.width, driving.height], np.float32)
    keypoints = driving.keypoints.copy()
    px = driving.keypoints[..., :2] * size
    new_px = px.copy()
    new_px[:, BODY] = _rebuild(px[:, BODY], ratios)

    def carry(part: slice, anchor: int, scale: float) -> None:
        new_px[:, part] = new_px[:, anchor, None] + (px[:, part] - px[:, anchor, None]) * scale

    forearm = {"l": BONES.index(("l_elbow", "l_wrist")), "r": BONES.index(("r_elbow", "r_wrist"))}
    carry(LEFT_HAND, BODY_INDEX["l_wrist"], float(ratios[forearm["l"]]))
    carry(RIGHT_HAND, BODY_INDEX["r_wrist"], float(ratios[forearm["r"]]))
    head = float(np.mean(ratios[:5]))
    carry(FACE, BODY_INDEX["nose"], head)
    keypoints[..., :2] = new_px / size
    world = None
    if driving.world is not None:
        world = driving.world.copy()
        world[:, BODY] = _rebuild(driving.world[:, BODY], ratios)
        for part, anchor, scale in ((LEFT_HAND, "l_wrist", ratios[forearm["l"]]),
                                    (RIGHT_HAND, "r_wrist", ratios[forearm["r"]]), (FACE, "nose", head)):
            i = BODY_INDEX[anchor]
            world[:, part] = world[:, i, None] + (driving.world[:, part] - driving.world[:, i, None]) * scale
    return PoseTrack(keypoints, driving.width, driving.height, driving.fps, world, driving.detected.copy())
