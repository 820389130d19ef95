"""The FreeView studio: layout and wiring (``python app.py`` / ``freeview app``).

References | Motion | Camera | Generate, over one per-user :class:`~studio.state.Project`
kept in ``gr.State``. Handlers call engine's public API and the pure transforms in
:mod:`studio.state`; pictures come from :mod:`studio.preview`. A handler that meets
a :class:`UserError` shows it in the message line of the tab it came from (one at a time: each replaces the
last, no pile of toasts) and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import tempfile
import uuid
import threading
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np

from engine.animate import Reference, animate, check_memory, kept_shares, load_motion, load_reference, selection_caption
from engine.camera import EASINGS, SHOT_PRESETS, apply_camera, camera_curves
from engine.errors import UserError
from engine.model import ASSETS, check_model_dir, default_model_dir, domain_note, load_pipeline, sampling_defaults
from engine.poses import extract_poses, load_pose_file, render_track
from engine.video import read_frame, read_video, write_video

from . import preview, state
from .timeline import timeline_strip

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "embedded default"
MODEL_DIRECTORY = "model directory"
PREVIEW_SIDE = 256
ERRORS = (UserError, ValueError, OSError, RecursionError, MemoryError)
MAX_UPLOAD = os.environ.get("FREEVIEW_MAX_UPLOAD", "512mb")  # gradio refuses larger uploads before they are stored
UPLOAD_CACHE = (3600, 86400)  # gradio's uploads: every hour those older than a day are removed, and all on exit


def output_dir() -> Path:
    """Where results and saved projects go (inside the temp dir, which gradio serves)."""
    folder = Path(os.environ.get("FREEVIEW_STUDIO_OUTPUTS", Path(tempfile.gettempdir()) / "freeview-studio"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def demo_dir() -> Path:
    return Path(os.environ.get("FREEVIEW_DEMO", ASSETS / "demo"))


def demo_motions_dir() -> Path:
    return Path(os.environ.get("FREEVIEW_DEMO_MOTIONS", demo_dir() / "motions"))


def demo_motions() -> list[str]:
    folder = demo_motions_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


# -- the device: one pipeline per model directory, one generation at a time ---------------------------------
_PIPELINES: dict[str, object] = {}
_PIPELINE_LOCK = threading.Lock()


def get_pipeline(model_dir: str | os.PathLike | None):
    path = str(check_model_dir(model_dir or default_model_dir()).resolve())
    with _PIPELINE_LOCK:
        if path not in _PIPELINES:
            _PIPELINES[path] = load_pipeline(path)
        return _PIPELINES[path]


def cancel_generation() -> str:
    for pipe in list(_PIPELINES.values()):
        pipe.interrupt()
    return "**Cancelling** — stops after the current clip step."


# -- helpers -------------------------------------------------------------------------------------------------
_TEMP_ROOTS = tuple(sorted({tempfile.gettempdir(), str(Path(tempfile.gettempdir()).resolve()),
                            os.environ.get("GRADIO_TEMP_DIR", "") or tempfile.gettempdir()}))
_PATH = re.compile(r"(?:/[^\s'\"`:;,()<>|]+)+")


def user_message(exc: Exception) -> str:
    """The error as the user should read it: one line, uploaded files by their name, never a temporary path."""
    message = " ".join((str(exc) or exc.__class__.__name__).split())
    return _PATH.sub(lambda m: Path(m.group(0)).name if m.group(0).startswith(_TEMP_ROOTS) else m.group(0), message)


def _fail(exc: Exception, outputs: int, message_at: int = -1) -> tuple:
    """Show a user error and leave every output (the project included) as it was, except the text output at
    ``message_at`` (the status line: always a text output, never a video or a picture)."""
    message = user_message(exc)  # in the tab's message line, not a toast: toasts pile up, a line is replaced
    result = [gr.skip() for _ in range(outputs)]
    result[message_at] = f"**Problem:** {message}"
    return tuple(result)


# -- autosave: the project written in the background after each change, offered back on reload -------------------
def autosave_dir() -> Path:
    return Path(os.environ.get("FREEVIEW_STUDIO_AUTOSAVE", output_dir() / "autosave"))


class Autosaver:
    """Writes the newest project of each browser (``key``) atomically on a worker thread; edits never wait.

    A burst of edits writes once: only the newest project per key is kept while the worker is busy.
    """

    def __init__(self) -> None:
        self._pending: dict[str, state.Project] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._busy = False
        self._thread: threading.Thread | None = None

    @staticmethod
    def path(key: str) -> Path:
        return autosave_dir() / f"{key}.freeview"

    @staticmethod
    def previous_path(key: str) -> Path:
        return autosave_dir() / f"{key}.previous.freeview"

    def save(self, project: state.Project, key: str) -> None:
        if not valid_key(key) or (not project.references and project.motion is None):
            return
        with self._lock:
            self._pending[key] = project
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="freeview-autosave", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything asked for is written (tests, and before the app closes)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._wake.wait(0.05)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    if not self._wake.wait(60):
                        self._thread = None
                        return
                key, project = self._pending.popitem()
                self._busy = True
            try:
                state.save_project(replace(project, history=state.History()), self.path(key))
            except Exception:  # noqa: BLE001 - autosave must never break editing; the next edit tries again
                logger.exception("autosave failed")
            finally:
                with self._lock:
                    self._busy = False
                    self._wake.notify_all()


AUTOSAVER = Autosaver()
_KEY = re.compile(r"^[0-9a-f]{32}$")


def valid_key(key) -> bool:
    return isinstance(key, str) and bool(_KEY.match(key))


def autosave_offer(key: str) -> tuple[bool, str]:
    """On a page load: keep the last autosave aside (new edits must not overwrite it before the user decides)
    and say what it holds; (False, '') when there is none."""
    if not valid_key(key):
        return False, ""
    current, previous = Autosaver.path(key), Autosaver.previous_path(key)
    if current.exists():
        os.replace(current, previous)
    if not previous.exists():
        return False, ""
    try:
        proj = state.load_project(previous)
    except ERRORS as exc:
        return True, f"An autosaved project was found but cannot be read ({user_message(exc)})."
    when = time.strftime("%H:%M", time.localtime(previous.stat().st_mtime))
    what = [f"{len(proj.references)} photo(s)"]
    if proj.motion is not None:
        what.append(f"motion {proj.motion_name}")
    what.append(f"{len(proj.timeline.keyframes)} keyframe(s), {len(proj.timeline.cuts)} cut(s)")
    return True, f"**Restore the project from {when}?** ({', '.join(what)}; autosaved in this browser)"


@lru_cache(maxsize=16)
def _strip_url(key: str, track_bytes: bytes, shape: tuple, width: int, height: int, fps: float) -> str:
    from engine.poses import PoseTrack

    keypoints = np.frombuffer(track_bytes, np.float32).reshape(shape)
    return preview.data_url(preview.skeleton_strip(PoseTrack(keypoints, width, height, fps)))


def strip_for(project: state.Project) -> str:
    if project.motion is None:
        return ""
    track = state.working_track(project)
    data = track.keypoints.tobytes()
    return _strip_url(hashlib.sha1(data).hexdigest(), data, track.keypoints.shape, track.width, track.height, track.fps)


_WARPS: dict[tuple, object] = {}  # the last few warps of the photos (player sprites, panel warpers), by their inputs


def _photos_digest(project: state.Project) -> str:
    """What the photos' warps are made from (their pixels and poses), as one key; hashed once per view."""
    digest = hashlib.sha1()
    for entry in project.references:
        digest.update(entry.reference.image.tobytes())
        digest.update(entry.reference.keypoints.tobytes())
    return digest.hexdigest()


