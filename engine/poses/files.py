"""Pose files: OpenPose JSON (one file per frame, pixel coordinates) and FreeView's native pose file.

Native file (read by the checks, see DESIGN.md)::

    {"version": 1, "fps": f, "width": w, "height": h,
     "frames": [{"people": [{"pose_keypoints_2d": [x, y, c] * 18, "hand_left_keypoints_2d": [...] * 21,
                             "hand_right_keypoints_2d": [...] * 21, "face_keypoints_2d": [...] * 68,
                             "world_landmarks": [x, y, z] * 128}],      # when known, metres
                 "detected": bool}, ...]}

Each frame is in OpenPose's own layout with pixel coordinates, rounded to
1/1000 pixel (confidence and metres to 1e-4) to stay compact. OpenPose export
writes full precision (a lossless round trip).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import atomic_path, write_text_atomic
from .convert import pick_person
from .track import BODY, FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND, PoseTrack

logger = logging.getLogger(__name__)

NATIVE_VERSION = 1
OPENPOSE_VERSION = 1.3
PARTS = (
    ("pose_keypoints_2d", BODY),
    ("hand_left_keypoints_2d", LEFT_HAND),
    ("hand_right_keypoints_2d", RIGHT_HAND),
    ("face_keypoints_2d", FACE),
)


def person_to_openpose(keypoints: np.ndarray, width: int, height: int, decimals: int | None = None) -> dict:
    """One pose ``(128, 3)`` normalised -> an OpenPose ``people`` entry (pixel coordinates)."""
    px = keypoints.astype(np.float64) * np.array([width, height, 1.0])
    if decimals is not None:
        px[:, :2] = np.round(px[:, :2], decimals)
        px[:, 2] = np.round(px[:, 2], 4)
    person = {"person_id": [-1]}
    for key, part in PARTS:
        person[key] = px[part].reshape(-1).tolist()
    return person


def person_from_openpose(person: dict, width: int, height: int) -> np.ndarray:
    """An OpenPose ``people`` entry -> ``(128, 3)`` normalised keypoints (missing parts have confidence 0)."""
    out = np.zeros((NUM_KEYPOINTS, 3), np.float64)
    for key, part in PARTS:
        values = person.get(key) or []
        count = part.stop - part.start
        if len(values) == 0:
            continue
        if len(values) != 3 * count:
            raise UserError(f"OpenPose {key} must hold {3 * count} numbers, got {len(values)}")
        out[part] = np.asarray(values, np.float64).reshape(count, 3)
    if not np.isfinite(out).all():
        raise UserError("OpenPose keypoints contain NaN or infinite values")
    out[:, :2] /= np.array([width, height], np.float64)
    return out.astype(np.float32)


def frame_to_openpose(keypoints: np.ndarray, width: int, height: int) -> dict:
    """One frame in OpenPose's layout; a pose with no confidence anywhere becomes ``people: []``."""
    people = [person_to_openpose(keypoints, width, height)] if (keypoints[:, 2] > 0).any() else []
    return {"version": OPENPOSE_VERSION, "people": people}


def _people_to_keypoints(people: list, width: int, height: int, previous: np.ndarray | None) -> np.ndarray | None:
    if not people:
        return None
    candidates = np.stack([person_from_openpose(p, width, height) for p in people])
    return candidates[pick_person(candidates[:, BODY], previous, width, height)]


def _frames_to_track(frames: list[list], width: int, height: int, fps: float,
                     worlds: list | None = None, detected: list | None = None) -> PoseTrack:
    keypoints = np.zeros((len(frames), NUM_KEYPOINTS, 3), np.float32)
    previous = None
    found = np.zeros(len(frames), bool)
    for i, people in enumerate(frames):
        kp = _people_to_keypoints(people, width, height, previous)
        if kp is not None:
            keypoints[i] = kp
            previous = kp[BODY]
            found[i] = True
    world = None
    if worlds is not None and any(w is not None for w in worlds):
        world = np.zeros_like(keypoints)
        for i, w in enumerate(worlds):
            if w is not None:
                world[i] = np.asarray(w, np.float32).reshape(NUM_KEYPOINTS, 3)
    flags = np.array(detected, bool) & found if detected is not None else found
    return PoseTrack(keypoints, width, height, fps, world=world, detected=flags)


def _size_of(data: dict, width: int | None, height: int | None, where: Path) -> tuple[int, int]:
    width = width or data.get("width") or data.get("canvas_width")
    height = height or data.get("height") or data.get("canvas_height")
    if not width or not height:
        raise UserError(f"{where}: OpenPose JSON has pixel coordinates but no frame size; pass width and height")
    return _frame_size(width, height, where)


def _frame_size(width, height, where) -> tuple[int, int]:
    from ..limits import check_size

    return check_size(width, height, f"{where}: frame")


