"""Pose extraction with mediapipe's Tasks API (offline), into a :class:`PoseTrack`.

Videos run the landmarkers in VIDEO mode (tracking between frames), photos in
IMAGE mode. In a video, a :class:`~engine.poses.follow.PersonFollower` follows
one person (the largest, most central at the start), also when the first frame
shows only one: people who come into view in turn are told apart by position
and torso colour, and where only someone else is there the person is lost,
never replaced. A photo keeps the largest, most central person
(:func:`~engine.poses.convert.pick_person`). Frames without the person get
confidence 0 and ``detected = False``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import UserError
from ..video import is_image_path, probe_video, read_image, read_video
from .convert import (
    FACE_MESH_NOSE_TIP, FACE_MESH_TO_IBUG68, MP_LEFT_WRIST, MP_RIGHT_WRIST, assemble_keypoints, assign_hands, body_from_face,
    landmarks_array, mediapipe_body_to_openpose, pick_person,
)
from .geometry import fit_weak_perspective
from .models import resolve_model
from .track import BODY, BODY_INDEX, FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND, PoseTrack

logger = logging.getLogger(__name__)

RUNNING_MODES = ("video", "image")


@dataclass
class Landmarkers:
    """Open mediapipe landmarkers (``hand``/``face`` are None when not wanted)."""

    pose: object
    hand: object | None
    face: object | None
    mode: str


@contextlib.contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Silence what native code writes to stderr (mediapipe's LiteRT prints a dozen INFO/WARNING lines per model
    load). Python exceptions still propagate; ``FREEVIEW_DEBUG=1`` keeps the lines. The redirect is process-wide,
    so it is held only for the duration of one mediapipe call."""
    if os.environ.get("FREEVIEW_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def open_landmarkers(mode: str = "video", hands: bool = False, face: bool = False, num_poses: int = 2,
                     model_paths: dict[str, str | os.PathLike] | None = None) -> Iterator[Landmarkers]:
    """Create the landmarkers for ``mode`` ("video" | "image") and close them on exit."""
    if mode not in RUNNING_MODES:
        raise ValueError(f"unknown running mode {mode!r}; expected one of {RUNNING_MODES}")
    from mediapipe.tasks.python import BaseOptions, vision

    model_paths = model_paths or {}
    running = vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE

    def base(kind: str) -> BaseOptions:
        return BaseOptions(model_asset_path=str(resolve_model(kind, model_paths.get(kind))))

    stack = contextlib.ExitStack()
    try:
        with native_stderr_quiet():  # only inside mediapipe: progress bars still show between frames
            pose = stack.enter_context(vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
                base_options=base("pose"), running_mode=running, num_poses=num_poses)))
            hand = face_lm = None
            if hands:
                hand = stack.enter_context(vision.HandLandmarker.create_from_options(vision.HandLandmarkerOptions(
                    base_options=base("hand"), running_mode=running, num_hands=2 * num_poses)))
            if face:
                face_lm = stack.enter_context(vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                    base_options=base("face"), running_mode=running, num_faces=num_poses)))
        yield Landmarkers(pose, hand, face_lm, mode)
    finally:
        with native_stderr_quiet():
            stack.close()


@dataclass
class FramePose:
    """One frame's result: ``keypoints (128, 3)``, ``world (128, 3)``, face-mesh depth ``face_z (68,)`` (relative), detected."""

    keypoints: np.ndarray
    world: np.ndarray
    face_z: np.ndarray
    detected: bool


def _run(landmarker, image, timestamp_ms: int | None, mode: str):
    with native_stderr_quiet():
        return landmarker.detect(image) if mode == "image" else landmarker.detect_for_video(image, timestamp_ms)


