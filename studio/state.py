"""The studio's per-user project and the pure transforms the UI applies to it.

Every function here takes a :class:`Project` and returns a new one (never
mutates), so a handler that fails half-way leaves the user's work as it was.
Nothing here imports gradio.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from engine.animate import AnimateSettings, Reference, load_motion, load_reference, shot_scale
from engine.camera import CameraTimeline, Cut, Keyframe, camera_at, camera_curves, camera_plan, list_shots, shot_preset
from engine.errors import UserError
from engine.files import atomic_path, parse_json
from engine.limits import RANGES as LIMITS
from engine.poses import (BODY, FollowReport, GapReport, PoseTrack, retarget, spans_text, track_from_native,
                          track_to_native)

PROJECT_FORMAT = "freeview-project"
PROJECT_VERSION = 1
VISIBLE = 0.3


@dataclass
class RefEntry:
    """A reference photo in the gallery, with what the studio noticed about it."""

    reference: Reference
    warning: str | None = None

    @property
    def shot(self) -> str:
        return self.reference.shot


@dataclass(frozen=True)
class History:
    """The edit history: undo and redo stacks of ``(what, project)`` snapshots, newest last.

    Snapshots are whole projects (without their own history); they share the unchanged parts
    (photos, motion) with the projects around them, so a step costs a few references, not a copy.
    """

    past: tuple = ()
    future: tuple = ()


HISTORY_LIMIT = 200


@dataclass
class Project:
    """Everything the user makes: references, motion, camera plan, generate settings."""

    references: list[RefEntry] = field(default_factory=list)
    motion: PoseTrack | None = None          # the whole loaded motion (trim is applied by :func:`working_track`)
    motion_name: str = ""
    trim: tuple[int, int] = (0, 0)            # [start, stop) into ``motion``
    retarget: bool = False
    timeline: CameraTimeline = field(default_factory=CameraTimeline)
    selected: tuple[str, int] | None = None   # ("keyframe" | "cut", frame) being edited
    frame: int = 0                            # the scrubber's frame (in the trimmed track)
    settings: dict = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    history: History = field(default_factory=History)


# -- edit history ------------------------------------------------------------------------------------

def _content(project: Project) -> tuple:
    """What an edit can change (the scrubber, the selection and the outputs are not edits)."""
    return (tuple(id(e) for e in project.references), id(project.motion), project.motion_name, project.trim,
            project.retarget, project.timeline, json.dumps(project.settings, sort_keys=True, default=str))


def is_edit(before: Project, after: Project) -> bool:
    return _content(before) != _content(after)


def record(before: Project, after: Project, what: str, merge: bool = False) -> Project:
    """``after``, with ``before`` on its undo stack when the step changed the project (redo is cleared then).

    ``merge``: when the last step was the same (``what`` equal), this one joins it, so typing a number
    digit by digit is one step to undo.
    """
    if not is_edit(before, after):
        return replace(after, history=before.history)
    if merge and before.history.past and before.history.past[-1][0] == what and not before.history.future:
        return replace(after, history=before.history)
    past = (before.history.past + ((what, replace(before, history=History())),))[-HISTORY_LIMIT:]
    return replace(after, history=History(past, ()))


def undo(project: Project) -> tuple[Project, str]:
    """The project before its last edit, and what that edit was; results made since are kept."""
    if not project.history.past:
        raise UserError("nothing to undo")
    what, previous = project.history.past[-1]
    future = project.history.future + ((what, replace(project, history=History())),)
    return replace(previous, outputs=project.outputs, history=History(project.history.past[:-1], future)), what


def redo(project: Project) -> tuple[Project, str]:
    """The project with the last undone edit applied again, and what it was."""
    if not project.history.future:
        raise UserError("nothing to redo")
    what, following = project.history.future[-1]
    past = project.history.past + ((what, replace(project, history=History())),)
    return replace(following, outputs=project.outputs, history=History(past, project.history.future[:-1])), what


def history_note(project: Project) -> str:
    """'Undo: move keyframe · Redo: …' for the buttons' tooltips and the status line."""
    parts = []
    if project.history.past:
        parts.append(f"undo: {project.history.past[-1][0]}")
    if project.history.future:
        parts.append(f"redo: {project.history.future[-1][0]}")
    return " · ".join(parts)


# -- references ------------------------------------------------------------------------------------

