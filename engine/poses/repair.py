"""Left/right swap repair of a pose track (pure functions).

Pose estimators confuse a person seen from the front with one seen from the back:
mediapipe then labels the whole body mirrored (left arm as right, the 3D depth
reversed) for a run of frames. A real turn is gradual; a label swap turns the
body's facing direction by about 180 degrees from one frame to the next. So:

* **facing unwrapping** (world landmarks known): the shoulders' facing angle
  comes from their vector in the ground plane of the 3D landmarks; each frame
  takes the reading (as given, or swapped: +180 degrees) nearest the last clear
  repaired angle. Hips, then the head (ears, else eyes), each take the reading
  within 90 degrees of the repaired shoulders (a torso does not twist, nor a
  head turn, that far), which repairs a swap of the legs alone. Near 90 degrees
  either way (a side-on hip reading, or a noisy one) the 3D cannot tell, and
  the image decides where it can: a swap exchanges a pair's left-right order in
  the image, and the hips (or ears) lie in the same order as the shoulders.
* **image continuity** (no 3D): each part group takes the labelling whose joints
  lie nearest the previous repaired frame, when one is clearly nearer.

Which of the two labellings is right overall is decided by the majority of
frames (the estimator is right more often than not). Swapped frames get their
body joints, hands and world landmarks relabelled (and the world depth mirrored
back); face points are not labelled left/right and stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .track import BODY_INDEX, LEFT_HAND, RIGHT_HAND, PoseTrack

VISIBLE = 0.3

_PAIRS = {
    "arms": [("r_shoulder", "l_shoulder"), ("r_elbow", "l_elbow"), ("r_wrist", "l_wrist")],
    "legs": [("r_hip", "l_hip"), ("r_knee", "l_knee"), ("r_ankle", "l_ankle")],
    "head": [("r_eye", "l_eye"), ("r_ear", "l_ear")],
}
GROUPS = tuple(_PAIRS)
_RIGHT = {g: np.array([BODY_INDEX[r] for r, _ in pairs]) for g, pairs in _PAIRS.items()}
_LEFT = {g: np.array([BODY_INDEX[left] for _, left in pairs]) for g, pairs in _PAIRS.items()}


@dataclass(frozen=True)
class SwapReport:
    """What :func:`repair_swaps` changed: per part group, the frames relabelled, and their spans ``[start, stop)``."""

    swapped: dict[str, np.ndarray]
    spans: tuple[tuple[int, int], ...]

    @property
    def frames(self) -> int:
        """Frames where any group was relabelled."""
        return len(np.unique(np.concatenate(list(self.swapped.values())))) if self.swapped else 0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles in radians, in [0, pi]."""
    return np.abs((a - b + np.pi) % (2 * np.pi) - np.pi)


def _facing(world: np.ndarray, conf: np.ndarray, right: int, left: int) -> np.ndarray:
    """Angle in the ground plane (x, z) of the left-to-right vector of a joint pair, per frame; NaN unseen."""
    vec = world[:, right] - world[:, left]
    angle = np.arctan2(vec[:, 2], vec[:, 0])
    seen = (conf[:, right] > VISIBLE) & (conf[:, left] > VISIBLE) & (np.hypot(vec[:, 0], vec[:, 2]) > 1e-4)
    return np.where(seen, angle, np.nan)


def _unwrap_flips(angle: np.ndarray, clear: float = np.radians(50)) -> np.ndarray:
    """Per frame, whether the reading + 180 degrees continues the repaired angle better (greedy). Only clear
    readings (within ``clear`` of the reference) move the reference: one near 90 degrees off is decided
    but not trusted, so a noisy side view cannot drag the unwrapping over."""
    flips = np.zeros(len(angle), bool)
    previous = np.nan
    for i, a in enumerate(angle):
        if not np.isfinite(a):
            continue
        if not np.isfinite(previous):
            previous = a
            continue
        keep, swap = _angle_gap(a, previous), _angle_gap(a + np.pi, previous)
        flips[i] = swap < keep
        if min(keep, swap) < clear:
            previous = a + np.pi if flips[i] else a
    return flips


def _relative_flips(angle: np.ndarray, reference: np.ndarray, order: np.ndarray | None = None,
                    unclear: float = np.radians(25)) -> np.ndarray:
    """Per frame, whether ``angle`` needs +180 degrees to lie within 90 degrees of ``reference``. Where the gap
    is within ``unclear`` of 90 degrees, ``order`` (+1: the pair's image left-right order disagrees with the
    reference pair's, -1: agrees, 0: the image cannot tell) decides instead, when it can."""
    both = np.isfinite(angle) & np.isfinite(reference)
    gap = _angle_gap(angle, reference)
    flips = both & (gap > np.pi / 2)
    if order is not None:
        ambiguous = both & (np.abs(gap - np.pi / 2) < unclear) & (order != 0)
        flips = np.where(ambiguous, order > 0, flips)
    return flips


def _image_order(px: np.ndarray, conf: np.ndarray, right: int, left: int) -> np.ndarray:
    """Per frame, the image x-order of a joint pair: +1 right of left, -1 left of it, 0 unseen or too close to
    tell (under a quarter of the pair's spread when it faces the camera, its 90th percentile over the track)."""
    dx = px[:, right, 0] - px[:, left, 0]
    seen = (conf[:, right] > VISIBLE) & (conf[:, left] > VISIBLE)
    if not seen.any():
        return np.zeros(len(px))
    apart = np.abs(dx) > 0.25 * np.percentile(np.abs(dx[seen]), 90)
    return np.where(seen & apart, np.sign(dx), 0.0)


