"""Temporal aggregation: overlapping clips over a long video (pure functions)."""

from __future__ import annotations

import numpy as np


def context_windows(num_frames: int, clip_frames: int = 12, overlap: int = 4) -> list[range]:
    """Overlapping clips that cover ``range(num_frames)``.

    Clips start every ``clip_frames - overlap`` frames; the last clip is aligned to
    the end so every clip has ``clip_frames`` frames (or all of them, when the video
    is shorter than one clip).
    """
    if num_frames < 1:
        raise ValueError(f"need at least one frame, got {num_frames}")
    if clip_frames < 1:
        raise ValueError(f"clip length must be at least 1 frame, got {clip_frames}")
    if not 0 <= overlap < clip_frames:
        raise ValueError(f"clip overlap must be between 0 and clip length - 1 ({clip_frames - 1}), got {overlap}")
    if num_frames <= clip_frames:
        return [range(num_frames)]
    stride = clip_frames - overlap
    starts = list(range(0, num_frames - clip_frames + 1, stride))
    if starts[-1] + clip_frames < num_frames:
        starts.append(num_frames - clip_frames)
    return [range(s, s + clip_frames) for s in starts]


def aggregation_weights(windows: list[range], num_frames: int) -> np.ndarray:
    """``(clips, frames)`` weights: each frame's noise prediction is the average over the clips that cover it."""
    cover = np.zeros((len(windows), num_frames), dtype=np.float32)
    for i, window in enumerate(windows):
        cover[i, window.start:window.stop] = 1.0
    counts = cover.sum(axis=0)
    if (counts == 0).any():
        raise ValueError(f"frames {np.flatnonzero(counts == 0)[:5].tolist()} are covered by no clip")
    return cover / counts