def detect_frame(lms: Landmarkers, rgb: np.ndarray, timestamp_ms: int | None, follower=None) -> FramePose:
    """Run the landmarkers on one RGB uint8 frame ``(H, W, 3)`` and keep the followed person (``follower``: a
    :class:`~engine.poses.follow.PersonFollower`; without one, a photo: the largest, most central candidate)."""
    import mediapipe as mp

    height, width = rgb.shape[:2]
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    keypoints = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    world = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    face_z = np.zeros(68, np.float32)
    result = _run(lms.pose, image, timestamp_ms, lms.mode)
    hand_result = _run(lms.hand, image, timestamp_ms, lms.mode) if lms.hand is not None else None
    face_result = _run(lms.face, image, timestamp_ms, lms.mode) if lms.face is not None else None
    if not result.pose_landmarks:
        if follower is not None:
            follower.choose(np.zeros((0, 18, 3), np.float32))
        if lms.mode == "image" and face_result is not None and face_result.face_landmarks:
            return _face_only(face_result, width, height)  # a close-up the body landmarker misses
        return FramePose(keypoints, world, face_z, False)

    people = [landmarks_array(p) for p in result.pose_landmarks]
    bodies = np.stack([mediapipe_body_to_openpose(p)[:, [0, 1, 3]] for p in people])
    chosen = pick_person(bodies, None, width, height) if follower is None else follower.choose(bodies, rgb)
    if chosen is None:  # the followed person is not in this frame: nobody else is taken instead
        return FramePose(keypoints, world, face_z, False)
    body33 = people[chosen]
    world33 = landmarks_array(result.pose_world_landmarks[chosen])[:, :3]

    left = right = face478 = None
    left_world = right_world = None
    if hand_result is not None and hand_result.hand_landmarks:
        hands = [landmarks_array(h, with_visibility=False) for h in hand_result.hand_landmarks]
        scores = [h[0].score if h else 1.0 for h in hand_result.handedness]
        for i, s in enumerate(scores):
            hands[i][:, 3] = s
        li, ri = assign_hands(hands, body33, width, height)
        if li is not None:
            left = hands[li]
            hw = landmarks_array(hand_result.hand_world_landmarks[li], False)[:, :3]
            left_world = hw - hw[0] + world33[MP_LEFT_WRIST]
        if ri is not None:
            right = hands[ri]
            hw = landmarks_array(hand_result.hand_world_landmarks[ri], False)[:, :3]
            right_world = hw - hw[0] + world33[MP_RIGHT_WRIST]
    if face_result is not None and face_result.face_landmarks:
        faces = [landmarks_array(f, with_visibility=False) for f in face_result.face_landmarks]
        nose = body33[0, :2]
        best = int(np.argmin([np.linalg.norm(f[FACE_MESH_NOSE_TIP, :2] - nose) for f in faces]))
        face478 = faces[best]
        face_z = face478[FACE_MESH_TO_IBUG68, 2] - face478[FACE_MESH_NOSE_TIP, 2]

    keypoints = assemble_keypoints(body33, left, right, face478)
    world[BODY] = mediapipe_body_to_openpose(world33)
    if left_world is not None:
        world[LEFT_HAND] = left_world
    if right_world is not None:
        world[RIGHT_HAND] = right_world
    return FramePose(keypoints, world, face_z, True)


def _face_only(face_result, width: int, height: int) -> FramePose:
    """The largest face's pose when the body landmarker finds no one: face points from the mesh, head, neck and
    shoulders from its proportions (:func:`~engine.poses.convert.body_from_face`)."""
    faces = [landmarks_array(f, with_visibility=False) for f in face_result.face_landmarks]
    face478 = max(faces, key=lambda f: float(np.ptp(f[:, 0]) * np.ptp(f[:, 1])))
    keypoints = assemble_keypoints(None, None, None, face478)
    keypoints[BODY] = body_from_face(face478, width, height)
    face_z = face478[FACE_MESH_TO_IBUG68, 2] - face478[FACE_MESH_NOSE_TIP, 2]
    return FramePose(keypoints, np.zeros((NUM_KEYPOINTS, 3), np.float32), face_z, True)


def _face_world(keypoints: np.ndarray, world: np.ndarray, face_z: np.ndarray, width: int, height: int) -> None:
    """Give face points 3D positions from the body's weak-perspective fit (the face mesh has no metric output)."""
    size = np.array([width, height], np.float32)
    body_px = keypoints[:, BODY, :2] * size
    s, t, ok = fit_weak_perspective(body_px, world[:, BODY], keypoints[:, BODY, 2])
    has_face = ok & (keypoints[:, FACE, 2].max(axis=1) > 0)
    if not has_face.any():
        return
    face_px = keypoints[has_face][:, FACE, :2] * size
    sf, tf = s[has_face][:, None, None], t[has_face][:, None, :]
    xy = (face_px - tf) / sf
    nose_z = world[has_face][:, BODY_INDEX["nose"], 2][:, None]
    z = nose_z + face_z[has_face] * width / sf[..., 0]
    world[np.flatnonzero(has_face)[:, None], np.arange(FACE.start, FACE.stop)[None, :]] = np.concatenate([xy, z[..., None]], -1)