def add_reference(project: Project, reference: Reference, warning: str | None = None) -> Project:
    return replace(project, references=project.references + [RefEntry(reference, warning)])


def remove_reference(project: Project, index: int) -> Project:
    if not 0 <= index < len(project.references):
        raise UserError("select a reference in the gallery first")
    refs = list(project.references)
    del refs[index]
    return replace(project, references=refs)


def move_reference(project: Project, index: int, offset: int) -> tuple[Project, int]:
    """Swap reference ``index`` with its neighbour ``index + offset``; returns the project and its new index."""
    if not 0 <= index < len(project.references):
        raise UserError("select a reference in the gallery first")
    target = min(max(index + offset, 0), len(project.references) - 1)
    refs = list(project.references)
    refs[index], refs[target] = refs[target], refs[index]
    return replace(project, references=refs), target


def suggest_reference_frames(track: PoseTrack, count: int = 3, threshold: float = VISIBLE) -> list[int]:
    """Frames of a video whose poses together cover the body best at different shot scales.

    Greedy set cover: each pick maximises (newly covered body joints + a bonus for a
    shot scale not picked yet), ties broken by total joint confidence. Frames
    without a person are never picked. Returns frame indices in pick order.
    """
    body = track.keypoints[:, BODY]
    seen = body[..., 2] > threshold                       # (frames, 18)
    candidates = [i for i in range(len(track)) if track.detected[i] and seen[i].any()]
    shots = {i: shot_scale(track.keypoints[i], threshold) for i in candidates}
    confidence = body[..., 2].sum(axis=1)
    covered = np.zeros(seen.shape[1], bool)
    used_shots: set[str] = set()
    picks: list[int] = []
    for _ in range(min(count, len(candidates))):
        best, best_score = None, None
        for i in candidates:
            if i in picks:
                continue
            gain = int((seen[i] & ~covered).sum()) + (4 if shots[i] not in used_shots else 0)
            score = (gain, float(confidence[i]))
            if best_score is None or score > best_score:
                best, best_score = i, score
        if best is None or (best_score[0] == 0 and picks):
            break
        picks.append(best)
        covered |= seen[best]
        used_shots.add(shots[best])
    return picks


def suggestion_note(track: PoseTrack, picks: list[int], count: int, threshold: float = VISIBLE) -> str:
    """Why :func:`suggest_reference_frames` found fewer than ``count`` frames ('' when it found them all)."""
    if len(picks) >= count:
        return ""
    seen = track.keypoints[:, BODY, 2] > threshold
    with_person = int(sum(1 for i in range(len(track)) if track.detected[i] and seen[i].any()))
    if with_person <= len(picks):
        return (f"only {with_person} of the video's {len(track)} frames show a person" if with_person
                else f"none of the video's {len(track)} frames shows a person")
    return (f"the other {with_person - len(picks)} frames with a person add no body part and no shot scale "
            "the picked ones lack (a closer or a wider shot in the video would add one)")


# -- motion ------------------------------------------------------------------------------------------

LOST_FILLS = {"interpolated": "interpolated between their own poses around the gap",
              "held": "held from the nearest frame they are seen in",
              "empty": "left out (no pose is drawn: over a second without them)"}


