"""Shot segmentation: where a video cuts from one shot to the next.

Each frame becomes an embedding and a cut is a frame whose distance to the previous
one stands out from its neighbourhood (an adaptive threshold: a robust z-score
against the surrounding frames plus an absolute floor), unless it is a one-frame
flash (the frames either side match) or only a change of light (a flare: the
frame's layout, block by block, stays). A *jump cut* (same camera, later in time)
barely changes the frame; it is found where the frame, once aligned to the one
before (so a zoom or pan does not count), changes at once more than around it and
the people in it jump (their poses, from the pose landmarker on single frames,
move far more than in the frames around). Embeddings:

* ``dinov2`` — DINOv2 CLS features, as in the paper; used by ``auto`` only when the
  weights are already on this machine (``FREEVIEW_DINOV2`` = a model folder, or the
  Hugging Face cache holds ``facebook/dinov2-small``). Nothing is downloaded.
* ``color`` — an HSV histogram (colour) and a 16x16 normalised grey thumbnail
  (structure); cheap, and measured by ``freeview bench cuts`` on synthetic videos with
  known camera cuts and jump cuts, and shots with a digital zoom, a flash or a lens flare.
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
    the ``window`` frames either side by ``z`` robust deviations, and (colour features) its layout changes by
    ``layout`` or more; shots are at least ``min_shot`` frames.
    A jump cut: the aligned frame's change rises ``rise`` times or more over the frames before or after (and is
    at least ``residual_floor``), the people jump by ``jump`` of their size or more and ``jump_rise`` times or
    more the jumps of the ``around`` frames either side, and the two rises multiplied reach ``evidence`` (a
    small person's jump barely changes a wide frame; a person who fills it may hardly move)."""

    window: int = 8
    z: float = 6.0
    floor: float = 0.12
    min_shot: int = 4
    layout: float = 0.35       # camera cuts measure 0.45-1, a flare's coming on under 0.3
    rise: float = 1.5
    residual_floor: float = 0.03
    jump: float = 0.03         # mean joint displacement over the body's size, from one frame to the next
    jump_rise: float = 1.5
    evidence: float = 10.0     # on real edits: jump cuts 13-155, other moments at most 7
    around: int = 3


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


def layout_changes(feats: np.ndarray, method: str) -> np.ndarray | None:
    """How much each frame's layout changes from the frame before (``(n,)``, the first 0), from colour
    features: the grey thumbnail cut into 4x4 blocks, each normalised on its own, the median over the blocks
    of their mean absolute difference. Light that changes (a flare's glow, exposure) moves the values of a
    block but not its pattern, and only some blocks; a cut changes most. Blocks flat in either frame (a sky, a
    blown-out glare) have no pattern to compare and are left out; with fewer than 4 left the change counts as
    whole (1). None for other features."""
    if method != "color":
        return None
    grey = feats[:, 256:].reshape(-1, 4, 4, 4, 4).transpose(0, 1, 3, 2, 4).reshape(len(feats), 16, 16)
    spread = grey.std(-1)
    blocks = (grey - grey.mean(-1, keepdims=True)) / (spread[..., None] + 0.15)
    out = np.zeros(len(feats), np.float32)
    for i in range(1, len(feats)):
        patterned = (spread[i] > 0.1) & (spread[i - 1] > 0.1)
        change = np.abs(blocks[i] - blocks[i - 1]).mean(-1)[patterned]
        out[i] = float(np.median(change)) if len(change) >= 4 else 1.0
    return out


def _aligned_grey(frame: np.ndarray, side: int = 96) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    scale = side / max(h, w)
    grey = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (max(8, round(w * scale)), max(8, round(h * scale))),
                      interpolation=cv2.INTER_AREA).astype(np.float32)
    return (grey - grey.mean()) / (grey.std() + 8.0)


