"""Real-footage figures for framing, pose-track repair, person following and cut detection (issue 18).

The videos come from two public PyPI packages that ship demo footage of moving people: Sports2D
(``Sports2D/Demo/demo.mp4``: one person walking across a park, 1768x994, 230 frames) and Pose2Sim
(``Demo_SinglePerson`` and ``Demo_MultiPerson``: four cameras each, 100 frames, 60 fps, portrait, one
athlete, and a second person walking in the MultiPerson clips). They are downloaded with
``pip download --no-deps`` into a temporary folder (or ``--cache DIR``) and never stored in the repository.

    nice -n 19 .venv/bin/python benchmarks/real_footage.py [--cache /tmp/real] [--json OUT.json] [--only framing,swaps,people,cuts]
"""

from __future__ import annotations

import argparse
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


def poses(folder: Path, video: str, cache: dict, **kwargs):
    from engine.poses import extract_poses

    key = (video, tuple(sorted(kwargs.items())))
    if key not in cache:
        cache[key] = extract_poses(folder / video, **kwargs)
    return cache[key]


# -- framing ------------------------------------------------------------------------------------------
HEAD = ["nose", "r_eye", "l_eye", "r_ear", "l_ear"]


def framing_figures(track, name: str, framing: str = "follow", confident: float = 0.5) -> dict:
    """Per preset: the share of frames that show what it promises, and how smoothly the camera moves."""
    from engine.camera import CameraTimeline, Keyframe, apply_camera, camera_plan
    from engine.poses.track import BODY_INDEX as J

    timeline = CameraTimeline(keyframes=[Keyframe(0, shot=name, framing=framing)])
    plan = camera_plan(timeline, track)
    seen = apply_camera(track, timeline)
    src, out = track.keypoints[:, :18], seen.keypoints[:, :18]
    conf = src[..., 2] > confident
    inside = out[..., 2] > 0
    frames = np.flatnonzero(track.detected)
    ok = []
    head_share = []
    for f in frames:
        if name == "wide":
            ok.append(bool(np.all(inside[f][conf[f]])))
            continue
        head = [J[k] for k in HEAD if conf[f, J[k]]]
        need = head + [J["r_shoulder"], J["l_shoulder"]] + ([J["r_hip"], J["l_hip"]] if name == "medium" else [])
        good = bool(head) and all(inside[f, k] for k in need)
        if name == "close-up" and out[f, J["r_eye"], 2] > 0 and out[f, J["l_eye"], 2] > 0 and out[f, J["neck"], 2] > 0:
            # head height (chin to crown) ~ eye line to shoulder line / 0.9 (standing proportions; the demo
            # faces are blurred, so no face mesh to measure the chin)
            eyes = 0.5 * (out[f, J["r_eye"], :2] + out[f, J["l_eye"], :2])
            height = np.linalg.norm((out[f, J["neck"], :2] - eyes) * [seen.width, seen.height]) / 0.9 / seen.height
            head_share.append(height)
            good = good and 0.25 <= height <= 0.45
        ok.append(good)
    zoom, pan_x, pan_y = plan.curves[:, 0], plan.curves[:, 1], plan.curves[:, 2]
    # camera change per frame as a share of the output frame: zoom relative, pan in view widths / heights
    base = min(seen.width / track.width, seen.height / track.height)
    view_w, view_h = seen.width / (zoom * base), seen.height / (zoom * base)
    change = np.stack([np.abs(np.diff(np.log(zoom))), np.abs(np.diff(pan_x)) * track.width / view_w[1:],
                       np.abs(np.diff(pan_y)) * track.height / view_h[1:]], 1)
    reversals = 0
    for axis in range(3):
        step = np.diff(plan.curves[:, axis]) / np.maximum(np.abs(plan.curves[:, axis]).max(), 1e-9)
        moving = [(i, np.sign(s)) for i, s in enumerate(step) if abs(change[i, axis]) > 1e-3]
        last_turn = None
        for (i0, s0), (i1, s1) in zip(moving, moving[1:]):
            if s1 != s0:
                if last_turn is not None and i1 - last_turn < 5:
                    reversals += 1
                last_turn = i1
    return {"frames": int(len(frames)), "shown": float(np.mean(ok)) if ok else 0.0,
            "max_change": float(change.max()), "p99_change": float(np.percentile(change, 99)),
            "short_reversals": int(reversals), "unmet_frames": len(plan.unmet),
            **({"head_share_median": float(np.median(head_share)), "head_frames": len(head_share)} if head_share else {})}


def run_framing(folder: Path, cache: dict, framing: str = "follow") -> dict:
    rows = {}
    for video in SINGLE:
        track = poses(folder, video, cache)
        rows[video] = {name: framing_figures(track, name, framing) for name in ("wide", "medium", "close-up")}
    total = {}
    for name in ("wide", "medium", "close-up"):
        n = sum(r[name]["frames"] for r in rows.values())
        total[name] = {"shown": sum(r[name]["shown"] * r[name]["frames"] for r in rows.values()) / n,
                       "max_change": max(r[name]["max_change"] for r in rows.values()),
                       "short_reversals": sum(r[name]["short_reversals"] for r in rows.values()), "frames": n}
    return {"videos": rows, "total": total}


