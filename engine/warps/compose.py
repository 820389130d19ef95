"""Warp reference photos into a target pose, part by part, and compose them into one image.

Every reference is warped into the target pose one body part at a time (an affine map per
limb that follows the limb's segment, a least-squares fit for the torso and the head), with soft
part masks, and the references are blended per part, preferring the one that shows the part
largest and most clearly (the close-up for the face, the wide shot for the shoes). Under the
person lies a background plate: each reference with its person painted out, moved by the
similarity that maps its torso onto the target's (the camera change, to first order).

Pure functions of images and keypoints (numpy + OpenCV), no network weights. Keypoints are
``(128, 3)`` normalised ``x, y, confidence`` over their own image (:mod:`engine.poses.track`).
A reference contributes nothing to a part it does not show; pixels outside a photo are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .parts import (
    FACE_POINTS, FOOT_REACH, L_EAR, L_EYE, L_HIP, L_SHOULDER, NECK, NOSE, PARTS, R_EAR, R_EYE, R_HIP, R_SHOULDER, Part,
)

CONFIDENCE = 0.3          # keypoints below this are not seen
PREFERENCE_POWER = 4.0    # how strongly the best-scoring reference of a part wins over the others
TURNED_AWAY = 0.05        # score factor for a reference that shows the other side of the body (front vs back)


@dataclass
class Composite:
    """The references warped into one target pose.

    image: ``(H, W, 3)`` uint8 RGB. coverage: ``(H, W)`` float32 in [0, 1], how much of each
    pixel is the warped person (0 = background plate only). sources: part name -> index of the
    reference it came from mostly (-1 when no reference shows it).
    """

    image: np.ndarray
    coverage: np.ndarray
    sources: dict[str, int] = field(default_factory=dict)


# -- geometry ------------------------------------------------------------------------------------
def _pixels(keypoints: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised keypoints -> pixel positions ``(128, 2)`` and confidences ``(128,)``; a point outside the
    image (or not finite) counts as not seen."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    xy = keypoints[:, :2] * np.array([width, height], dtype=np.float64)
    conf = np.nan_to_num(keypoints[:, 2], nan=0.0)
    inside = np.isfinite(xy).all(1) & (keypoints[:, 0] >= 0) & (keypoints[:, 0] <= 1) & (keypoints[:, 1] >= 0) & (keypoints[:, 1] <= 1)
    conf = np.where(inside, conf, 0.0)
    return np.nan_to_num(xy), conf


def body_scale(xy: np.ndarray, conf: np.ndarray) -> float | None:
    """A robust body measure in pixels, in torso lengths (neck to mid-hip): the median of the estimates the
    visible keypoints allow (torso, shoulder width, nose to neck, ear to ear). None when none is visible."""
    seen = conf >= CONFIDENCE
    estimates = []
    if seen[NECK] and seen[R_HIP] and seen[L_HIP]:
        estimates.append(np.linalg.norm(xy[NECK] - (xy[R_HIP] + xy[L_HIP]) / 2))
    if seen[R_SHOULDER] and seen[L_SHOULDER]:
        estimates.append(1.3 * np.linalg.norm(xy[R_SHOULDER] - xy[L_SHOULDER]))
    if seen[NOSE] and seen[NECK]:
        estimates.append(2.7 * np.linalg.norm(xy[NOSE] - xy[NECK]))
    if seen[R_EAR] and seen[L_EAR]:
        estimates.append(2.5 * np.linalg.norm(xy[R_EAR] - xy[L_EAR]))
    estimates = [e for e in estimates if e > 1e-3]
    return float(np.median(estimates)) if estimates else None


def _facing(xy: np.ndarray, conf: np.ndarray, left: int, right: int) -> float:
    """+1 when the person's left point is to the right of their right point in the image (facing the camera),
    -1 when turned away, 0 when unknown."""
    if conf[left] < CONFIDENCE or conf[right] < CONFIDENCE:
        return 0.0
    d = xy[left, 0] - xy[right, 0]
    return float(np.sign(d)) if abs(d) > 1e-6 else 0.0


def fit_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Least-squares rotation + uniform scale + translation taking ``source`` ``(n, 2)`` onto ``target``:
    a 2x3 matrix, or None when the points do not determine one."""
    if len(source) < 2:
        return None
    zs = source[:, 0] + 1j * source[:, 1]
    zt = target[:, 0] + 1j * target[:, 1]
    ds, dt = zs - zs.mean(), zt - zt.mean()
    energy = float(np.sum(np.abs(ds) ** 2))
    if energy < 1e-6:
        return None
    a = np.sum(np.conj(ds) * dt) / energy
    b = zt.mean() - a * zs.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def fit_affine(source: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Least-squares affine map taking ``source`` ``(n >= 3, 2)`` onto ``target``; None when the points are
    (nearly) collinear, so that the map would shear without bound."""
    if len(source) < 3:
        return None
    centred = source - source.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if singular[-1] < 0.15 * singular[0]:
        return None
    design = np.concatenate([source, np.ones((len(source), 1))], 1)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.T


def limb_map(p_t, q_t, p_r, q_r, scale_t: float, scale_r: float) -> np.ndarray | None:
    """Target -> reference map of a limb: along the segment it stretches by the length ratio, across it by the
    body-scale ratio (a limb seen end-on in one view keeps its thickness in the other)."""
    v_t, v_r = q_t - p_t, q_r - p_r
    len_t, len_r = np.linalg.norm(v_t), np.linalg.norm(v_r)
    if len_t < 1e-3 or len_r < 1e-3:
        return None
    u_t, u_r = v_t / len_t, v_r / len_r
    frame_t = np.stack([u_t, [-u_t[1], u_t[0]]], 1)
    frame_r = np.stack([u_r, [-u_r[1], u_r[0]]], 1)
    linear = frame_r @ np.diag([len_r / len_t, scale_r / scale_t]) @ frame_t.T
    return np.concatenate([linear, (p_r - linear @ p_t)[:, None]], 1)


def _invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix.astype(np.float64))


# -- part shapes ---------------------------------------------------------------------------------
def _down(xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Unit vector from the shoulders towards the hips (perpendicular to the shoulder line, away from the head)."""
    s = xy[L_SHOULDER] - xy[R_SHOULDER]
    down = np.array([-s[1], s[0]])
    down /= max(np.linalg.norm(down), 1e-6)
    head = xy[NOSE] if conf[NOSE] >= CONFIDENCE else None
    middle = (xy[L_SHOULDER] + xy[R_SHOULDER]) / 2
    if head is not None:
        if np.dot(head - middle, down) > 0:
            down = -down
    elif down[1] < 0:  # no face seen: image down
        down = -down
    return down


def _torso_quad(xy: np.ndarray, conf: np.ndarray, scale: float) -> np.ndarray | None:
    """Right shoulder, left shoulder, left hip, right hip; hips out of sight are estimated one torso length below
    the shoulders. None without both shoulders."""
    seen = conf >= CONFIDENCE
    if not (seen[R_SHOULDER] and seen[L_SHOULDER]):
        return None
    down = _down(xy, conf)
    hips = []
    for hip, shoulder in ((L_HIP, L_SHOULDER), (R_HIP, R_SHOULDER)):
        hips.append(xy[hip] if seen[hip] else xy[shoulder] + down * scale)
    return np.array([xy[R_SHOULDER], xy[L_SHOULDER], hips[0], hips[1]])


def _segment(part: Part, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, q = xy[part.points[0]], xy[part.points[1]]
    if part.name.endswith("foot"):  # from the ankle onwards, in the shin's direction
        return q, q + FOOT_REACH * (q - p)
    return p, p + (1 + part.extend) * (q - p)


def _head_shape(xy: np.ndarray, conf: np.ndarray, scale: float) -> tuple[tuple[float, float], tuple[float, float], float] | None:
    """An ellipse (centre, half-axes, angle in degrees) around the head, or None when no face point is seen."""
    face = [i for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR) if conf[i] >= CONFIDENCE]
    if not face:
        return None
    centre = xy[face].mean(0)
    up = np.array([0.0, -1.0])
    if conf[NECK] >= CONFIDENCE and np.linalg.norm(centre - xy[NECK]) > 1e-3:
        up = (centre - xy[NECK]) / np.linalg.norm(centre - xy[NECK])
    radius = 0.36 * scale
    centre = centre + up * 0.12 * scale  # the crown and hair lie above the eyes
    angle = float(np.degrees(np.arctan2(up[1], up[0]))) + 90.0
    return (float(centre[0]), float(centre[1])), (radius * 0.9, radius * 1.15), angle


def part_mask(part: Part, xy: np.ndarray, conf: np.ndarray, scale: float, height: int, width: int) -> np.ndarray | None:
    """The part's hard mask ``(H, W)`` float32 in one image, or None when the image does not show the part."""
    mask = np.zeros((height, width), np.float32)
    if part.kind == "limb":
        if min(conf[i] for i in part.points) < CONFIDENCE:
            return None
        p, q = _segment(part, xy)
        radius = max(1, int(round(part.radius * scale)))
        if part.name.endswith("foot"):
            centre = tuple(int(round(c)) for c in (p + q) / 2)
            cv2.circle(mask, centre, radius, 1.0, -1, cv2.LINE_AA)
        else:
            cv2.line(mask, tuple(int(round(c)) for c in p), tuple(int(round(c)) for c in q), 1.0, 2 * radius, cv2.LINE_AA)
            for end in (p, q):
                cv2.circle(mask, tuple(int(round(c)) for c in end), radius, 1.0, -1, cv2.LINE_AA)
    elif part.name == "torso":
        quad = _torso_quad(xy, conf, scale)
        if quad is None:
            return None
        cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1.0, cv2.LINE_AA)
        margin = max(1, int(round(0.12 * scale)))
        cv2.polylines(mask, [np.round(quad).astype(np.int32)], True, 1.0, 2 * margin, cv2.LINE_AA)
    else:
        shape = _head_shape(xy, conf, scale)
        if shape is None:
            return None
        centre, axes, angle = shape
        cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))),
                    angle, 0, 360, 1.0, -1, cv2.LINE_AA)
    return mask