def _image_flips(px: np.ndarray, conf: np.ndarray, group: str, scale: float) -> np.ndarray:
    """Without 3D: per frame, whether swapping the group's labels brings its joints clearly nearer the previous
    repaired frame (by more than ``0.1 * scale`` pixels on average, or half the pair's spread when smaller)."""
    right, left = _RIGHT[group], _LEFT[group]
    flips = np.zeros(len(px), bool)
    previous = None
    for i in range(len(px)):
        seen = (conf[i, right] > VISIBLE) & (conf[i, left] > VISIBLE)
        if not seen.any():
            continue
        r, l = px[i, right], px[i, left]
        if previous is not None:
            pr, pl, pseen = previous
            both = seen & pseen
            if both.any():
                keep = (np.linalg.norm(r - pr, axis=-1) + np.linalg.norm(l - pl, axis=-1))[both].mean()
                swap = (np.linalg.norm(l - pr, axis=-1) + np.linalg.norm(r - pl, axis=-1))[both].mean()
                apart = np.linalg.norm(pr - pl, axis=-1)[both].mean()  # a clear win: a share of the pair's spread
                flips[i] = swap + min(0.1 * scale, 0.5 * apart) < keep
        if flips[i]:
            r, l = l, r
        previous = (r, l, seen)
    return flips


def find_swaps(track: PoseTrack) -> dict[str, np.ndarray]:
    """Per part group ("arms", "legs", "head"), the frames ``(frames,)`` whose left/right labels are swapped."""
    conf = np.where(np.asarray(track.detected, bool)[:, None], track.keypoints[:, :18, 2], 0.0)
    n = len(track)
    detected = np.asarray(track.detected, bool)

    def majority(flips: np.ndarray) -> np.ndarray:  # the labelling most frames agree with is the right one
        flips = flips & detected
        return (~flips & detected) if flips.sum() * 2 > detected.sum() else flips

    if track.world is not None and np.abs(track.world[:, :18]).max() > 0:
        world = track.world[:, :18]
        px = track.keypoints[:, :18, :2] * np.array([track.width, track.height], np.float32)
        raw = _facing(world, conf, BODY_INDEX["r_shoulder"], BODY_INDEX["l_shoulder"])
        arms = majority(_unwrap_flips(raw))
        shoulders = raw + np.pi * arms
        shoulder_order = _image_order(px, conf, BODY_INDEX["r_shoulder"], BODY_INDEX["l_shoulder"])
        shoulder_order = np.where(arms, -shoulder_order, shoulder_order)  # as repaired
        flips = {"arms": arms}
        for group, pairs in (("legs", [("r_hip", "l_hip")]), ("head", [("r_ear", "l_ear"), ("r_eye", "l_eye")])):
            angle, order = np.full(n, np.nan), np.zeros(n)
            for r, l in pairs:
                take = ~np.isfinite(angle)
                angle = np.where(take, _facing(world, conf, BODY_INDEX[r], BODY_INDEX[l]), angle)
                order = np.where(take, _image_order(px, conf, BODY_INDEX[r], BODY_INDEX[l]), order)
            own = _relative_flips(angle, shoulders, -order * shoulder_order)
            flips[group] = np.where(np.isfinite(angle) & np.isfinite(shoulders), own, arms) & detected
    else:
        px = track.keypoints[:, :18, :2] * np.array([track.width, track.height], np.float32)
        seen = conf > VISIBLE
        extent = [np.ptp(px[i, seen[i], 1]) for i in range(n) if seen[i].sum() >= 2]
        scale = float(np.median(extent)) if extent else float(track.height)
        flips = {g: majority(_image_flips(px, conf, g, scale)) for g in GROUPS}
    return flips


def _swap(values: np.ndarray, frames: np.ndarray, group: str) -> None:
    right, left = _RIGHT[group], _LEFT[group]
    r, l = values[frames][:, right].copy(), values[frames][:, left].copy()
    block = values[frames]
    block[:, right], block[:, left] = l, r
    values[frames] = block


def repair_swaps(track: PoseTrack) -> tuple[PoseTrack, SwapReport]:
    """The track with left/right label swaps undone (see the module doc), and what was repaired."""
    flips = find_swaps(track)
    keypoints = track.keypoints.copy()
    world = None if track.world is None else track.world.copy()
    for group, frames in flips.items():
        if not frames.any():
            continue
        _swap(keypoints, frames, group)
        if world is not None:
            _swap(world, frames, group)
    arms = flips["arms"]
    if arms.any():  # the hands follow the wrists; a mirrored 3D body also had its depth reversed
        left, right = keypoints[arms][:, LEFT_HAND].copy(), keypoints[arms][:, RIGHT_HAND].copy()
        block = keypoints[arms]
        block[:, LEFT_HAND], block[:, RIGHT_HAND] = right, left
        keypoints[arms] = block
        if world is not None:
            wblock = world[arms]
            wl, wr = wblock[:, LEFT_HAND].copy(), wblock[:, RIGHT_HAND].copy()
            wblock[:, LEFT_HAND], wblock[:, RIGHT_HAND] = wr, wl
            wblock[..., 2] = -wblock[..., 2]
            world[arms] = wblock
    any_flip = np.any(np.stack(list(flips.values())), axis=0)
    report = SwapReport({g: np.flatnonzero(f) for g, f in flips.items()}, tuple(_runs(any_flip)))
    return PoseTrack(keypoints, track.width, track.height, track.fps, world, track.detected.copy()), report