# -- swaps ---------------------------------------------------------------------------------------------
def mirrored_frames(track) -> np.ndarray:
    """Frames whose right shoulder or right hip lies right of the left one in the image: swapped labels for a
    person who faces the camera (true of the whole SWAPPING clip, checked by eye)."""
    from engine.poses.track import BODY_INDEX as J

    px = track.keypoints[:, :18, :2] * [track.width, track.height]
    bad = np.zeros(len(track), bool)
    for r, l in (("r_shoulder", "l_shoulder"), ("r_hip", "l_hip")):
        bad |= px[:, J[r], 0] > px[:, J[l], 0]
    return bad & track.detected


def run_swaps(folder: Path, cache: dict) -> dict:
    from engine.poses.repair import repair_swaps

    track = poses(folder, SWAPPING, cache)
    repaired, report = repair_swaps(track)
    return {"video": SWAPPING, "frames": len(track), "swapped_before": int(mirrored_frames(track).sum()),
            "swapped_after": int(mirrored_frames(repaired).sum()), "repaired_frames": report.frames,
            "repaired_spans": [list(s) for s in report.spans],
            "swapped_after_share": float(mirrored_frames(repaired).mean())}


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
            follow = report.get("follow")
            rows[f"{video} person={person}"] = {
                "people_at_start": follow.people_at_start if follow else 1, "person": follow.person if follow else None,
                "followed_frames": int(track.detected.sum()), "lost_frames": len(follow.lost) if follow else 0,
                "refound": list(follow.refound) if follow else [], "identity_switches": switches,
                "athlete_share": float(np.mean(labels)) if labels else None}
    return {"clips": rows, "identity_switches": sum(r.get("identity_switches", 0) for r in rows.values())}


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


def flash(frame: np.ndarray) -> np.ndarray:
    return np.clip(frame.astype(np.float32) * 1.6 + 70, 0, 255).astype(np.uint8)


def digital_zoom(frames: list[np.ndarray], to: float = 1.5) -> list[np.ndarray]:
    """A push-in by cropping: zoom 1 -> ``to`` over the frames (one shot, not a cut)."""
    import cv2

    out = []
    for i, f in enumerate(frames):
        z = 1 + (to - 1) * i / max(1, len(frames) - 1)
        h, w = f.shape[:2]
        ch, cw = int(h / z), int(w / z)
        y, x = (h - ch) // 2, (w - cw) // 2
        out.append(cv2.resize(f[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR))
    return out


def build_edits(folder: Path) -> list[tuple[str, list[np.ndarray], list[int]]]:
    """Multi-shot edits with known cut frames: camera cuts, jump cuts (same camera, later in time), a digital
    zoom and one-frame flashes (neither is a cut). Returns (name, frames, cut frames)."""
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
                part[k] = flash(part[k])
            if frames:
                cuts.append(len(frames))
                if part[0].shape != frames[0].shape:
                    import cv2

                    part = [cv2.resize(p, frames[0].shape[1::-1]) for p in part]
            frames += part
        edits.append((name, frames, cuts))
    return edits


def run_cuts(folder: Path) -> dict:
    from engine.poses import extract_frames
    from train.shots import detect_cuts, frame_features, match_cuts, pose_jumps, skip_distances

    rows, tp, fp, fn = {}, 0, 0, 0
    for name, frames, truth in build_edits(folder):
        feats, method = frame_features(frames, "color")
        from train.shots import feature_distance

        distances = np.concatenate([[0.0], feature_distance(feats[1:], feats[:-1], method)])
        skips = skip_distances(feats, method)
        track = extract_frames(frames, 60.0)
        jumps = pose_jumps(track.keypoints, track.detected)
        variants = {"frames only (before)": detect_cuts(distances), "with flashes and jump cuts": detect_cuts(distances, skips=skips, jumps=jumps)}
        rows[name] = {"frames": len(frames), "true_cuts": truth}
        for label, found in variants.items():
            a, b, c = match_cuts(found, truth)
            rows[name][label] = {"found": found, "precision": a / max(1, a + b), "recall": a / max(1, a + c)}
            if label.startswith("with"):
                tp, fp, fn = tp + a, fp + b, fn + c
    return {"edits": rows, "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "true_cuts": tp + fn, "tolerance_frames": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="keep the downloaded videos here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--only", default="framing,swaps,people,cuts")
    args = parser.parse_args()
    parts = args.only.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = fetch(Path(args.cache or tmp))
        cache: dict = {}
        figures = {}
        if "framing" in parts:
            figures["framing"] = run_framing(folder, cache)
            figures["framing_locked"] = run_framing(folder, cache, "locked")["total"]
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
