"""Mediapipe landmarks -> the OpenPose layout of :mod:`engine.poses.track`, and picking one person.

Mediapipe's 33 body landmarks map to OpenPose-18 (neck = shoulder midpoint),
its 21 hand landmarks are already in OpenPose hand order, and the 478-point
face mesh maps to the 68 iBUG points through :data:`FACE_MESH_TO_IBUG68`.
"""

from __future__ import annotations

import numpy as np

from .track import BODY, BODY_INDEX, FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND

# OpenPose-18 index -> mediapipe pose index (neck, index 1, is the mean of 11 and 12).
MP_TO_OPENPOSE_BODY = np.array([0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7])
MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER = 11, 12
MP_LEFT_WRIST, MP_RIGHT_WRIST = 15, 16

# iBUG-68 index -> mediapipe face-mesh index: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, lips 48-67.
FACE_MESH_TO_IBUG68 = np.array([
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
])
FACE_MESH_NOSE_TIP = 4


def landmarks_array(landmarks, with_visibility: bool = True) -> np.ndarray:
    """Mediapipe landmark list -> ``(n, 4)`` float32 x, y, z, confidence (visibility, or 1 when absent)."""
    if with_visibility:
        rows = [(l.x, l.y, l.z, l.visibility if l.visibility is not None else 1.0) for l in landmarks]
    else:
        rows = [(l.x, l.y, l.z, 1.0) for l in landmarks]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def mediapipe_body_to_openpose(pose: np.ndarray) -> np.ndarray:
    """``(..., 33, C)`` mediapipe body -> ``(..., 18, C)`` OpenPose-18 (neck = shoulder midpoint, min confidence)."""
    out = pose[..., np.where(MP_TO_OPENPOSE_BODY < 0, 0, MP_TO_OPENPOSE_BODY), :].copy()
    neck = 0.5 * (pose[..., MP_LEFT_SHOULDER, :] + pose[..., MP_RIGHT_SHOULDER, :])
    neck[..., -1] = np.minimum(pose[..., MP_LEFT_SHOULDER, -1], pose[..., MP_RIGHT_SHOULDER, -1])
    out[..., BODY_INDEX["neck"], :] = neck
    return out


# Face-mesh points the body keypoints are taken from when the body landmarker finds no one (a close-up photo).
FACE_MESH_EYES = ((33, 133), (362, 263))  # the subject's right eye (outer, inner corner), left eye (inner, outer)
FACE_MESH_EARS = (234, 454)               # the subject's right and left side of the face, at the ears
FACE_MESH_FOREHEAD, FACE_MESH_CHIN = 10, 152
GUESSED = 0.5  # the confidence of a keypoint worked out from the face's proportions, not seen