def _collect(frames: Iterable[FramePose], width: int, height: int, fps: float) -> PoseTrack:
    frames = list(frames)
    if not frames:
        raise UserError("no frames to extract poses from")
    keypoints = np.stack([f.keypoints for f in frames])
    world = np.stack([f.world for f in frames])
    face_z = np.stack([f.face_z for f in frames])
    detected = np.array([f.detected for f in frames], dtype=bool)
    _face_world(keypoints, world, face_z, width, height)
    track = PoseTrack(keypoints, width, height, fps, world=world, detected=detected)
    missing = int((~detected).sum())
    if missing:
        logger.info("no person found in %d of %d frames", missing, len(detected))
    return track


def extract_image_pose(image: np.ndarray | str | os.PathLike, hands: bool = True, face: bool = True,
                       num_poses: int = 2, model_paths: dict | None = None) -> PoseTrack:
    """The pose of the main person in one RGB uint8 photo ``(H, W, 3)`` (or an image path), as a one-frame track."""
    if not isinstance(image, np.ndarray):
        image = read_image(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    with open_landmarkers("image", hands, face, num_poses, model_paths) as lms:
        frame = detect_frame(lms, image, None)
    return _collect([frame], width, height, 25.0)


MAX_AUTO_POSES = 4


def _detect_bodies(lms: Landmarkers, rgb: np.ndarray) -> np.ndarray:
    """The bodies ``(people, 18, 3)`` (normalised to ``rgb``) the pose landmarker finds in one RGB frame (IMAGE mode)."""
    import mediapipe as mp

    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    found = _run(lms.pose, image, None, "image").pose_landmarks
    if not found:
        return np.zeros((0, 18, 3), np.float32)
    return np.stack([mediapipe_body_to_openpose(landmarks_array(p))[:, [0, 1, 3]] for p in found]).astype(np.float32)


def _same_person(a: np.ndarray, b: np.ndarray) -> bool:
    """Two boxes of one person: they overlap by a third of the smaller one."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h > smaller / 3


def find_bodies(lms: Landmarkers, rgb: np.ndarray) -> np.ndarray:
    """The bodies ``(people, 18, 3)`` (normalised to the frame) of everyone in one RGB frame: the landmarker sees
    the frame shrunk to a small square, so people small in a large or elongated frame are looked for again in
    two overlapping halves along its long side (60% each), and a person found twice is kept once."""
    from .follow import body_boxes

    height, width = rgb.shape[:2]
    bodies = list(_detect_bodies(lms, rgb))
    boxes = list(body_boxes(np.array(bodies).reshape(-1, 18, 3), width, height))
    long_side = max(width, height)
    if long_side > 640 or max(width, height) > 1.4 * min(width, height):
        span = int(0.6 * long_side)
        for start in (0, long_side - span):
            tile = rgb[start:start + span] if height >= width else rgb[:, start:start + span]
            found = _detect_bodies(lms, tile)
            for body, box in zip(found, body_boxes(found, tile.shape[1], tile.shape[0])):
                shift = [0, start, 0, start] if height >= width else [start, 0, start, 0]
                box = box + shift
                if any(_same_person(box, other) for other in boxes):
                    continue
                body = body.copy()  # tile coordinates -> frame coordinates
                body[:, 0] = (body[:, 0] * tile.shape[1] + shift[0]) / width
                body[:, 1] = (body[:, 1] * tile.shape[0] + shift[1]) / height
                bodies.append(body)
                boxes.append(box)
    return np.array(bodies, np.float32).reshape(-1, 18, 3)


def find_people(lms: Landmarkers, rgb: np.ndarray) -> np.ndarray:
    """Pixel boxes ``(people, 4)`` of everyone in one RGB frame (:func:`find_bodies`)."""
    from .follow import body_boxes

    return body_boxes(find_bodies(lms, rgb), rgb.shape[1], rgb.shape[0]).reshape(-1, 4)


def count_people(rgb: np.ndarray, model_paths: dict | None = None) -> int:
    """How many people the pose landmarker finds in one RGB frame (IMAGE mode, up to :data:`MAX_AUTO_POSES` at a
    time; the frame and its halves, see :func:`find_people`)."""
    with open_landmarkers("image", num_poses=MAX_AUTO_POSES, model_paths=model_paths) as lms:
        return len(find_people(lms, rgb))


def extract_frames(frames: Iterable[np.ndarray], fps: float, hands: bool = False, face: bool = False,
                   num_poses: int | None = None, timestamps_ms: Iterable[float] | None = None,
                   model_paths: dict | None = None, progress: Callable[[int], None] | None = None,
                   person: int | None = None, report: dict | None = None) -> PoseTrack:
    """Poses of RGB uint8 frames ``(H, W, 3)`` of one video, in VIDEO mode (tracking across frames).

    ``num_poses=None`` (auto) counts the people in the first frame: with one,
    the landmarker tracks a single pose (2-4x faster); with several, it tracks
    all of them. Either way a :class:`~engine.poses.follow.PersonFollower`
    follows one identity (the largest, most central at the start, or ``person``
    N counted from the left): with a single pose tracked, the landmarker moves on
    to whoever else comes into view once the person leaves it (people seen in
    turn), and the follower reports those frames lost instead of taking them.
    Frames where the person is lost are not detected. ``report`` (a dict)
    receives the follower's :class:`~engine.poses.follow.FollowReport` under
    ``"follow"``.
    """
    # made (and its tracker imported) before mediapipe's threads start: importing it beside them can hang
    from .follow import PersonFollower

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise UserError("no frames to extract poses from")
    follower = PersonFollower(first.shape[1], first.shape[0], fps, person)
    if report is not None:
        report["follow"] = follower.report
    if num_poses is None:
        num_poses = max(1, count_people(first, model_paths))
        logger.info("%d people in the first frame; tracking %d", num_poses, num_poses)
    if person is not None:
        num_poses = max(num_poses, person, 2)
    frames = itertools.chain([first], frames)
    stamps = iter(timestamps_ms) if timestamps_ms is not None else None
    results: list[FramePose] = []
    last_ms = -1
    size = None
    with open_landmarkers("video", hands, face, num_poses, model_paths) as lms:
        for index, rgb in enumerate(frames):
            if size is None:
                size = rgb.shape[1], rgb.shape[0]
            ms = int(round(next(stamps))) if stamps is not None else int(round(index * 1000.0 / fps))
            ms = max(ms, last_ms + 1)  # mediapipe needs strictly increasing time stamps
            last_ms = ms
            results.append(detect_frame(lms, rgb, ms, follower))
            if progress is not None:
                progress(1)
    follower.finish()
    if size is None:
        raise UserError("no frames to extract poses from")
    return _collect(results, size[0], size[1], fps)


def extract_poses(source: str | os.PathLike, hands: bool = False, face: bool = False, num_poses: int | None = None,
                  model_paths: dict | None = None, progress: bool | Callable[[int], None] = False,
                  person: int | None = None, report: dict | None = None) -> PoseTrack:
    """Poses of a video (VIDEO mode, tracking) or a photo (IMAGE mode) file.

    Returns a :class:`PoseTrack` with ``keypoints (frames, 128, 3)`` and world
    landmarks; frames without a person are flagged in ``detected`` (not filled:
    see :func:`engine.poses.fill_gaps`). ``num_poses``: people to track (None:
    as many as the first frame shows; photos use 2). ``progress=True`` shows a tqdm bar.
    ``person``/``report``: see :func:`extract_frames`.
    """
    source = Path(source)
    if is_image_path(source):
        return extract_image_pose(source, hands, face, num_poses or 2, model_paths)
    info = probe_video(source)
    frames, fps, _ = read_video(source, with_timestamps=True)

    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=info.frames, unit="frame", desc=f"poses {source.name}")
        progress = bar.update
    elif progress is False:
        progress = None
    stamps: list[float] = []

    def images() -> Iterator[np.ndarray]:
        for rgb, ms in frames:
            stamps.append(ms)
            yield rgb

    def stamp_iter() -> Iterator[float]:
        while True:
            yield stamps[-1]

    try:
        return extract_frames(images(), fps, hands, face, num_poses, stamp_iter(), model_paths, progress, person, report)
    finally:
        if bar is not None:
            bar.close()
