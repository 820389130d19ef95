"""Poses: extraction, the shared pose track, rendering, files, smoothing and retargeting.

Importing this package loads neither mediapipe nor OpenCV; they load on first use.
"""

from .extract import extract_frames, extract_image_pose, extract_poses, open_landmarkers
from .files import load_openpose, load_pose_file, save_openpose, save_pose_file, track_from_native, track_to_native
from .filters import GAP_FILLS, GapReport, bone_ratios, fill_gaps, retarget, smooth_track
from .follow import FollowReport, spans_text
from .models import resolve_model
from .render import render_pose, render_track
from .track import BODY, BODY_NAMES, FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND, PoseTrack

__all__ = [
    "BODY", "BODY_NAMES", "FACE", "LEFT_HAND", "RIGHT_HAND", "NUM_KEYPOINTS", "PoseTrack",
    "extract_poses", "extract_image_pose", "extract_frames", "open_landmarkers", "resolve_model",
    "render_pose", "render_track",
    "load_pose_file", "save_pose_file", "load_openpose", "save_openpose", "track_to_native", "track_from_native",
    "smooth_track", "fill_gaps", "GapReport", "GAP_FILLS", "retarget", "bone_ratios", "FollowReport", "spans_text",
]