def motion_residuals(frames: Iterable[np.ndarray]) -> np.ndarray:
    """How much each RGB frame differs from the one before once aligned to it (``(n,)``, the first 0): an affine
    fit (OpenCV's ECC on a 96-pixel grey thumbnail, normalised), then the mean absolute difference inside a
    4-pixel border. A pan, zoom or shake of the camera leaves little; people who move, or jump, remain."""
    import cv2

    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4)
    out, previous = [], None
    for frame in frames:
        grey = _aligned_grey(frame)
        if previous is not None:
            warp = np.eye(2, 3, dtype=np.float32)
            try:
                _, warp = cv2.findTransformECC(previous, grey, warp, cv2.MOTION_AFFINE, criteria, None, 1)
            except cv2.error:  # flat or unrelated frames do not converge: compare them as they are
                warp = np.eye(2, 3, dtype=np.float32)
            h, w = grey.shape
            aligned = cv2.warpAffine(grey, warp, (w, h), flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT)
            out.append(float(np.abs(aligned - previous)[4:-4, 4:-4].mean()))
        else:
            out.append(0.0)
        previous = grey
    return np.array(out, np.float32)


def neighbour_distances(feats: np.ndarray, method: str) -> np.ndarray:
    """Distance of every frame's features ``(n, d)`` to the frame before's (``(n,)``, the first is 0)."""
    if len(feats) < 2:
        return np.zeros(len(feats), np.float32)
    return np.concatenate([[0.0], feature_distance(feats[1:], feats[:-1], method)]).astype(np.float32)


def frame_distances(frames: Iterable[np.ndarray], method: str = "auto", batch: int = 32) -> tuple[np.ndarray, str]:
    """Distance of every frame to the one before (``(n,)``, the first is 0) and the method used."""
    feats, method = _features(frames, method, batch)
    return neighbour_distances(feats, method), method


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


def _mirror() -> np.ndarray:
    """Index map of the 18-joint body with left and right exchanged."""
    from engine.poses.track import BODY_INDEX

    order = np.arange(18)
    for name, i in BODY_INDEX.items():
        if name.startswith("r_"):
            order[i], order[BODY_INDEX["l_" + name[2:]]] = BODY_INDEX["l_" + name[2:]], i
    return order


def body_jump(before: np.ndarray, after: np.ndarray, width: int, height: int, threshold: float = 0.3) -> float:
    """How far body ``after (18, 3)`` lies from body ``before`` (normalised): the mean pixel displacement of the
    joints seen in both over ``before``'s size (the longer side of its seen joints' box); a left/right label swap
    does not count (the lesser of ``after`` as labelled and mirrored). Infinite with under 4 joints in common."""
    size = np.array([width, height], np.float64)
    seen = before[:, 2] > threshold
    if seen.sum() < 2:
        return float("inf")
    extent = float(max(np.ptp(before[seen, :2] * size, axis=0).max(), 1.0))
    best = float("inf")
    for other in (after, after[_mirror()]):
        both = seen & (other[:, 2] > threshold)
        if both.sum() >= 4:
            moved = np.linalg.norm((other[both, :2] - before[both, :2]) * size, axis=1).mean() / extent
            best = min(best, float(moved))
    return best


def people_jumps(bodies: dict[int, np.ndarray], num_frames: int, width: int, height: int) -> np.ndarray:
    """How far the people jump into each frame (``(num_frames,)``): the least :func:`body_jump` from any body of
    the frame before to any body of the frame, so while anyone carries on there is no jump. ``bodies``: frame
    index -> ``(people, 18, 3)`` (normalised) for the frames looked at; NaN where a frame or the one before was
    not looked at, or either shows nobody."""
    out = np.full(num_frames, np.nan, np.float32)
    for i in range(1, num_frames):
        before, after = bodies.get(i - 1), bodies.get(i)
        if before is None or after is None or not len(before) or not len(after):
            continue
        out[i] = min(body_jump(p, q, width, height) for p in before for q in after)
    return out