def body_from_face(mesh: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenPose-18 body ``(18, 3)`` from one face mesh ``(478, 4)`` (normalised): nose, eyes and ears from the mesh,
    neck and shoulders from the face's proportions (the neck about half a face below the chin, the shoulders a
    face and a bit to each side, confidence :data:`GUESSED`; 0 where they fall outside the photo); the rest unseen."""
    size = np.array([width, height], np.float32)
    px = mesh[:, :2] * size
    body = np.zeros((18, 3), np.float32)

    def put(name: str, xy: np.ndarray, confidence: float) -> None:
        inside = bool(np.all((xy >= 0) & (xy <= size)))
        body[BODY_INDEX[name]] = (*(xy / size), confidence if inside else 0.0)

    put("nose", px[FACE_MESH_NOSE_TIP], 1.0)
    right_eye, left_eye = (px[list(corners)].mean(axis=0) for corners in FACE_MESH_EYES)
    put("r_eye", right_eye, 1.0)
    put("l_eye", left_eye, 1.0)
    put("r_ear", px[FACE_MESH_EARS[0]], GUESSED)
    put("l_ear", px[FACE_MESH_EARS[1]], GUESSED)
    face = px[FACE_MESH_CHIN] - px[FACE_MESH_FOREHEAD]
    length = float(np.linalg.norm(face))
    across = right_eye - left_eye
    if length < 1e-6 or np.linalg.norm(across) < 1e-6:
        return body
    down, across = face / length, across / np.linalg.norm(across)
    neck = px[FACE_MESH_CHIN] + 0.45 * length * down
    put("neck", neck, GUESSED)
    put("r_shoulder", neck + 0.3 * length * down + 1.1 * length * across, GUESSED)
    put("l_shoulder", neck + 0.3 * length * down - 1.1 * length * across, GUESSED)
    return body


def face_mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """``(..., 478, C)`` face mesh -> ``(..., 68, C)`` iBUG points."""
    return mesh[..., FACE_MESH_TO_IBUG68, :]


def body_extent(body: np.ndarray, width: int, height: int, threshold: float = 0.3) -> tuple[np.ndarray, float]:
    """Centre (normalised x, y) and area (pixels^2) of the visible keypoints' box of one body ``(18, 3)``."""
    visible = body[:, 2] > threshold
    if visible.sum() < 2:
        return np.array([0.5, 0.5], dtype=np.float32), 0.0
    xy = body[visible, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    area = float((hi[0] - lo[0]) * width * (hi[1] - lo[1]) * height)
    return 0.5 * (lo + hi), area


def pick_person(candidates: np.ndarray, previous: np.ndarray | None, width: int, height: int,
                threshold: float = 0.3) -> int:
    """Index of the person to follow among ``candidates (people, 18, 3)`` (normalised body keypoints).

    With a ``previous`` body ``(18, 3)`` the candidate nearest to it (mean pixel
    distance of keypoints visible in both) keeps the identity; otherwise the
    largest, most central person wins.
    """
    if len(candidates) == 1:
        return 0
    size = np.array([width, height], dtype=np.float32)
    if previous is not None and (previous[:, 2] > threshold).sum() >= 2:
        both = (candidates[:, :, 2] > threshold) & (previous[None, :, 2] > threshold)
        dist = np.linalg.norm((candidates[:, :, :2] - previous[None, :, :2]) * size, axis=-1)
        mean = np.where(both.sum(1) > 0, (dist * both).sum(1) / np.maximum(both.sum(1), 1), np.inf)
        if np.isfinite(mean).any():
            return int(np.argmin(mean))
    scores = []
    for body in candidates:
        centre, area = body_extent(body, width, height, threshold)
        offset = float(np.linalg.norm((centre - 0.5) * size)) / float(np.linalg.norm(size))
        scores.append(area * (1.0 - offset))
    return int(np.argmax(scores))


def assign_hands(hands: list[np.ndarray], body33: np.ndarray, width: int, height: int) -> tuple[int | None, int | None]:
    """Which detected hand ``(21, 4)`` is the person's left and right: nearest to the body's wrists.

    Hands farther than about a forearm from both wrists belong to someone else and are dropped.
    Returns ``(left_index, right_index)``, each ``None`` when no hand fits.
    """
    if not hands:
        return None, None
    size = np.array([width, height], dtype=np.float32)
    wrists = body33[[MP_LEFT_WRIST, MP_RIGHT_WRIST], :2] * size
    shoulders = np.linalg.norm((body33[MP_LEFT_SHOULDER, :2] - body33[MP_RIGHT_SHOULDER, :2]) * size)
    reach = max(float(shoulders), 0.08 * float(min(width, height)))
    starts = np.stack([h[0, :2] for h in hands]) * size
    dist = np.linalg.norm(starts[:, None, :] - wrists[None, :, :], axis=-1)  # (hands, 2)
    chosen: list[int | None] = [None, None]
    for flat in np.argsort(dist, axis=None):
        hand, side = divmod(int(flat), 2)
        if dist[hand, side] > reach or chosen[side] is not None or hand in chosen:
            continue
        chosen[side] = hand
    return chosen[0], chosen[1]


def assemble_keypoints(body33: np.ndarray | None, left: np.ndarray | None, right: np.ndarray | None,
                       face478: np.ndarray | None) -> np.ndarray:
    """One frame's ``(128, 3)`` normalised keypoints from mediapipe arrays ``(n, 4)`` (x, y, z, confidence)."""
    out = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
    if body33 is not None:
        out[BODY] = mediapipe_body_to_openpose(body33)[:, [0, 1, 3]]
    if left is not None:
        out[LEFT_HAND] = left[:, [0, 1, 3]]
    if right is not None:
        out[RIGHT_HAND] = right[:, [0, 1, 3]]
    if face478 is not None:
        out[FACE] = face_mesh_to_ibug68(face478)[:, [0, 1, 3]]
    return out
