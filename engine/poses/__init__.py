"""Poses: extraction, the shared pose track, rendering, files, smoothing and retargeting."""

from .track import BODY, FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND, PoseTrack

__all__ = ["BODY", "FACE", "LEFT_HAND", "RIGHT_HAND", "NUM_KEYPOINTS", "PoseTrack"]