def save_openpose(track: PoseTrack, folder: str | os.PathLike, stem: str = "frame") -> list[Path]:
    """Write one OpenPose JSON per frame (``{stem}_{index:012d}_keypoints.json``, as OpenPose names them)."""
    folder = Path(folder)
    paths = []
    for i, keypoints in enumerate(track.keypoints):
        path = folder / f"{stem}_{i:012d}_keypoints.json"
        write_text_atomic(path, json.dumps(frame_to_openpose(keypoints, track.width, track.height)))
        paths.append(path)
    return paths


def load_openpose(source: str | os.PathLike, width: int | None = None, height: int | None = None,
                  fps: float = 25.0) -> PoseTrack:
    """Read OpenPose JSON: one file (one frame) or a folder of per-frame files (sorted by name).

    Pixel coordinates need the frame size: ``width``/``height``, or the
    ``canvas_width``/``canvas_height`` keys some tools write. Several people:
    one is followed (see :func:`~engine.poses.convert.pick_person`).
    """
    source = Path(source)
    files = sorted(source.glob("*.json")) if source.is_dir() else [source]
    if not files:
        raise UserError(f"no OpenPose JSON files in {source}")
    datas = [_read_json(f) for f in files]
    for f, d in zip(files, datas):
        if not isinstance(d, dict) or not isinstance(d.get("people"), list):
            raise UserError(f"{f}: not an OpenPose JSON file (no 'people' list)")
    width, height = _size_of(datas[0], width, height, files[0])
    try:
        return _frames_to_track([d["people"] for d in datas], width, height, fps)
    except (TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        raise UserError(f"{source}: not valid OpenPose JSON ({type(exc).__name__}: {exc})") from None


def _read_json(path: Path):
    from ..files import read_json

    return read_json(path, "pose file")


def track_to_native(track: PoseTrack) -> dict:
    """The native pose-file dictionary of ``track``."""
    frames = []
    for i, keypoints in enumerate(track.keypoints):
        person = person_to_openpose(keypoints, track.width, track.height, decimals=3)
        if track.world is not None:
            person["world_landmarks"] = np.round(track.world[i].astype(np.float64), 4).reshape(-1).tolist()
        people = [person] if (keypoints[:, 2] > 0).any() else []
        frames.append({"people": people, "detected": bool(track.detected[i])})
    return {"version": NATIVE_VERSION, "fps": float(track.fps), "width": int(track.width),
            "height": int(track.height), "frames": frames}


def track_from_native(data: dict, where: str = "pose file") -> PoseTrack:
    """A :class:`PoseTrack` from the native pose-file dictionary; anything malformed is a :class:`UserError`
    naming ``where``."""
    try:
        return _track_from_native(data, where)
    except (TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        raise UserError(f"{where}: not a valid pose file ({type(exc).__name__}: {exc})") from None


def _track_from_native(data: dict, where: str) -> PoseTrack:
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a FreeView pose file (expected an object)")
    for key in ("version", "width", "height", "frames"):
        if key not in data:
            raise UserError(f"{where}: missing field '{key}'")
    from ..limits import check_int

    if check_int(data["version"], f"{where}: version", low=0) > NATIVE_VERSION:
        raise UserError(f"{where}: version {data['version']} is newer than this FreeView reads ({NATIVE_VERSION})")
    if not isinstance(data["frames"], list) or not data["frames"]:
        raise UserError(f"{where}: no frames")
    width, height = _frame_size(data["width"], data["height"], where)
    people = [f.get("people", []) for f in data["frames"]]
    worlds = [p[0].get("world_landmarks") if p else None for p in people]
    detected = [f.get("detected", bool(p)) for f, p in zip(data["frames"], people)]
    from ..limits import check_float

    fps = check_float(data.get("fps", 25.0), f"{where}: fps", low=0.0, high=1000.0, low_open=True)
    try:
        return _frames_to_track(people, width, height, fps, worlds, detected)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None


def save_pose_file(track: PoseTrack, path: str | os.PathLike) -> Path:
    """Write the native pose file atomically (compact JSON)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(track_to_native(track), separators=(",", ":")))
    return path


def load_pose_file(path: str | os.PathLike, width: int | None = None, height: int | None = None) -> PoseTrack:
    """Read a native pose file, an OpenPose JSON file or a folder of OpenPose files."""
    path = Path(path)
    if path.is_dir():
        return load_openpose(path, width, height)
    data = _read_json(path)
    if isinstance(data, dict) and "frames" in data:
        return track_from_native(data, str(path))
    if isinstance(data, dict) and "people" in data:
        return load_openpose(path, width, height)
    raise UserError(f"{path}: neither a FreeView pose file ('frames') nor OpenPose JSON ('people')")
