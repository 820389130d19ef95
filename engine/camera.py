"""Camera timelines: keyframes, cuts and shot presets, applied to a pose track (pure functions).

Camera model. The output frame (``width`` x ``height`` pixels) looks at the
source frame of the pose track. At zoom 1 and no pan the whole source frame
fits inside the output, centred (``base = min(out_w / src_w, out_h / src_h)``).
``pan_x``/``pan_y`` move the centre of view, in fractions of the source
width/height (0 = centre, +0.25 = a quarter frame right/down). ``zoom`` scales
about that centre. ``yaw`` orbits the camera about the body's vertical axis (in
degrees), which needs the track's 3D world landmarks.

Timeline semantics. Keyframes and cuts are control points sorted by frame.
Between two keyframes values move with the first one's easing ("linear",
"ease-in-out" or "hold"); a cut changes the values instantly at its frame (the
segment before it holds). Before the first control point the first one's
values hold (the rest camera when it is a cut), after the last the last one's.
Shots are the spans between cuts.

Shot presets. A control point with ``shot`` set to a preset ("close-up",
"medium", "wide") takes zoom and pan from a framing rule evaluated on every
frame of its shot (:mod:`engine.framing`). ``framing: "follow"`` (the default)
moves the camera with the person like an operator: a dead zone, every frame's
required body parts kept in view, smoothed over about half a second either side,
at most 1.8% of the view per frame (a person too fast for that widens the view),
restarting at each cut (cuts stay exact). ``framing: "locked"`` is one fixed
framing over the point's shot (up to the next cut) that shows every frame.
Frames where the rule cannot be met (no person, the framed parts not seen) hold
the last good framing and are listed by :func:`camera_plan` (the studio marks them).

JSON (versioned; version 1 files, without ``framing``, load as "follow")::

    {"version": 2, "width": 512, "height": 512,
     "keyframes": [{"frame": 0, "zoom": 1.0, "pan_x": 0.0, "pan_y": 0.0, "yaw": 0.0, "easing": "linear",
                    "shot": null, "label": null, "framing": "follow"}, ...],
     "cuts": [{"frame": 50, "shot": "close-up", "label": "CU", "framing": "follow"}, ...]}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .errors import UserError
from .files import write_text_atomic
from .framing import FOLLOW, FRAMINGS, LOCKED, FollowSettings, follow_path, locked_path, preset_rule
from .poses.geometry import fit_weak_perspective, rotate_yaw
from .poses.track import BODY, PoseTrack

SCHEMA_VERSION = 2
EASINGS = ("linear", "ease-in-out", "hold")
SHOT_PRESETS = ("close-up", "medium", "wide")
VISIBLE = 0.3


@dataclass(frozen=True)
class Keyframe:
    """Camera values at ``frame``; ``easing`` shapes the move towards the next keyframe."""

    frame: int
    zoom: float = 1.0
    pan_x: float = 0.0
    pan_y: float = 0.0
    yaw: float = 0.0
    easing: str = "linear"
    shot: str | None = None
    label: str | None = None
    framing: str = FOLLOW


@dataclass(frozen=True)
class Cut(Keyframe):
    """An instant change of camera values at ``frame``; it starts a new shot."""


@dataclass(frozen=True)
class CameraState:
    """The camera at one frame."""

    zoom: float
    pan_x: float
    pan_y: float
    yaw: float
    shot: str


@dataclass(frozen=True)
class Shot:
    """Frames ``start`` (inclusive) to ``stop`` (exclusive) between cuts, with their name."""

    index: int
    start: int
    stop: int
    name: str


def _where(kind: str, index: int) -> str:
    return f"{kind}s[{index}]"


def _check_point(point: Keyframe, where: str) -> None:
    if isinstance(point.frame, bool) or not isinstance(point.frame, (int, np.integer)):
        if isinstance(point.frame, float) and math.isnan(point.frame):
            raise UserError(f"{where}.frame is NaN")
        raise UserError(f"{where}.frame must be a whole number, got {point.frame!r}")
    if point.frame < 0:
        raise UserError(f"{where}.frame must be >= 0, got {point.frame}")
    for name in ("zoom", "pan_x", "pan_y", "yaw"):
        value = getattr(point, name)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise UserError(f"{where}.{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{where}.{name} must be a finite number, got {value}")
    if point.zoom <= 0:
        raise UserError(f"{where}.zoom must be > 0, got {point.zoom}")
    if point.shot is None:  # a shot preset's values are worked out from the person, not typed
        from .limits import check_range

        for name in ("zoom", "pan_x", "pan_y", "yaw"):
            check_range(float(getattr(point, name)), name, f"{where}.{name}")
    if point.easing not in EASINGS:
        raise UserError(f"{where}.easing must be one of {', '.join(EASINGS)}, got {point.easing!r}")
    if point.shot is not None and point.shot not in SHOT_PRESETS:
        raise UserError(f"{where}.shot must be one of {', '.join(SHOT_PRESETS)} or null, got {point.shot!r}")
    if point.framing not in FRAMINGS:
        raise UserError(f"{where}.framing must be one of {', '.join(FRAMINGS)}, got {point.framing!r}")


def _parse_aspect(aspect: str) -> float:
    try:
        w, h = (float(v) for v in str(aspect).replace("/", ":").split(":"))
        if w > 0 and h > 0:
            return w / h
    except ValueError:
        pass
    raise UserError(f"aspect must look like '16:9', got {aspect!r}")


@dataclass(frozen=True)
class CameraTimeline:
    """Keyframes, cuts and output size; validated on creation (``UserError`` naming the field and value)."""

    keyframes: tuple[Keyframe, ...] = ()
    cuts: tuple[Cut, ...] = ()
    width: int | None = None
    height: int | None = None
    aspect: str | None = None
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyframes", tuple(self.keyframes))
        object.__setattr__(self, "cuts", tuple(self.cuts))
        if self.version > SCHEMA_VERSION:
            raise UserError(f"camera timeline version {self.version} is newer than this FreeView reads ({SCHEMA_VERSION})")
        for kind, points in (("keyframe", self.keyframes), ("cut", self.cuts)):
            for i, point in enumerate(points):
                _check_point(point, _where(kind, i))
            for i in range(1, len(points)):
                a, b = points[i - 1].frame, points[i].frame
                if b == a:
                    raise UserError(f"{_where(kind, i)}.frame={b} duplicates {_where(kind, i - 1)}.frame")
                if b < a:
                    raise UserError(f"{_where(kind, i)}.frame={b} comes before {_where(kind, i - 1)}.frame={a}: "
                                    f"{kind}s must be sorted by frame")
        key_frames = {k.frame: i for i, k in enumerate(self.keyframes)}
        for i, cut in enumerate(self.cuts):
            if cut.frame in key_frames:
                raise UserError(f"cuts[{i}].frame={cut.frame} duplicates keyframes[{key_frames[cut.frame]}].frame")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2):
                raise UserError(f"{name} must be a whole number >= 2, got {value!r}")
            if value is not None:
                from .limits import check_side

                check_side(value, name)
        if self.aspect is not None:
            _parse_aspect(self.aspect)

    # --- validation against a track -------------------------------------------------------
    def check_frames(self, num_frames: int) -> None:
        """UserError when a keyframe or cut lies beyond a track of ``num_frames`` frames."""
        for kind, points in (("keyframe", self.keyframes), ("cut", self.cuts)):
            for i, point in enumerate(points):
                if point.frame >= num_frames:
                    raise UserError(f"{_where(kind, i)}.frame={point.frame} is beyond the track "
                                    f"({num_frames} frames, last is {num_frames - 1})")

    def output_size(self, track: PoseTrack) -> tuple[int, int]:
        """Output (width, height): explicit, else from ``aspect`` at the track's height, else the track's size."""
        if self.width and self.height:
            return int(self.width), int(self.height)
        if self.aspect:
            ratio = _parse_aspect(self.aspect)
            if self.width:
                return int(self.width), max(2, int(round(self.width / ratio / 2)) * 2)
            height = int(self.height or track.height)
            return max(2, int(round(height * ratio / 2)) * 2), height
        return int(self.width or track.width), int(self.height or track.height)

    # --- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": SCHEMA_VERSION, "width": self.width, "height": self.height, "aspect": self.aspect,
            "keyframes": [asdict(k) for k in self.keyframes], "cuts": [asdict(c) for c in self.cuts],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> "CameraTimeline":
        if not isinstance(data, dict):
            raise UserError(f"a camera timeline must be a JSON object, got {type(data).__name__}")
        known = {"version", "width", "height", "aspect", "keyframes", "cuts"}
        unknown = set(data) - known
        if unknown:
            raise UserError(f"unknown camera timeline field(s): {', '.join(sorted(unknown))}")
        point_fields = {f.name for f in fields(Keyframe)}

        def points(kind: str, cls_):
            items = data.get(kind + "s") or []
            if not isinstance(items, list):
                raise UserError(f"{kind}s must be a list, got {items!r}")
            out = []
            for i, item in enumerate(items):
                if not isinstance(item, dict) or "frame" not in item:
                    raise UserError(f"{_where(kind, i)} must be an object with a 'frame', got {item!r}")
                extra = set(item) - point_fields
                if extra:
                    raise UserError(f"{_where(kind, i)}: unknown field(s) {', '.join(sorted(extra))}")
                item = dict(item)
                if isinstance(item["frame"], float) and item["frame"].is_integer():
                    item["frame"] = int(item["frame"])
                out.append(cls_(**item))
            return tuple(out)

        from .limits import check_int

        return cls(points("keyframe", Keyframe), points("cut", Cut), data.get("width"), data.get("height"),
                   data.get("aspect"), check_int(data.get("version", SCHEMA_VERSION), "version", low=0))

    @classmethod
    def from_json(cls, text: str) -> "CameraTimeline":
        from .files import parse_json

        return cls.from_dict(parse_json(text, "camera timeline"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CameraTimeline":
        from .files import read_json

        path = Path(path)
        data = read_json(path, "camera timeline")
        try:
            return cls.from_dict(data)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"{path}: not a valid camera timeline ({exc})") from None

    def save(self, path: str | os.PathLike) -> Path:
        write_text_atomic(path, self.to_json())
        return Path(path)


# --- shot presets -----------------------------------------------------------------------------------

def _frame_span(track: PoseTrack, frame_or_range) -> tuple[int, int]:
    if isinstance(frame_or_range, (tuple, list, range)):
        start, stop = (frame_or_range.start, frame_or_range.stop) if isinstance(frame_or_range, range) else frame_or_range
        start, stop = max(0, int(start)), min(len(track), int(stop))
        if stop <= start:
            raise UserError(f"empty frame range {frame_or_range!r} for a track of {len(track)} frames")
        return start, stop
    frame = int(frame_or_range)
    if not 0 <= frame < len(track):
        raise UserError(f"frame {frame} is beyond the track ({len(track)} frames)")
    return frame, frame + 1


def _check_preset(name: str) -> None:
    if name not in SHOT_PRESETS:
        raise UserError(f"unknown shot preset {name!r}; expected one of {', '.join(SHOT_PRESETS)}")


def _rule(track: PoseTrack, start: int, stop: int, name: str):
    return preset_rule(track.keypoints[start:stop, BODY], track.width, track.height, name, track.fps,
                       track.detected[start:stop])


def _to_camera(view_h, centre, track: PoseTrack, out_w: int, out_h: int) -> np.ndarray:
    """View heights ``(n,)`` and centres ``(n, 2)`` (source pixels) -> zoom, pan_x, pan_y ``(n, 3)``."""
    base = min(out_w / track.width, out_h / track.height)
    zoom = out_h / (np.asarray(view_h, np.float64) * base)
    centre = np.asarray(centre, np.float64).reshape(-1, 2)
    return np.stack([np.broadcast_to(zoom, len(centre)), centre[:, 0] / track.width - 0.5,
                     centre[:, 1] / track.height - 0.5], axis=1)


def preset_framing(track: PoseTrack, start: int, stop: int, name: str, framing: str = FOLLOW,
                   width: int | None = None, height: int | None = None,
                   settings: FollowSettings = FollowSettings()) -> tuple[np.ndarray, np.ndarray]:
    """Zoom, pan_x, pan_y per frame ``(stop - start, 3)`` of preset ``name`` over frames ``[start, stop)``, and the
    frames ``(stop - start,)`` where its rule is met. ``framing``: "follow" (per frame, smoothed) or "locked"."""
    _check_preset(name)
    out_w, out_h = width or track.width, height or track.height
    rule = _rule(track, start, stop, name)
    if not rule.met.any():
        raise UserError(f"cannot frame a {name} shot over frames {start}-{stop - 1}: the person "
                        f"({'head, shoulders and hips' if name != 'close-up' else 'head and shoulders'}) is not seen there")
    aspect = out_w / out_h
    if framing == LOCKED:
        view, centre = locked_path(rule, aspect, settings)
        values = np.repeat(_to_camera(view, centre, track, out_w, out_h), stop - start, axis=0)
    else:
        view, centre = follow_path(rule, aspect, track.fps, settings)
        values = _to_camera(view, centre, track, out_w, out_h)
    return values, rule.met


def shot_preset(track: PoseTrack, frame_or_range, name: str, width: int | None = None, height: int | None = None,
                margin: float = 0.04) -> Keyframe:
    """Zoom and pan that frame ``name`` ("close-up" | "medium" | "wide") for the pose at a frame or over a range.

    close-up shows head and shoulders and ends above the hips; medium shows the
    body from the head to the waist and ends above the knees; wide shows the
    full body. Over a range it is the locked framing (one camera that shows every
    frame). ``width``/``height`` are the output size (default: the track's).
    Returns a :class:`Keyframe` at the first frame with ``shot=name`` and ``framing="locked"``.
    """
    _check_preset(name)
    start, stop = _frame_span(track, frame_or_range)
    values, _ = preset_framing(track, start, stop, name, LOCKED, width, height, FollowSettings(margin=margin))
    zoom, pan_x, pan_y = (float(v) for v in values[0])
    return Keyframe(frame=start, zoom=zoom, pan_x=pan_x, pan_y=pan_y, shot=name, framing=LOCKED)


# --- evaluating a timeline -------------------------------------------------------------------------

def _control_points(timeline: CameraTimeline) -> list[Keyframe]:
    return sorted(list(timeline.keyframes) + list(timeline.cuts), key=lambda p: p.frame)


def list_shots(timeline: CameraTimeline, num_frames: int) -> list[Shot]:
    """The shots (spans between cuts) of a track of ``num_frames`` frames, each named by its first named point."""
    bounds = [0] + [c.frame for c in timeline.cuts if 0 < c.frame < num_frames] + [num_frames]
    points = _control_points(timeline)
    shots = []
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        inside = [p for p in points if start <= p.frame < stop] or [p for p in points if p.frame < start][-1:]
        names = [p.label or p.shot for p in inside if p.label or p.shot]
        shots.append(Shot(i, start, stop, names[0] if names else f"shot {i + 1}"))
    return shots


@dataclass(frozen=True)
class CameraPlan:
    """A timeline evaluated on a track: ``curves (frames, 4)`` zoom, pan_x, pan_y, yaw; the shot name of every
    frame; and ``unmet`` frames where a shot preset in use could not be framed (they hold the last good framing)."""

    curves: np.ndarray
    names: list[str]
    unmet: tuple[int, ...]


_FRAMINGS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # preset framings by (poses, shot span, rule, size)


def _framing(track: PoseTrack, track_key: tuple, start: int, stop: int, shot: str, framing: str, out_w: int,
             out_h: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`preset_framing`, kept for the last few shots: an edit elsewhere in the timeline (a zoom keyframe, a
    label) does not change a preset's framing, so an editor need not frame it again."""
    key = (track_key, start, stop, shot, framing, out_w, out_h)
    if key not in _FRAMINGS:
        while len(_FRAMINGS) >= 32:
            _FRAMINGS.pop(next(iter(_FRAMINGS)))
        _FRAMINGS[key] = preset_framing(track, start, stop, shot, framing, out_w, out_h)
    return _FRAMINGS[key]


def _point_values(timeline: CameraTimeline, track: PoseTrack, points: list[Keyframe],
                  track_key: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each control point's camera values at every frame ``(points, frames, 4)`` (constant unless it is a preset:
    then its rule over its shot, edges held), and per point the frames ``(points, frames)`` its rule misses."""
    out_w, out_h = timeline.output_size(track)
    n = len(track)
    cut_frames = sorted({c.frame for c in timeline.cuts if 0 < c.frame < n})
    values = np.empty((len(points), n, 4))
    missed = np.zeros((len(points), n), bool)
    for k, p in enumerate(points):
        values[k] = [p.zoom, p.pan_x, p.pan_y, p.yaw]
        if p.shot is None:
            continue
        start = max([0] + [f for f in cut_frames if f <= p.frame])
        if p.framing == LOCKED:
            start = p.frame
        stop = min([n] + [f for f in cut_frames if f > p.frame])
        track_key = track_key or _track_key(track)
        framing, met = _framing(track, track_key, start, stop, p.shot, p.framing, out_w, out_h)
        values[k, :, :3] = np.concatenate([np.repeat(framing[:1], start, 0), framing,
                                           np.repeat(framing[-1:], n - stop, 0)])
        missed[k, start:stop] = ~met
    return values, missed


def _ease(u: np.ndarray, easing: np.ndarray) -> np.ndarray:
    smooth = u * u * (3.0 - 2.0 * u)
    return np.select([easing == 0, easing == 1], [u, smooth], default=np.zeros_like(u))


_PLANS: dict[tuple, CameraPlan] = {}  # the last few plans: an editor asks for the same one several times per edit


def _track_key(track: PoseTrack) -> tuple:
    import hashlib

    digest = hashlib.sha1(np.ascontiguousarray(track.keypoints).tobytes())
    if track.detected is not None:
        digest.update(np.ascontiguousarray(track.detected).tobytes())
    return digest.hexdigest(), track.width, track.height, float(track.fps)


def camera_plan(timeline: CameraTimeline, track: PoseTrack) -> CameraPlan:
    """Evaluate ``timeline`` on every frame of ``track`` (presets framed from the track's pose).

    Pure, so the last few plans are kept: asking again for the same timeline on the same poses costs a hash."""
    key = (timeline, _track_key(track))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _evaluate(timeline, track, key[1])
        while len(_PLANS) >= 8:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return CameraPlan(plan.curves.copy(), list(plan.names), plan.unmet)  # callers may change what they get


def _evaluate(timeline: CameraTimeline, track: PoseTrack, track_key: tuple | None = None) -> CameraPlan:
    timeline.check_frames(len(track))
    n = len(track)
    points = _control_points(timeline)
    if points and isinstance(points[0], Cut) and points[0].frame > 0:
        points.insert(0, Keyframe(0))  # before the first cut the camera is at rest
    shots = list_shots(timeline, n)
    if not points:
        curves = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (n, 1))
        return CameraPlan(curves, [s.name for s in shots for _ in range(s.start, s.stop)], ())
    values, missed = _point_values(timeline, track, points, track_key)
    frames = np.array([p.frame for p in points])
    easing = np.array([EASINGS.index(p.easing) for p in points])
    is_cut = np.array([isinstance(p, Cut) for p in points])
    t = np.arange(n)
    i = np.searchsorted(frames, t, side="right") - 1  # the control point at or before each frame
    i0 = np.clip(i, 0, len(points) - 1)
    i1 = np.clip(i + 1, 0, len(points) - 1)
    span = np.maximum(frames[i1] - frames[i0], 1)
    u = np.clip((t - frames[i0]) / span, 0.0, 1.0)
    e = _ease(u, easing[i0])
    e = np.where((i < 0) | (i >= len(points) - 1) | is_cut[i1], 0.0, e)
    v0, v1 = values[i0, t], values[i1, t]
    curves = v0 + (v1 - v0) * e[:, None]
    in_use = missed[i0, t] | (missed[i1, t] & (e > 0))
    # Shot name per frame: the latest named point of the current shot, else the shot's name.
    names = []
    for shot in shots:
        named = [(p.frame, p.label or p.shot) for p in points if (p.label or p.shot) and shot.start <= p.frame < shot.stop]
        for f in range(shot.start, shot.stop):
            current = [name for pf, name in named if pf <= f]
            names.append(current[-1] if current else shot.name)
    return CameraPlan(curves, names, tuple(int(f) for f in np.flatnonzero(in_use)))


def camera_curves(timeline: CameraTimeline, track: PoseTrack) -> tuple[np.ndarray, list[str]]:
    """Per-frame camera values ``(frames, 4)`` (zoom, pan_x, pan_y, yaw) and shot names for every frame of ``track``."""
    plan = camera_plan(timeline, track)
    return plan.curves, plan.names


def camera_at(timeline: CameraTimeline, frame: int, track: PoseTrack) -> CameraState:
    """The camera at ``frame`` of ``track`` (presets resolved from the track's pose)."""
    if not 0 <= frame < len(track):
        raise UserError(f"frame {frame} is beyond the track ({len(track)} frames)")
    curves, names = camera_curves(timeline, track)
    zoom, pan_x, pan_y, yaw = (float(v) for v in curves[frame])
    return CameraState(zoom, pan_x, pan_y, yaw, names[frame])


def _orbit(track: PoseTrack, yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(frames, 128, 3)`` and world after orbiting by ``yaw (frames,)`` degrees (weak perspective)."""
    if track.world is None:
        first = int(np.flatnonzero(yaw != 0)[0])
        raise UserError(f"the camera timeline orbits (yaw {yaw[first]:g} degrees at frame {first}) but the pose track "
                        "has no 3D world landmarks; extract poses from video or photos with `freeview pose extract`, "
                        "or set yaw to 0")
    size = np.array([track.width, track.height], np.float32)
    px = track.keypoints[..., :2] * size
    weights = np.where(track.keypoints[:, BODY, 2] > VISIBLE, track.keypoints[:, BODY, 2], 0.0)
    s, t, ok = fit_weak_perspective(px[:, BODY], track.world[:, BODY], weights)
    world = rotate_yaw(track.world, yaw)
    orbited = s[:, None, None] * world[..., :2] + t[:, None, :]
    keypoints = track.keypoints.copy()
    move = ok & (yaw != 0)
    keypoints[move, :, :2] = orbited[move] / size
    # A point turned to face away from the camera is still drawn: OpenPose-style poses have no occlusion.
    return keypoints, world


def apply_camera(track: PoseTrack, timeline: CameraTimeline) -> PoseTrack:
    """The target pose track seen through the camera: ``(frames, 128, 3)`` at the timeline's output size.

    Keypoints that leave the output frame get confidence 0. Vectorised over frames.
    """
    curves, _ = camera_curves(timeline, track)
    out_w, out_h = timeline.output_size(track)
    zoom, pan_x, pan_y, yaw = curves.T
    keypoints, world = track.keypoints, track.world
    if np.any(yaw != 0):
        keypoints, world = _orbit(track, yaw)
    base = min(out_w / track.width, out_h / track.height)
    scale = (zoom * base)[:, None]
    src = keypoints[..., :2] * np.array([track.width, track.height], np.float32)
    centre = np.stack([(0.5 + pan_x) * track.width, (0.5 + pan_y) * track.height], axis=-1)[:, None, :]
    out_px = (src - centre) * scale[..., None] + np.array([out_w / 2, out_h / 2])
    xy = out_px / np.array([out_w, out_h])
    inside = (xy >= 0).all(axis=-1) & (xy <= 1).all(axis=-1)
    conf = np.where(inside, keypoints[..., 2], 0.0)
    out = np.concatenate([xy, conf[..., None]], axis=-1).astype(np.float32)
    return PoseTrack(out, out_w, out_h, track.fps, world, track.detected.copy())
