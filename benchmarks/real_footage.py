"""Real-footage figures for framing, pose-track repair, person following and cut detection (issue 18).

The videos come from two public PyPI packages that ship demo footage of moving people: Sports2D
(``Sports2D/Demo/demo.mp4``: a park, 1768x994, 30 fps, 230 frames; a man jumping on a box, a woman walking
across below, and the man again, running, after he jumps off: the landmarker, tracking one pose, sees them in
turn, see :data:`IN_TURN`; the pose track follows the man and reports the rest lost, and the framing figures
take each person's frames as a clip of their own) and Pose2Sim (``Demo_SinglePerson`` and
``Demo_MultiPerson``: four cameras each, 100 frames, 60 fps, portrait, one athlete, and a second person
walking in the MultiPerson clips). They are downloaded with ``pip download --no-deps`` into a temporary folder
(or ``--cache DIR``) and never stored in the repository.

    nice -n 19 .venv/bin/python benchmarks/real_footage.py [--cache /tmp/real] [--poses-cache /tmp/real/poses]
        [--json OUT.json] [--only framing,swaps,people,cuts]

``--poses-cache DIR`` keeps each video's default pose track (and each :data:`IN_TURN` clip's) as a FreeView pose
file (``freeview pose extract``'s format, world landmarks included) named after the video, so reruns skip
mediapipe. It is keyed by the video's name only: empty it after changing the pose extractor.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PACKAGES = {"sports2d==0.8.34": ["Sports2D/Demo/demo.mp4"],
            "pose2sim==0.10.49": [f"Pose2Sim/Demo_{kind}/videos/cam0{i}.mp4" for kind in ("SinglePerson", "MultiPerson")
                                  for i in range(1, 5)]}
SINGLE = [f"Pose2Sim/Demo_SinglePerson/videos/cam0{i}.mp4" for i in range(1, 5)] + ["Sports2D/Demo/demo.mp4"]
MULTI = [f"Pose2Sim/Demo_MultiPerson/videos/cam0{i}.mp4" for i in range(1, 5)]
SWAPPING = "Pose2Sim/Demo_SinglePerson/videos/cam02.mp4"   # mediapipe swaps left and right here; he faces the camera
# Who the landmarker sees when it tracks one pose, checked by eye: (first frame, stop, who, doing what). The woman
# walks in below the box from about frame 95, unseen while the man is tracked; he jumps off at 167 and lands far
# to the right, where he is seen again from 203.
IN_TURN = {"Sports2D/Demo/demo.mp4": [(0, 167, "the man", "on the box"), (167, 203, "the woman", "walking"),
                                      (203, 230, "the man", "running, after landing")]}


def fetch(folder: Path) -> Path:
    """The demo videos under ``folder`` (downloaded once)."""
    wanted = [p for paths in PACKAGES.values() for p in paths]
    if all((folder / p).is_file() for p in wanted):
        return folder
    wheels = folder / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *PACKAGES], check=True)
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name in wanted:
                    z.extract(name, folder)
    return folder


def poses(folder: Path, video: str, cache: dict, span: tuple[int, int] | None = None, **kwargs):
    """The pose track of ``video``, or of its frames ``span`` (start, stop) as a clip of their own (extracted
    once per run; default tracks also kept in ``cache["store"]``, a folder, when given)."""
    from engine.poses import extract_frames, extract_poses, load_pose_file, save_pose_file

    key = (video, span, tuple(sorted(kwargs.items())))
    if key not in cache:
        store = cache.get("store")
        stored = None
        if store and not kwargs:
            name = video.removesuffix(".mp4").replace("/", "_") + (f"_{span[0]}-{span[1] - 1}" if span else "")
            stored = Path(store) / (name + ".json")
        if stored is not None and stored.is_file():
            cache[key] = load_pose_file(stored)
            return cache[key]
        if span is None:
            cache[key] = extract_poses(folder / video, **kwargs)
        else:
            from engine.video import read_video

            frames, fps, _ = read_video(folder / video)
            cache[key] = extract_frames(itertools.islice(frames, *span), fps, **kwargs)
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            save_pose_file(cache[key], stored)
    return cache[key]


# -- framing ------------------------------------------------------------------------------------------
HEAD = ["nose", "r_eye", "l_eye", "r_ear", "l_ear"]
PRESETS = ("wide", "medium", "close-up")
# Where the presets are measured: (motion framing of `engine.animate.target_track`, timeline aspect).
# "network" is what counts: the network is driven by `target_track(motion, camera, framing="auto")`, which crops a
# non-square motion to a square around the person (`frame_around_person`) before the camera, and the embedded
# model renders that square. "16:9" is a landscape output through the same path. "source" is the camera on the
# raw track at the video's own aspect, for information: on the 9:16 Pose2Sim clips a view that holds both
# shoulders (about 0.23 body heights apart, plus margins) is at least 0.44 body heights tall, which caps a head of
# 0.13 body heights near 29% of the frame, so a portrait close-up cannot reach 25-45% for a person facing it.
VIEWS = {"network": ("auto", None), "16:9": ("auto", "16:9"), "source": ("fit", None)}
VIEW_NOTES = {
    "network": "target_track(track, timeline, framing='auto'): square crop around the person, then the camera; "
               "what the network is driven by (the embedded model renders square)",
    "16:9": "the same path with the timeline's aspect '16:9' (landscape output)",
    "source": "the camera on the raw track at the video's aspect (9:16 for Pose2Sim), for information only: a 9:16 "
              "view wide enough for both shoulders caps the head near 29% of its height",
}
EYE_TO_SHOULDERS = 0.9   # eye line to shoulder midpoint, in head heights (chin to crown), standing proportions


def head_heights(track, confident: float = 0.5) -> np.ndarray:
    """Per frame, the head height (chin to crown) in the track's pixels ``(frames,)``; NaN where the eyes or the
    shoulders are not confidently seen.

    The demo faces are blurred (no face mesh to find the chin), so the head comes from the eye line to the
    shoulder midpoint / :data:`EYE_TO_SHOULDERS`. In the image that distance foreshortens when the camera looks
    down or the head tilts, and foreshortening only ever shortens, so the estimate is the larger of the image
    distance and the same distance in the 3D world landmarks (which do not foreshorten) times the frame's image
    scale (pixels per metre: a weak-perspective fit of the confident body joints).
    """
    from engine.poses.geometry import fit_weak_perspective
    from engine.poses.track import BODY_INDEX as J

    kp = track.keypoints[:, :18]
    px = kp[..., :2] * np.array([track.width, track.height], np.float64)
    conf = kp[..., 2] > confident
    eyes, shoulders = [J["r_eye"], J["l_eye"]], [J["r_shoulder"], J["l_shoulder"]]
    seen = conf[:, eyes].all(1) & conf[:, shoulders].all(1) & track.detected
    image = np.linalg.norm(px[:, eyes].mean(1) - px[:, shoulders].mean(1), axis=-1)
    estimates = [image]
    if track.world is not None and np.abs(track.world[:, :18]).max() > 0:
        world = track.world[:, :18].astype(np.float64)
        scale, _, ok = fit_weak_perspective(px, world, conf.astype(np.float64))
        length = np.linalg.norm(world[:, eyes].mean(1) - world[:, shoulders].mean(1), axis=-1)
        estimates.append(np.where(ok & (scale > 0), scale * length, 0.0))
    return np.where(seen, np.max(estimates, axis=0) / EYE_TO_SHOULDERS, np.nan)


def subject_switches(track, threshold: float = 0.5) -> list[int]:
    """Frames where the track's person jumps by more than ``threshold`` of their height from the previous
    detected frame: the track moved to someone else (before the follower was used on videos that start with one
    person, Sports2D's demo track went from one person to the next this way, at frames 168 and 203). None are
    expected now; a camera must cut at any there are, so the framing benchmark puts cuts there."""
    body = track.keypoints[:, :18]
    seen = (body[..., 2] > 0.3) & track.detected[:, None]
    frames = [f for f in range(len(track)) if seen[f].sum() >= 4]
    px = body[..., :2] * np.array([track.width, track.height])
    centre = {f: px[f, seen[f]].mean(0) for f in frames}
    tall = np.median([np.ptp(px[f, seen[f], 1]) for f in frames])
    return [b for a, b in zip(frames, frames[1:]) if np.linalg.norm(centre[b] - centre[a]) > threshold * tall]


def fast_frames(track, aspect: float, cuts=(), window_s: float = 0.25, confident: float = 0.5) -> np.ndarray:
    """Frames ``(frames,)`` where the two close-up figures pull apart: the head moves (on average over
    ``window_s`` either side) by more than 2% per frame of the widest close-up view, the one where the head is
    25% of the frame height (``aspect``: the output's width / height). A camera that keeps the head at 25% or
    more and pans at most 2% of the frame per frame can only let the person drift across the frame there,
    which lasts as long as the free room does. Windows end at ``cuts``."""
    from engine.poses.track import BODY_INDEX as J

    ids = [J[p] for p in HEAD + ["neck"]]
    kp = track.keypoints[:, ids]
    seen = (kp[..., 2] > confident) & track.detected[:, None]
    px = kp[..., :2] * np.array([track.width, track.height])
    with np.errstate(invalid="ignore"):
        head = np.where(seen.any(1)[:, None], (px * seen[..., None]).sum(1) / seen.sum(1)[:, None], np.nan)
    k = max(1, int(round(window_s * track.fps)))
    bounds = [0, *sorted(cuts), len(track)]
    speed = np.full((len(track), 2), np.nan)
    for start, stop in zip(bounds[:-1], bounds[1:]):  # within a shot; one-sided at its ends
        for t in range(start, stop):
            a, b = max(start, t - k), min(stop - 1, t + k)
            if b - a >= k:
                speed[t] = np.abs(head[b] - head[a]) / (b - a)
    widest = head_heights(track, confident) / 0.25
    with np.errstate(invalid="ignore"):
        return (speed[:, 0] > 0.02 * aspect * widest) | (speed[:, 1] > 0.02 * widest)


def framing_frames(track, name: str, framing: str = "follow", view: str = "network", confident: float = 0.5) -> dict:
    """Per frame of ``track`` (detected frames), whether preset ``name`` shows what it promises, the head's share
    of the frame height, and the camera's change per frame: the raw figures :func:`summary` pools."""
    from engine.animate import target_track
    from engine.camera import CameraTimeline, Cut, Keyframe, camera_plan
    from engine.poses.track import BODY_INDEX as J

    motion_framing, aspect = VIEWS[view]
    cuts = subject_switches(track)
    timeline = CameraTimeline(keyframes=[Keyframe(0, shot=name, framing=framing)],
                              cuts=[Cut(f, shot=name, framing=framing) for f in cuts], aspect=aspect)
    framed = target_track(track, framing=motion_framing)      # the motion the camera looks at
    plan = camera_plan(timeline, framed)
    seen = target_track(track, timeline, framing=motion_framing)
    # what the footage shows confidently must be shown: a joint that mediapipe places outside the image (a
    # person leaving it) is a guess the footage does not show, and the square crop drops it like the image edge
    xy = track.keypoints[:, :18, :2]
    in_image = (xy >= 0).all(-1) & (xy <= 1).all(-1)
    conf = (track.keypoints[:, :18, 2] > confident) & in_image
    outside_image = ((track.keypoints[:, :18, 2] > confident) & ~in_image).any(1)
    inside = seen.keypoints[:, :18, 2] > 0
    zoom, pan_x, pan_y = plan.curves[:, 0], plan.curves[:, 1], plan.curves[:, 2]
    base = min(seen.width / framed.width, seen.height / framed.height)
    # the square crop keeps source pixels (a shift), so output pixels = source pixels * zoom * base
    head_share = head_heights(track, confident) * zoom * base / seen.height
    frames = np.flatnonzero(track.detected)
    shown = np.zeros(len(frames), bool)
    for k, f in enumerate(frames):
        if name == "wide":
            shown[k] = bool(np.all(inside[f][conf[f]]))
            continue
        head = [J[p] for p in HEAD if conf[f, J[p]]]
        body = [J["r_shoulder"], J["l_shoulder"]] + ([J["r_hip"], J["l_hip"]] if name == "medium" else [])
        need = head + [p for p in body if in_image[f, p]]
        shown[k] = bool(head) and all(inside[f, p] for p in need)
        if name == "close-up" and np.isfinite(head_share[f]):
            shown[k] &= 0.25 <= head_share[f] <= 0.45
    # camera change per frame as a share of the output frame: zoom relative, pan in view widths / heights
    view_w, view_h = seen.width / (zoom * base), seen.height / (zoom * base)
    change = np.stack([np.abs(np.diff(np.log(zoom))), np.abs(np.diff(pan_x)) * framed.width / view_w[1:],
                       np.abs(np.diff(pan_y)) * framed.height / view_h[1:]], 1)
    change[np.array(cuts, int) - 1] = 0.0  # a cut is not a camera move
    reversals = []  # (axis, frame): a change of direction under 5 frames after the last one
    for axis in range(3):
        step = np.diff(plan.curves[:, axis])
        moving = [(i, np.sign(s)) for i, s in enumerate(step) if abs(change[i, axis]) > 1e-3]
        last_turn = None
        for (_, s0), (i1, s1) in zip(moving, moving[1:]):
            if s1 != s0:
                if last_turn is not None and i1 - last_turn < 5:
                    reversals.append(("zoom", "pan_x", "pan_y")[axis] + f"@{i1 + 1}")
                last_turn = i1
    heads = head_share[frames]
    fast = np.zeros(0, bool)
    if name == "close-up":
        fast = fast_frames(track, seen.width / seen.height, cuts)[frames]
    return {"shown": shown, "fast": fast, "outside_image": outside_image[frames],
            "head_share": heads[np.isfinite(heads)] if name == "close-up" else np.zeros(0), "change": change,
            "short_reversals": reversals, "unmet_frames": len(plan.unmet), "cuts": cuts}


def summary(parts: list[dict]) -> dict:
    """Frame-pooled figures of one or more :func:`framing_frames` results."""
    shown = np.concatenate([p["shown"] for p in parts])
    heads = np.concatenate([p["head_share"] for p in parts])
    change = np.concatenate([p["change"] for p in parts])
    out = {"frames": int(len(shown)), "shown": float(shown.mean()) if len(shown) else 0.0,
           "max_change": float(change.max()), "p99_change": float(np.percentile(change, 99)),
           "short_reversals": int(sum(len(p["short_reversals"]) for p in parts)),
           "unmet_frames": int(sum(p["unmet_frames"] for p in parts)),
           "frames_with_joints_outside_the_image": int(sum(p["outside_image"].sum() for p in parts))}
    if len(parts) == 1:
        out.update(cuts_at_subject_switches=parts[0]["cuts"], reversals_at=parts[0]["short_reversals"])
    fast = np.concatenate([p["fast"] for p in parts])
    if len(fast):  # frames where the person outruns a close-up that pans 2% per frame (see fast_frames)
        out.update(fast_frames=int(fast.sum()), fast_frames_not_shown=int((fast & ~shown).sum()),
                   shown_outside_fast_frames=float(shown[~fast].mean()) if (~fast).any() else None)
    if len(heads):
        out.update(head_share_median=float(np.median(heads)), head_share_p05=float(np.percentile(heads, 5)),
                   head_share_p95=float(np.percentile(heads, 95)), head_frames=int(len(heads)))
    return out


def framed_clips() -> dict[str, tuple[str, tuple[int, int] | None]]:
    """The clips the framing is measured on, by name: each :data:`SINGLE` video, the :data:`IN_TURN` ones as one
    clip per person seen (its pose track follows only the first)."""
    clips = {}
    for video in SINGLE:
        for start, stop, *_ in IN_TURN.get(video, [(None, None)]):
            clips[video if start is None else f"{video} frames {start}-{stop - 1}"] = (
                video, None if start is None else (start, stop))
    return clips


def run_framing(folder: Path, cache: dict, framing: str = "follow", views=tuple(VIEWS)) -> dict:
    """Per view (:data:`VIEWS`), per clip (:func:`framed_clips`) and preset, and pooled over the clips."""
    out = {}
    clips = framed_clips()
    for view in views:
        per = {name: {preset: framing_frames(poses(folder, video, cache, span), preset, framing, view)
                      for preset in PRESETS} for name, (video, span) in clips.items()}
        out[view] = {"how": VIEW_NOTES[view],
                     "total": {preset: summary([per[c][preset] for c in clips]) for preset in PRESETS},
                     "videos": {c: {preset: summary([per[c][preset]]) for preset in PRESETS} for c in clips}}
    return out


# -- swaps ---------------------------------------------------------------------------------------------
def mirrored_frames(track, apart: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(frames,)`` whose right shoulder or right hip lies right of the left one in the image (swapped
    labels for a person who faces the camera: true of the whole SWAPPING clip, checked by eye), and the frames
    the measure can judge.

    A pair only counts where it is clearly apart: at least ``apart`` of its spread facing the camera (its 90th
    percentile over the clip). Closer than that (turned more than about 75 degrees from the camera, or, as on
    this clip's frames 37, 67 and 69, both shoulders placed in one bunch by the detector, checked by eye) the
    image order is noise, not a label. A frame where neither pair is clearly apart is not judged."""
    from engine.poses.track import BODY_INDEX as J

    px = track.keypoints[:, :18, :2] * [track.width, track.height]
    bad, judged = np.zeros(len(track), bool), np.zeros(len(track), bool)
    for r, l in (("r_shoulder", "l_shoulder"), ("r_hip", "l_hip")):
        dx = px[:, J[r], 0] - px[:, J[l], 0]
        clear = np.abs(dx) >= apart * np.percentile(np.abs(dx[track.detected]), 90)
        bad |= clear & (dx > 0)
        judged |= clear
    return bad & track.detected, judged & track.detected


def run_swaps(folder: Path, cache: dict) -> dict:
    from engine.poses.repair import repair_swaps

    track = poses(folder, SWAPPING, cache)
    repaired, report = repair_swaps(track)
    before, judged = mirrored_frames(track)
    after, _ = mirrored_frames(repaired)  # the same frames are judged: a swap only changes the order's sign
    every_before, every_after = mirrored_frames(track, apart=0.0)[0], mirrored_frames(repaired, apart=0.0)[0]
    return {"video": SWAPPING, "frames": len(track), "judged_frames": int(judged.sum()),
            "not_judged_frames": [int(f) for f in np.flatnonzero(track.detected & ~judged)],
            "swapped_before": int(before.sum()), "swapped_after": int(after.sum()),
            "swapped_after_frames": [int(f) for f in np.flatnonzero(after)],
            "swapped_after_share": float(after.sum() / max(1, judged.sum())),
            "every_frame_judged": {"swapped_before": int(every_before.sum()), "swapped_after": int(every_after.sum()),
                                   "swapped_after_frames": [int(f) for f in np.flatnonzero(every_after)]},
            "repaired_frames": report.frames, "repaired_spans": [list(s) for s in report.spans]}


# -- people ------------------------------------------------------------------------------------------
def torso_is_bare(video: Path, track) -> list[bool | None]:
    """Per frame, whether the followed person's torso is bare skin (the athlete) rather than a shirt: the
    identity check, independent of the tracker (which uses boxes only)."""
    import cv2

    from engine.poses.track import BODY_INDEX as J

    capture = cv2.VideoCapture(str(video))
    labels: list[bool | None] = []
    for f in range(len(track)):
        ok, bgr = capture.read()
        if not ok or not track.detected[f]:
            labels.append(None)
            continue
        pts = track.keypoints[f, [J["r_shoulder"], J["l_shoulder"], J["r_hip"], J["l_hip"]], :2] * [track.width, track.height]
        x0, y0 = pts.min(0).astype(int)
        x1, y1 = pts.max(0).astype(int)
        patch = bgr[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)].reshape(-1, 3).astype(float)
        b, g, r = np.median(patch, axis=0) if len(patch) else (0, 0, 0)
        labels.append(bool(r - b > 25))
    return labels


def followed_in_turn(video: str, track, follow) -> dict:
    """Of a video whose people are seen in turn (:data:`IN_TURN`), how many of each span's frames the track
    follows, and how many frames of anyone but the first followed person it took (0 wanted; the same person
    again, re-found, is no switch)."""
    followed = np.asarray(track.detected, bool)
    who = {f: person for start, stop, person, _ in IN_TURN[video] for f in range(start, stop)}
    rows = {f"{person}, {what} ({start}-{stop - 1})": int(followed[start:stop].sum())
            for start, stop, person, what in IN_TURN[video]}
    frames = np.flatnonzero(followed)
    others = [f for f in frames if who[int(f)] != who[int(frames[0])]] if len(frames) else []
    return {"followed_frames_of": rows, "someone_else_followed_frames": len(others),
            "lost_spans": [[a, b - 1] for a, b in follow.lost_spans()], "others_seen_frames": len(follow.others_seen),
            "looked_different_frames": len(follow.looked_different), "refound": list(follow.refound),
            "subject_switches": subject_switches(track)}


def run_single(folder: Path) -> dict:
    """One person at the start: the Pose2Sim single-person cameras (one athlete: no frame may be lost, no
    ``false_lost_spans``) and the videos whose people are seen in turn (:func:`followed_in_turn`)."""
    from engine.poses import extract_poses

    rows = {}
    for video in SINGLE:
        report: dict = {}
        track = extract_poses(folder / video, report=report)
        follow = report["follow"]
        if video in IN_TURN:
            rows[video] = {"frames": len(track), **followed_in_turn(video, track, follow)}
            continue
        rows[video] = {"frames": len(track), "followed_frames": int(track.detected.sum()),
                       "lost_spans": [[a, b - 1] for a, b in follow.lost_spans()],
                       "others_seen_frames": len(follow.others_seen), "subject_switches": subject_switches(track)}
    alone = [v for v in SINGLE if v not in IN_TURN]
    return {"clips": rows, "false_lost_spans": sum(len(rows[v]["lost_spans"]) for v in alone),
            "someone_else_followed_frames": sum(rows[v]["someone_else_followed_frames"] for v in IN_TURN)}


def run_people(folder: Path, cache: dict) -> dict:
    rows = {}
    for video in MULTI:
        for person in (None, 1, 2):
            report: dict = {}
            from engine.poses import extract_poses

            from engine.errors import UserError

            try:
                track = extract_poses(folder / video, person=person, report=report)
            except UserError as exc:
                rows[f"{video} person={person}"] = {"error": str(exc)}
                continue
            labels = [x for x in torso_is_bare(folder / video, track) if x is not None]
            switches = sum(1 for a, b in zip(labels, labels[1:]) if a != b)
            follow = report["follow"]
            rows[f"{video} person={person}"] = {
                "people_at_start": follow.people_at_start, "person": follow.person,
                "followed_frames": int(track.detected.sum()), "lost_frames": len(follow.lost),
                "refound": list(follow.refound), "looked_different_frames": len(follow.looked_different),
                "others_seen_frames": len(follow.others_seen), "identity_switches": switches,
                "athlete_share": float(np.mean(labels)) if labels else None}
    return {"clips": rows, "identity_switches": sum(r.get("identity_switches", 0) for r in rows.values()),
            "one_person_at_the_start": run_single(folder)}


# -- cuts ----------------------------------------------------------------------------------------------
def read_frames(path: Path, start: int, stop: int, side: int = 540) -> list[np.ndarray]:
    """RGB frames ``[start, stop)`` of a video, the longer side resized to ``side``."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = []
    for _ in range(stop - start):
        ok, bgr = capture.read()
        if not ok:
            break
        scale = side / max(bgr.shape[:2])
        out.append(cv2.resize(bgr, (round(bgr.shape[1] * scale) // 2 * 2, round(bgr.shape[0] * scale) // 2 * 2),
                              interpolation=cv2.INTER_AREA)[..., ::-1].copy())
    return out


def build_edits(folder: Path) -> list[tuple[str, list[np.ndarray], list[int]]]:
    """Multi-shot edits with known cut frames: camera cuts, jump cuts (same camera, later in time), a digital
    zoom and one-frame flashes (neither is a cut; the park footage also has lens flares that come and go).
    Returns (name, frames, cut frames)."""
    from train.shots import digital_zoom, flash_frame

    sp = lambda i: folder / f"Pose2Sim/Demo_SinglePerson/videos/cam0{i}.mp4"  # noqa: E731
    mp_ = lambda i: folder / f"Pose2Sim/Demo_MultiPerson/videos/cam0{i}.mp4"  # noqa: E731
    sports = folder / "Sports2D/Demo/demo.mp4"
    plans = {
        # (video, start, stop, effect) per segment; every boundary is a cut
        "single-person cameras": [(sp(1), 0, 35, None), (sp(2), 10, 45, "flash"), (sp(2), 75, 100, None),
                                  (sp(3), 0, 40, "zoom"), (sp(4), 30, 60, None), (sp(4), 85, 100, None), (sp(1), 60, 100, "flash")],
        "two-person cameras": [(mp_(1), 0, 30, None), (mp_(3), 20, 55, None), (mp_(3), 80, 100, "flash"),
                               (mp_(2), 0, 40, "zoom"), (mp_(4), 10, 40, None), (mp_(4), 70, 100, None)],
        "park walk, jump cuts": [(sports, 0, 50, None), (sports, 90, 130, "flash"), (sports, 150, 190, "zoom"), (sports, 200, 230, None)],
        # three more, first measured after the detector's thresholds were set on the three above
        "single-person cameras B": [(sp(4), 0, 30, None), (sp(1), 40, 70, "zoom"), (sp(1), 85, 100, None),
                                    (sp(2), 45, 75, "flash"), (sp(3), 45, 80, None), (sp(3), 90, 100, None)],
        "two-person cameras B": [(mp_(4), 40, 70, "flash"), (mp_(1), 30, 60, None), (mp_(1), 75, 100, "zoom"),
                                 (mp_(2), 45, 80, None), (mp_(2), 90, 100, None)],
        "park walk B": [(sports, 20, 60, None), (sports, 75, 110, "zoom"), (sports, 135, 175, "flash"), (sports, 195, 230, None)],
    }
    edits = []
    for name, segments in plans.items():
        frames, cuts = [], []
        for video, start, stop, effect in segments:
            part = read_frames(video, start, stop)
            if effect == "zoom":
                part = digital_zoom(part)
            if effect == "flash":
                k = len(part) // 2
                part[k] = flash_frame(part[k])
            if frames:
                cuts.append(len(frames))
                if part[0].shape != frames[0].shape:
                    import cv2

                    part = [cv2.resize(p, frames[0].shape[1::-1]) for p in part]
            frames += part
        edits.append((name, frames, cuts))
    return edits


def run_cuts(folder: Path) -> dict:
    """Per edit, the cuts found by :func:`train.shots.find_cuts` (what ``train prepare`` runs) and, for
    comparison, by the frame distances alone (the detector before jump cuts, flashes and flares were handled)."""
    from train.shots import detect_cuts, find_cuts, frame_distances, match_cuts

    rows, tp, fp, fn = {}, 0, 0, 0
    for name, frames, truth in build_edits(folder):
        variants = {"frame distances only (before)": detect_cuts(frame_distances(frames, "color")[0]),
                    "find_cuts (train prepare)": find_cuts(frames, "color")[0]}
        rows[name] = {"frames": len(frames), "true_cuts": truth}
        for label, found in variants.items():
            a, b, c = match_cuts(found, truth)
            rows[name][label] = {"found": found, "precision": a / max(1, a + b), "recall": a / max(1, a + c)}
            if label.startswith("find_cuts"):
                tp, fp, fn = tp + a, fp + b, fn + c
    return {"edits": rows, "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "true_cuts": tp + fn, "false_positives": fp, "false_negatives": fn, "tolerance_frames": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="keep the downloaded videos here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--poses-cache", help="keep the extracted pose tracks here as pose files (reruns skip "
                        "mediapipe)")
    parser.add_argument("--only", default="framing,swaps,people,cuts")
    args = parser.parse_args()
    parts = args.only.split(",")
    if {"people", "cuts"} & set(parts):
        # the person follower's tracker stack (trackers -> supervision -> scipy) first imported after mediapipe
        # has run froze this process in a futex wait three times on multi-person footage: import it first
        import trackers  # noqa: F401
    with tempfile.TemporaryDirectory() as tmp:
        folder = fetch(Path(args.cache or tmp))
        cache: dict = {"store": args.poses_cache}
        figures = {}
        if "framing" in parts:
            figures["framing"] = run_framing(folder, cache)
            locked = run_framing(folder, cache, "locked")
            figures["framing_locked"] = {view: part["total"] for view, part in locked.items()}
        if "swaps" in parts:
            figures["swaps"] = run_swaps(folder, cache)
        if "cuts" in parts:
            figures["cuts"] = run_cuts(folder)
        if "people" in parts:
            figures["people"] = run_people(folder, cache)
        text = json.dumps(figures, indent=1)
        print(text)
        if args.json:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
