"""``python -m studio.bench``: how fast the camera preview follows an edit on a 10-second track (target < 300 ms)."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import numpy as np

from engine.poses import BODY, PoseTrack

from . import state
from .app import camera_views


def synthetic_track(frames: int = 250, size: int = 512) -> PoseTrack:
    """A standing figure swaying for ``frames`` frames (no files needed)."""
    body = np.array([[.5, .2], [.5, .3], [.42, .3], [.38, .42], [.36, .54], [.58, .3], [.62, .42], [.64, .54],
                     [.45, .55], [.45, .72], [.45, .9], [.55, .55], [.55, .72], [.55, .9], [.48, .18], [.52, .18],
                     [.46, .2], [.54, .2]], np.float32)
    keypoints = np.zeros((frames, 128, 3), np.float32)
    sway = 0.05 * np.sin(np.linspace(0, 4 * np.pi, frames))[:, None]
    keypoints[:, BODY, 0] = body[:, 0] + sway
    keypoints[:, BODY, 1] = body[:, 1]
    keypoints[:, BODY, 2] = 1.0
    return PoseTrack(keypoints, size, size, 25.0)


def main() -> int:
    project = state.set_motion(state.Project(), synthetic_track(), "bench")
    project = state.put_point(project, "keyframe", 0, {"zoom": 1.0})
    project = state.put_point(project, "keyframe", 100, {"zoom": 2.0, "easing": "ease-in-out"})
    project = state.add_preset(replace(project, frame=150), "close-up", "cut")
    project = state.add_preset(replace(project, frame=210), "wide", "cut")
    camera_views(project)  # the skeleton strip is computed once per motion
    timings = []
    for i in range(10):
        start = time.perf_counter()
        camera_views(state.put_point(project, "keyframe", 100, {"zoom": 2.0 + i / 10}, replace_frame=100))
        timings.append((time.perf_counter() - start) * 1000)
    print(f"preview update, 250-frame track, 2 keyframes + 2 preset cuts: median {statistics.median(timings):.0f} ms, "
          f"best {min(timings):.0f} ms, worst {max(timings):.0f} ms (target < 300 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
