"""Every number a user gives, checked up front in one place the CLI, the studio and the training config share.

Each check returns the value (as the type it should be) or raises :class:`UserError` with one line naming
the setting, the value and what is allowed. Sizes are also checked against memory: :func:`check_fits_memory`
compares an estimate of the peak with what the device has free and refuses with both figures.
"""

from __future__ import annotations

import math
import numbers

from .errors import UserError

MAX_SEED = 2**64 - 1          # torch.Generator.manual_seed takes 0 .. 2**64 - 1
MAX_SIDE = 8192               # pixels, any output or rendering side (8K video)
MAX_IMAGE_PIXELS = 100_000_000  # a photo or a project image (100 MP: larger than any camera's)
MAX_STEPS = 10_000
MAX_FRAMES = 100_000
MAX_CLIP_FRAMES = 1024

# The range of every number a user types: the CLI, the camera timeline and the studio (its fields and their
# help) all check against these. name: (lowest, highest).
RANGES = {
    "zoom": (0.1, 20.0),        # times the source frame's height (0.1: ten frames tall, 20: a 5% crop)
    "pan_x": (-1.0, 1.0),       # source widths the centre of view moves
    "pan_y": (-1.0, 1.0),       # source heights
    "yaw": (-180.0, 180.0),     # degrees of orbit
    "steps": (1, MAX_STEPS),
    "guidance": (1.0, 100.0),   # 1 turns classifier-free guidance off
    "top_k": (0.1, 64.0),       # references' worth of tokens kept
    "clip_frames": (1, MAX_CLIP_FRAMES),
    "overlap": (0, MAX_CLIP_FRAMES - 1),
    "seed": (0, MAX_SEED),
    "side": (1, MAX_SIDE),      # pixels, output width or height
}


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (not a bool, not text) in ``low..high``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not _is_int(value):
        raise UserError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if low is not None and value < low or high is not None and value > high:
        allowed = f"{low}..{high}" if low is not None and high is not None else (f">= {low}" if low is not None else f"<= {high}")
        raise UserError(f"{name} must be {allowed}, got {value}")
    return value


def check_float(value, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    """A finite number (not a bool, not text) in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low) or high is not None and value > high:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        allowed = bound if high is None else f"{bound} and <= {high:g}" if low is not None else f"<= {high:g}"
        raise UserError(f"{name} must be {allowed}, got {value:g}")
    return value


def check_range(value, key: str, name: str | None = None) -> float:
    """A finite number inside ``RANGES[key]``."""
    low, high = RANGES[key]
    return check_float(value, name or key, low=low, high=high)


def check_seed(value, name: str = "seed") -> int:
    return check_int(value, name, low=0, high=MAX_SEED)


def check_steps(value, name: str = "steps") -> int:
    return check_int(value, name, low=1, high=MAX_STEPS)


def check_guidance(value, name: str = "guidance") -> float:
    """Classifier-free guidance: finite, >= 1 (1 turns it off)."""
    try:
        return check_range(value, "guidance", name)
    except UserError as exc:
        raise UserError(f"{exc} (1 turns classifier-free guidance off)") from None


def check_frames(value, name: str = "frames") -> int:
    return check_int(value, name, low=1, high=MAX_FRAMES)


def check_gap(value, name: str = "max gap") -> int:
    return check_int(value, name, low=0, high=MAX_FRAMES)


def check_side(value, name: str) -> int:
    return check_int(value, name, low=1, high=MAX_SIDE)


def check_size(width, height, name: str = "size") -> tuple[int, int]:
    """A frame size: both sides whole numbers in 1..MAX_SIDE."""
    return check_side(width, f"{name} width"), check_side(height, f"{name} height")


def check_image_pixels(width: int, height: int, where: str) -> None:
    """Refuse an image larger than :data:`MAX_IMAGE_PIXELS` before it is decoded (a decompression bomb)."""
    if width * height > MAX_IMAGE_PIXELS:
        raise UserError(f"{where} is {width}x{height} pixels, more than this tool reads "
                        f"({MAX_IMAGE_PIXELS // 1_000_000} megapixels); make it smaller")


def available_memory_mb(device=None) -> float:
    """Memory the device could still give: free GPU memory on CUDA, available system memory elsewhere."""
    import psutil
    import torch

    if device is not None and torch.device(device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return free / 2**20
    return psutil.virtual_memory().available / 2**20


def check_fits_memory(needed_mb: float, what: str, device=None) -> None:
    """Refuse, with both figures, a job whose estimated peak is more than the device has free."""
    free = available_memory_mb(device)
    if needed_mb > free:
        raise UserError(f"{what} needs about {needed_mb:,.0f} MB of memory but only {free:,.0f} MB is free; "
                        "make it smaller (size, frames or references)")