def part_map(part: Part, ref: "_Reference", xy_t: np.ndarray, conf_t: np.ndarray, scale_t: float) -> np.ndarray | None:
    """Target -> reference 2x3 map of ``part``, or None when the pair of poses does not determine one."""
    if part.kind == "limb":
        if min(min(conf_t[i], ref.conf[i]) for i in part.points) < CONFIDENCE:
            return None
        a, b = part.points
        return limb_map(xy_t[a], xy_t[b], ref.xy[a], ref.xy[b], scale_t, ref.scale)
    if part.name == "torso":
        quad_t, quad_r = _torso_quad(xy_t, conf_t, scale_t), _torso_quad(ref.xy, ref.conf, ref.scale)
        if quad_t is None or quad_r is None:
            return None
        source, target = list(quad_t), list(quad_r)
        if conf_t[NECK] >= CONFIDENCE and ref.conf[NECK] >= CONFIDENCE:
            source.append(xy_t[NECK])
            target.append(ref.xy[NECK])
        affine = fit_affine(np.array(source), np.array(target))
        return affine if affine is not None else fit_similarity(np.array(source), np.array(target))
    shared = [i for i in part.points + FACE_POINTS if conf_t[i] >= CONFIDENCE and ref.conf[i] >= CONFIDENCE]
    if not any(i in shared for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR) + FACE_POINTS):
        return None
    return fit_similarity(xy_t[shared], ref.xy[shared])


