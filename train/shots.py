"""Shot segmentation: where a video cuts from one shot to the next.

Each frame becomes an embedding and a cut is a frame whose distance to the previous
one stands out from its neighbourhood (an adaptive threshold: a robust z-score
against the surrounding frames plus an absolute floor). Embeddings:

* ``dinov2`` — DINOv2 CLS features, as in the paper; used by ``auto`` only when the
  weights are already on this machine (``FREEVIEW_DINOV2`` = a model folder, or the
  Hugging Face cache holds ``facebook/dinov2-small``). Nothing is downloaded.
* ``color`` — an HSV histogram (colour) and a 16x16 normalised grey thumbnail
  (structure); cheap, and measured by ``freeview bench cuts`` on synthetic multi-shot
  videos with known cuts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

METHODS = ("auto", "color", "dinov2")
DINOV2_REPO = "facebook/dinov2-small"


@dataclass(frozen=True)
class CutSettings:
    """Adaptive threshold: a frame cuts when its distance exceeds ``floor`` and the median of
    the ``window`` frames either side by ``z`` robust deviations; shots are at least ``min_shot`` frames.
    A jump cut: the person jumps by more than ``jump`` of their size (and ``z`` deviations of the shot's motion)."""

    window: int = 8
    z: float = 6.0
    floor: float = 0.12
    min_shot: int = 4
    jump: float = 0.15   # a pose jump (share of the body's size in one frame) that may be a jump cut


# -- frame embeddings ---------------------------------------------------------------------------------
def color_features(frame: np.ndarray) -> np.ndarray:
    """One RGB uint8 frame ``(H, W, 3)`` -> HSV histogram (256) + structure thumbnail (256), float32."""
    import cv2

    small = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    hist /= max(hist.sum(), 1.0)
    grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
    grey = (grey - grey.mean()) / (grey.std() + 8.0)  # +8: flat frames stay near zero instead of amplifying noise
    return np.concatenate([hist, grey.ravel()]).astype(np.float32)


def color_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances in [0, ~1] between consecutive colour features ``(n, 512)``: half histogram, half structure."""
    hist = 1.0 - np.minimum(a[:, :256], b[:, :256]).sum(axis=1)          # 1 - histogram intersection
    structure = np.abs(a[:, 256:] - b[:, 256:]).mean(axis=1) / 1.6     # mean |z| difference, ~1 for unrelated frames
    return 0.5 * hist + 0.5 * np.minimum(structure, 1.0)


def dinov2_path() -> str | None:
    """A local DINOv2 model folder or cached repo id, or None (never downloads)."""
    explicit = os.environ.get("FREEVIEW_DINOV2")
    if explicit:
        return explicit if os.path.isdir(explicit) else None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(DINOV2_REPO, "config.json")
        return DINOV2_REPO if isinstance(found, str) else None
    except Exception:  # no hub library or unreadable cache: the colour detector is used
        return None


class Dinov2Embedder:
    def __init__(self, path: str):
        import torch
        from transformers import AutoImageProcessor, AutoModel

        self.torch = torch
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def __call__(self, frames: list[np.ndarray]) -> np.ndarray:
        with self.torch.no_grad():
            inputs = self.processor(images=frames, return_tensors="pt")
            cls = self.model(**inputs).last_hidden_state[:, 0]
            return self.torch.nn.functional.normalize(cls, dim=-1).numpy()


def resolve_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown cut detection method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "auto":
        return "dinov2" if dinov2_path() else "color"
    return method


def frame_features(frames: Iterable[np.ndarray], method: str = "auto", batch: int = 32) -> tuple[np.ndarray, str]:
    """Per-frame embeddings ``(n, d)`` of ``method`` and the method used."""
    feats, method = _features(frames, method, batch)
    return feats, method


def feature_distance(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Distances between rows of two feature arrays of ``method`` ("color" | "dinov2")."""
    return color_distance(a, b) if method == "color" else 1.0 - (a * b).sum(axis=1)


def skip_distances(feats: np.ndarray, method: str) -> np.ndarray:
    """Distance of frame ``i - 1`` to frame ``i + 1`` for every ``i`` (``(n,)``, 0 at the ends): small where
    frame ``i`` alone differs (a flash), large at a real cut."""
    out = np.zeros(len(feats), np.float32)
    if len(feats) > 2:
        out[1:-1] = feature_distance(feats[2:], feats[:-2], method)
    return out


def frame_distances(frames: Iterable[np.ndarray], method: str = "auto", batch: int = 32) -> tuple[np.ndarray, str]:
    """Distance of every frame to the one before (``(n,)``, the first is 0) and the method used."""
    feats, method = _features(frames, method, batch)
    if len(feats) < 2:
        return np.zeros(len(feats), np.float32), method
    return np.concatenate([[0.0], feature_distance(feats[1:], feats[:-1], method)]).astype(np.float32), method


def _features(frames: Iterable[np.ndarray], method: str = "auto", batch: int = 32) -> tuple[np.ndarray, str]:
    method = resolve_method(method)
    frames = iter(frames)
    if method == "color":
        feats = np.stack([color_features(f) for f in frames])
    else:
        path = dinov2_path()
        if path is None:
            from engine.errors import UserError

            raise UserError("cut detection: DINOv2 weights are not on this machine (set FREEVIEW_DINOV2 to a model "
                            f"folder or cache {DINOV2_REPO}); use the colour detector")
        embed = Dinov2Embedder(path)
        chunks, buffer = [], []
        for f in frames:
            buffer.append(f)
            if len(buffer) == batch:
                chunks.append(embed(buffer))
                buffer = []
        if buffer:
            chunks.append(embed(buffer))
        feats = np.concatenate(chunks)
    return feats, method


# -- cuts from distances ------------------------------------------------------------------------------
def _stands_out(d: np.ndarray, i: int, window: int) -> tuple[float, float]:
    """Median and robust spread of ``d`` over the ``window`` frames either side of ``i`` (``i`` left out)."""
    n = len(d)
    lo, hi = max(1, i - window), min(n, i + window + 1)
    around = np.concatenate([d[lo:i], d[i + 1:hi]])
    if len(around) == 0:
        around = np.zeros(1)
    median = float(np.median(around))
    return median, 1.4826 * float(np.median(np.abs(around - median))) + 0.01


def pose_jumps(keypoints: np.ndarray, detected: np.ndarray | None = None, threshold: float = 0.3) -> np.ndarray:
    """How far the person jumps from the frame before, per frame ``(n,)``: the median displacement of the body
    joints seen in both frames, over the body's size (its seen extent); 0 where either frame has no person.

    ``keypoints``: ``(n, K, 3)`` normalised (only the 18 body joints are used). Within a shot a person moves a
    few percent of their size per frame; a jump in time (same camera) moves them much more at once.
    """
    body = np.asarray(keypoints)[:, :18]
    n = len(body)
    out = np.zeros(n, np.float32)
    seen = body[..., 2] > threshold
    if detected is not None:
        seen &= np.asarray(detected, bool)[:, None]
    for i in range(1, n):
        both = seen[i] & seen[i - 1]
        if both.sum() < 4:
            continue
        pts = body[i - 1, seen[i - 1], :2]
        size = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1e-3))
        out[i] = float(np.median(np.linalg.norm(body[i, both, :2] - body[i - 1, both, :2], axis=1))) / size
    return out


