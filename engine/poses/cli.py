"""``freeview pose extract|render`` and ``freeview bench pose``."""

from __future__ import annotations

import argparse
import json
import sys
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import UserError

logger = logging.getLogger(__name__)


def register(subparsers, bench) -> None:
    pose = subparsers.add_parser("pose", help="extract, render and convert pose tracks")
    pose_sub = pose.add_subparsers(dest="pose_command", metavar="ACTION")
    pose_sub.required = True

    extract = pose_sub.add_parser("extract", help="poses of a video or photo -> a pose file")
    extract.add_argument("input", metavar="INPUT", help="video or image")
    extract.add_argument("-o", "--output", required=True, metavar="POSE.json", help="native pose file to write")
    extract.add_argument("--hands", action="store_true", help="also extract hand keypoints")
    extract.add_argument("--face", action="store_true", help="also extract the 68 face keypoints")
    extract.add_argument("--num-poses", type=int, default=None,
                         help="people to track per frame, one of them is followed (default: as many as the first frame shows)")
    extract.add_argument("--smooth", action="store_true", help="One-Euro smoothing of the track")
    extract.add_argument("--max-gap", type=int, default=None,
                         help="longest run of frames without a person to fill (default: one second; 0 fills none)")
    extract.add_argument("--openpose-dir", metavar="DIR", help="also write one OpenPose JSON per frame into DIR")
    extract.add_argument("--no-progress", action="store_true", help="no progress bar")
    extract.add_argument("--person", type=int, default=None, metavar="N",
                         help="follow person N of the first frame with people, counted from the left (default: the largest, most central)")
    extract.add_argument("--no-repair", action="store_true", help="keep left/right swaps as the detector gave them")
    extract.add_argument("--allow-empty", action="store_true",
                         help="write the pose file even when no frame shows a person (otherwise that is an error)")
    extract.set_defaults(func=run_extract)

    render = pose_sub.add_parser("render", help="a pose file (through a camera timeline) -> skeleton preview MP4")
    render.add_argument("pose", metavar="POSE.json", help="native pose file, OpenPose JSON or a folder of them")
    render.add_argument("--camera", metavar="TIMELINE.json", help="camera timeline to apply")
    render.add_argument("-o", "--output", required=True, metavar="PREVIEW.mp4")
    render.add_argument("--width", type=int, help="frame width for OpenPose JSON without a size")
    render.add_argument("--height", type=int, help="frame height for OpenPose JSON without a size")
    render.add_argument("--no-labels", action="store_true", help="do not draw the shot name and frame number")
    render.set_defaults(func=run_render)

    bench_pose = bench.add_parser("pose", help="pose extraction frames per second (body; body + hands + face)")
    bench_pose.add_argument("--json", metavar="OUT.json", help="also write the figures here")
    bench_pose.add_argument("--frames", type=int, default=150, help="frames in the benchmark video (default 150)")
    bench_pose.add_argument("--size", type=int, default=512, help="video size in pixels (default 512)")
    bench_pose.set_defaults(func=run_bench)


def run_extract(args: argparse.Namespace) -> int:
    from .extract import extract_poses
    from .files import save_openpose, save_pose_file
    from .filters import fill_gaps, smooth_track

    from ..files import check_outputs
    from ..limits import check_gap, check_int

    if args.num_poses is not None:
        check_int(args.num_poses, "--num-poses", low=1, high=64)
    if args.max_gap is not None:
        check_gap(args.max_gap, "--max-gap")
    if Path(args.output).suffix.lower() != ".json":
        raise UserError(f"-o must name a .json pose file, got {Path(args.output).name}")
    check_outputs({"INPUT": args.input}, {"-o": args.output})
    if args.openpose_dir:
        _check_openpose_dir(args.openpose_dir, args.input, args.output)
    if args.person is not None and args.person < 1:
        raise UserError(f"--person must be 1 or more (people are numbered from the left), got {args.person}")
    follow: dict = {}
    track = extract_poses(args.input, hands=args.hands, face=args.face, num_poses=args.num_poses,
                          progress=not args.no_progress, person=args.person, report=follow)
    found = int(track.detected.sum())
    swaps = None
    if found and not args.no_repair:
        from .repair import repair_swaps

        track, swaps = repair_swaps(track)
    if not found and not args.allow_empty:
        raise UserError(f"no person found in {args.input}; nothing was written (--allow-empty writes an empty pose file)")
    report = None
    if found and args.max_gap != 0:
        track, report = fill_gaps(track, args.max_gap)
    if args.smooth:
        track = smooth_track(track)
    save_pose_file(track, args.output)
    if args.openpose_dir:
        save_openpose(track, args.openpose_dir, Path(args.input).stem)
    print(extract_summary(args.output, len(track), found, swaps, report, follow.get("follow")))
    if not found:
        print(f"freeview: warning: no person found in {args.input}", file=sys.stderr)
    return 0