def _part_score(part: Part, ref: "_Reference", xy_t: np.ndarray, conf_t: np.ndarray, scale_t: float) -> float:
    """How well ``ref`` shows ``part`` for this target: seen clearly (confidence), large (its scale over the
    target's: more of its pixels per target pixel), not foreshortened, and the same side of the body."""
    if part.kind == "limb":
        points = part.points
    elif part.name == "torso":
        points = (R_SHOULDER, L_SHOULDER)
    else:
        points = tuple(i for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR) if ref.conf[i] >= CONFIDENCE) or (NOSE,)
    confidence = float(np.mean([ref.conf[i] for i in points]))
    if confidence < CONFIDENCE:
        return 0.0
    score = confidence * ref.scale / scale_t
    if part.kind == "limb":
        a, b = part.points
        shown_r = np.linalg.norm(ref.xy[b] - ref.xy[a]) / ref.scale
        shown_t = np.linalg.norm(xy_t[b] - xy_t[a]) / scale_t
        score *= min(1.0, shown_r / max(shown_t, 1e-6))
    pair = (L_EAR, R_EAR) if part.name == "head" else (L_SHOULDER, R_SHOULDER)
    if part.name == "head" and (ref.conf[L_EAR] < CONFIDENCE or ref.conf[R_EAR] < CONFIDENCE):
        pair = (L_EYE, R_EYE)
    f_r, f_t = _facing(ref.xy, ref.conf, *pair), _facing(xy_t, conf_t, *pair)
    if f_r * f_t < 0:
        score *= TURNED_AWAY
    return score