def _rises(signal: np.ndarray, i: int, around: int, floor: float = 0.01) -> float:
    """``signal[i]`` over the lower of the medians of the ``around`` frames before and after it (frame 0 holds
    no distance and is left out): high for a one-frame change, also where the shot's motion changes next to it."""
    before, after = signal[max(1, i - around):i], signal[i + 1:i + 1 + around]
    sides = [float(np.median(x)) for x in (before, after) if len(x)]
    return float(signal[i]) / max(min(sides) if sides else 0.0, floor)


def _colour_cut(d: np.ndarray, i: int, settings: CutSettings, skips, layout) -> str | None:
    """Frame ``i`` by its distance: a "cut" where it stands out (and the layout changes), a "flash" where it
    stands out but frame ``i`` alone differs, "light" where only the light changed; else None."""
    n = len(d)
    median, spread = _stands_out(d, i, settings.window)
    if not (d[i] > settings.floor and d[i] > median + settings.z * spread):
        return None
    if skips is not None and 1 <= i < n - 1 and skips[i] < max(settings.floor, 0.35 * d[i]):
        return "flash"  # frame i alone differs
    if skips is not None and i >= 2 and skips[i - 1] < max(settings.floor, 0.35 * d[i]) and d[i - 1] > settings.floor:
        return "flash"  # the way back out of a flash
    if layout is not None and layout[i] < settings.layout:
        return "light"
    return "cut"


def _jump_signal(d: np.ndarray, residuals: np.ndarray | None) -> np.ndarray:
    return np.asarray(residuals if residuals is not None else d, np.float64)


def jump_candidates(distances: np.ndarray, settings: CutSettings = CutSettings(), skips: np.ndarray | None = None,
                    layout: np.ndarray | None = None, residuals: np.ndarray | None = None) -> list[int]:
    """Frames that may be jump cuts: not a cut, a flash or a change of light by the frame distances (a flare
    also changes the aligned frame, and the poses found under it), and the aligned frame's change
    (``residuals``, :func:`motion_residuals`; else the distances) rises at once. Only their people need looking
    at (:func:`frames_to_look_at`)."""
    d = np.asarray(distances, np.float64)
    signal = _jump_signal(d, residuals)
    return [i for i in range(1, len(d)) if _colour_cut(d, i, settings, skips, layout) is None
            and signal[i] >= settings.residual_floor and _rises(signal, i, settings.around) >= settings.rise]


def frames_to_look_at(candidates: list[int], num_frames: int, settings: CutSettings = CutSettings()) -> list[int]:
    """The frames whose people :func:`detect_cuts` needs for ``candidates``: each with the ``around`` jumps
    either side, so from ``around + 1`` frames before to ``around`` after."""
    wanted = {f for i in candidates for f in range(i - settings.around - 1, i + settings.around + 1)}
    return sorted(f for f in wanted if 0 <= f < num_frames)


def detect_cuts(distances: np.ndarray, settings: CutSettings = CutSettings(), skips: np.ndarray | None = None,
                jumps: np.ndarray | None = None, layout: np.ndarray | None = None,
                residuals: np.ndarray | None = None) -> list[int]:
    """Frame indices that start a new shot (never 0), from per-frame distances ``(n,)``.

    ``skips`` (:func:`skip_distances`): a frame that differs from both neighbours while they match each other is
    a flash, not a cut. ``layout`` (:func:`layout_changes`): a frame whose blocks keep their patterns only
    changed its light. ``jumps`` (:func:`people_jumps`, NaN where unknown) with ``residuals``
    (:func:`motion_residuals`; without them the distances stand in): a jump in time within one camera (a jump
    cut) changes the aligned frame at once, a little, and moves the people far more than the frames around do.
    """
    d = np.asarray(distances, dtype=np.float64)
    n = len(d)
    signal = _jump_signal(d, residuals)
    candidates = []
    for i in range(1, n):
        kind = _colour_cut(d, i, settings, skips, layout)
        if kind == "cut":
            candidates.append(i)
        elif kind is None and jumps is not None and _is_jump_cut(i, signal, np.asarray(jumps, np.float64), settings):
            candidates.append(i)
    cuts: list[int] = []
    for i in candidates:  # two cuts closer than min_shot: keep the stronger
        if cuts and i - cuts[-1] < settings.min_shot:
            if d[i] > d[cuts[-1]]:
                cuts[-1] = i
            continue
        cuts.append(i)
    return cuts