def extract_summary(output: str, frames: int, found: int, swaps=None, gaps=None, follow=None) -> str:
    """The one line ``pose extract`` prints: frames, detected, repaired, interpolated, and the person followed
    (who, and the frames where they were lost, or where only someone else was there)."""
    from .follow import spans_text

    parts = [f"{output}: {frames} frames, a person in {found}"]
    if follow is not None:
        if follow.people_at_start > 1:
            parts.append(f"followed person {follow.person} of {follow.people_at_start} (numbered from the left)")
        spans = follow.lost_spans()
        if spans:
            lost = f"lost them in {len(follow.lost)} frames ({spans_text(spans)})"
            others, unlike = len(follow.others_seen), len(follow.looked_different)
            if others:
                lost += f", in {others} of them only someone else was seen (not taken" + \
                        (f"; in {unlike} their own box looked like someone else)" if unlike else ")")
            parts.append(lost)
        if follow.refound:
            parts.append(f"found them again at frame{'s' if len(follow.refound) > 1 else ''} "
                         f"{', '.join(map(str, follow.refound[:4]))}")
    if swaps is not None:
        parts.append(f"repaired left/right swaps in {swaps.frames} frames"
                     + (f" ({spans_text(swaps.spans)})" if swaps.spans else ""))
    if gaps is not None:
        parts.append(f"interpolated {gaps.filled - gaps.held} frames in {gaps.gaps - gaps.ends} gaps" +
                     (f", held the nearest pose in {gaps.held} frames at the ends" if gaps.held else "") +
                     (f", {gaps.unfilled} left empty" if gaps.unfilled else ""))
    return "; ".join(parts)


def _check_openpose_dir(folder: str, *inputs: str) -> None:
    folder_path = Path(folder)
    if folder_path.exists() and not folder_path.is_dir():
        raise UserError(f"--openpose-dir {folder} is a file; give a folder")
    for value in inputs:
        if Path(value).resolve().parent == folder_path.resolve() and Path(value).name.endswith("_keypoints.json"):
            raise UserError(f"--openpose-dir {folder} would overwrite {value}; write the OpenPose files elsewhere")


def draw_label(frame: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner of an RGB frame (in place) and return it."""
    import cv2

    scale = max(0.4, frame.shape[0] / 720)
    cv2.putText(frame, text, (8, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                max(1, int(round(scale * 1.5))), cv2.LINE_AA)
    return frame


def run_render(args: argparse.Namespace) -> int:
    from ..camera import CameraTimeline, apply_camera, camera_curves
    from ..video import write_video
    from .files import load_pose_file
    from .render import render_track

    from ..files import check_outputs
    from ..limits import check_side

    if args.width is not None:
        check_side(args.width, "--width")
    if args.height is not None:
        check_side(args.height, "--height")
    if Path(args.output).suffix.lower() != ".mp4":
        raise UserError(f"-o must name an .mp4 file, got {Path(args.output).name}")
    check_outputs({"POSE.json": args.pose, "--camera": args.camera}, {"-o": args.output})
    track = load_pose_file(args.pose, args.width, args.height)
    names = ["full frame"] * len(track)
    if args.camera:
        timeline = CameraTimeline.load(args.camera)
        _, names = camera_curves(timeline, track)
        track = apply_camera(track, timeline)
    frames = render_track(track)
    if not args.no_labels:
        frames = (draw_label(f, f"{names[i]}  frame {i}") for i, f in enumerate(frames))
    write_video(args.output, frames, track.fps)
    print(f"{args.output}: {len(track)} frames, {track.width}x{track.height}")
    return 0


def make_benchmark_video(path: Path, frames: int = 150, size: int = 512, fps: float = 25.0) -> Path:
    """A video of a real person (scikit-image's astronaut) gently panning and zooming."""
    import cv2
    from skimage import data

    from ..video import write_video

    image = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)

    def frame(i: int) -> np.ndarray:
        t = i / fps
        zoom = 1.0 + 0.08 * np.sin(2 * np.pi * t / 3.0)
        dx, dy = 0.04 * size * np.sin(2 * np.pi * t / 2.0), 0.03 * size * np.cos(2 * np.pi * t / 2.5)
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), 2.0 * np.sin(2 * np.pi * t / 4.0), zoom)
        matrix[:, 2] += (dx, dy)
        return cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_REFLECT)

    return write_video(path, (frame(i) for i in range(frames)), fps)


def run_bench(args: argparse.Namespace) -> int:
    from ..files import write_text_atomic
    # one-time imports, not part of the throughput (the follower's tracker first, as in extract_frames)
    import trackers  # noqa: F401
    import mediapipe  # noqa: F401

    from .extract import extract_poses

    with tempfile.TemporaryDirectory() as tmp:
        video = make_benchmark_video(Path(tmp) / "astronaut.mp4", args.frames, args.size)
        figures = {}
        # Model loading, the people count on the first frame and video decoding are included.
        for key, full, num_poses in (("fps_body", False, None), ("fps_full", True, None), ("fps_body_two_tracked", False, 2)):
            start = time.perf_counter()
            track = extract_poses(video, hands=full, face=full, num_poses=num_poses)
            elapsed = time.perf_counter() - start
            figures[key] = round(len(track) / elapsed, 2)
            figures[key.replace("fps", "detected")] = int(track.detected.sum())
    figures.update({"frames": args.frames, "size": args.size, "mode": "video"})
    text = json.dumps(figures)
    print(text)
    if args.json:
        write_text_atomic(args.json, text + "\n")
    return 0