# -- references --------------------------------------------------------------------------------
@dataclass
class _Reference:
    image: np.ndarray        # (H, W, 3) float32 RGB
    plate: np.ndarray        # the background with the person painted out, (H, W, 3) float32
    ones: np.ndarray         # (H, W) float32, to know where a warp read inside the photo
    xy: np.ndarray
    conf: np.ndarray
    scale: float
    masks: dict[str, np.ndarray]


def _prepare(image: np.ndarray, keypoints: np.ndarray) -> _Reference | None:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"reference images must be (H, W, 3) RGB, got {image.shape}")
    height, width = image.shape[:2]
    xy, conf = _pixels(keypoints, width, height)
    scale = body_scale(xy, conf)
    if scale is None:
        return None
    masks = {}
    person = np.zeros((height, width), np.uint8)
    for part in PARTS:
        mask = part_mask(part, xy, conf, scale, height, width)
        if mask is not None:
            person |= (mask > 0.05).astype(np.uint8)
            masks[part.name] = cv2.GaussianBlur(mask, (0, 0), max(0.8, 0.05 * scale))
    grow = max(3, int(round(0.1 * scale)) * 2 + 1)
    person = cv2.dilate(person, np.ones((grow, grow), np.uint8))
    plate = paint_out(image, person) if person.any() else image
    return _Reference(image.astype(np.float32), plate.astype(np.float32), np.ones((height, width), np.float32),
                      xy, conf, scale, masks)