def detect_cuts(distances: np.ndarray, settings: CutSettings = CutSettings(), skips: np.ndarray | None = None,
                jumps: np.ndarray | None = None) -> list[int]:
    """Frame indices that start a new shot (never 0), from per-frame distances ``(n,)``.

    ``skips`` (:func:`skip_distances`): a frame that differs from both neighbours while they match each other is
    a flash, not a cut. ``jumps`` (:func:`pose_jumps`): a jump in time within one camera (a jump cut) changes
    the frame little but moves the person at once; it cuts when the jump stands out from the shot's motion and
    the frame distance is raised too.
    """
    d = np.asarray(distances, dtype=np.float64)
    n = len(d)
    candidates = []
    for i in range(1, n):
        median, spread = _stands_out(d, i, settings.window)
        if d[i] > settings.floor and d[i] > median + settings.z * spread:
            if skips is not None and 1 <= i < n - 1 and skips[i] < max(settings.floor, 0.35 * d[i]):
                continue  # frame i alone differs: a flash
            if skips is not None and i >= 2 and skips[i - 1] < max(settings.floor, 0.35 * d[i]) and d[i - 1] > settings.floor:
                continue  # the way back out of a flash
            candidates.append(i)
        elif jumps is not None and jumps[i] > settings.jump:
            j_median, j_spread = _stands_out(np.asarray(jumps, np.float64), i, settings.window)
            if jumps[i] > j_median + settings.z * j_spread and d[i] > median + 2 * spread:
                candidates.append(i)
    cuts: list[int] = []
    for i in candidates:  # two cuts closer than min_shot: keep the stronger
        if cuts and i - cuts[-1] < settings.min_shot:
            if d[i] > d[cuts[-1]]:
                cuts[-1] = i
            continue
        cuts.append(i)
    return cuts