def lost_note(follow: FollowReport, gaps: GapReport | None) -> str:
    """The frames where the followed person is not seen and what the motion holds there ('' when never lost),
    from :func:`engine.animate.load_motion`'s ``report`` (``gaps``: what filled those frames, when known)."""
    spans = follow.lost_spans()
    if not spans:
        return ""
    who = f"Person {follow.person}" if follow.people_at_start > 1 else "The person"
    n = len(follow.lost)
    plural = "s" if n > 1 else ""
    note = f"{who} is not seen in frame{plural} {spans_text(spans)} ({n} frame{plural}); nobody else is taken there"
    counts = Counter(gaps.how(frame) for frame in follow.lost) if gaps is not None else Counter()
    parts = [f"{LOST_FILLS[how]} in {k} frame{'s' if k > 1 else ''}" for how in LOST_FILLS if (k := counts[how])]
    if not parts:
        return note + "."
    return note + ": their pose is " + (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") + parts[-1] + "."


def set_motion(project: Project, track: PoseTrack, name: str) -> Project:
    """A new motion: the whole track, the scrubber at 0; keyframes beyond the track are dropped."""
    project = replace(project, motion=track, motion_name=name, trim=(0, len(track)), frame=0, selected=None)
    return replace(project, timeline=_clip_timeline(project.timeline, len(track)))


def set_trim(project: Project, start: int, stop: int) -> Project:
    if project.motion is None:
        raise UserError("load a motion first")
    n = len(project.motion)
    start, stop = int(start), int(stop)
    start = min(max(start, 0), n - 1)
    stop = min(max(stop, start + 1), n)
    length = stop - start
    return replace(project, trim=(start, stop), frame=min(project.frame, length - 1),
                   timeline=_clip_timeline(project.timeline, length))


def _clip_timeline(timeline: CameraTimeline, frames: int) -> CameraTimeline:
    return replace(timeline, keyframes=tuple(k for k in timeline.keyframes if k.frame < frames),
                   cuts=tuple(c for c in timeline.cuts if c.frame < frames))


def working_track(project: Project) -> PoseTrack:
    """The motion as the camera sees it: trimmed, and retargeted to the first reference when asked."""
    if project.motion is None:
        raise UserError("load a motion first (Motion tab)")
    track = project.motion.slice(*project.trim)
    if project.retarget and project.references:
        ref = project.references[0].reference
        track = retarget(track, PoseTrack(ref.keypoints[None], ref.image.shape[1], ref.image.shape[0]))
    return track


# -- camera timeline -----------------------------------------------------------------------------------

# every field of a control point, so an edit or a move keeps the ones the studio does not show (framing, ...)
POINT_FIELDS = tuple(f.name for f in fields(Keyframe))


def _points(timeline: CameraTimeline, kind: str) -> tuple[Keyframe, ...]:
    return timeline.keyframes if kind == "keyframe" else timeline.cuts


def _with_points(timeline: CameraTimeline, kind: str, points) -> CameraTimeline:
    points = tuple(sorted(points, key=lambda p: p.frame))
    return replace(timeline, keyframes=points) if kind == "keyframe" else replace(timeline, cuts=points)


def _check_kind(kind: str) -> None:
    if kind not in ("keyframe", "cut"):
        raise ValueError(f"unknown control point kind {kind!r}; expected 'keyframe' or 'cut'")


def find_point(timeline: CameraTimeline, kind: str, frame: int) -> Keyframe | None:
    return next((p for p in _points(timeline, kind) if p.frame == frame), None)


def _check_free(timeline: CameraTimeline, frame: int, ignore: tuple[str, int] | None = None) -> None:
    for kind in ("keyframe", "cut"):
        if find_point(timeline, kind, frame) is not None and ignore != (kind, frame):
            raise UserError(f"frame {frame} already has a {kind}; move or delete it first")


def put_point(project: Project, kind: str, frame: int, values: dict | None = None,
              replace_frame: int | None = None) -> Project:
    """Add a keyframe or cut at ``frame`` (or move/edit the one at ``replace_frame``).

    New points start from the camera at that frame (so adding one changes nothing
    until its values are edited); ``values`` override fields. Conflicts (two points
    on one frame) raise :class:`UserError` and leave the project unchanged.
    """
    _check_kind(kind)
    track = working_track(project)
    frame = int(frame)
    if not 0 <= frame < len(track):
        raise UserError(f"frame {frame} is outside the motion (0..{len(track) - 1})")
    timeline = project.timeline
    old = find_point(timeline, kind, replace_frame) if replace_frame is not None else None
    _check_free(timeline, frame, ignore=(kind, replace_frame) if old is not None else None)
    if old is not None:
        base = {name: getattr(old, name) for name in POINT_FIELDS}
        rest = [p for p in _points(timeline, kind) if p.frame != replace_frame]
    else:
        state = camera_at(timeline, frame, track)
        base = {"zoom": state.zoom, "pan_x": state.pan_x, "pan_y": state.pan_y, "yaw": state.yaw,
                "easing": "linear", "shot": None, "label": None}
        rest = list(_points(timeline, kind))
    base.update(values or {})
    base["frame"] = frame
    if base.get("shot") in ("", "none", None):
        base["shot"] = None
    if not base.get("label"):
        base["label"] = None
    cls = Keyframe if kind == "keyframe" else Cut
    point = cls(**{name: base[name] for name in POINT_FIELDS if name in base})
    new_timeline = _with_points(timeline, kind, rest + [point])  # CameraTimeline validates every field
    new_timeline.check_frames(len(track))
    return replace(project, timeline=new_timeline, selected=(kind, frame), frame=frame)


def delete_point(project: Project, kind: str, frame: int) -> Project:
    _check_kind(kind)
    if find_point(project.timeline, kind, frame) is None:
        raise UserError(f"there is no {kind} at frame {frame}")
    points = [p for p in _points(project.timeline, kind) if p.frame != frame]
    return replace(project, timeline=_with_points(project.timeline, kind, points), selected=None)


def add_preset(project: Project, name: str, kind: str) -> Project:
    """A shot preset (wide / medium / close-up) as a keyframe or a cut at the scrubber's frame.

    The zoom and pan at this frame are resolved now (so the form shows them) and the ``shot`` name is kept: the
    camera follows the person with that framing rule (engine.camera's "follow" framing) over the shot.
    """
    track = working_track(project)
    frame = project.frame
    preset = shot_preset(track, frame, name)
    values = {"zoom": preset.zoom, "pan_x": preset.pan_x, "pan_y": preset.pan_y, "shot": name, "label": name,
              "easing": "ease-in-out" if kind == "keyframe" else "linear"}
    existing = find_point(project.timeline, kind, frame)
    return put_point(project, kind, frame, values, replace_frame=frame if existing is not None else None)


def timeline_payload(project: Project, strip: str = "", play: dict | None = None) -> str:
    """The timeline component's value: JSON the browser draws and edits (``play``: what its player draws)."""
    n = len(working_track(project)) if project.motion is not None else 0
    data = {
        "n": n, "frame": project.frame, "fps": project.motion.fps if project.motion is not None else 25.0,
        "keyframes": [{"frame": k.frame, "label": k.label or k.shot or f"{k.zoom:.2g}x"} for k in project.timeline.keyframes],
        "cuts": [{"frame": c.frame, "label": c.label or c.shot or "cut"} for c in project.timeline.cuts],
        "selected": {"kind": project.selected[0], "frame": project.selected[1]} if project.selected else None,
        "strip": strip,
        "play": play,
        "unmet": unmet_frames(project),
    }
    return json.dumps(data, separators=(",", ":"))


def unmet_frames(project: Project) -> list[int]:
    """Frames where a shot preset of the timeline cannot frame the person (the timeline marks them)."""
    if project.motion is None:
        return []
    try:
        return list(camera_plan(project.timeline, working_track(project)).unmet)
    except UserError:
        return []


def apply_timeline_payload(project: Project, payload: str) -> Project:
    """Apply what the browser did to the timeline: ``{"op": "add"|"move"|"delete"|"select"|"scrub", ...}``.

    The browser never edits values, only frames, so each edit maps to one :func:`put_point` call.
    """
    data = parse_json(payload or "{}", "the timeline's edit")
    if not isinstance(data, dict):
        raise UserError("the timeline sent an unreadable edit; try again")
    edit = data.get("edit") or {}
    op = edit.get("op")
    frame = int(data.get("frame", project.frame))
    if op is None or op == "scrub":
        return replace(project, frame=max(0, min(frame, len(working_track(project)) - 1)))
    kind = edit.get("kind", "keyframe")
    if op == "add":
        return put_point(project, kind, int(edit["frame"]))
    if op == "move":
        if int(edit["from"]) == int(edit["frame"]):
            return replace(project, selected=(kind, int(edit["frame"])), frame=int(edit["frame"]))
        return put_point(project, kind, int(edit["frame"]), replace_frame=int(edit["from"]))
    if op == "delete":
        return delete_point(project, kind, int(edit["frame"]))
    if op == "select":
        return replace(project, selected=(kind, int(edit["frame"])), frame=int(edit["frame"]))
    raise UserError(f"unknown timeline edit {op!r}")


def timeline_edit_name(payload: str) -> str:
    """What a timeline edit does, in words, for the edit history ('' for a scrub or a selection)."""
    try:
        edit = parse_json(payload or "{}", "the timeline's edit").get("edit") or {}
    except (UserError, AttributeError):
        return ""
    kind, op = edit.get("kind", "keyframe"), edit.get("op")
    if op == "add":
        return f"add {kind} at frame {edit.get('frame')}"
    if op == "move":
        return f"move {kind} {edit.get('from')} → {edit.get('frame')}"
    if op == "delete":
        return f"delete {kind} at frame {edit.get('frame')}"
    return ""


# -- checked ranges: every number a user types -------------------------------------------------------------

# What each field is called; its range is the engine's own (engine.limits.RANGES), so the studio refuses exactly
# what the engine would.
_FIELDS = {"zoom": "Zoom", "pan_x": "Pan x", "pan_y": "Pan y", "yaw": "Yaw orbit", "steps": "Steps",
           "guidance": "Guidance", "top_k": "Top-K", "clip_frames": "Clip length", "overlap": "Clip overlap",
           "seed": "Seed", "width": "Width", "height": "Height"}
RANGES = {name: (label, *LIMITS[{"width": "side", "height": "side"}.get(name, name)]) for name, label in _FIELDS.items()}


def range_help(name: str, extra: str = "") -> str:
    """The one-line help a field shows: its range (and ``extra``)."""
    label, low, high = RANGES[name]
    text = f"{low:g} to {high:g}" if name != "seed" else f"0 to {high}"
    return f"{text}{' · ' + extra if extra else ''}"


def check_number(name: str, value, *, whole: bool = False) -> float | int:
    """``value`` as a number inside ``RANGES[name]``; otherwise one :class:`UserError` naming the field."""
    label, low, high = RANGES[name]
    if whole and isinstance(value, int) and not isinstance(value, bool):  # exact, even past 2**53 (seeds)
        if not low <= value <= high:
            raise UserError(f"{label} must be between {low:g} and {high:g}, got {value}")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{label} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise UserError(f"{label} must be a finite number, got {value}")
    if whole and not number.is_integer():
        raise UserError(f"{label} must be a whole number, got {number:g}")
    if not low <= number <= high:
        raise UserError(f"{label} must be between {low:g} and {high:g}, got {number:g}")
    return int(number) if whole else number


# -- the inspector: every field of the selected point; "Set" changes only what was edited ------------------------

INSPECTOR_FIELDS = ("frame", "zoom", "pan_x", "pan_y", "yaw", "easing", "shot", "label")
NO_SHOT = "none"
_DECIMALS = {"zoom": 3, "pan_x": 3, "pan_y": 3, "yaw": 2}


def inspector_values(project: Project, curves: np.ndarray | None = None) -> dict:
    """What the inspector shows: the selected point (its framing as the camera resolves it), or the camera
    at the scrubber's frame when nothing is selected (then "Set" adds a point there).

    Keys: ``kind``, ``selected`` (bool) and :data:`INSPECTOR_FIELDS`; numbers rounded as the form shows them.
    """
    track = working_track(project)
    if curves is None:
        curves, _ = camera_curves(project.timeline, track)
    point = find_point(project.timeline, *project.selected) if project.selected else None
    kind = project.selected[0] if point is not None else "keyframe"
    frame = point.frame if point is not None else min(project.frame, len(track) - 1)
    values = {name: round(float(v), _DECIMALS[name]) for name, v in zip(("zoom", "pan_x", "pan_y", "yaw"), curves[frame])}
    return {"kind": kind, "selected": point is not None, "frame": frame, **values,
            "easing": point.easing if point is not None else "linear",
            "shot": (point.shot or NO_SHOT) if point is not None else NO_SHOT,
            "label": (point.label or "") if point is not None else ""}


def _differs(name: str, shown, typed) -> bool:
    if name in _DECIMALS or name == "frame":
        return abs(float(typed) - float(shown)) > 1e-9
    return (typed or "") != (shown or "")


def edit_point(project: Project, kind: str, form: dict) -> Project:
    """Apply the inspector's "Set": only the fields whose value differs from what the inspector showed change.

    ``form``: the inspector's values by :data:`INSPECTOR_FIELDS` name. Numbers are range-checked
    (:func:`check_number`) first. Editing zoom or pan of a point framed by a shot rule keeps the
    framing it had at that frame for the fields not edited and turns the rule off (a rule would
    override the typed value); choosing a shot rule frames the point by it.
    """
    _check_kind(kind)
    shown = inspector_values(project)
    checked = dict(form)
    for name in ("zoom", "pan_x", "pan_y", "yaw"):
        checked[name] = check_number(name, form.get(name, shown[name]))
    try:
        checked["frame"] = int(float(form.get("frame", shown["frame"])))
    except (TypeError, ValueError):
        raise UserError(f"Frame must be a whole number, got {form.get('frame')!r}") from None
    edited = {name: checked[name] for name in INSPECTOR_FIELDS if name in form and _differs(name, shown[name], checked[name])}
    editing = shown["selected"] and kind == shown["kind"]
    old_frame = shown["frame"] if editing else None
    if not editing and find_point(project.timeline, kind, checked["frame"]) is not None:
        old_frame = checked["frame"]  # "Set" on the frame of an existing point edits that point
    old = find_point(project.timeline, kind, old_frame) if old_frame is not None else None
    if editing and not edited:
        return project
    values = {name: v for name, v in edited.items() if name != "frame"}
    if "shot" in values:
        values["shot"] = None if values["shot"] in (NO_SHOT, "", None) else values["shot"]
    framed = old.shot if old is not None else None
    if framed is not None and "shot" not in values and {"zoom", "pan_x", "pan_y"} & set(values):
        track = working_track(project)
        resolved = camera_at(project.timeline, old.frame, track)
        for name in ("zoom", "pan_x", "pan_y"):
            values.setdefault(name, getattr(resolved, name))
        values["shot"] = None
    frame = checked["frame"] if "frame" in edited or old is None else old.frame
    return put_point(project, kind, frame, values, replace_frame=old_frame if old is not None else None)


def shot_rows(project: Project) -> list[list]:
    """One row per shot: number, frames, seconds, name."""
    if project.motion is None:
        return []
    track = working_track(project)
    return [[s.index + 1, f"{s.start}–{s.stop - 1}", round((s.stop - s.start) / track.fps, 2), s.name]
            for s in list_shots(project.timeline, len(track))]


# -- generate settings -----------------------------------------------------------------------------------

def animate_settings(values: dict, size_multiple: int) -> AnimateSettings:
    """Form values -> :class:`AnimateSettings`; a bad value raises one :class:`UserError` naming its field."""
    steps = check_number("steps", values.get("steps", 20), whole=True)
    guidance = check_number("guidance", values.get("guidance", 2.0))
    top_k = values.get("top_k")
    if top_k in (None, "", "default"):
        top_k = None
    elif top_k != "all":
        try:
            float(top_k)
        except (TypeError, ValueError):
            raise UserError(f"Top-K must be a number of references' worth of tokens, 'default' or 'all', "
                            f"got {top_k!r}") from None
        top_k = check_number("top_k", top_k)
    clip = check_number("clip_frames", values.get("clip_frames", 12), whole=True)
    overlap = check_number("overlap", values.get("overlap", 4), whole=True)
    if overlap >= clip:
        raise UserError(f"Clip overlap must be less than the clip length ({clip}), got {overlap}")
    size = {}
    for name in ("width", "height"):
        raw = values.get(name) or 0
        label, low, high = RANGES[name]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise UserError(f"{label} must be a number, got {raw!r}") from None
        if value == 0:
            continue  # the model's own size
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{label} must be positive (or 0 for the model's size), got {value:g}")
        value = check_number(name, value, whole=True)
        if value % size_multiple:
            raise UserError(f"{label} {value} must be a multiple of {size_multiple} for this model")
        size[name] = value
    seed = check_number("seed", values.get("seed", 0) or 0, whole=True)
    return AnimateSettings(steps=steps, guidance=guidance, seed=seed, top_k=top_k, clip_frames=clip, overlap=overlap,
                           retarget=bool(values.get("retarget", False)), **size).check()  # the engine's own limits too


# -- project files ---------------------------------------------------------------------------------------

def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_project(project: Project, path: str | Path) -> Path:
    """Write the whole project as one ``.freeview`` zip (``manifest.json`` + images + poses), atomically."""
    path = Path(path)
    manifest = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "references": [], "motion": None,
                "timeline": project.timeline.to_dict(), "settings": project.settings, "frame": project.frame}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, entry in enumerate(project.references):
            ref = entry.reference
            stem = f"references/{i:02d}"
            zf.writestr(f"{stem}.png", _png_bytes(ref.image))
            pose = PoseTrack(ref.keypoints[None], ref.image.shape[1], ref.image.shape[0])
            zf.writestr(f"{stem}.pose.json", json.dumps(track_to_native(pose)))
            manifest["references"].append({"image": f"{stem}.png", "pose": f"{stem}.pose.json", "name": ref.name,
                                           "warning": entry.warning})
        if project.motion is not None:
            zf.writestr("motion.pose.json", json.dumps(track_to_native(project.motion)))
            manifest["motion"] = {"pose": "motion.pose.json", "name": project.motion_name, "trim": list(project.trim),
                                  "retarget": project.retarget}
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
    return path


def demo_project(folder: str | Path, character: str = "mara", motion: str = "presenter",
                 camera: str = "zoom-and-cut") -> Project:
    """The shipped demo as a project: a character's photos (with their poses), a motion and a camera plan."""
    folder = Path(folder)
    photos = sorted((folder / "references").glob(f"{character}_*.png"))
    if not photos:
        raise UserError(f"the demo references are missing from {folder / 'references'}; "
                        "re-create them with `freeview synth demo`")
    project = Project()
    for photo in photos:
        project = add_reference(project, load_reference(photo))
    project = set_motion(project, load_motion(folder / "motions" / f"{motion}.json"), motion)
    timeline = CameraTimeline.load(folder / "camera" / f"{camera}.json")
    timeline.check_frames(len(working_track(project)))
    return replace(project, timeline=timeline)


MAX_PROJECT_MEMBER = 512 * 2**20  # bytes one file inside a project may unpack to


def load_project(path: str | Path) -> Project:
    """Read a ``.freeview`` file; newer versions and damaged files raise :class:`UserError`, and so do members
    larger than :data:`MAX_PROJECT_MEMBER` (a zip bomb), images past the pixel limit and JSON nested too deeply."""
    from engine.video import decode_image

    path = Path(path)

    def read(zf: zipfile.ZipFile, name: str) -> bytes:
        if zf.getinfo(name).file_size > MAX_PROJECT_MEMBER:
            raise UserError(f"{path.name} is damaged or hostile: {name} unpacks to more than "
                            f"{MAX_PROJECT_MEMBER // 2**20} MB")
        return zf.read(name)

    try:
        with zipfile.ZipFile(path) as zf:
            try:
                manifest = parse_json(read(zf, "manifest.json"), f"{path.name}: manifest.json")
            except KeyError:
                raise UserError(f"{path.name} is not a FreeView project (no manifest.json)") from None
            if not isinstance(manifest, dict) or manifest.get("format") != PROJECT_FORMAT:
                raise UserError(f"{path.name} is not a FreeView project")
            version = manifest.get("version")
            if not isinstance(version, int) or version > PROJECT_VERSION:
                raise UserError(f"{path.name} was saved by a newer FreeView (project version {version}); "
                                f"this one reads version {PROJECT_VERSION} — update FreeView to open it")
            project = Project(settings=dict(manifest.get("settings") or {}))
            for item in manifest.get("references", []):
                image = decode_image(read(zf, item["image"]), f"{path.name}: {item['image']}")
                pose = track_from_native(parse_json(read(zf, item["pose"]), f"{path.name}: {item['pose']}"), item["pose"])
                ref = Reference(image=image, keypoints=pose.keypoints[0], name=item.get("name", "reference"))
                project = add_reference(project, ref, item.get("warning"))
            motion = manifest.get("motion")
            if motion:
                track = track_from_native(parse_json(read(zf, motion["pose"]), f"{path.name}: {motion['pose']}"), motion["pose"])
                project = set_motion(project, track, motion.get("name", "motion"))
                project = set_trim(project, *motion.get("trim", (0, len(track))))
                project = replace(project, retarget=bool(motion.get("retarget", False)))
            timeline = CameraTimeline.from_dict(manifest.get("timeline") or {})
            if project.motion is not None:
                timeline.check_frames(len(working_track(project)))
                project = replace(project, frame=min(int(manifest.get("frame", 0)), len(working_track(project)) - 1))
            return replace(project, timeline=timeline)
    except zipfile.BadZipFile:
        raise UserError(f"{path.name} is damaged or not a FreeView project (not a zip file)") from None
    except (KeyError, json.JSONDecodeError, OSError, TypeError, AttributeError, IndexError, zipfile.LargeZipFile) as exc:
        raise UserError(f"{path.name} is damaged: {exc}") from None
