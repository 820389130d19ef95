"""Footage -> training dataset (``freeview train prepare FOOTAGE ... -o DATASET``).

Each video is decoded, cut into shots (:mod:`train.shots`), and every shot with
exactly one person becomes one clip: poses extracted (mediapipe, through
:mod:`engine.poses`), a fixed square crop that keeps the person framed, resized to
the training resolution. A clip holds only frames where the person was found, but
for gaps of at most ``max_gap`` (2) frames in a row, interpolated from their own poses:
longer gaps, and those at a shot's start or end, are left out (listed in ``rejected``),
and the shot's frames between them become separate clips (:func:`split_at_gaps`).
The output uses the synthetic world's format (``index.json`` + ``clips/*.npz``, see
:mod:`train.synth.dataset`), so :class:`~train.synth.SynthDataset` serves both. A clip ``.npz`` holds ``frames``
``(F, S, S, 3)`` uint8, ``keypoints`` ``(F, 128, 3)`` normalised to the crop,
``world`` ``(F, 128, 3)`` (mediapipe's metric estimate), ``in_frame`` ``(F, 128)``,
``shots`` ``(F,)``, ``cut`` ``(F,)`` (all False) and ``fps``; no camera arrays (unknown).

Shot labels (close-up / medium / wide) come from :func:`engine.animate.shot_scale` on
the clip's poses. Identity: one per footage file, or ``--identity NAME`` for all.
Every finished file leaves ``sources/<key>.json`` (its clips and rejections), so a
re-run skips it; ``index.json`` is written last, from all of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.files import atomic_path, write_text_atomic

from .synth.dataset import FORMAT_VERSION, claim_folder

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gif"}
SHOT_ORDER = ("close-up", "medium", "wide")
MAX_DECODE_SIDE = 1024   # frames are downscaled to this on decode: crops are small, memory is not


@dataclass(frozen=True)
class PrepareSettings:
    """What a dataset folder was prepared with (stored in settings.json; other settings are refused)."""

    size: int = 128
    min_frames: int = 12
    method: str = "auto"        # cut detection: auto | color | dinov2
    margin: float = 1.25        # crop side / person extent
    min_detected: float = 0.7   # fraction of a shot's frames where the person must be found
    max_gap: int = 2            # frames in a row without the person a clip may bridge (interpolated); see split_at_gaps

    def check(self) -> None:
        if not (32 <= self.size <= 1024) or self.size % 8:
            raise UserError(f"--size {self.size} is not valid: use a multiple of 8 from 32 to 1024")
        if self.min_frames < 1:
            raise UserError(f"--min-frames {self.min_frames} is not valid: use at least 1")
        if self.method not in ("auto", "color", "dinov2"):
            raise UserError(f"--cuts {self.method!r} is not valid: use auto, color or dinov2")
        if not 1.0 <= self.margin <= 3.0:
            raise UserError(f"margin {self.margin} is not valid: use 1 to 3")
        if not 0 <= self.max_gap <= 10:
            raise UserError(f"max_gap {self.max_gap} is not valid: use 0 to 10 frames")


def footage_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The files named, with folders expanded to the files inside (sorted)."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            files.append(p)
    return files


def source_key(path: Path) -> str:
    """Stable name of one footage file's work: its resolved path, size and modification time."""
    st = path.stat()
    text = f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    return f"{path.stem[:40]}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


# -- per shot -----------------------------------------------------------------------------------------
def people_boxes(frames: list[np.ndarray], samples: int = 5) -> list[np.ndarray]:
    """Pixel boxes of everyone mediapipe finds in up to ``samples`` frames spread over the shot (the frame and
    its halves, so small people in a large frame are found too: :func:`engine.poses.extract.find_people`)."""
    from engine.poses.extract import MAX_AUTO_POSES, find_people, open_landmarkers

    picks = np.unique(np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int))
    with open_landmarkers("image", num_poses=MAX_AUTO_POSES) as lms:
        return [find_people(lms, frames[i]) for i in picks]


def count_people(frames: list[np.ndarray], samples: int = 5) -> int:
    """Median number of people found in up to ``samples`` frames spread over the shot."""
    return int(np.median([len(b) for b in people_boxes(frames, samples)]))


