"""Shot presets as framing rules: what each frame must show, and a camera path that shows it smoothly (pure functions).

A preset ("close-up", "medium", "wide") is a *rule* evaluated on every frame of
its shot: from the pose it gives a box that must stay inside the view, the view
height it would like (from the body's size, see :func:`body_height`) and where
it would like the view's centre. A camera path then follows the rule like an
operator would (:func:`follow_path`): a dead zone keeps the camera still while
the person moves a little, a windowed bound keeps every required box inside the
view, and a triangle filter smooths what is left. The camera never moves more
than ``FollowSettings.max_change`` of the view per frame and never twitches back
and forth within 5 frames: where the person moves faster than a framing of the
wanted size could follow (a walk across a close-up), the view widens instead.
``locked`` (:func:`locked_path`) is one fixed framing for the whole shot that
still shows every frame's box.

Units: source-frame pixels. The view is a rectangle of the source frame with the
output's aspect ratio (``aspect`` = output width / height).

Body size. One vertical distance (say head to shoulders) collapses when the head
tilts or the camera looks down, so the scale is the standing height implied by
several body measures (head, shoulder width, torso, limb segments), each divided
by its share of the height. Foreshortening only shortens a segment, so each frame
takes an upper quantile over its visible measures, and the shot an upper quantile
over about a second of frames.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .poses.track import BODY_INDEX

VISIBLE = 0.3
FOLLOW, LOCKED = "follow", "locked"
FRAMINGS = (FOLLOW, LOCKED)

# (joint a, joint b, length / standing height): joint-centre anthropometry (Winter, "Biomechanics and Motor
# Control of Human Movement", segment lengths as fractions of stature).
BODY_MEASURES = (
    ("r_shoulder", "l_shoulder", 0.23),    # shoulder width
    ("neck", "r_hip", 0.30), ("neck", "l_hip", 0.30),  # torso (shoulder midpoint to hip joint)
    ("r_shoulder", "r_elbow", 0.186), ("l_shoulder", "l_elbow", 0.186),
    ("r_elbow", "r_wrist", 0.146), ("l_elbow", "l_wrist", 0.146),
    ("r_hip", "r_knee", 0.245), ("l_hip", "l_knee", 0.245),
    ("r_knee", "r_ankle", 0.246), ("l_knee", "l_ankle", 0.246),
    ("r_ear", "l_ear", 0.075),             # head width
    ("nose", "neck", 0.11),                # head and neck
)
_MEASURE_INDEX = np.array([[BODY_INDEX[a], BODY_INDEX[b]] for a, b, _ in BODY_MEASURES])
_MEASURE_SHARE = np.array([share for _, _, share in BODY_MEASURES])

HEAD = [BODY_INDEX[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear")]
SHOULDERS = [BODY_INDEX[n] for n in ("neck", "r_shoulder", "l_shoulder")]
HIPS = [BODY_INDEX[n] for n in ("r_hip", "l_hip")]
ELBOWS = [BODY_INDEX[n] for n in ("r_elbow", "l_elbow")]

HEAD_TOP = 0.07      # top of the head above the highest head keypoint, in body heights
HEAD_HEIGHT = 0.13   # chin to crown, in body heights
# The close-up's head, as a share of the view height. Measured on real footage (eye line to shoulders / 0.9, the
# larger of the image and the 3D reading) a head reads 1.0-1.45 times HEAD_HEIGHT of the standing height this
# module estimates, so 0.29 shows it at about a third of the frame (25-45% over that range).
CLOSE_UP_HEAD = 0.29


@dataclass(frozen=True)
class FramingRule:
    """Per frame of a shot (``n`` frames), what a preset needs.

    box: ``(n, 4)`` left, top, right, bottom that must be inside the view.
    view_height: ``(n,)`` the view height the preset would like.
    centre: ``(n, 2)`` where it would like the view's centre.
    met: ``(n,)`` False where the pose cannot give the rule (no person, or the parts it frames are not seen);
    those frames hold the last good values (the first good ones before it).
    """

    box: np.ndarray
    view_height: np.ndarray
    centre: np.ndarray
    met: np.ndarray


@dataclass(frozen=True)
class FollowSettings:
    """How the camera follows: ``smoothing_s`` seconds either side of a frame are looked at (bounds and the
    triangle filter), ``dead_zone`` is the share of the view the person may move before the camera does,
    ``zoom_dead_zone`` the relative change of the wanted view size that is ignored, ``margin`` the share of
    the view kept free around the required box, ``max_change`` the most the camera moves per frame (relative
    zoom, and pan as a share of the view's width or height): where the person moves faster than a framing
    could follow within it, the view widens instead."""

    smoothing_s: float = 0.2
    dead_zone: float = 0.06
    zoom_dead_zone: float = 0.08
    margin: float = 0.04
    max_change: float = 0.018


def _nan_reduce(fn, values, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: nothing seen there
        return fn(values, axis=axis)


def body_measures(body: np.ndarray, width: int, height: int) -> np.ndarray:
    """Standing height implied by each measure of :data:`BODY_MEASURES`, per frame ``(n, measures)``; NaN unseen.

    ``body``: ``(n, 18, 3)`` normalised keypoints with confidence.
    """
    px = body[..., :2] * np.array([width, height], np.float64)
    a, b = _MEASURE_INDEX[:, 0], _MEASURE_INDEX[:, 1]
    seen = (body[:, a, 2] > VISIBLE) & (body[:, b, 2] > VISIBLE)
    length = np.linalg.norm(px[:, a] - px[:, b], axis=-1)
    return np.where(seen & (length > 0), length / _MEASURE_SHARE, np.nan)


def rolling(values: np.ndarray, radius: int, fn) -> np.ndarray:
    """``fn`` over the window ``[t - radius, t + radius]`` (edge values repeated) of a 1-D array, NaN ignored."""
    values = np.asarray(values, np.float64)
    if radius <= 0 or len(values) == 0:
        return values.copy()
    padded = np.pad(values, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    return _nan_reduce(fn, windows, axis=-1)


def nan_quantile(values: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` (0..1, lower of the two nearest) along the last axis, NaN ignored; NaN where all are."""
    values = np.sort(np.asarray(values, np.float64), axis=-1)  # NaN sort last
    count = np.isfinite(values).sum(axis=-1)
    index = np.clip(np.floor(q * (count - 1)).astype(int), 0, values.shape[-1] - 1)
    out = np.take_along_axis(values, index[..., None], axis=-1)[..., 0]
    return np.where(count > 0, out, np.nan)


def body_height(body: np.ndarray, width: int, height: int, fps: float = 25.0) -> np.ndarray:
    """Robust standing height of the person in pixels per frame ``(n,)``: the 75th percentile of the visible
    measures, then the 80th percentile over about a second; NaN where no measure was ever seen nearby."""
    per_frame = nan_quantile(body_measures(body, width, height), 0.75)
    return rolling(per_frame, max(1, int(round(fps / 2))), lambda v, axis: nan_quantile(v, 0.8))


def _hold(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Frames that are not ``good`` take the last good frame's values (the first good one's before it)."""
    if good.all() or not good.any():
        return values
    index = np.where(good, np.arange(len(good)), -1)
    index = np.maximum.accumulate(index)
    index[index < 0] = int(np.flatnonzero(good)[0])
    return values[index]


def preset_rule(body: np.ndarray, width: int, height: int, name: str, fps: float = 25.0,
                detected: np.ndarray | None = None) -> FramingRule:
    """The framing rule of preset ``name`` on the frames ``body (n, 18, 3)`` (normalised) of one shot.

    close-up: the head and both shoulders, head height :data:`CLOSE_UP_HEAD` of the view, ends above the hips.
    medium: head to hips (and the elbows), ends above the knees. wide: every seen body joint.
    """
    px = body[..., :2] * np.array([width, height], np.float64)
    seen = body[..., 2] > VISIBLE
    if detected is not None:
        seen &= np.asarray(detected, bool)[:, None]
    tall = body_height(np.where(seen[..., None], body, 0.0), width, height, fps)
    x, y = np.where(seen, px[..., 0], np.nan), np.where(seen, px[..., 1], np.nan)

    def extent(ids, fn, coords):
        return _nan_reduce(fn, coords[:, ids], 1)

    head_seen, shoulders_seen, hips_seen = seen[:, HEAD].any(1), seen[:, SHOULDERS].any(1), seen[:, HIPS].any(1)
    anchor = HEAD + SHOULDERS
    top = np.where(head_seen, extent(HEAD, np.nanmin, y) - HEAD_TOP * tall, extent(SHOULDERS, np.nanmin, y) - 0.2 * tall)
    if name == "close-up":
        ids, met = anchor, head_seen & shoulders_seen
        bottom = extent(SHOULDERS, np.nanmax, y)
        view = HEAD_HEIGHT * tall / CLOSE_UP_HEAD
        centre_x = extent(HEAD + [BODY_INDEX["neck"]], np.nanmean, x)
    elif name == "medium":
        ids, met = anchor + HIPS + ELBOWS, (head_seen | shoulders_seen) & hips_seen
        bottom = extent(HIPS, np.nanmax, y) + 0.04 * tall
        view = 0.62 * tall
        centre_x = extent(SHOULDERS + HIPS, np.nanmean, x)
    elif name == "wide":
        ids, met = list(range(18)), (head_seen | shoulders_seen) & hips_seen
        bottom = extent(ids, np.nanmax, y) + 0.03 * tall
        view = 1.2 * tall
        centre_x = None
    else:
        raise ValueError(f"unknown shot preset {name!r}")
    left, right = extent(ids, np.nanmin, x), extent(ids, np.nanmax, x)
    if centre_x is None:
        centre_x = 0.5 * (left + right)
    met &= np.isfinite(tall) & np.isfinite(left) & np.isfinite(top) & np.isfinite(bottom)
    box = np.stack([left, top, right, bottom], axis=1)
    view = np.maximum(view, 1.0)
    headroom = 0.06 if name != "wide" else 0.0
    centre_y = top - headroom * view + view / 2 if name != "wide" else 0.5 * (top + bottom)
    centre = np.stack([centre_x, centre_y], axis=1)
    if met.any():
        box, view, centre = _hold(box, met), _hold(view, met), _hold(centre, met)
    return FramingRule(box, view, centre, met)


def _backlash(values: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    """Dead zone: the output stays put while the input is within ``width`` of it, then is dragged along."""
    width = np.broadcast_to(np.asarray(width, np.float64), values.shape)
    out = np.empty_like(values, dtype=np.float64)
    current = values[0]
    for i, v in enumerate(values):
        if v > current + width[i]:
            current = v - width[i]
        elif v < current - width[i]:
            current = v + width[i]
        out[i] = current
    return out


def _triangle(values: np.ndarray, radius: int) -> np.ndarray:
    """Two box filters of radius ``radius // 2`` (a triangle of radius ``radius``), edges repeated."""
    half = radius // 2
    for _ in range(2):
        if half <= 0:
            break
        padded = np.concatenate([[0.0], np.cumsum(np.pad(np.asarray(values, np.float64), half, mode="edge"))])
        values = (padded[2 * half + 1:] - padded[:-2 * half - 1]) / (2 * half + 1)
    return values


def _view_bounds(rule: FramingRule, aspect: float, margin: float) -> np.ndarray:
    """Smallest view height that holds each frame's box with ``margin`` free on every side."""
    box_w = rule.box[:, 2] - rule.box[:, 0]
    box_h = rule.box[:, 3] - rule.box[:, 1]
    return np.maximum(box_h, box_w / aspect) / (1 - 2 * margin)


def _centre_bounds(rule: FramingRule, view_h: np.ndarray, aspect: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Per frame and axis, the centres ``(n, 2)`` lo and hi that keep the box inside the view."""
    half = np.stack([aspect * view_h, view_h], axis=1) / 2
    free = 2 * half * margin
    lo = rule.box[:, 2:] + free - half
    hi = rule.box[:, :2] - free + half
    return lo, hi


def _union_need(rule: FramingRule, aspect: float, margin: float, radius: int) -> np.ndarray:
    """View height that holds the union of the boxes of ``[t - radius, t + radius]`` for every frame ``t``."""
    left, top = rolling(rule.box[:, 0], radius, np.min), rolling(rule.box[:, 1], radius, np.min)
    right, bottom = rolling(rule.box[:, 2], radius, np.max), rolling(rule.box[:, 3], radius, np.max)
    return np.maximum(bottom - top, (right - left) / aspect) / (1 - 2 * margin)


def _slope_limited(values: np.ndarray, slope: float) -> np.ndarray:
    """The smallest curve at or above ``values`` that changes by at most ``slope`` per frame (a forward and a
    backward pass)."""
    out = np.array(values, np.float64, copy=True)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] - slope)
    for i in range(len(out) - 2, -1, -1):
        out[i] = max(out[i], out[i + 1] - slope)
    return out


def _follow_centre(rule: FramingRule, view: np.ndarray, aspect: float, radius: int, settings: FollowSettings
                   ) -> np.ndarray:
    """Centres ``(n, 2)`` for view heights ``view``: dead zone, clamped into the bounds of every frame within
    ``radius``, triangle filter, then into the frame's own bounds."""
    lo, hi = _centre_bounds(rule, view, aspect, settings.margin)
    centre = np.empty((len(view), 2))
    for axis in range(2):
        size = view * (aspect if axis == 0 else 1.0)
        held = _backlash(rule.centre[:, axis], settings.dead_zone * size)
        low, high = rolling(lo[:, axis], radius, np.max), rolling(hi[:, axis], radius, np.min)
        low, high = np.minimum(low, high), np.maximum(low, high)  # they agree by construction; guard rounding
        smooth = _triangle(np.clip(held, low, high), radius)
        centre[:, axis] = np.clip(smooth, lo[:, axis], np.maximum(lo[:, axis], hi[:, axis]))
    return centre


def _rate_limited(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``values (n,)`` moved at most ``steps[t]`` from frame ``t - 1`` to ``t``: the mean of a forward and a
    backward slew limiter (each keeps the bound, so their mean does; one alone would lag or lead)."""
    forward, backward = np.array(values, np.float64, copy=True), np.array(values, np.float64, copy=True)
    for i in range(1, len(values)):
        forward[i] = forward[i - 1] + np.clip(values[i] - forward[i - 1], -steps[i], steps[i])
    for i in range(len(values) - 2, -1, -1):
        backward[i] = backward[i + 1] + np.clip(values[i] - backward[i + 1], -steps[i + 1], steps[i + 1])
    return 0.5 * (forward + backward)


def _short_reversal(values: np.ndarray, still: np.ndarray, min_run: int) -> tuple[int, int] | None:
    """The first run ``(start, stop)`` of steps (step ``i`` goes from frame ``i`` to ``i + 1``) that moves against
    the motion before and after it for fewer than ``min_run`` steps; steps within ``still`` do not count."""
    steps = np.diff(values)
    moving = np.flatnonzero(np.abs(steps) > still[1:])
    if len(moving) < 3:
        return None
    sign = np.sign(steps[moving])
    turns = moving[1:][sign[1:] != sign[:-1]]
    short = np.flatnonzero(np.diff(turns) < min_run)
    return (int(turns[short[0]]), int(turns[short[0] + 1])) if len(short) else None


def without_short_reversals(values: np.ndarray, still: np.ndarray | float, min_run: int = 5,
                            only_up: bool = False) -> np.ndarray:
    """``values (n,)`` with every move against the motion that lasts fewer than ``min_run`` frames (a camera
    that twitches back and forth) held flat instead: the value before it holds until the path passes it
    again. ``only_up``: never lower a value (a view size that must hold a box), so a short move down is held
    at its top and a short move up is kept up from before it. Steps under ``still`` are not moves. No step
    grows, so a bound on the change per frame still holds."""
    out = np.array(values, np.float64, copy=True)
    still = np.broadcast_to(np.asarray(still, np.float64), out.shape)
    for _ in range(len(out)):
        run = _short_reversal(out, still, min_run)
        if run is None:
            break
        start, stop = run
        against = np.sign(out[start + 1] - out[start])
        if only_up and against > 0:  # a short rise: hold its top from the frames before it that lie below
            level, k = out[stop], stop - 1
            while k >= 0 and out[k] < level:
                out[k], k = level, k - 1
        else:  # hold the value before the run until the path is back past it
            level, k = out[start], start + 1
            while k < len(out) and (out[k] - level) * against > 0:
                out[k], k = level, k + 1
    return out


def _view_about(rule: FramingRule, centre: np.ndarray, aspect: float, margin: float) -> np.ndarray:
    """Smallest view height ``(n,)`` centred on ``centre (n, 2)`` that holds each frame's box with ``margin``."""
    half_x = np.maximum(rule.box[:, 2] - centre[:, 0], centre[:, 0] - rule.box[:, 0])
    half_y = np.maximum(rule.box[:, 3] - centre[:, 1], centre[:, 1] - rule.box[:, 1])
    return 2 * np.maximum(half_y, half_x / aspect) / (1 - 2 * margin)


def follow_path(rule: FramingRule, aspect: float, fps: float, settings: FollowSettings = FollowSettings()
                ) -> tuple[np.ndarray, np.ndarray]:
    """A smooth camera that keeps every frame's box in view: view heights ``(n,)`` and centres ``(n, 2)``.

    With ``r`` = ``smoothing_s`` seconds of frames: the view is at least what holds the union of the boxes
    within ``2r`` frames (so the camera widens when the person moves fast instead of jerking), the wanted
    values pass a dead zone, the centre is clamped into the bounds of every frame within ``r``, and both are
    smoothed by a triangle filter of radius ``r``. An average of values that each lie inside a frame's bound
    stays inside it, so the smoothed camera still shows every frame's box.

    No frame moves the camera by more than ``max_change``: the view size is the smallest curve above the
    wanted and needed sizes whose relative change per frame stays within it (the triangle filter keeps that
    bound), and the centre is rate-limited to ``max_change`` of the view per frame. Where the person outruns
    that (a fast walk across a close-up), the view widens by what the slower camera then needs to hold the box.
    A move back and forth within 5 frames (a person bouncing) is held flat (:func:`without_short_reversals`).
    """
    n = len(rule.view_height)
    radius = max(1, min(int(round(settings.smoothing_s * fps)), max(1, (n - 1) // 2)))
    need = np.maximum(_union_need(rule, aspect, settings.margin, 2 * radius), _view_bounds(rule, aspect, settings.margin))
    wanted = _backlash(np.log(rule.view_height), np.log1p(settings.zoom_dead_zone))
    limit = settings.max_change

    def sized(log_needed: np.ndarray) -> np.ndarray:  # a triangle of radius r over values >= need[t] stays >= it
        return np.exp(_triangle(_slope_limited(rolling(log_needed, radius, np.max), limit), radius))

    target = np.maximum(wanted, np.log(need))
    view = sized(target)
    centre = _follow_centre(rule, view, aspect, radius, settings)
    steps = limit * np.stack([aspect * view, view], axis=1)
    centre = np.stack([_rate_limited(centre[:, axis], steps[:, axis]) for axis in range(2)], axis=1)
    still = 1e-3 * np.stack([aspect * view, view], axis=1)  # a thousandth of the view: not a move
    centre = np.stack([without_short_reversals(centre[:, axis], still[:, axis]) for axis in range(2)], axis=1)
    held = _view_about(rule, centre, aspect, settings.margin)
    if np.any(held > view):  # the slower camera lags the person: widen (a wider view only lowers the pan's share)
        view = np.maximum(view, sized(np.maximum(target, np.log(held))))
    view = np.exp(without_short_reversals(np.log(view), 1e-3, only_up=True))
    return view, centre


def locked_path(rule: FramingRule, aspect: float, settings: FollowSettings = FollowSettings()
                ) -> tuple[np.ndarray, np.ndarray]:
    """One fixed framing for the whole shot that holds every good frame's box: view height and centre (2,)."""
    met = rule.met if rule.met.any() else np.ones_like(rule.met)
    view = float(max(np.median(rule.view_height[met]), _view_bounds(rule, aspect, settings.margin)[met].max()))
    lo, hi = _centre_bounds(rule, np.full(len(met), view), aspect, settings.margin)
    low, high = lo[met].max(axis=0), hi[met].min(axis=0)
    wanted = np.median(rule.centre[met], axis=0)
    centre = np.where(low <= high, np.clip(wanted, low, np.maximum(low, high)), 0.5 * (low + high))
    return np.float64(view), centre
