"""Pose images in the DWPose colour convention (what AnimateAnyone-style pose guiders were trained on).

Body: OpenPose limb colours, limbs as filled ellipses dimmed to 60 %, joints as
radius-4 dots; hands: per-edge HSV rainbow lines and red-blue dots; face: white
dots; black background. Images are RGB.
"""

from __future__ import annotations

import colorsys
from typing import Iterator

import numpy as np

from .track import BODY, FACE, LEFT_HAND, RIGHT_HAND, PoseTrack

# OpenPose limbs (0-based indices into BODY), the first 17 are drawn as DWPose does.
LIMBS = np.array([
    [1, 2], [1, 5], [2, 3], [3, 4], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10], [1, 11], [11, 12], [12, 13],
    [1, 0], [0, 14], [14, 16], [0, 15], [15, 17],
])
BODY_COLORS = np.array([
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
    [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
    [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
])
HAND_EDGES = np.array([
    [0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [0, 9], [9, 10], [10, 11], [11, 12],
    [0, 13], [13, 14], [14, 15], [15, 16], [0, 17], [17, 18], [18, 19], [19, 20],
])
HAND_COLORS = [tuple(int(c * 255) for c in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0)) for i in range(len(HAND_EDGES))]
HAND_POINT_COLOR = (0, 0, 255)
FACE_COLOR = (255, 255, 255)
STICK_WIDTH = 4


def render_pose(keypoints: np.ndarray, width: int, height: int, threshold: float = 0.3,
                hands: bool = True, face: bool = True) -> np.ndarray:
    """Draw one pose ``(128, 3)`` (normalised x, y, confidence) as an RGB uint8 image ``(height, width, 3)``.

    Keypoints with confidence <= ``threshold`` are not drawn.
    """
    import cv2

    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (128, 3):
        raise ValueError(f"keypoints must have shape (128, 3), got {keypoints.shape}")
    canvas = np.zeros((height, width, 3), np.uint8)
    px = keypoints[:, :2] * np.array([width, height], np.float32)
    seen = (keypoints[:, 2] > threshold) & np.isfinite(px).all(axis=1)

    body, body_seen = px[BODY], seen[BODY]
    for (a, b), color in zip(LIMBS, BODY_COLORS):
        if not (body_seen[a] and body_seen[b]):
            continue
        (xa, ya), (xb, yb) = body[a], body[b]
        length = float(np.hypot(xa - xb, ya - yb))
        angle = float(np.degrees(np.arctan2(ya - yb, xa - xb)))
        polygon = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), STICK_WIDTH),
                                   int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(c) for c in color])
    canvas = (canvas * 0.6).astype(np.uint8)
    for i in np.flatnonzero(body_seen):
        cv2.circle(canvas, (int(body[i, 0]), int(body[i, 1])), 4, [int(c) for c in BODY_COLORS[i]], thickness=-1)

    if hands:
        for part in (LEFT_HAND, RIGHT_HAND):
            hand, hand_seen = px[part], seen[part]
            for (a, b), color in zip(HAND_EDGES, HAND_COLORS):
                if hand_seen[a] and hand_seen[b]:
                    cv2.line(canvas, (int(hand[a, 0]), int(hand[a, 1])), (int(hand[b, 0]), int(hand[b, 1])), color, 2)
            for i in np.flatnonzero(hand_seen):
                cv2.circle(canvas, (int(hand[i, 0]), int(hand[i, 1])), 4, HAND_POINT_COLOR, thickness=-1)
    if face:
        for x, y in px[FACE][seen[FACE]]:
            cv2.circle(canvas, (int(x), int(y)), 3, FACE_COLOR, thickness=-1)
    return canvas


def render_track(track: PoseTrack, threshold: float = 0.3, hands: bool = True, face: bool = True) -> Iterator[np.ndarray]:
    """Lazily render every frame of ``track``: yields RGB uint8 ``(height, width, 3)``."""
    for keypoints in track.keypoints:
        yield render_pose(keypoints, track.width, track.height, threshold, hands, face)