MIN_PERSON_HEIGHT = 0.2  # a training person must be at least this share of the frame's height


def people_verdict(boxes: list[np.ndarray], frame_height: int) -> str | None:
    """Why a shot with these per-frame people boxes cannot be a training clip, or None when it can:
    "no person", "several people (N)" or "person too small (N% of the frame height)"."""
    counts = [len(b) for b in boxes]
    people = int(np.median(counts)) if counts else 0
    if people == 0:
        return "no person"
    if people > 1:
        return f"several people ({people}; a training clip shows exactly one)"
    heights = [float((b[:, 3] - b[:, 1]).max()) for b in boxes if len(b)]
    share = float(np.median(heights)) / frame_height
    if share < MIN_PERSON_HEIGHT:
        return f"person too small ({share:.0%} of the frame height, under {MIN_PERSON_HEIGHT:.0%})"
    return None


def person_box(keypoints: np.ndarray, width: int, height: int, threshold: float = 0.3) -> tuple[float, float, float, float] | None:
    """Pixel box ``(x0, y0, x1, y1)`` around the seen body joints of all frames ``(F, 128, 3)``."""
    from engine.poses import BODY

    body = keypoints[:, BODY]
    seen = body[..., 2] > threshold
    if not seen.any():
        return None
    xs, ys = body[..., 0][seen] * width, body[..., 1][seen] * height
    # percentiles, not min/max: one stray joint must not zoom the whole shot out
    return (float(np.percentile(xs, 1)), float(np.percentile(ys, 1)), float(np.percentile(xs, 99)), float(np.percentile(ys, 99)))


