"""Small video IO shared by the engine: probe, read (RGB frames) and write H.264 MP4 atomically.

Reading uses OpenCV, which applies the rotation metadata of phone videos
(``CAP_PROP_ORIENTATION_AUTO``, on by default); the size reported here is the
size of the decoded, rotated frames. Writing uses the ffmpeg binary shipped by
``imageio-ffmpeg`` (libx264, yuv420p, even dimensions).
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import UserError
from .files import atomic_path

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns: size after rotation, nominal fps, frame count (an estimate for some containers)."""

    width: int
    height: int
    fps: float
    frames: int


def _open(path: str | os.PathLike):
    import cv2

    path = Path(path)
    if not path.is_file():
        raise UserError(f"video not found: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"video {path} is empty (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UserError(f"cannot read video {path}: not a video file or an unsupported format")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def _fps(cap) -> float:
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if np.isfinite(fps) and 0 < fps < 1000 else 25.0


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size (after rotation metadata), fps and frame count of a video; UserError when it has no decodable frame."""
    import cv2

    cap = _open(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise UserError(f"cannot read video {path}: no decodable frame (corrupt or zero-length)")
        height, width = frame.shape[:2]
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return VideoInfo(width, height, _fps(cap), max(frames, 1))
    finally:
        cap.release()


def _iter_frames(path: str | os.PathLike, with_timestamps: bool) -> Iterator:
    import cv2

    cap = _open(path)
    fps = _fps(cap)
    try:
        index = 0
        last_ms = -1.0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if with_timestamps:
                # Variable-frame-rate files: trust the container's time stamps, but keep them strictly increasing.
                ms = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
                if not np.isfinite(ms) or ms <= last_ms:
                    ms = max(last_ms + 1.0, index * 1000.0 / fps)
                last_ms = ms
                yield rgb, ms
            else:
                yield rgb
            index += 1
        if index == 0:
            raise UserError(f"cannot read video {path}: no decodable frame (corrupt or zero-length)")
    finally:
        cap.release()


def read_video(path: str | os.PathLike, with_timestamps: bool = False) -> tuple[Iterator, float, tuple[int, int]]:
    """Open a video for reading.

    Returns ``(frames, fps, (width, height))`` where ``frames`` lazily yields RGB
    uint8 arrays ``(height, width, 3)`` (or ``(frame, milliseconds)`` pairs with
    ``with_timestamps``). Raises :class:`UserError` for missing, empty or
    undecodable files before returning.
    """
    info = probe_video(path)
    return _iter_frames(path, with_timestamps), info.fps, (info.width, info.height)



def read_frame(path: str | os.PathLike, index: int) -> np.ndarray:
    """Frame ``index`` (RGB uint8) of a video; a video without that frame is a :class:`UserError`."""
    frames, _, _ = read_video(path)
    for i, rgb in enumerate(frames):
        if i == index:
            return rgb
    raise UserError(f"{Path(path).name} has no frame {index}")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB uint8 image ``(height, width, 3)``; UserError when unreadable."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    _check_image_header(path, str(path))
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read image {path}: not an image or an unsupported format")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_image_header(source, where: str) -> None:
    """Refuse an image whose header declares more than :data:`~engine.limits.MAX_IMAGE_PIXELS`, before decoding.
    Formats PIL cannot parse are left to the decoder."""
    import warnings

    from PIL import Image

    from .limits import MAX_IMAGE_PIXELS, check_image_pixels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as image:
                width, height = image.size
        except Image.DecompressionBombError as exc:  # PIL's own, larger limit, met while reading the header
            import re

            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            size = f" ({int(pixels[1]) / 1e6:,.0f} megapixels)" if pixels else ""
            raise UserError(f"{where} is larger{size} than this tool reads "
                            f"({MAX_IMAGE_PIXELS // 1_000_000} megapixels); make it smaller") from None
        except Exception:  # noqa: BLE001 - not a format PIL knows: the decoder reports it
            return
    check_image_pixels(width, height, where)


def decode_image(data: bytes, where: str) -> np.ndarray:
    """An RGB uint8 image ``(height, width, 3)`` from encoded bytes (PNG, JPEG, ...), with the same pixel
    limit as :func:`read_image`; UserError naming ``where`` when it is not an image."""
    import io

    from PIL import Image, UnidentifiedImageError

    _check_image_header(io.BytesIO(data), where)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot read image {where}: {exc}") from None


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    audio_from: str | os.PathLike | None = None,
    quality: int = 18,
) -> Path:
    """Write RGB uint8 frames ``(N, H, W, 3)`` (array or iterable) as an H.264 yuv420p MP4, atomically.

    Odd sizes are padded to even by repeating the last row/column. ``audio_from``
    copies the audio track of another file (trimmed to the video) when it has one.
    ``quality`` is the x264 CRF (lower is better).
    """
    import imageio_ffmpeg

    if not fps > 0 or not np.isfinite(fps):
        raise UserError(f"fps must be a positive number, got {fps}")
    path = Path(path)
    iterator = iter(frames)
    try:
        first = np.asarray(next(iterator))
    except StopIteration:
        raise UserError(f"no frames to write to {path}") from None
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (H, W, 3), got {first.dtype} {first.shape}")
    first = _even(first)
    height, width = first.shape[:2]
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    sent = 0

    def check_written(tmp: Path) -> None:  # with audio, -shortest may end the video with a shorter audio track
        check_video_file(tmp, sent, (width, height), shown_as=path, at_most=audio_from is not None)

    with atomic_path(path, check=check_written) as tmp:
        video_tmp = tmp if audio_from is None else tmp.with_name(tmp.stem + ".noaudio.mp4")
        writer = imageio_ffmpeg.write_frames(
            str(video_tmp), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
            macro_block_size=1, output_params=["-crf", str(quality)], ffmpeg_log_level=_ffmpeg_log_level(),
        )
        writer.send(None)
        try:
            writer.send(np.ascontiguousarray(first))
            sent = 1
            for frame in iterator:
                frame = _even(np.asarray(frame, dtype=np.uint8))
                if frame.shape != first.shape:
                    raise ValueError(f"all frames must have the same size, got {frame.shape} after {first.shape}")
                writer.send(np.ascontiguousarray(frame))
                sent += 1
        except OSError as exc:  # ffmpeg died (disk full, killed): its pipe broke
            raise UserError(f"writing {path} failed: {_disk_hint(path, exc)}") from None
        finally:
            writer.close()
        if audio_from is not None:
            check_video_file(video_tmp, sent, (width, height), shown_as=path)
            try:
                cmd = [ffmpeg, "-y", "-loglevel", "error", "-nostdin", "-i", str(video_tmp), "-i", str(audio_from),
                       "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-c:a", "aac", "-shortest", str(tmp)]
                result = subprocess.run(cmd, capture_output=True, text=True)
                if result.returncode != 0:
                    reason = (result.stderr.strip().splitlines() or [f"ffmpeg exit status {result.returncode}"])[-1]
                    raise UserError(f"writing {path} with the audio of {audio_from} failed: {reason}")
            finally:
                video_tmp.unlink(missing_ok=True)
    logger.info("wrote %s (%dx%d, %.3g fps)", path, width, height, fps)
    return path


def _ffmpeg_log_level() -> str:
    """ffmpeg's own chatter only with FREEVIEW_DEBUG=1; failures are found by reading the file back."""
    return "error" if os.environ.get("FREEVIEW_DEBUG") else "quiet"


def _disk_hint(path: Path, exc: BaseException | None = None) -> str:
    import errno
    import shutil

    try:
        free = shutil.disk_usage(Path(path).resolve().parent).free
    except OSError:
        free = None
    if (exc is not None and getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)) or (free is not None and free < 2**20):
        return "no space left on the device"
    return "the encoder stopped (is the disk full or the folder on a removable drive?)"


def check_video_file(path: str | os.PathLike, frames: int, size: tuple[int, int], *, shown_as=None,
                     at_most: bool = False) -> None:
    """Read a just-written video back: it must open and hold ``frames`` frames (1..``frames`` with
    ``at_most``) of ``size`` (width, height); UserError otherwise (a full disk leaves a file without its
    index that cannot be read)."""
    import cv2

    shown = shown_as or path
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UserError(f"writing {shown} failed: the written file cannot be read back ({_disk_hint(Path(path))})")
        count = 0
        while cap.grab():
            count += 1
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    if not (1 <= count <= frames if at_most else count == frames) or got != tuple(size):
        raise UserError(f"writing {shown} failed: read back {count} of {frames} frames at {got[0]}x{got[1]} "
                        f"({_disk_hint(Path(path))})")