def segments(num_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` shots covering ``num_frames`` frames split at ``cuts``."""
    bounds = [0, *[c for c in cuts if 0 < c < num_frames], num_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def match_cuts(found: list[int], truth: list[int], tolerance: int = 1) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives), each true cut matched at most once."""
    unmatched = list(truth)
    tp = 0
    for c in found:
        near = [t for t in unmatched if abs(t - c) <= tolerance]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - c)))
            tp += 1
    return tp, len(found) - tp, len(unmatched)


# -- benchmark ----------------------------------------------------------------------------------------
def synthetic_multishot(seed: int, segments_per_video: int = 5, size: int = 128, min_len: int = 8, max_len: int = 24):
    """A synthetic multi-shot video ``(frames, keypoints, cuts)``: segments of 1-2 characters in
    different shots, zooms and backdrops (some cuts keep the backdrop and the person: the hard case)."""
    from train.synth import SHOTS, ClipSpec, render_clip

    rng = np.random.default_rng(seed)
    identities = [int(x) for x in rng.integers(1, 2**31, size=int(rng.integers(1, 3)))]
    backdrops = [int(x) for x in rng.integers(1, 2**31, size=2)]
    frames, keypoints, cuts = [], [], []
    shot = int(rng.integers(3))
    for k in range(segments_per_video):
        length = int(rng.integers(min_len, max_len + 1))
        shot = (shot + int(rng.integers(1, 3))) % 3
        zoom = float(rng.choice([1.0, 1.25, 0.8]))
        clip = render_clip(ClipSpec(identities[k % len(identities)], int(rng.integers(2**31)),
                                    backdrops[int(rng.integers(2))], SHOTS[shot], length, size, zoom=zoom))
        if k:
            cuts.append(len(frames))
        cuts += [len(frames) + int(i) for i in np.flatnonzero(clip.cut) if i > 0]
        frames += list(clip.frames)
        keypoints += list(clip.keypoints)
    return np.stack(frames), np.stack(keypoints), cuts


def bench_cuts(videos: int = 12, seed: int = 0, method: str = "color", size: int = 128) -> dict:
    """Precision and recall (tolerance one frame) of cut detection on synthetic multi-shot videos."""
    import time

    tp = fp = fn = 0
    frames_total, seconds = 0, 0.0
    used = method
    for v in range(videos):
        frames, _, truth = synthetic_multishot(seed * 1000 + v, size=size)
        start = time.perf_counter()
        distances, used = frame_distances(frames, method)
        found = detect_cuts(distances)
        seconds += time.perf_counter() - start
        a, b, c = match_cuts(found, truth)
        tp, fp, fn = tp + a, fp + b, fn + c
        frames_total += len(frames)
    return {
        "method": used, "videos": videos, "frames": frames_total, "true_cuts": tp + fn, "found_cuts": tp + fp,
        "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
        "true_positives": tp, "false_positives": fp, "false_negatives": fn,
        "frames_per_second": frames_total / max(seconds, 1e-9), "tolerance_frames": 1,
    }