def square_crop(box, width: int, height: int, margin: float) -> tuple[int, int, int]:
    """``(x0, y0, side)`` of a square inside the frame around ``box``, ``margin`` times its longer side."""
    x0, y0, x1, y1 = box
    side = int(round(min(max(x1 - x0, y1 - y0) * margin, width, height)))
    side = max(side, min(width, height) // 4, 8)
    side = min(side, width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(np.clip(cx - side / 2, 0, width - side)))
    top = int(round(np.clip(cy - side / 2, 0, height - side)))
    return left, top, side


def crop_shot(frames: list[np.ndarray], keypoints: np.ndarray, size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """One fixed square crop for the whole shot (no added camera motion), resized to ``size``.

    Returns frames ``(F, size, size, 3)`` and keypoints ``(F, 128, 3)`` normalised to the crop
    (confidence 0 for points that fall outside it)."""
    import cv2

    height, width = frames[0].shape[:2]
    box = person_box(keypoints, width, height)
    left, top, side = square_crop(box, width, height, margin)
    out = np.stack([cv2.resize(f[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)
                    for f in frames])
    kp = keypoints.copy()
    kp[..., 0] = (keypoints[..., 0] * width - left) / side
    kp[..., 1] = (keypoints[..., 1] * height - top) / side
    outside = (kp[..., 0] < 0) | (kp[..., 0] > 1) | (kp[..., 1] < 0) | (kp[..., 1] > 1)
    kp[..., 2] = np.where(outside, 0.0, kp[..., 2])
    return out, kp.astype(np.float32)


def shot_label(keypoints: np.ndarray) -> str:
    """The most common :func:`engine.animate.shot_scale` over the shot's frames."""
    from engine.animate import shot_scale

    votes = Counter(shot_scale(k) for k in keypoints)
    return max(SHOT_ORDER, key=lambda s: (votes[s], -SHOT_ORDER.index(s)))


def split_at_gaps(detected: np.ndarray, max_gap: int) -> tuple[list[tuple[int, int]], list[tuple[int, int, str]]]:
    """Where a shot's frames may be trained on, from ``detected (F,)`` (the person found in the frame).

    A clip bridges at most ``max_gap`` frames in a row without the person (their pose interpolated from their own
    frames either side); longer gaps, and any at the shot's start or end (a pose held from elsewhere, not theirs
    there), are cut out. Returns the pieces ``[(start, stop)]`` between the cuts and the cut-out frames
    ``[(start, stop, reason)]``."""
    detected = np.asarray(detected, bool)
    n = len(detected)
    padded = np.concatenate([[False], ~detected, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    pieces, dropped, begin = [], [], 0
    for start, stop in zip(edges[::2].tolist(), edges[1::2].tolist()):
        length = stop - start
        if start == 0 or stop == n:
            where = "start" if start == 0 else "end"
            reason = f"person not detected in {length} frame(s) at the shot's {where} (left out, not held)"
        elif length > max_gap:
            reason = f"person not detected in {length} frames in a row (a clip bridges at most {max_gap})"
        else:
            continue
        dropped.append((start, stop, reason))
        if start > begin:
            pieces.append((begin, start))
        begin = stop
    if begin < n:
        pieces.append((begin, n))
    return pieces, dropped


def prepare_shot(frames: list[np.ndarray], fps: float, settings: PrepareSettings) -> tuple[list[dict], list[dict]]:
    """The clips (arrays for the ``.npz``, with ``start`` / ``stop``: the frames of the shot they hold) of one
    shot, and what was left out of it (``start``, ``stop`` and ``reason``): a clip holds only frames where the
    person was found, but for gaps of at most ``settings.max_gap`` frames (:func:`split_at_gaps`)."""
    from engine.poses import extract_frames, fill_gaps

    def left_out(start: int, stop: int, reason: str) -> dict:
        return {"start": start, "stop": stop, "reason": reason}

    if len(frames) < settings.min_frames:
        return [], [left_out(0, len(frames), f"too short ({len(frames)} frames, fewer than {settings.min_frames})")]
    verdict = people_verdict(people_boxes(frames), frames[0].shape[0])
    if verdict is not None:
        return [], [left_out(0, len(frames), verdict)]
    track = extract_frames(frames, fps, num_poses=1)
    found = float(np.mean(track.detected))
    if found < settings.min_detected:
        return [], [left_out(0, len(frames), f"person found in only {found:.0%} of frames")]
    pieces, dropped = split_at_gaps(track.detected, settings.max_gap)
    rejected = [left_out(*d) for d in dropped]
    clips = []
    for start, stop in pieces:
        if stop - start < settings.min_frames:
            rejected.append(left_out(start, stop, f"too short ({stop - start} frames between frames without the "
                                                  f"person, fewer than {settings.min_frames})"))
            continue
        piece, _ = fill_gaps(track.slice(start, stop), max_gap=settings.max_gap)
        images, keypoints = crop_shot(frames[start:stop], piece.keypoints, settings.size, settings.margin)
        n, shot = len(images), shot_label(keypoints)
        clips.append({
            "start": start, "stop": stop, "shot": shot,
            "arrays": {"frames": images, "keypoints": keypoints,
                       "world": piece.world if piece.world is not None else np.zeros_like(keypoints),
                       "in_frame": keypoints[..., 2] > 0, "shots": np.array([shot] * n),
                       "cut": np.zeros(n, bool), "fps": np.float32(fps)},
        })
    return clips, sorted(rejected, key=lambda r: r["start"])


def decode(path: Path) -> tuple[list[np.ndarray], float]:
    """All frames of a video (RGB uint8, the longer side at most :data:`MAX_DECODE_SIDE`) and its fps."""
    import cv2

    from engine.video import read_video

    iterator, fps, (width, height) = read_video(path)
    scale = MAX_DECODE_SIDE / max(width, height)
    frames = []
    for frame in iterator:
        if scale < 1:
            frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        frames.append(frame)
    return frames, fps


# -- per file -----------------------------------------------------------------------------------------
def prepare_file(path: Path, out: Path, identity: str, settings: PrepareSettings) -> dict:
    """Cut, filter, pose and crop one video; writes its clips and returns its manifest."""
    from .shots import find_cuts, segments

    key = source_key(path)
    frames, fps = decode(path)
    cuts, method = find_cuts(frames, settings.method)
    clips, rejected = [], []
    for k, (start, stop) in enumerate(segments(len(frames), cuts)):
        made, left_out = prepare_shot(frames[start:stop], fps, settings)
        start = int(start)
        for r in left_out:
            a, b = start + r["start"], start + r["stop"]
            rejected.append({"segment": k, "start": a, "stop": b, "reason": r["reason"]})
            logger.info("%s shot %d: frames %d-%d left out: %s", path.name, k, a, b - 1, r["reason"])
        for piece, clip in enumerate(made):
            shot = clip["shot"]
            file = f"clips/{key}_{k:03d}{f'-{piece}' if piece else ''}_{shot}.npz"
            with atomic_path(out / file) as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(fh, **clip["arrays"])
            clips.append({"file": file, "identity": identity, "split": "train", "shot": shot,
                          "frames": clip["stop"] - clip["start"], "source": str(path),
                          "start": start + clip["start"], "stop": start + clip["stop"]})
    return {"source": str(path), "key": key, "identity": identity, "fps": fps, "frames": len(frames),
            "cut_method": method, "cuts": [int(c) for c in cuts], "clips": clips, "rejected": rejected}


def prepare_dataset(footage: Iterable[str | os.PathLike], out: str | os.PathLike, settings: PrepareSettings = PrepareSettings(),
                    identity: str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Prepare every footage file into ``out``; returns the index (with ``skipped`` files and their reasons).

    Finished files of an earlier run are not redone. Unreadable or unsupported files are
    skipped and listed; a dataset that ends up with no clip at all is a :class:`UserError`.
    """
    settings.check()
    out = Path(out)
    files = footage_files(footage)
    if not files:
        raise UserError("train prepare: no footage files given")
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / "prepare.json"
    if not settings_path.exists() and (out / "index.json").exists():
        raise UserError(f"{out} already holds a dataset that `train prepare` did not make; use an empty folder")
    claim_folder(settings_path, {"version": FORMAT_VERSION, **asdict(settings)}, "a prepared dataset")

    skipped = []
    for path in files:
        if progress is not None:
            progress(path.name)
        if not path.is_file():
            skipped.append({"source": str(path), "reason": "not found"})
            continue
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            skipped.append({"source": str(path), "reason": f"unsupported file type {path.suffix or '(none)'}"})
            continue
        manifest_path = out / "sources" / f"{source_key(path)}.json"
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if all((out / c["file"]).exists() for c in manifest["clips"]):
                continue
        name = identity or f"id-{path.stem[:40]}"
        try:
            manifest = prepare_file(path, out, name, settings)
        except UserError as exc:  # unreadable or corrupt video: list it, go on with the others
            skipped.append({"source": str(path), "reason": str(exc)})
            continue
        write_text_atomic(manifest_path, json.dumps(manifest, indent=1))
    return write_index(out, settings, skipped)


def write_index(out: Path, settings: PrepareSettings, skipped: list[dict]) -> dict:
    """Gather every finished file's manifest into ``index.json`` (written last, atomically)."""
    manifests = [json.loads(p.read_text()) for p in sorted((out / "sources").glob("*.json"))] if (out / "sources").is_dir() else []
    clips = [c for m in manifests for c in m["clips"]]
    rejected = [{"source": m["source"], **r} for m in manifests for r in m["rejected"]]
    if not clips:
        reasons = sorted({r["reason"] for r in rejected} | {s["reason"] for s in skipped})
        raise UserError(f"train prepare: no usable clip (a shot of at least {settings.min_frames} frames with exactly one "
                        f"person) in the footage; reasons: {'; '.join(reasons) or 'none'}")
    identities = sorted({c["identity"] for c in clips})
    one_shot = [i for i in identities if len({c["shot"] for c in clips if c["identity"] == i}) < 2]
    if one_shot:
        logger.warning("identities with a single shot type (training draws references from another shot, so "
                       "these need footage in close-up, medium or wide too): %s", ", ".join(one_shot))
    fps = float(np.median([m["fps"] for m in manifests if m["clips"]]))
    index = {
        "version": FORMAT_VERSION, "size": settings.size, "fps": fps, "settings": asdict(settings), "shots": list(SHOT_ORDER),
        "source": "footage",
        "identities": [{"id": i, "split": "train", "sources": sorted({c["source"] for c in clips if c["identity"] == i})}
                       for i in identities],
        "clips": clips, "rejected": rejected, "skipped": skipped,
    }
    write_text_atomic(out / "index.json", json.dumps(index, indent=1))
    return index
