"""The main job: reference photos + a motion + a camera plan -> an animation.

The high-level API the CLI and the studio share, and ``freeview animate``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import UserError
from .model import DEFAULT_SAMPLING
from .poses.track import BODY, PoseTrack

logger = logging.getLogger(__name__)

SHOT_NAMES = ("close-up", "medium", "wide")
MAX_REFERENCE_SIDE = 2048


@dataclass
class Reference:
    """A reference photo and the pose of its person.

    image: ``(H, W, 3)`` uint8 RGB. keypoints: ``(128, 3)`` normalised to the image.
    """

    image: np.ndarray
    keypoints: np.ndarray
    name: str = "reference"

    @property
    def shot(self) -> str:
        return shot_scale(self.keypoints)


@dataclass
class AnimateSettings:
    steps: int | None = None           # None: the model's recommendation (sampling.json), else 20
    guidance: float | None = None      # None: the model's recommendation, else 2.0
    seed: int = 0
    frames: int | None = None          # None: the whole motion
    top_k: float | str | None = None   # references' worth of tokens per layer; "all" disables selection
    clip_frames: int | None = None     # None: the model's recommendation (sampling.json), else 12
    overlap: int | None = None         # None: the model's recommendation, else 4
    scheduler: str = "ddim"
    height: int | None = None          # None: the model's resolution
    width: int | None = None
    retarget: bool = False
    disable_pcm: bool = False
    motion_framing: str = "auto"       # "person": one square around the person, as training clips are cropped;
                                       # "fit": the whole frame letterboxed; "auto": "person" for non-square motions

    def check(self, option_names: bool = False) -> "AnimateSettings":
        """Every number in range (:mod:`engine.limits`), before any work; returns self.
        ``option_names``: errors name the command-line options (``--steps``) rather than the settings."""
        from .limits import (MAX_CLIP_FRAMES, check_frames, check_guidance, check_int, check_range, check_seed,
                             check_side, check_steps)

        def name(option: str) -> str:
            return f"--{option}" if option_names else option.replace("-", " ")

        if self.steps is not None:
            self.steps = check_steps(self.steps, name("steps"))
        if self.guidance is not None:
            self.guidance = check_guidance(self.guidance, name("guidance"))
        self.seed = check_seed(self.seed, name("seed"))
        if self.frames is not None:
            self.frames = check_frames(self.frames, name("frames"))
        if self.clip_frames is not None:  # None: the model's windows (with_model_windows)
            self.clip_frames = check_int(self.clip_frames, name("clip-frames"), low=1, high=MAX_CLIP_FRAMES)
        if self.overlap is not None:
            self.overlap = check_int(self.overlap, name("overlap"), low=0, high=(self.clip_frames or MAX_CLIP_FRAMES) - 1)
        if self.top_k is not None and self.top_k != "all":
            self.top_k = check_range(self.top_k, "top_k", name("top-k"))
        if self.height is not None:
            self.height = check_side(self.height, name("height"))
        if self.width is not None:
            self.width = check_side(self.width, name("width"))
        if self.scheduler not in ("ddim", "dpmsolver++"):
            raise UserError(f"scheduler must be 'ddim' or 'dpmsolver++', got {self.scheduler!r}")
        return self


@dataclass
class Animation:
    """frames ``(N, H, W, 3)`` uint8; target: the pose track the frames follow (output framing);
    correlation ``(N, R, h, w)`` or None; timings in seconds."""

    frames: np.ndarray
    fps: float
    target: PoseTrack
    correlation: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    top_k: float | str | None = None  # the top-K the frames were made with (the model's recommendation if not set)


def shot_scale(keypoints: np.ndarray, threshold: float = 0.3) -> str:
    """close-up / medium / wide from which body joints are in view (seen, and inside the image)."""
    body = keypoints[BODY]
    inside = (body[:, 0] >= 0) & (body[:, 0] <= 1) & (body[:, 1] >= 0) & (body[:, 1] <= 1)
    seen = (body[:, 2] > threshold) & inside
    knees_or_ankles = seen[[9, 10, 12, 13]].any()
    hips = seen[[8, 11]].any()
    if knees_or_ankles:
        return "wide"
    if hips:
        return "medium"
    return "close-up"


# -- inputs -----------------------------------------------------------------------------------------
def load_reference(path: str | os.PathLike, *, pose: np.ndarray | None = None) -> Reference:
    """Read a reference photo; its pose comes from ``NAME.pose.json`` beside it, or is extracted.

    Huge photos are downscaled. No person -> :class:`UserError`.
    """
    from .video import read_image

    path = Path(path)
    image = read_image(path)
    scale = MAX_REFERENCE_SIDE / max(image.shape[:2])
    if scale < 1:
        import cv2

        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    if pose is None:
        sidecar = path.with_suffix(".pose.json")
        if sidecar.is_file():
            from .poses import load_pose_file

            pose = load_pose_file(sidecar).keypoints[0]
        else:
            from .poses import extract_image_pose

            track = extract_image_pose(image)
            if not track.detected[0]:
                raise UserError(f"no person found in reference photo {path.name}; for a close-up the pose landmarker "
                                f"misses, give its pose in {sidecar.name} beside it (see README: close-up references)")
            pose = track.keypoints[0]
    return Reference(image=image, keypoints=np.asarray(pose, np.float32), name=path.stem)


def load_motion(path: str | os.PathLike, *, progress: bool | Callable[[int], None] = False,
                person: int | None = None, report: dict | None = None) -> PoseTrack:
    """A driving motion from a video (poses extracted, gaps filled) or a pose file. ``person`` / ``report``: in a
    video with several people, who is followed and what was seen (:func:`~engine.poses.extract_poses`); from a
    video, ``report["gaps"]`` is what :func:`~engine.poses.fill_gaps` did where nobody was taken (inner gaps up
    to a second interpolated, longer ones left without a pose, those at the ends held)."""
    from .poses import extract_poses, fill_gaps, load_pose_file
    from .video import is_image_path

    path = Path(path)
    if not path.exists():
        raise UserError(f"motion file not found: {path}")
    if path.suffix.lower() == ".json" or path.is_dir():
        return load_pose_file(path)
    if is_image_path(path):
        raise UserError(f"motion {path.name} is a single image; give a video or a pose file")
    track = extract_poses(path, hands=True, face=True, progress=progress, person=person, report=report)
    if not track.detected.any():
        raise UserError(f"no person found in any frame of {path.name}")
    filled, gaps = fill_gaps(track)
    if report is not None:
        report["gaps"] = gaps
    if gaps.filled:
        logger.warning("no person found in %d frame(s) of %s; the pose was interpolated or held there", gaps.filled, path.name)
    return filled


def fit_to_frame(image: np.ndarray, keypoints: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox an image (and its keypoints) into ``width x height`` without distortion.

    The border is filled with the image's edge colour, so photos of any size or aspect work.
    """
    import cv2

    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    left, top = (width - new_w) // 2, (height - new_h) // 2
    out = cv2.copyMakeBorder(resized, top, height - new_h - top, left, width - new_w - left, cv2.BORDER_REPLICATE)
    return out, fit_keypoints(keypoints, w, h, width, height)


