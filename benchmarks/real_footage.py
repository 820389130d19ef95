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
        text = json.dumps(figures, indent=1)
        print(text)
        if args.json:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
