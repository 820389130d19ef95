"""The pose representation every part of FreeView shares.

One person per frame, 128 keypoints in OpenPose order:

* ``BODY``  (18): OpenPose-18 body (nose, neck, r-shoulder, r-elbow, r-wrist,
  l-shoulder, l-elbow, l-wrist, r-hip, r-knee, r-ankle, l-hip, l-knee, l-ankle,
  r-eye, l-eye, r-ear, l-ear)
* ``LEFT_HAND`` / ``RIGHT_HAND`` (21 each): OpenPose hand layout
* ``FACE`` (68): the iBUG-68 face layout

``keypoints[..., :2]`` are normalised image coordinates (x right, y down, 0..1
over the frame), ``keypoints[..., 2]`` a confidence in 0..1 (0 = not seen).
``world`` holds 3D positions in metres (x right, y down, z away from the
camera, origin between the hips) when known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NUM_BODY, NUM_HAND, NUM_FACE = 18, 21, 68
BODY = slice(0, 18)
LEFT_HAND = slice(18, 39)
RIGHT_HAND = slice(39, 60)
FACE = slice(60, 128)
NUM_KEYPOINTS = 128

BODY_NAMES = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
)
BODY_INDEX = {name: i for i, name in enumerate(BODY_NAMES)}


@dataclass
class PoseTrack:
    """A pose per frame.

    keypoints: ``(frames, 128, 3)`` float32, normalised x, y and confidence.
    world: ``(frames, 128, 3)`` float32 metres, or ``None`` when no 3D is known.
    width, height: pixel size of the frames the keypoints are normalised to.
    fps: frames per second of the motion.
    detected: ``(frames,)`` bool, False where no person was found (and the pose was filled in).
    """

    keypoints: np.ndarray
    width: int
    height: int
    fps: float = 25.0
    world: np.ndarray | None = None
    detected: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.ndim != 3 or self.keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints must have shape (frames, {NUM_KEYPOINTS}, 3), got {self.keypoints.shape}")
        if self.world is not None:
            self.world = np.asarray(self.world, dtype=np.float32)
            if self.world.shape != self.keypoints.shape:
                raise ValueError(f"world must have shape {self.keypoints.shape}, got {self.world.shape}")
        if self.detected is None:
            self.detected = self.keypoints[:, BODY, 2].max(axis=1) > 0
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    def __len__(self) -> int:
        return self.keypoints.shape[0]

    def slice(self, start: int, stop: int | None = None) -> "PoseTrack":
        sl = slice(start, stop)
        return PoseTrack(
            self.keypoints[sl].copy(), self.width, self.height, self.fps,
            None if self.world is None else self.world[sl].copy(), self.detected[sl].copy(),
        )