def fit_keypoints(keypoints: np.ndarray, src_w: int, src_h: int, width: int, height: int) -> np.ndarray:
    """Keypoints normalised to a ``src_w x src_h`` frame, re-normalised to its letterbox in ``width x height``."""
    scale = min(width / src_w, height / src_h)
    out = np.array(keypoints, dtype=np.float32, copy=True)
    out[..., 0] = (out[..., 0] * src_w * scale + (width - src_w * scale) / 2) / width
    out[..., 1] = (out[..., 1] * src_h * scale + (height - src_h * scale) / 2) / height
    return out


MOTION_FRAMINGS = ("auto", "person", "fit")


def frame_around_person(track: PoseTrack, margin: float = 1.25, threshold: float = 0.3) -> PoseTrack:
    """The motion seen through one fixed square around its person, the way ``freeview train prepare`` crops
    training clips: the box of the seen body joints over all frames (1st to 99th percentile, so one stray joint
    does not zoom out), ``margin`` times its longer side, kept inside the frame where it fits. A portrait video's
    person then fills the model's square as in training instead of standing small in a letterbox. A person who
    moves farther than the frame's shorter side (a walk across a landscape video) gets a square that grows past
    that side, up to the longer one, rather than one that loses them; only poses are framed, so the part beyond
    the frame is just empty. A box taller than even that keeps the head and loses the feet. Keypoints that fall
    outside the square get confidence 0; a track with no seen joint is returned unchanged."""
    from .poses.track import BODY as BODY_POINTS

    body = track.keypoints[:, BODY_POINTS]
    seen = body[..., 2] > threshold
    if not seen.any():
        return track
    w, h = track.width, track.height
    xs, ys = body[..., 0][seen] * w, body[..., 1][seen] * h
    x0, x1 = np.percentile(xs, [1, 99])
    y0, y1 = np.percentile(ys, [1, 99])
    side = int(round(min(max(max(x1 - x0, y1 - y0) * margin, min(w, h) // 4, 8), max(w, h))))

    def place(centre: float, extent: int) -> float:  # inside the frame, or covering it where the square is larger
        low, high = sorted((0.0, float(extent - side)))
        return float(np.clip(centre - side / 2, low, high))

    left = place((x0 + x1) / 2, w)
    top = place((y0 + y1) / 2, h) if y1 - y0 <= side else float(y0 - (margin - 1) / (2 * margin) * side)
    kp = np.array(track.keypoints, dtype=np.float32, copy=True)
    kp[..., 0] = (kp[..., 0] * w - left) / side
    kp[..., 1] = (kp[..., 1] * h - top) / side
    outside = (kp[..., 0] < 0) | (kp[..., 0] > 1) | (kp[..., 1] < 0) | (kp[..., 1] > 1)
    kp[..., 2] = np.where(outside, 0.0, kp[..., 2])
    return PoseTrack(kp, side, side, track.fps, world=track.world, detected=track.detected)


def target_track(motion: PoseTrack, camera=None, *, frames: int | None = None, retarget_to: Reference | None = None,
                 framing: str = "fit") -> PoseTrack:
    """The poses the network is driven by: framed (``framing``, :data:`MOTION_FRAMINGS`), retargeted, seen
    through the camera, trimmed to ``frames``."""
    if frames is not None and frames < 1:
        raise UserError(f"frames must be at least 1, got {frames}")
    if framing not in MOTION_FRAMINGS:
        raise UserError(f"motion framing must be one of {', '.join(MOTION_FRAMINGS)}, got {framing!r}")
    if framing == "person" or (framing == "auto" and motion.width != motion.height):
        motion = frame_around_person(motion)
    if retarget_to is not None:
        from .poses import retarget

        reference = PoseTrack(retarget_to.keypoints[None], retarget_to.image.shape[1], retarget_to.image.shape[0])
        motion = retarget(motion, reference)
    if camera is not None:
        from .camera import apply_camera

        motion = apply_camera(motion, camera)
    return motion if frames is None else motion.slice(0, frames)


# -- the job ----------------------------------------------------------------------------------------
def with_model_windows(settings: AnimateSettings, pipe) -> AnimateSettings:
    """``settings`` with the clip length and overlap the model recommends (``sampling.json``; AnimateAnyone's
    motion modules were trained on 24-frame clips) where they are None; an overlap left to the model is kept
    below a clip length given by hand."""
    import dataclasses

    recommended = getattr(pipe, "sampling_defaults", DEFAULT_SAMPLING)
    clip = settings.clip_frames
    if clip is None:
        clip = recommended.get("clip_frames", DEFAULT_SAMPLING["clip_frames"])
    overlap = settings.overlap
    if overlap is None:
        overlap = max(0, min(recommended.get("overlap", DEFAULT_SAMPLING["overlap"]), clip - 1))
    return dataclasses.replace(settings, clip_frames=clip, overlap=overlap)


def estimate_memory_mb(pipe, frames: int, height: int, width: int, refs: int, clip_frames: int = 12) -> float:
    """The generation's estimated peak (:func:`~engine.device.estimate_peak_memory_mb`) plus the finished
    frames the result holds."""
    from .device import estimate_peak_memory_mb

    return estimate_peak_memory_mb(pipe, frames, height, width, refs, clip_frames) + frames * height * width * 3 * 2 / 2**20


def check_memory(pipe, frames: int, height: int, width: int, refs: int, clip_frames: int = 12) -> None:
    """Refuse, with the figures, a generation that would not fit in the device's free memory."""
    from .limits import check_fits_memory

    needed = estimate_memory_mb(pipe, frames, height, width, refs, clip_frames)
    check_fits_memory(needed, f"{frames} frames at {width}x{height} from {refs} reference(s)", getattr(pipe, "device", None))


def animate(
    pipe,
    references: list[Reference],
    motion: PoseTrack,
    camera=None,
    settings: AnimateSettings | None = None,
    *,
    progress: Callable[[int, int, int, int], None] | None = None,
    preview: Callable[[int, np.ndarray], None] | None = None,
    return_correlation: bool = True,
) -> Animation | None:
    """Run the pipeline; returns None when interrupted (``pipe.interrupt()``)."""
    settings = with_model_windows(settings or AnimateSettings(), pipe).check()
    if not references:
        raise UserError("at least one reference photo is needed")
    target = target_track(motion, camera, frames=settings.frames, retarget_to=references[0] if settings.retarget else None,
                          framing=settings.motion_framing)
    default_h, default_w = pipe.default_resolution
    height, width = settings.height or default_h, settings.width or default_w
    check_memory(pipe, len(target), height, width, len(references), settings.clip_frames)
    images, poses = zip(*(fit_to_frame(r.image, r.keypoints, width, height) for r in references))
    keypoints = fit_keypoints(target.keypoints, target.width, target.height, width, height)
    generator = torch.Generator().manual_seed(settings.seed)
    recommended = getattr(pipe, "sampling_defaults", DEFAULT_SAMPLING)
    steps = settings.steps if settings.steps is not None else recommended["steps"]
    guidance = settings.guidance if settings.guidance is not None else recommended["guidance"]
    top_k = settings.top_k if settings.top_k is not None else recommended.get("top_k")
    out = pipe(
        list(images), list(poses), keypoints, height=height, width=width, num_inference_steps=steps,
        guidance_scale=guidance, generator=generator, top_k=top_k, disable_pcm=settings.disable_pcm,
        scheduler=settings.scheduler, context_frames=settings.clip_frames, context_overlap=settings.overlap,
        return_correlation=return_correlation, progress=progress, preview=preview,
    )
    if out.interrupted:
        return None
    fitted = PoseTrack(keypoints, width, height, target.fps, detected=target.detected)
    return Animation(out.frames, target.fps, fitted, out.correlation, out.timings, top_k)


# -- CLI --------------------------------------------------------------------------------------------
def register(subparsers, bench) -> None:
    p = subparsers.add_parser("animate", help="animate reference photos along a motion and a camera plan -> MP4")
    p.add_argument("--refs", nargs="+", required=True, metavar="IMG", help="reference photos of the person (several shots help)")
    p.add_argument("--motion", required=True, help="driving video, or a pose file (ours or OpenPose JSON)")
    p.add_argument("--camera", help="camera timeline JSON (zooms, pans, cuts, orbits)")
    p.add_argument("--model", help="model directory (default: the embedded default model)")
    p.add_argument("--out", "-o", required=True, help="output MP4")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's recommendation)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance, 1 = off (default: the model's recommendation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, help="only the first N frames of the motion")
    p.add_argument("--top-k", default=None, help="reference tokens kept per layer, in references' worth (default: the model's recommendation, else 1), or 'all'")
    p.add_argument("--clip-frames", type=int, help="frames per clip of the sliding window (default: the model's recommendation, else 12)")
    p.add_argument("--overlap", type=int, help="frames shared by neighbouring clips (default: the model's recommendation, else 4)")
    p.add_argument("--scheduler", default="ddim", choices=["ddim", "dpmsolver++"])
    p.add_argument("--retarget", action="store_true", help="give the motion the first reference's body proportions")
    p.add_argument("--motion-framing", default="auto", choices=list(MOTION_FRAMINGS),
                   help="person: crop the motion to a square around the person, as training clips are; fit: the whole "
                        "frame, letterboxed; auto (default): person when the motion is not square")
    p.add_argument("--frames-dir", help="also write PNG frames here")
    p.add_argument("--preview", help="also write a side-by-side MP4 (pose | result)")
    p.add_argument("--correlation", help="also write the correlation maps as a PNG")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: best available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--cpu-offload", action="store_true", help="keep idle components in CPU memory (GPU)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the denoising UNet")
    p.set_defaults(func=_run_animate)


def parse_top_k(value: str | None) -> float | str | None:
    if value is None or value == "all":
        return value
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--top-k must be a positive number or 'all', got {value!r}") from None


def _run_animate(args) -> int:
    from tqdm import tqdm

    from .camera import CameraTimeline
    from .files import check_outputs
    from .model import domain_note, load_pipeline
    from .video import write_video

    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise UserError(f"output must be an .mp4 file, got {out.name}")
    if args.preview and Path(args.preview).suffix.lower() != ".mp4":
        raise UserError(f"--preview must be an .mp4 file, got {Path(args.preview).name}")
    if args.correlation and Path(args.correlation).suffix.lower() != ".png":
        raise UserError(f"--correlation must be a .png file, got {Path(args.correlation).name}")
    inputs = {"--refs": args.refs, "reference pose": [p for p in (Path(r).with_suffix(".pose.json") for r in args.refs) if p.exists()],
              "--motion": args.motion, "--camera": args.camera, "--model": args.model}
    check_outputs(inputs, {"--out": out, "--preview": args.preview, "--correlation": args.correlation})
    if args.frames_dir:
        check_frames_dir(args.frames_dir, inputs)
    settings = AnimateSettings(
        steps=args.steps, guidance=args.guidance, seed=args.seed, frames=args.frames, top_k=parse_top_k(args.top_k),
        clip_frames=args.clip_frames, overlap=args.overlap, scheduler=args.scheduler, retarget=args.retarget,
        motion_framing=args.motion_framing,
    ).check(option_names=True)
    references = [load_reference(p) for p in args.refs]
    motion = load_motion(args.motion, progress=True)
    camera = CameraTimeline.load(args.camera) if args.camera else None
    pipe = load_pipeline(args.model, device=args.device, precision=args.precision, cpu_offload=args.cpu_offload,
                         channels_last=args.channels_last, compile=args.compile)
    settings = with_model_windows(settings, pipe)
    frames = min(len(motion), settings.frames or len(motion))
    h, w = pipe.default_resolution
    print(f"freeview: {frames} frames at {w}x{h} from {len(references)} reference(s); estimated peak memory "
          f"{estimate_memory_mb(pipe, frames, h, w, len(references), settings.clip_frames):.0f} MB")
    note = domain_note(args.model)
    if note:
        print(f"freeview: note: {note}")
    with tqdm(total=None, unit="clip-step", desc="animate") as bar:

        def progress(step, steps, clip, clips):
            bar.total = steps * clips
            bar.set_postfix_str(f"step {step + 1}/{steps} clip {clip + 1}/{clips}")
            bar.update()

        result = animate(pipe, references, motion, camera, settings, progress=progress,
                         return_correlation=bool(args.correlation))
    if result is None:
        raise UserError("cancelled; nothing was written")
    audio = None if Path(args.motion).suffix.lower() == ".json" or Path(args.motion).is_dir() else args.motion
    write_video(out, result.frames, result.fps, audio_from=audio)
    if args.frames_dir:
        write_frames(args.frames_dir, result.frames)
    if args.preview:
        from .poses import render_pose

        poses = np.stack([render_pose(kp, result.frames.shape[2], result.frames.shape[1]) for kp in result.target.keypoints])
        write_video(args.preview, np.concatenate([poses, result.frames], axis=2), result.fps)
    kept = ""
    if args.correlation and result.correlation is not None:
        save_correlation_png(args.correlation, [r.image for r in references], result.correlation)
        kept = selection_caption([r.shot for r in references], result.correlation, result.top_k, settings.disable_pcm)
    t = result.timings
    print(f"freeview: wrote {out} ({len(result.frames)} frames, {result.fps:g} fps) in "
          f"{sum(t.values()):.1f} s (reference {t['reference']:.1f} s, denoise {t['denoise']:.1f} s, decode {t['decode']:.1f} s)"
          + (f"; {kept}" if kept else ""))
    return 0


FRAME_NAME = "frame_{:05d}.png"


def check_frames_dir(folder: str | os.PathLike, inputs: dict) -> None:
    """``--frames-dir``: a folder (new or existing) where no input is one of the frame files it will write."""
    import re

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--frames-dir {folder} is a file; give a folder")
    pattern = re.compile(r"^frame_\d{5,}\.png$")
    for name, values in inputs.items():
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if value and pattern.match(Path(value).name) and Path(value).resolve().parent == folder.resolve():
                raise UserError(f"--frames-dir {folder} would overwrite the input {name} {value}; write the frames elsewhere")


def write_frames(folder: str | os.PathLike, frames: np.ndarray) -> None:
    from PIL import Image

    from .files import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        with atomic_path(folder / FRAME_NAME.format(i)) as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")


def correlation_picture(reference_images: list[np.ndarray], correlation: np.ndarray, frames: int = 6, size: int = 96) -> np.ndarray:
    """A grid: one row per sampled target frame, one column per reference; each reference tinted by
    where its correlation map is high (red = used most). correlation ``(N, R, h, w)``."""
    import cv2

    n = correlation.shape[0]
    rows = []
    picks = np.linspace(0, n - 1, min(frames, n)).round().astype(int)
    lo, hi = float(correlation.min()), float(correlation.max())
    span = hi - lo if hi > lo else 1.0
    thumbs = [cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) for img in reference_images]
    for f in picks:
        row = []
        for r, thumb in enumerate(thumbs):
            heat = cv2.resize(((correlation[f, r] - lo) / span).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
            colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
            row.append((0.5 * thumb + 0.5 * colour).astype(np.uint8))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def kept_shares(correlation: np.ndarray, top_k: float | str | None = None) -> list[float]:
    """:func:`~engine.models.selection.reference_shares` of correlation maps ``(N, R, h, w)`` as returned
    by the pipeline: the share of the kept tokens each reference holds."""
    from .models.selection import reference_shares

    return [float(a) for a in reference_shares(torch.from_numpy(np.ascontiguousarray(correlation, dtype=np.float32)), top_k)]


def selection_caption(shots: list[str], correlation: np.ndarray | None, top_k: float | str | None = None,
                      disable_pcm: bool = False) -> str:
    """Which photos the top-K selection drew on, e.g. ``kept per photo: 1 close-up 55% · 2 wide 45%``;
    empty where nothing was chosen (one photo, every token kept, or the correlation maps off)."""
    from .models.selection import keeps_every_token

    if correlation is None or len(shots) < 2 or keeps_every_token(top_k, len(shots)) or disable_pcm:
        return ""
    shares = kept_shares(correlation, top_k)
    return "kept per photo: " + " · ".join(f"{i + 1} {shot} {100 * a:.0f}%" for i, (shot, a) in enumerate(zip(shots, shares)))


def save_correlation_png(path: str | os.PathLike, reference_images: list[np.ndarray], correlation: np.ndarray) -> None:
    from PIL import Image

    from .files import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(correlation_picture(reference_images, correlation)).save(tmp, format="PNG")