def _is_jump_cut(i: int, signal: np.ndarray, jumps: np.ndarray, settings: CutSettings) -> bool:
    if not np.isfinite(jumps[i]) or jumps[i] < settings.jump or signal[i] < settings.residual_floor:
        return False
    around = np.concatenate([jumps[max(1, i - settings.around):i], jumps[i + 1:i + 1 + settings.around]])
    around = around[np.isfinite(around)]
    if len(around) < 2:  # no motion to compare with: a person who moves fast cannot be told from a jump
        return False
    frame_rise = _rises(signal, i, settings.around)
    people_rise = float(jumps[i]) / max(float(np.median(around)), 0.01)
    return frame_rise >= settings.rise and people_rise >= settings.jump_rise and frame_rise * people_rise >= settings.evidence


def find_cuts(frames: list[np.ndarray], method: str = "auto", settings: CutSettings = CutSettings(),
              model_paths: dict | None = None) -> tuple[list[int], str]:
    """Cuts of a video's RGB frames ``(H, W, 3)`` (:func:`detect_cuts` with every signal) and the feature
    method used; the pose landmarker looks only at the frames around jump-cut candidates."""
    feats, method = frame_features(frames, method)
    if len(feats) < 2:
        return [], method
    distances = neighbour_distances(feats, method)
    skips, layout = skip_distances(feats, method), layout_changes(feats, method)
    residuals = motion_residuals(frames)
    look = frames_to_look_at(jump_candidates(distances, settings, skips, layout, residuals), len(frames), settings)
    bodies: dict[int, np.ndarray] = {}
    if look:
        from engine.poses.extract import MAX_AUTO_POSES, find_bodies, open_landmarkers

        with open_landmarkers("image", num_poses=MAX_AUTO_POSES, model_paths=model_paths) as lms:
            bodies = {i: find_bodies(lms, frames[i]) for i in look}
    height, width = frames[0].shape[:2]
    jumps = people_jumps(bodies, len(frames), width, height)
    return detect_cuts(distances, settings, skips, jumps, layout, residuals), method


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


EDIT_KINDS = ("camera", "jump", "zoom", "flash", "light")


def flash_frame(frame: np.ndarray) -> np.ndarray:
    """One RGB frame overexposed as by a camera flash."""
    return np.clip(frame.astype(np.float32) * 1.6 + 70, 0, 255).astype(np.uint8)