def _kept(key: tuple, make):
    if key not in _WARPS:
        while len(_WARPS) >= 8:
            _WARPS.pop(next(iter(_WARPS)))
        _WARPS[key] = make()
    return _WARPS[key]


def sprite_for(project: state.Project, photos: str) -> dict | None:
    """The player's warped photos for this motion and these photos (``photos``: their digest; made once per change
    of either)."""
    if project.motion is None or not project.references:
        return None
    track = state.working_track(project)
    return _kept(("sprite", photos, hashlib.sha1(track.keypoints.tobytes()).hexdigest()),
                 lambda: preview.warp_sprite([e.reference for e in project.references], track))


def panel_warper_for(project: state.Project, seen, photos: str) -> object | None:
    """The camera preview's warper for these photos at this output size (made once per change of either)."""
    if not project.references:
        return None
    return _kept(("panel", photos, seen.width, seen.height),
                 lambda: preview.panel_warper([e.reference for e in project.references], seen))


def gallery_items(project: state.Project) -> list[tuple[np.ndarray, str]]:
    items = []
    for i, entry in enumerate(project.references):
        # the shot is written on the picture; the caption (drawn over its bottom) names the photo
        caption = f"{i + 1}. {entry.reference.name}" + (f" · warning: {entry.warning}" if entry.warning else "")
        items.append((preview.reference_card(entry.reference, entry.warning), caption))
    return items


def reference_summary(project: state.Project) -> str:
    if not project.references:
        return "No references yet. Add a few photos of the person — close-up, medium and wide shots help most."
    shots = [e.shot for e in project.references]
    missing = [s for s in SHOT_PRESETS if s not in shots]
    text = f"**{len(shots)} reference(s)**: " + ", ".join(f"{shots.count(s)} {s}" for s in SHOT_PRESETS if s in shots)
    if missing:
        text += f" — a {' / '.join(missing)} shot would help the camera go there."
    return text


# -- camera views: everything that shows the timeline ----------------------------------------------------------
CAMERA_VIEW_COUNT = 16
INSPECTOR_OUTPUTS = ("kind", "frame", "zoom", "pan_x", "pan_y", "yaw", "easing", "shot", "label")


def camera_views(project: state.Project, message: str = "") -> tuple:
    """(project, timeline, frame slider, preview, curves, shots, the inspector's nine fields, note)."""
    if project.motion is None:
        return (project, state.timeline_payload(project), gr.update(maximum=1, value=0), None, None, [],
                "keyframe", 0, 1.0, 0.0, 0.0, 0.0, "linear", state.NO_SHOT, "",
                message or "Load a motion to plan the camera.")
    track = state.working_track(project)
    curves, shots = camera_curves(project.timeline, track)
    seen = apply_camera(track, project.timeline)
    frame = min(project.frame, len(track) - 1)
    picture = preview.camera_preview(track, project.timeline, frame, curves=curves, seen=seen)
    photos = _photos_digest(project) if project.references else ""
    warped = preview.warp_panel([e.reference for e in project.references], seen, frame,
                                warper=panel_warper_for(project, seen, photos))
    if warped is not None:
        picture = preview.beside(picture, warped)
    plot = preview.curve_plot(curves, [c.frame for c in project.timeline.cuts],
                              [k.frame for k in project.timeline.keyframes], frame)
    shown = state.inspector_values(project, curves)
    kind = shown["kind"]
    if shown["selected"]:
        rule = f" (framed by the {shown['shot']} rule)" if shown["shot"] != state.NO_SHOT else ""
        what = f"Editing the {kind} at frame {shown['frame']}{rule}. **Set** changes only the fields you edit."
    else:
        what = f"Frame {frame}: no point selected — **Set** adds a keyframe or cut here."
    play = preview.playback_data(track, project.timeline, curves, seen, shots, sprite=sprite_for(project, photos))
    return (project, state.timeline_payload(project, strip_for(project), play),
            gr.update(maximum=len(track) - 1, value=frame), picture, plot, state.shot_rows(project),
            *(shown[name] for name in INSPECTOR_OUTPUTS), message or what)


# -- the app ---------------------------------------------------------------------------------------------------
CSS = """
.fv-header { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.fv-header h1 { margin: 0; font-size: 26px; letter-spacing: 0.5px; }
.fv-header span { color: #8b91a3; }
#fv-load-demo { font-size: 16px; font-weight: 700; min-width: 220px; }
#fv-undo, #fv-redo { max-width: 120px; }
#fv-status { min-height: 1.6em; }
#fv-restore { border: 1px solid #ff8a3d; border-radius: 8px; padding: 6px 10px; }
"""