def paint_out(image: np.ndarray, mask: np.ndarray, work_size: int = 64) -> np.ndarray:
    """``image`` with the pixels of ``mask`` (uint8, 1 = paint out) filled from their surroundings (OpenCV's
    Telea inpainting), at ``work_size`` pixels a side at most: the fill is smooth anyway, and inpainting costs
    grow with the masked area."""
    height, width = mask.shape
    factor = min(1.0, work_size / max(height, width))
    small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(np.ascontiguousarray(image), small_size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, small_size, interpolation=cv2.INTER_NEAREST)
    small_mask = cv2.dilate(small_mask, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, small_mask * 255, 3, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(mask[..., None] > 0, filled, image)


def _warp(array: np.ndarray, target_to_ref: np.ndarray, height: int, width: int, edge: bool = False) -> np.ndarray:
    """Sample ``array`` (reference space) at the target pixels. Outside the photo: zero, or with ``edge`` the
    nearest edge pixel (colours, so that interpolation at the border does not darken; their weights, warped
    without ``edge``, are zero there, so nothing outside the photo is ever used)."""
    return cv2.warpAffine(array, target_to_ref.astype(np.float64), (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE if edge else cv2.BORDER_CONSTANT, borderValue=0)


class ReferenceWarper:
    """Warps a set of reference photos into target poses; what depends on the references alone (their part
    masks, their background plates) is computed once.

    images: R arrays ``(H_i, W_i, 3)`` uint8 RGB; keypoints: R arrays ``(128, 3)`` normalised to their image.
    A reference with no visible body keypoints is kept but contributes nothing.
    """

    def __init__(self, images: list[np.ndarray], keypoints: list[np.ndarray]):
        if len(images) != len(keypoints):
            raise ValueError(f"got {len(images)} reference images but {len(keypoints)} reference poses")
        self.references = [_prepare(img, kp) for img, kp in zip(images, keypoints)]

    def compose(self, target_keypoints: np.ndarray, height: int, width: int) -> Composite:
        """The references in the pose ``target_keypoints`` ``(128, 3)`` (normalised to the target frame)."""
        xy_t, conf_t = _pixels(target_keypoints, width, height)
        scale_t = body_scale(xy_t, conf_t)
        refs = [(i, r) for i, r in enumerate(self.references) if r is not None]
        canvas = self._background(refs, xy_t, conf_t, scale_t, height, width)
        coverage = np.zeros((height, width), np.float32)
        sources: dict[str, int] = {}
        if scale_t is None or not refs:
            return Composite(np.round(canvas).clip(0, 255).astype(np.uint8), coverage, {p.name: -1 for p in PARTS})
        blur = max(0.8, 0.05 * scale_t)
        for part in sorted(PARTS, key=lambda p: p.layer):
            sources[part.name] = -1
            target_mask = part_mask(part, xy_t, conf_t, scale_t, height, width)
            if target_mask is None:
                continue
            colour = np.zeros((height, width, 3), np.float32)
            weight = np.zeros((height, width), np.float32)
            reach = np.zeros((height, width), np.float32)
            best = (0.0, -1)
            for i, ref in refs:
                if part.name not in ref.masks:
                    continue
                score = _part_score(part, ref, xy_t, conf_t, scale_t)
                matrix = part_map(part, ref, xy_t, conf_t, scale_t) if score > 0 else None
                if matrix is None:
                    continue
                seen = _warp(ref.masks[part.name], matrix, height, width)  # soft already; zero outside the photo
                strength = score ** PREFERENCE_POWER
                colour += _warp(ref.image, matrix, height, width, edge=True) * (seen * strength)[..., None]
                weight += seen * strength
                reach = np.maximum(reach, seen)
                total = float(seen.sum()) * strength
                if total > best[0]:
                    best = (total, i)
            if best[1] < 0:
                continue
            sources[part.name] = best[1]
            alpha = cv2.GaussianBlur(target_mask, (0, 0), blur) * np.clip(reach, 0, 1)
            part_colour = colour / np.maximum(weight, 1e-8)[..., None]
            canvas = canvas * (1 - alpha[..., None]) + part_colour * alpha[..., None]
            coverage = coverage * (1 - alpha) + alpha
        return Composite(np.round(canvas).clip(0, 255).astype(np.uint8), coverage.clip(0, 1), sources)

    def _background(self, refs, xy_t, conf_t, scale_t, height: int, width: int) -> np.ndarray:
        """The references' background plates moved by the torso's similarity (the camera change), blended with
        a preference for references framed like the target; the plates' mean colour where none reaches."""
        colour = np.zeros((height, width, 3), np.float32)
        weight = np.zeros((height, width), np.float32)
        fallback = [r.plate.reshape(-1, 3).mean(0) for _, r in refs] or [np.full(3, 127.0)]
        for _, ref in refs:
            if scale_t is None:
                break
            shared = [k for k in (NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP, NOSE)
                      if conf_t[k] >= CONFIDENCE and ref.conf[k] >= CONFIDENCE]
            matrix = fit_similarity(xy_t[shared], ref.xy[shared]) if len(shared) >= 2 else None
            if matrix is None:
                continue
            framing = float(np.exp(-2.0 * abs(np.log(ref.scale / scale_t))))
            seen = _warp(ref.ones, matrix, height, width) * framing
            colour += _warp(ref.plate, matrix, height, width, edge=True) * seen[..., None]
            weight += seen
        mean = np.mean(fallback, axis=0).astype(np.float32)
        filled = weight > 1e-6
        out = np.broadcast_to(mean, (height, width, 3)).copy()
        out[filled] = colour[filled] / weight[filled][:, None]
        return out

    def compose_track(self, target_keypoints: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Every frame of ``target_keypoints`` ``(frames, 128, 3)``: images ``(frames, H, W, 3)`` uint8 and
        coverage ``(frames, H, W)`` float32."""
        composites = [self.compose(kp, height, width) for kp in np.asarray(target_keypoints)]
        return np.stack([c.image for c in composites]), np.stack([c.coverage for c in composites])


def compose_references(ref_images: list[np.ndarray], ref_keypoints: list[np.ndarray], target_keypoints: np.ndarray,
                       height: int, width: int) -> Composite:
    """The references warped into one target pose (see :class:`ReferenceWarper`)."""
    return ReferenceWarper(ref_images, ref_keypoints).compose(target_keypoints, height, width)