def digital_zoom(frames: list[np.ndarray], to: float = 1.5) -> list[np.ndarray]:
    """A push-in by cropping: zoom 1 -> ``to`` about the centre over the frames (one shot, not a cut)."""
    import cv2

    out = []
    for i, f in enumerate(frames):
        z = 1 + (to - 1) * i / max(1, len(frames) - 1)
        h, w = f.shape[:2]
        ch, cw = int(h / z), int(w / z)
        y, x = (h - ch) // 2, (w - cw) // 2
        out.append(cv2.resize(f[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR))
    return out


def lens_flare(frame: np.ndarray, centre: tuple[float, float], strength: float = 140.0) -> np.ndarray:
    """One RGB frame with the glow of a lens flare at ``centre`` (x, y as shares of the frame) and the exposure
    it brings: a change of light, not of shot."""
    h, w = frame.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    glow = np.exp(-(((xx - centre[0] * w) ** 2 + (yy - centre[1] * h) ** 2) / (2 * (0.2 * max(h, w)) ** 2)))
    lit = frame.astype(np.float32) * 1.1 + 12 + strength * glow[..., None] * np.array([1.0, 0.9, 0.7], np.float32)
    return np.clip(lit, 0, 255).astype(np.uint8)


def synthetic_edit(kind: str, seed: int, size: int = 128) -> tuple[np.ndarray, list[int]]:
    """A synthetic video ``(frames, cuts)`` for one kind of :data:`EDIT_KINDS`: "camera" cuts between shots
    (:func:`synthetic_multishot`); "jump" cuts: one camera on one person, spans later in time put together;
    and camera-cut videos where every shot also holds a "zoom" (a digital push-in), a one-frame "flash" or a
    "light" change (a flare that comes on and stays), none of which is a cut."""
    if kind not in EDIT_KINDS:
        raise ValueError(f"unknown edit kind {kind!r}; expected one of {', '.join(EDIT_KINDS)}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, EDIT_KINDS.index(kind)]))
    if kind == "jump":
        from train.synth import SHOTS, ClipSpec, render_clip

        spans = [int(rng.integers(12, 21)) for _ in range(4)]
        gaps = [int(rng.integers(15, 41)) for _ in range(3)]
        seeds = [int(x) for x in rng.integers(1, 2**31, size=3)]
        clip = render_clip(ClipSpec(seeds[0], seeds[1], seeds[2], SHOTS[int(rng.integers(3))], sum(spans) + sum(gaps), size))
        frames, cuts, at = [], [], 0
        for k, length in enumerate(spans):
            if k:
                cuts.append(len(frames))
                at += gaps[k - 1]
            frames += list(clip.frames[at:at + length])
            at += length
        return np.stack(frames), cuts
    frames, _, cuts = synthetic_multishot(seed, size=size)
    frames = list(frames)
    for start, stop in segments(len(frames), cuts):
        if kind == "zoom":
            frames[start:stop] = digital_zoom(frames[start:stop], float(rng.uniform(1.2, 1.4)))
        elif kind == "flash" and stop - start >= 8:
            k = int(rng.integers(start + 3, stop - 3))
            frames[k] = flash_frame(frames[k])
        elif kind == "light" and stop - start >= 8:
            on = int(rng.integers(start + 3, stop - 3))
            centre = (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.05, 0.4)))
            frames[on:stop] = [lens_flare(f, centre) for f in frames[on:stop]]
    return np.stack(frames), cuts


def bench_cuts(videos: int = 6, seed: int = 0, method: str = "color", size: int = 256) -> dict:
    """Precision and recall (tolerance one frame) of :func:`find_cuts` on ``videos`` synthetic videos of every
    kind in :data:`EDIT_KINDS`, per kind and over all. ``size``: the frames' side (the pose landmarker, which
    looks for jump cuts, is unreliable on people much smaller than at 256)."""
    import time

    kinds, used = {}, method
    total = np.zeros(3, int)
    frames_total, seconds = 0, 0.0
    for kind in EDIT_KINDS:
        counts = np.zeros(3, int)
        for v in range(videos):
            frames, truth = synthetic_edit(kind, seed * 1000 + v, size)
            start = time.perf_counter()
            found, used = find_cuts(list(frames), method)
            seconds += time.perf_counter() - start
            counts += match_cuts(found, truth)
            frames_total += len(frames)
        tp, fp, fn = (int(x) for x in counts)
        kinds[kind] = {"videos": videos, "true_cuts": tp + fn, "found_cuts": tp + fp, "precision": tp / max(1, tp + fp),
                       "recall": tp / max(1, tp + fn), "false_positives": fp, "false_negatives": fn}
        total += counts
    tp, fp, fn = (int(x) for x in total)
    return {
        "method": used, "videos": videos * len(EDIT_KINDS), "frames": frames_total, "true_cuts": tp + fn,
        "found_cuts": tp + fp, "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
        "true_positives": tp, "false_positives": fp, "false_negatives": fn, "kinds": kinds,
        "frames_per_second": frames_total / max(seconds, 1e-9), "tolerance_frames": 1,
    }