# The dark theme; Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y) press Undo / Redo outside text fields (there the browser undoes
# the typing); space plays the camera plan.
PAGE_JS = """() => {
  if (!new URLSearchParams(location.search).has('__theme')) document.body.classList.add('dark');
  const typing = (t) => t && (t.isContentEditable || t.tagName === 'TEXTAREA'
    || (t.tagName === 'INPUT' && !['range', 'checkbox', 'radio', 'button'].includes(t.type)));
  document.addEventListener('keydown', (e) => {
    const key = (e.key || '').toLowerCase();
    if ((e.ctrlKey || e.metaKey) && !e.altKey && (key === 'z' || key === 'y')) {
      if (typing(e.target)) return;
      const button = document.querySelector(key === 'y' || e.shiftKey ? '#fv-redo' : '#fv-undo');
      if (button) { e.preventDefault(); button.click(); }
    } else if (key === ' ' && !typing(e.target) && !e.target.closest('button')
               && document.querySelector('#fv-timeline .fv-canvas') && window.fvTimeline && window.fvTimeline.toggle
               && document.querySelector('#fv-timeline').offsetParent !== null) {
      e.preventDefault();
      window.fvTimeline.toggle();
    }
  });
}"""


def launch_kwargs() -> dict:
    return {"theme": gr.themes.Soft(primary_hue="orange", neutral_hue="slate"), "css": CSS, "js": PAGE_JS,
            "max_file_size": MAX_UPLOAD}


def pose_progress(progress: gr.Progress, total: int | None):
    """A pose-extraction callback (frames done so far) that drives a gradio progress bar."""
    done = 0

    def tick(frames: int) -> None:
        nonlocal done
        done += frames
        progress((done, total), desc="finding poses", unit="frames")

    return tick


SETTING_NAMES = ("steps", "guidance", "seed", "top_k", "clip_frames", "overlap", "width", "height")


def _model_note(source: str) -> str:
    """Beside the model choice: what the embedded default can and cannot draw (empty for another model)."""
    note = domain_note() if source == DEFAULT_MODEL else None
    return f"*Note: {note}.*" if note else ""


