"""``freeview warp``: the references warped into the motion's poses, as a video (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError


def warp_motion(references, motion, camera=None, *, width: int = 256, height: int = 256, frames: int | None = None,
                motion_framing: str = "auto") -> tuple[np.ndarray, np.ndarray, dict[str, int], object]:
    """The references (:class:`engine.animate.Reference`) warped into every pose of ``motion`` seen through
    ``camera``, framed as :func:`engine.animate.animate` frames them. Returns images ``(frames, H, W, 3)`` uint8,
    coverage ``(frames, H, W)``, the reference each part came from mostly in the middle frame, and the fitted track."""
    from ..animate import fit_keypoints, fit_to_frame, target_track
    from ..poses import PoseTrack
    from .compose import ReferenceWarper

    if not references:
        raise UserError("at least one reference photo is needed")
    if width < 16 or height < 16 or width > 2048 or height > 2048:
        raise UserError(f"size {width}x{height} is not valid: use 16 to 2048 pixels a side")
    target = target_track(motion, camera, frames=frames, framing=motion_framing)
    images, poses = zip(*(fit_to_frame(r.image, r.keypoints, width, height) for r in references))
    keypoints = fit_keypoints(target.keypoints, target.width, target.height, width, height)
    warper = ReferenceWarper(list(images), list(poses))
    warped, coverage = warper.compose_track(keypoints, height, width)
    sources = warper.compose(keypoints[len(keypoints) // 2], height, width).sources
    return warped, coverage, sources, PoseTrack(keypoints, width, height, target.fps, detected=target.detected)


def register(subparsers, bench) -> None:
    p = subparsers.add_parser("warp", help="the reference photos warped into the motion's poses, part by part -> MP4 "
                                            "(the explicit correspondence the network is given; no network)")
    p.add_argument("--refs", nargs="+", required=True, metavar="IMG", help="reference photos of the person")
    p.add_argument("--motion", required=True, help="driving video, or a pose file (ours or OpenPose JSON)")
    p.add_argument("--camera", help="camera timeline JSON")
    p.add_argument("--frames", type=int, help="only the first N frames of the motion")
    p.add_argument("--size", default="256x256", help="WIDTHxHEIGHT of the output (default 256x256)")
    p.add_argument("--motion-framing", default="auto", choices=["auto", "person", "fit"])
    p.add_argument("--coverage", action="store_true", help="show the coverage (how much of each pixel is the warped "
                                                           "person) beside the composite")
    p.add_argument("--out", "-o", required=True, help="output MP4")
    p.set_defaults(func=_run_warp)


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 256x256, got {text!r}") from None
    return width, height


def _run_warp(args) -> int:
    from ..animate import load_motion, load_reference
    from ..camera import CameraTimeline
    from ..files import check_outputs
    from ..video import write_video

    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise UserError(f"output must be an .mp4 file, got {out.name}")
    check_outputs({"--refs": args.refs, "--motion": args.motion, "--camera": args.camera}, {"--out": out})
    width, height = parse_size(args.size)
    references = [load_reference(p) for p in args.refs]
    motion = load_motion(args.motion, progress=True)
    camera = CameraTimeline.load(args.camera) if args.camera else None
    warped, coverage, sources, track = warp_motion(references, motion, camera, width=width, height=height,
                                                   frames=args.frames, motion_framing=args.motion_framing)
    frames = warped
    if args.coverage:
        shade = np.repeat((coverage[..., None] * 255).round().astype(np.uint8), 3, axis=-1)
        frames = np.concatenate([warped, shade], axis=2)
    write_video(out, frames, track.fps)
    names = [Path(p).name for p in args.refs]
    used = sorted({names[i] for i in sources.values() if i >= 0})
    print(f"freeview: wrote {out} ({len(frames)} frames, {track.fps:g} fps); parts came from {', '.join(used) or 'no photo'}")
    return 0