def create_app(model: str | os.PathLike | None = None) -> gr.Blocks:
    """Build the studio (launches nothing). ``model``: a model directory to use instead of the embedded default."""
    default_source = MODEL_DIRECTORY if model else DEFAULT_MODEL
    recommended = sampling_defaults(model)
    default_settings = {"steps": recommended["steps"], "guidance": recommended["guidance"], "seed": 0, "top_k": "default",
                        "clip_frames": recommended["clip_frames"], "overlap": recommended["overlap"], "width": 0, "height": 0}
    with gr.Blocks(title="FreeView studio", delete_cache=UPLOAD_CACHE) as demo:
        project = gr.State(state.Project())
        session = gr.State("")             # this browser's autosave key
        browser_key = gr.BrowserState("", storage_key="freeview-autosave-key")
        selected_ref = gr.State(-1)
        with gr.Row(elem_classes="fv-header"):
            gr.Markdown("# FreeView studio")
            gr.Markdown("<span>several photos + a motion + a camera plan → an animation from any viewpoint</span>")
            demo_btn = gr.Button("▶ Try the demo", variant="primary", size="lg", elem_id="fv-load-demo")
            undo_btn = gr.Button("↶ Undo", size="sm", elem_id="fv-undo")
            redo_btn = gr.Button("↷ Redo", size="sm", elem_id="fv-redo")
        with gr.Row(visible=False, elem_id="fv-restore") as restore_row:
            restore_note = gr.Markdown("")
            restore_btn = gr.Button("Restore it", variant="primary", size="sm", elem_id="fv-restore-yes")
            fresh_btn = gr.Button("Start fresh (keep the file)", size="sm", elem_id="fv-restore-no")
        status = gr.Markdown("Press **▶ Try the demo** for three photos, a motion and a camera plan ready to generate — "
                             "or add your own photos below. Ctrl+Z undoes any change.", elem_id="fv-status")

        with gr.Tabs():
            # ---- References -------------------------------------------------------------------------------
            with gr.Tab("References", id="references"):
                with gr.Row():
                    with gr.Column(scale=3):
                        # labels outside the pictures: gradio draws a component's label over the top of its picture
                        gr.Markdown("**Reference photos** — skeleton and shot scale from their pose")
                        gallery = gr.Gallery(label="Reference photos", show_label=False, columns=4, height=420,
                                             object_fit="contain", allow_preview=False, elem_id="fv-gallery")
                        ref_summary = gr.Markdown(reference_summary(state.Project()))
                        with gr.Row():
                            move_left = gr.Button("◀ Move earlier", size="sm")
                            move_right = gr.Button("Move later ▶", size="sm")
                            remove_ref = gr.Button("Remove", size="sm", variant="stop")
                    with gr.Column(scale=2):
                        ref_upload = gr.File(label="Add photos (a NAME.pose.json uploaded alongside gives the pose)",
                                             file_count="multiple", file_types=["image", ".json"], elem_id="fv-ref-upload")
                        with gr.Accordion("Suggest references from a video", open=False):
                            suggest_video = gr.File(label="Video of the person", file_types=["video"])
                            suggest_count = gr.Slider(1, 6, value=3, step=1, label="How many")
                            suggest_btn = gr.Button("Suggest frames")
                            suggestions = gr.Gallery(label="Suggested frames (cover the body at different shot scales)",
                                                     columns=3, height=200, allow_preview=False)
                            add_suggestions = gr.Button("Add suggested frames as references")
                            suggested_frames = gr.State([])

            # ---- Motion -----------------------------------------------------------------------------------
            with gr.Tab("Motion", id="motion"):
                with gr.Row():
                    with gr.Column(scale=2):
                        demo_choice = gr.Dropdown(demo_motions(), label="Built-in demo motion", value=None,
                                                  elem_id="fv-demo-motion")
                        motion_video = gr.File(label="…or a driving video (poses are extracted)", file_types=["video"],
                                               elem_id="fv-motion-video")
                        motion_file = gr.File(label="…or a pose file (OpenPose JSON or FreeView .json)", file_types=[".json"],
                                              elem_id="fv-motion-file")
                        people_picture = gr.Image(label="People in the video: click one to follow them instead",
                                                  visible=False, interactive=False, elem_id="fv-people", height=300)
                        motion_source = gr.State(None)  # the video with several people: path, boxes, who is followed
                        with gr.Row():
                            trim_start = gr.Slider(0, 1, value=0, step=1, label="Trim: first frame")
                            trim_stop = gr.Slider(1, 2, value=1, step=1, label="Trim: end frame (exclusive)")
                        retarget_box = gr.Checkbox(label="Retarget the motion to the first reference's body proportions")
                        motion_info = gr.Markdown("No motion yet.", elem_id="fv-motion-info")
                    with gr.Column(scale=3):
                        motion_preview = gr.Video(label="Skeleton preview", height=360, autoplay=True, loop=True)

            # ---- Camera -----------------------------------------------------------------------------------
            with gr.Tab("Camera", id="camera"):
                timeline = timeline_strip(state.timeline_payload(state.Project()), elem_id="fv-timeline")
                with gr.Row():
                    gr.Markdown("**Shot presets at the playhead:**")
                    preset_buttons = []
                    for name in ("wide", "medium", "close-up"):
                        preset_buttons.append((gr.Button(f"◆ {name}", size="sm"), name, "keyframe"))
                    for name in ("wide", "medium", "close-up"):
                        preset_buttons.append((gr.Button(f"✂ cut to {name}", size="sm"), name, "cut"))
                with gr.Row():
                    with gr.Column(scale=3):
                        frame_slider = gr.Slider(0, 1, value=0, step=1, label="Scrub", elem_id="fv-scrub")
                        # room beside this picture for a composite of the references warped into the pose
                        camera_image = gr.Image(label="Source pose + camera frame | what the camera sees | the photos warped into it",
                                                interactive=False, height=340, elem_id="fv-camera-preview")
                        curves_image = gr.Image(label="Zoom, pan and yaw curves (cuts in red)", interactive=False,
                                                height=190, elem_id="fv-curves")
                    with gr.Column(scale=2):
                        with gr.Group():
                            point_kind = gr.Radio(["keyframe", "cut"], value="keyframe", label="Point")
                            point_frame = gr.Number(0, label="Frame", precision=0, elem_id="fv-point-frame")
                            with gr.Row():
                                point_zoom = gr.Number(1.0, label="Zoom", step=0.1, elem_id="fv-point-zoom",
                                                       info=state.range_help("zoom", "1 = the whole source frame"))
                                point_yaw = gr.Number(0.0, label="Yaw orbit (°)", step=5, elem_id="fv-point-yaw",
                                                      info=state.range_help("yaw", "needs 3D poses"))
                            with gr.Row():
                                point_pan_x = gr.Number(0.0, label="Pan x", step=0.05, elem_id="fv-point-pan-x",
                                                        info=state.range_help("pan_x", "fraction of the width"))
                                point_pan_y = gr.Number(0.0, label="Pan y", step=0.05, elem_id="fv-point-pan-y",
                                                        info=state.range_help("pan_y", "fraction of the height"))
                            with gr.Row():
                                point_easing = gr.Dropdown(list(EASINGS), value="linear", label="Easing",
                                                           elem_id="fv-point-easing", info="how it moves to the next point")
                                point_shot = gr.Dropdown([state.NO_SHOT, *SHOT_PRESETS], value=state.NO_SHOT,
                                                         label="Shot rule", elem_id="fv-point-shot",
                                                         info="frame the body as this shot (overrides zoom and pan)")
                            point_label = gr.Textbox(label="Label", placeholder="e.g. CU", elem_id="fv-point-label")
                            with gr.Row():
                                point_apply = gr.Button("Set point", variant="primary", elem_id="fv-point-apply")
                                point_delete = gr.Button("Delete point", variant="stop", elem_id="fv-point-delete")
                        camera_note = gr.Markdown("", elem_id="fv-camera-note")
                        shots_table = gr.Dataframe(headers=["shot", "frames", "seconds", "name"], label="Shots",
                                                   interactive=False, wrap=True)

            # ---- Generate ---------------------------------------------------------------------------------
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=2):
                        model_source = gr.Radio([DEFAULT_MODEL, MODEL_DIRECTORY], value=default_source, label="Model",
                                                elem_id="fv-model-source")
                        model_note = gr.Markdown(_model_note(default_source), elem_id="fv-model-note")
                        model_dir = gr.Textbox(str(model or ""), label="Model directory", elem_id="fv-model-dir",
                                               visible=default_source == MODEL_DIRECTORY,
                                               placeholder="a FreeView model directory (freeview convert / train output)")
                        with gr.Row():
                            steps = gr.Slider(1, 50, value=recommended["steps"], step=1, label="Steps", elem_id="fv-steps",
                                              info=f"denoising steps; more is slower and finer (this model recommends "
                                                   f"{recommended['steps']})")
                            guidance = gr.Slider(1.0, 6.0, value=recommended["guidance"], step=0.1, label="Guidance",
                                                 elem_id="fv-guidance",
                                                 info="how strongly the photos steer the result; 1 = off")
                        with gr.Accordion("Advanced", open=False, elem_id="fv-advanced"):
                            with gr.Row():
                                seed = gr.Number(0, label="Seed", precision=0, elem_id="fv-seed",
                                                 info="same seed + same settings = the same result")
                                top_k = gr.Dropdown(["default", "0.5", "1", "2", "all"], value="default",
                                                    allow_custom_value=True, label="Top-K", elem_id="fv-top-k",
                                                    info="how many photos' worth of the best-matching detail each frame "
                                                         "keeps (cost stays flat); 'all' keeps every photo's")
                            with gr.Row():
                                clip_frames = gr.Slider(1, max(24, recommended["clip_frames"]), value=recommended["clip_frames"],
                                                        step=1, label="Clip length", elem_id="fv-clip",
                                                        info="frames denoised together; long videos are overlapping clips")
                                overlap = gr.Slider(0, 12, value=recommended["overlap"], step=1, label="Clip overlap",
                                                    elem_id="fv-overlap",
                                                    info="frames two clips share (smoother joins), less than the length")
                            with gr.Row():
                                out_width = gr.Number(0, label="Width", precision=0, elem_id="fv-width",
                                                      info="pixels; " + state.range_help("width", "0 = the model's size"))
                                out_height = gr.Number(0, label="Height", precision=0, elem_id="fv-height",
                                                       info="pixels; " + state.range_help("height", "0 = the model's size"))
                        with gr.Row():
                            generate_btn = gr.Button("Generate", variant="primary", size="lg", elem_id="fv-generate")
                            cancel_btn = gr.Button("Cancel", variant="stop", size="lg", elem_id="fv-cancel")
                        gen_status = gr.Markdown("", elem_id="fv-gen-status")
                        gen_preview = gr.Image(label="Pose | current estimate", height=200, interactive=False)
                    with gr.Column(scale=3):
                        result_video = gr.Video(label="Result", height=380, autoplay=True, loop=True, elem_id="fv-result")
                        result_file = gr.File(label="Download MP4")
                        gr.Markdown("**Which regions of each photo every frame drew on** — rows: frames, "
                                    "columns: photos (with their share of the kept tokens); red = used most")
                        correlation_image = gr.Image(label="Correlation", show_label=False, interactive=False,
                                                     elem_id="fv-correlation")
                        recent = gr.Dataframe(headers=["time", "file"], label="Recent outputs", interactive=False)

        with gr.Accordion("Project", open=False):
            with gr.Row():
                save_btn = gr.Button("Save project (.freeview)")
                saved_file = gr.File(label="Saved project")
                load_file = gr.File(label="Open a project", file_types=[".freeview", ".zip"])

        settings_inputs = [steps, guidance, seed, top_k, clip_frames, overlap, out_width, out_height]
        inspector = [point_kind, point_frame, point_zoom, point_pan_x, point_pan_y, point_yaw, point_easing, point_shot,
                     point_label]
        camera_outputs = [project, timeline, frame_slider, camera_image, curves_image, shots_table, *inspector, camera_note]
        assert len(camera_outputs) == CAMERA_VIEW_COUNT

        def edited(before: state.Project, after: state.Project, what: str, key: str, merge: bool = False) -> state.Project:
            """Every change goes through here: onto the edit history, then autosaved in the background."""
            after = state.record(before, after, what, merge=merge)
            if state.is_edit(before, after):
                AUTOSAVER.save(after, key)
            return after

        # ---- references handlers ----------------------------------------------------------------------------
        def on_upload(proj: state.Project, key, files):
            before = proj
            files = [Path(f) for f in files or []]
            poses = {f.name[: -len(".pose.json")]: f for f in files if f.name.endswith(".pose.json")}
            notes = []
            added = 0
            for f in files:
                if f.name.endswith(".json"):
                    continue
                try:
                    pose = load_pose_file(poses[f.stem]).keypoints[0] if f.stem in poses else None
                    ref = load_reference(f, pose=pose)
                    warning = _people_warning(ref) if pose is None else None
                    proj = state.add_reference(proj, ref, warning)
                    added += 1
                    if warning:
                        notes.append(f"{f.name}: {warning}")
                except ERRORS as exc:
                    notes.append(f"{f.name}: {user_message(exc)}")
            proj = edited(before, proj, f"add {added} photo(s)", key)
            message = "**Problem:** " + "; ".join(notes) if notes else f"Added {added} photo(s)."
            return proj, gallery_items(proj), reference_summary(proj), None, message

        ref_upload.upload(on_upload, [project, session, ref_upload], [project, gallery, ref_summary, ref_upload, status],
                          api_name="add_references")

        def on_select(evt: gr.SelectData):
            return evt.index

        gallery.select(on_select, None, selected_ref)

        def on_move(proj, key, index, offset):
            try:
                moved, index = state.move_reference(proj, index, offset)
            except ERRORS as exc:
                return _fail(exc, 4)
            moved = edited(proj, moved, "reorder photos", key)
            return moved, gallery_items(moved), index, f"Moved to position {index + 1}."

        move_left.click(lambda p, k, i: on_move(p, k, i, -1), [project, session, selected_ref],
                        [project, gallery, selected_ref, status])
        move_right.click(lambda p, k, i: on_move(p, k, i, 1), [project, session, selected_ref],
                         [project, gallery, selected_ref, status])

        def on_remove(proj, key, index):
            try:
                removed = state.remove_reference(proj, index)
            except ERRORS as exc:
                return _fail(exc, 5)
            removed = edited(proj, removed, "remove a photo", key)
            return removed, gallery_items(removed), reference_summary(removed), -1, "Removed (Undo brings it back)."

        remove_ref.click(on_remove, [project, session, selected_ref], [project, gallery, ref_summary, selected_ref, status])

        def on_suggest(video, count, progress=gr.Progress()):
            try:
                if not video:
                    raise UserError("choose a video first")
                from engine.video import probe_video

                track = extract_poses(video, progress=pose_progress(progress, max(probe_video(video).frames, 1)))
                picks = state.suggest_reference_frames(track, int(count))
                if not picks:
                    raise UserError(f"no person found in any frame of {Path(video).name}")
                wanted, frames = set(picks), {}
                iterator, _, _ = read_video(video)
                for i, rgb in enumerate(iterator):
                    if i in wanted:
                        frames[i] = rgb
                    if len(frames) == len(wanted):
                        break
                refs = [Reference(frames[i], track.keypoints[i], f"{Path(video).stem}_f{i}") for i in picks if i in frames]
            except ERRORS as exc:
                return _fail(exc, 3)
            cards = [(preview.reference_card(r), f"frame {r.name.rsplit('_f', 1)[-1]} · {r.shot}") for r in refs]
            message = f"Suggested {len(refs)} frame(s) covering {', '.join(sorted({r.shot for r in refs}))}."
            why = state.suggestion_note(track, picks, int(count))
            if why:
                message = f"Suggested {len(refs)} of the {int(count)} asked: {why}."
            return cards, refs, message

        suggest_btn.click(on_suggest, [suggest_video, suggest_count], [suggestions, suggested_frames, status])

        def on_add_suggestions(proj, key, refs):
            if not refs:
                return _fail(UserError("suggest frames from a video first"), 4)
            before = proj
            for ref in refs:
                proj = state.add_reference(proj, ref)
            proj = edited(before, proj, f"add {len(refs)} suggested photo(s)", key)
            return proj, gallery_items(proj), reference_summary(proj), f"Added {len(refs)} suggested reference(s)."

        add_suggestions.click(on_add_suggestions, [project, session, suggested_frames],
                              [project, gallery, ref_summary, status])

        # ---- motion handlers ---------------------------------------------------------------------------------
        motion_outputs = [trim_start, trim_stop, motion_info, motion_preview, demo_choice]

        def motion_views(proj: state.Project) -> tuple:
            if proj.motion is None:
                return (gr.update(maximum=1, value=0), gr.update(maximum=2, value=1), "No motion yet.", None,
                        gr.update(choices=demo_motions(), value=None))
            n = len(proj.motion)
            track = state.working_track(proj)
            info = (f"**{proj.motion_name}** — {n} frames at {proj.motion.fps:g} fps ({n / proj.motion.fps:.1f} s), "
                    f"{proj.motion.width}×{proj.motion.height}; using frames {proj.trim[0]}–{proj.trim[1] - 1}"
                    + (" · retargeted" if proj.retarget and proj.references else ""))
            motions = demo_motions()
            return (gr.update(maximum=n - 1, value=proj.trim[0]), gr.update(maximum=n, value=proj.trim[1]), info,
                    skeleton_video(track),
                    gr.update(choices=motions, value=proj.motion_name if proj.motion_name in motions else None))

        def load_track(proj, key, track, name):
            new = edited(proj, state.set_motion(proj, track, name), f"load motion {name}", key)
            views = camera_views(new, f"Loaded motion {name}.")
            return (*views, *motion_views(new))

        all_motion_outputs = camera_outputs + motion_outputs
        motion_message_at = all_motion_outputs.index(motion_info)  # a motion problem is told on the Motion tab

        people_outputs = [people_picture, motion_source]
        no_people = (gr.update(visible=False, value=None), None)

        def on_demo(proj, key, name):
            try:
                if not name:
                    raise UserError("pick a demo motion")
                track = load_motion(demo_motions_dir() / f"{name}.json")
                return (*load_track(proj, key, track, name), *no_people)
            except ERRORS as exc:
                return (*_fail(exc, len(all_motion_outputs), message_at=motion_message_at), gr.skip(), gr.skip())

        demo_choice.input(on_demo, [project, session, demo_choice], all_motion_outputs + people_outputs,
                          api_name="load_demo_motion")

        def load_video_motion(proj, key, path, person, progress) -> tuple:
            """Extract the poses of a video (following ``person`` N when given), with a note on the frames where the
            person is not seen; where it shows several people, the picture that lets the user click the one to follow."""
            from engine.video import probe_video

            report: dict = {}
            track = load_motion(path, progress=pose_progress(progress, max(probe_video(path).frames, 1)),
                                person=person, report=report)
            views = list(load_track(proj, key, track, Path(path).stem))
            follow = report.get("follow")
            lost = "" if follow is None else state.lost_note(follow, report.get("gaps"))
            if follow is None or follow.people_at_start < 2 or follow.start_frame is None:
                if lost:
                    views[motion_message_at] = f"{views[motion_message_at]}\n\n{lost}"
                return (*views, *no_people)
            frame = read_frame(path, follow.start_frame)
            source = {"path": path, "boxes": follow.start_boxes, "person": follow.person,
                      "scale": max(frame.shape[:2]) / 480}
            picture = preview.people_picture(frame, follow.start_boxes, follow.person)
            note = (f"{follow.people_at_start} people in the video: following person {follow.person} (numbered from "
                    "the left). Click another person in the picture to follow them." + (f" {lost}" if lost else ""))
            views[motion_message_at] = f"{views[motion_message_at]}\n\n{note}"
            return (*views, gr.update(visible=True, value=picture), source)

        def on_motion_file(proj, key, path, progress=gr.Progress()):
            try:
                if not path:
                    raise UserError("choose a file")
                if Path(path).suffix.lower() != ".json":
                    return load_video_motion(proj, key, path, None, progress)
                return (*load_track(proj, key, load_motion(path), Path(path).stem), *no_people)
            except ERRORS as exc:
                return (*_fail(exc, len(all_motion_outputs), message_at=motion_message_at), gr.skip(), gr.skip())

        motion_video.upload(on_motion_file, [project, session, motion_video], all_motion_outputs + people_outputs)
        motion_file.upload(on_motion_file, [project, session, motion_file], all_motion_outputs + people_outputs,
                           api_name="load_motion")

        def on_pick_person(proj, key, source, evt: gr.SelectData, progress=gr.Progress()):
            try:
                if not source:
                    raise UserError("load a video with several people first")
                x, y = (float(v) * source["scale"] for v in evt.index[:2])
                person = preview.person_at(source["boxes"], x, y)
                if person is None:
                    raise UserError("no person there: click inside one of the numbered boxes")
                if person == source["person"]:
                    raise UserError(f"person {person} is already the one followed")
                return load_video_motion(proj, key, source["path"], person, progress)
            except ERRORS as exc:
                return (*_fail(exc, len(all_motion_outputs), message_at=motion_message_at), gr.skip(), gr.skip())

        people_picture.select(on_pick_person, [project, session, motion_source], all_motion_outputs + people_outputs)

        def on_trim(proj, key, start, stop, retarget):
            try:
                if proj.motion is None:
                    raise UserError("load a motion first")
                trimmed = replace(state.set_trim(proj, start, stop), retarget=bool(retarget))
                trimmed = edited(proj, trimmed, "trim / retarget the motion", key)
                return (*camera_views(trimmed), *motion_views(trimmed))
            except ERRORS as exc:
                return _fail(exc, len(all_motion_outputs), message_at=motion_message_at)

        for control in (trim_start, trim_stop):
            control.release(on_trim, [project, session, trim_start, trim_stop, retarget_box], all_motion_outputs)
        retarget_box.input(on_trim, [project, session, trim_start, trim_stop, retarget_box], all_motion_outputs)

        # ---- camera handlers ---------------------------------------------------------------------------------
        def guarded(transform, what):
            """A camera handler: ``transform(project, *args)`` recorded as ``what(*args)``; errors change nothing."""
            def handler(proj, key, *args):
                try:
                    new = transform(proj, *args)
                    new = edited(proj, new, what(*args), key)
                    return camera_views(new)
                except ERRORS as exc:
                    return _fail(exc, CAMERA_VIEW_COUNT)
            return handler

        timeline.edit(guarded(state.apply_timeline_payload, state.timeline_edit_name), [project, session, timeline],
                      camera_outputs, trigger_mode="always_last", api_name="timeline_edit")
        frame_slider.input(guarded(lambda p, f: replace(p, frame=int(f), selected=None), lambda f: "scrub"),
                           [project, session, frame_slider], camera_outputs, trigger_mode="always_last",
                           show_progress="hidden")
        for button, name, kind in preset_buttons:
            button.click(guarded(lambda p, name=name, kind=kind: state.add_preset(p, name, kind),
                                 lambda name=name, kind=kind: f"{name} {kind}"), [project, session], camera_outputs)

        def set_point(proj, kind, frame, zoom, pan_x, pan_y, yaw, easing, label, shot=None):
            form = {"frame": frame, "zoom": zoom, "pan_x": pan_x, "pan_y": pan_y, "yaw": yaw, "easing": easing,
                    "label": label or ""}
            if shot is not None:
                form["shot"] = shot
            return state.edit_point(proj, kind, form)

        point_apply.click(guarded(set_point, lambda kind, frame, *rest: f"set {kind} at frame {int(frame or 0)}"),
                          [project, session, *inspector[:-2], point_label, point_shot], camera_outputs,
                          api_name="set_point")
        point_delete.click(guarded(lambda p, kind, frame: state.delete_point(p, kind, int(frame)),
                                   lambda kind, frame: f"delete {kind} at frame {int(frame or 0)}"),
                           [project, session, point_kind, point_frame], camera_outputs)

        # ---- settings: part of the project (and its history) -------------------------------------------------------
        def settings_of(proj: state.Project) -> dict:
            return {**default_settings, **proj.settings}

        def on_setting(proj, key, *values):
            values = dict(zip(SETTING_NAMES, values))
            try:
                state.animate_settings(values, 1)  # the ranges now; the model's size multiple when generating
            except ERRORS as exc:
                return _fail(exc, 2)
            changed = [name for name in SETTING_NAMES if settings_of(proj).get(name) != values[name]]
            after = replace(proj, settings=values)
            return edited(proj, after, f"change {', '.join(changed) or 'settings'}", key, merge=True), ""

        for control in settings_inputs:
            event = control.release if isinstance(control, gr.Slider) else control.input
            event(on_setting, [project, session, *settings_inputs], [project, gen_status], show_progress="hidden")
        model_source.change(lambda source: gr.update(visible=source == MODEL_DIRECTORY), model_source, model_dir)
        model_source.change(_model_note, model_source, model_note)

        # ---- generate ---------------------------------------------------------------------------------------
        def on_generate(proj, source, directory, *settings_values, progress=gr.Progress()):
            values = dict(zip(SETTING_NAMES, settings_values))
            skip = (gr.skip(),) * 5
            try:
                if not proj.references:
                    raise UserError("add at least one reference photo (References tab)")
                track = state.working_track(proj)
                proj.timeline.check_frames(len(track))
                settings = state.animate_settings({**values, "retarget": proj.retarget}, 1)
                if source == MODEL_DIRECTORY and not (directory or "").strip():
                    raise UserError("Model directory is empty: type the folder of a FreeView model, "
                                    "or choose the embedded default")
                pipe = get_pipeline(directory.strip() if source == MODEL_DIRECTORY else None)
                settings = state.animate_settings({**values, "retarget": proj.retarget}, pipe.size_multiple)
                motion = proj.motion.slice(*proj.trim)
                seen = apply_camera(track, proj.timeline)
                height, width = settings.height or pipe.default_resolution[0], settings.width or pipe.default_resolution[1]
                check_memory(pipe, min(len(motion), settings.frames or len(motion)), height, width,
                             len(proj.references), settings.clip_frames or 12)
            except ERRORS as exc:
                message = user_message(exc)
                yield (*skip, gr.skip(), f"**Problem:** {message}")
                return
            events: queue.Queue = queue.Queue()
            outcome: dict = {}
            refs = [e.reference for e in proj.references]

            def work():
                try:
                    outcome["animation"] = animate(pipe, refs, motion, proj.timeline, settings,
                                                   progress=lambda *a: events.put(a),
                                                   preview=lambda step, image: events.put(("preview", image)))
                except Exception as exc:  # noqa: BLE001 - reported to the user below, the app keeps running
                    outcome["error"] = exc
                finally:
                    events.put(None)

            started = time.perf_counter()
            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            yield (*skip, None, "Encoding references…")
            stride = max(1, settings.clip_frames - settings.overlap)
            latest = None  # the newest estimate of the middle frame, shown beside the driving pose
            pose = None
            line = ""
            while (item := events.get()) is not None:
                if item[0] == "preview":  # after every step, the last one included (so also with one step)
                    latest = item[1]
                    if pose is not None:
                        yield (*skip, preview.beside(pose, latest), line)
                    continue
                step, total_steps, clip, clips = item
                done, total = step * clips + clip + 1, total_steps * clips
                elapsed = time.perf_counter() - started
                left = elapsed / done * (total - done)
                progress((done, total), desc=f"step {step + 1}/{total_steps} · clip {clip + 1}/{clips}")
                frame = min(len(seen) - 1, clip * stride + settings.clip_frames // 2)
                pose = preview.render_pose_view(seen, frame)
                line = (f"Generating: step **{step + 1}/{total_steps}**, clip **{clip + 1}/{clips}** — "
                        f"{elapsed:.0f} s so far, " + (f"about {left:.0f} s left" if done < total else "finishing"))
                yield (*skip, preview.beside(pose, latest) if latest is not None else pose, line)
            worker.join()
            if "error" in outcome:
                exc = outcome["error"]
                logger.exception("generation failed", exc_info=exc)
                message = user_message(exc)
                yield (*skip, gr.skip(), f"**Generation failed:** {message}")
                return
            animation = outcome.get("animation")
            if animation is None:
                yield (*skip, gr.skip(), "Cancelled — nothing was written; your project is unchanged.")
                return
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = write_video(output_dir() / f"freeview-{stamp}-{int(time.time() * 1000) % 1000:03d}.mp4",
                              animation.frames, animation.fps)
            kept = selection_caption([r.shot for r in refs], animation.correlation, animation.top_k, settings.disable_pcm)
            shares = kept_shares(animation.correlation, animation.top_k) if kept else None
            correlation = preview.correlation_or_none([r.image for r in refs], animation.correlation,
                                                      [f"{e.shot}" for e in proj.references], shares)
            proj = replace(proj, outputs=[str(out)] + proj.outputs)
            rows = [[time.strftime("%H:%M:%S", time.localtime(Path(p).stat().st_mtime)), Path(p).name]
                    for p in proj.outputs if Path(p).exists()]
            t = animation.timings
            yield (proj, str(out), str(out), correlation, rows, gr.skip(),
                   f"**Done:** {len(animation.frames)} frames in {sum(t.values()):.1f} s → `{out.name}`"
                   + (f" · {kept}" if kept else "")
                   + (f" · Note: {note}" if (note := domain_note(directory.strip() if source == MODEL_DIRECTORY else None)) else ""))

        generate_btn.click(
            on_generate, [project, model_source, model_dir, *settings_inputs],
            [project, result_video, result_file, correlation_image, recent, gen_preview, gen_status],
            concurrency_limit=1, concurrency_id="device", api_name="generate")
        cancel_btn.click(cancel_generation, None, gen_status, queue=False, api_name="cancel")

        # ---- project ------------------------------------------------------------------------------------------
        def on_save(proj, *settings_values):
            proj = replace(proj, settings=dict(zip(SETTING_NAMES, settings_values)))
            try:
                path = state.save_project(proj, output_dir() / f"project-{time.strftime('%Y%m%d-%H%M%S')}.freeview")
            except ERRORS as exc:
                return _fail(exc, 3)
            return proj, str(path), f"Saved {path.name}."

        save_btn.click(on_save, [project, *settings_inputs], [project, saved_file, status], api_name="save_project")

        project_outputs = [*camera_outputs, *motion_outputs, gallery, ref_summary, *settings_inputs, status]

        def project_views(proj, message: str) -> tuple:
            views = camera_views(proj, message)
            fields = settings_of(proj)
            return (*views, *motion_views(proj), gallery_items(proj), reference_summary(proj),
                    *(fields[name] for name in SETTING_NAMES), message)

        def keep_current(proj) -> str:
            """Save the user's work before another project replaces it; a note saying where, or ''."""
            if not proj.references and proj.motion is None:
                return ""
            path = state.save_project(replace(proj, history=state.History()),
                                      output_dir() / f"project-before-{time.strftime('%Y%m%d-%H%M%S')}.freeview")
            return f" Your previous project is saved as `{path.name}` (Undo, or Project → Open, brings it back)."

        def on_open(proj, key, path):
            try:
                if not path:
                    raise UserError("choose a project file")
                opened = state.load_project(path)
                note = keep_current(proj)
            except ERRORS as exc:
                return _fail(exc, len(project_outputs))
            opened = edited(proj, opened, f"open {Path(path).name}", key)
            return project_views(opened, f"Opened {Path(path).name}.{note}")

        load_file.upload(on_open, [project, session, load_file], project_outputs, api_name="open_project")

        def on_load_demo(proj, key):
            try:
                demo_proj = state.demo_project(demo_dir())
                note = keep_current(proj)
            except ERRORS as exc:
                return _fail(exc, len(project_outputs))
            demo_proj = edited(proj, demo_proj, "load the demo", key)
            return project_views(demo_proj, f"Loaded the demo: press **Generate** on the Generate tab.{note}")

        demo_btn.click(on_load_demo, [project, session], project_outputs, api_name="load_demo")

        # ---- undo / redo (buttons, Ctrl+Z / Ctrl+Shift+Z) ----------------------------------------------------------
        def on_history(proj, key, step):
            try:
                moved, what = step(proj)
            except ERRORS as exc:
                return _fail(exc, len(project_outputs))
            AUTOSAVER.save(moved, key)
            verb = "Undid" if step is state.undo else "Redid"
            return project_views(moved, f"{verb}: {what}." + (f" ({state.history_note(moved)})"
                                                              if state.history_note(moved) else ""))

        undo_btn.click(lambda p, k: on_history(p, k, state.undo), [project, session], project_outputs, api_name="undo")
        redo_btn.click(lambda p, k: on_history(p, k, state.redo), [project, session], project_outputs, api_name="redo")

        # ---- autosave: offered back on reload ----------------------------------------------------------------------
        def on_page_load(key):
            key = key if valid_key(key) else uuid.uuid4().hex
            offered, note = autosave_offer(key)
            return key, key, gr.update(visible=offered), note

        demo.load(on_page_load, [browser_key], [browser_key, session, restore_row, restore_note])

        def on_restore(proj, key):
            try:
                if not valid_key(key) or not Autosaver.previous_path(key).exists():
                    raise UserError("there is no autosaved project to restore")
                restored = state.load_project(Autosaver.previous_path(key))
            except ERRORS as exc:
                return (*_fail(exc, len(project_outputs)), gr.skip())
            restored = edited(proj, restored, "restore the autosaved project", key)
            return (*project_views(restored, "Restored the autosaved project."), gr.update(visible=False))

        restore_btn.click(on_restore, [project, session], [*project_outputs, restore_row], api_name="restore_autosave")
        fresh_btn.click(lambda: (gr.update(visible=False), "Starting fresh; the autosaved project stays on disk "
                                 f"in {autosave_dir().name}/ until the next reload."), None, [restore_row, status])
    return demo


def _people_warning(reference: Reference) -> str | None:
    """'several people' when the landmarker sees more than one person (best effort: never blocks an upload)."""
    try:
        from engine.poses.extract import count_people

        people = count_people(reference.image)
    except Exception:  # noqa: BLE001 - a missing detector model must not stop the upload
        return None
    return f"{people} people in the photo; the largest is used" if people > 1 else None


def skeleton_video(track) -> str:
    """A small MP4 of the skeleton track for the Motion tab's preview."""
    from engine.poses import PoseTrack

    scale = min(1.0, PREVIEW_SIDE / max(track.width, track.height))
    small = PoseTrack(track.keypoints, max(2, round(track.width * scale)), max(2, round(track.height * scale)), track.fps)
    digest = hashlib.sha1(track.keypoints.tobytes()).hexdigest()[:12]
    path = output_dir() / "previews" / f"skeleton-{digest}.mp4"
    if not path.exists():
        write_video(path, render_track(small, face=False), track.fps)
    return str(path)


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, model: str | None = None) -> None:
    """Open the studio (blocking). Listens on this machine only unless ``host`` says otherwise."""
    demo = create_app(model)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, share=share, **launch_kwargs())
