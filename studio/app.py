"""The FreeView studio: layout and wiring (``python app.py`` / ``freeview app``).

References | Motion | Camera | Generate, over one per-user :class:`~studio.state.Project`
kept in ``gr.State``. Handlers call engine's public API and the pure transforms in
:mod:`studio.state`; pictures come from :mod:`studio.preview`. A handler that meets
a :class:`UserError` shows it (``gr.Warning`` + the status line) and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import tempfile
import threading
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np

from engine.animate import Reference, animate, load_motion, load_reference, selection_caption
from engine.camera import EASINGS, SHOT_PRESETS, apply_camera, camera_curves
from engine.errors import UserError
from engine.model import ASSETS, check_model_dir, default_model_dir, load_pipeline, sampling_defaults
from engine.poses import extract_poses, load_pose_file, render_track
from engine.video import read_video, write_video

from . import preview, state
from .timeline import timeline_strip

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "embedded default"
MODEL_DIRECTORY = "model directory"
PREVIEW_SIDE = 256
ERRORS = (UserError, ValueError, OSError)


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
def _fail(exc: Exception, outputs: int) -> tuple:
    """Show a user error and leave every output (the project included) as it was, except the status line."""
    message = str(exc) or exc.__class__.__name__
    gr.Warning(message)
    return (*(gr.skip() for _ in range(outputs - 1)), f"**Problem:** {message}")


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


def gallery_items(project: state.Project) -> list[tuple[np.ndarray, str]]:
    items = []
    for i, entry in enumerate(project.references):
        caption = f"{i + 1}. {entry.reference.name} · {entry.shot}" + (f" · warning: {entry.warning}" if entry.warning else "")
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
CAMERA_VIEW_COUNT = 13


def camera_views(project: state.Project, message: str = "") -> tuple:
    """(project, timeline, frame slider, preview, curves, shots, kind, frame, zoom, pan_x, pan_y, yaw, easing/label...)"""
    if project.motion is None:
        return (project, state.timeline_payload(project), gr.update(maximum=1, value=0), None, None, [],
                "keyframe", 0, 1.0, 0.0, 0.0, 0.0, message or "Load a motion to plan the camera.")
    track = state.working_track(project)
    curves, _ = camera_curves(project.timeline, track)
    seen = apply_camera(track, project.timeline)
    frame = min(project.frame, len(track) - 1)
    picture = preview.camera_preview(track, project.timeline, frame, curves=curves, seen=seen)
    plot = preview.curve_plot(curves, [c.frame for c in project.timeline.cuts],
                              [k.frame for k in project.timeline.keyframes], frame)
    kind, selected_frame = project.selected or ("keyframe", frame)
    point = state.find_point(project.timeline, kind, selected_frame) if project.selected else None
    zoom, pan_x, pan_y, yaw = (point.zoom, point.pan_x, point.pan_y, point.yaw) if point else (float(v) for v in curves[frame])
    what = f"Editing the {kind} at frame {selected_frame}." if point else f"Frame {frame}: no point selected — the fields add a new one."
    return (project, state.timeline_payload(project, strip_for(project)), gr.update(maximum=len(track) - 1, value=frame),
            picture, plot, state.shot_rows(project), kind, selected_frame if point else frame,
            round(zoom, 3), round(pan_x, 3), round(pan_y, 3), round(yaw, 2), message or what)


# -- the app ---------------------------------------------------------------------------------------------------
CSS = """
.fv-header { display: flex; align-items: baseline; gap: 14px; }
.fv-header h1 { margin: 0; font-size: 26px; letter-spacing: 0.5px; }
.fv-header span { color: #8b91a3; }
#fv-status { min-height: 1.6em; }
"""

FORCE_DARK = "() => { if (!new URLSearchParams(location.search).has('__theme')) document.body.classList.add('dark'); }"


def launch_kwargs() -> dict:
    return {"theme": gr.themes.Soft(primary_hue="orange", neutral_hue="slate"), "css": CSS, "js": FORCE_DARK}


def pose_progress(progress: gr.Progress, total: int | None):
    """A pose-extraction callback (frames done so far) that drives a gradio progress bar."""
    done = 0

    def tick(frames: int) -> None:
        nonlocal done
        done += frames
        progress((done, total), desc="finding poses", unit="frames")

    return tick


def create_app(model: str | os.PathLike | None = None) -> gr.Blocks:
    """Build the studio (launches nothing). ``model``: a model directory to use instead of the embedded default."""
    default_source = MODEL_DIRECTORY if model else DEFAULT_MODEL
    recommended = sampling_defaults(model)
    with gr.Blocks(title="FreeView studio") as demo:
        project = gr.State(state.Project())
        selected_ref = gr.State(-1)
        with gr.Row(elem_classes="fv-header"):
            gr.Markdown("# FreeView studio")
            gr.Markdown("<span>several photos + a motion + a camera plan → an animation from any viewpoint</span>")
            demo_btn = gr.Button("Load the demo (three photos, a motion, a zoom and a cut)", size="sm",
                                 variant="secondary", elem_id="fv-load-demo")
        status = gr.Markdown("", elem_id="fv-status")

        with gr.Tabs():
            # ---- References -------------------------------------------------------------------------------
            with gr.Tab("References", id="references"):
                with gr.Row():
                    with gr.Column(scale=3):
                        gallery = gr.Gallery(label="Reference photos (skeleton and shot scale from their pose)", columns=4,
                                             height=420, object_fit="contain", allow_preview=False, elem_id="fv-gallery")
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
                        motion_video = gr.File(label="…or a driving video (poses are extracted)", file_types=["video"])
                        motion_file = gr.File(label="…or a pose file (OpenPose JSON or FreeView .json)", file_types=[".json"])
                        with gr.Row():
                            trim_start = gr.Slider(0, 1, value=0, step=1, label="Trim: first frame")
                            trim_stop = gr.Slider(1, 2, value=1, step=1, label="Trim: end frame (exclusive)")
                        retarget_box = gr.Checkbox(label="Retarget the motion to the first reference's body proportions")
                        motion_info = gr.Markdown("No motion yet.")
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
                        camera_image = gr.Image(label="Source pose + camera frame | what the camera sees",
                                                interactive=False, height=340, elem_id="fv-camera-preview")
                        curves_image = gr.Image(label="Zoom and pan curves (cuts in red)", interactive=False, height=190)
                    with gr.Column(scale=2):
                        with gr.Group():
                            point_kind = gr.Radio(["keyframe", "cut"], value="keyframe", label="Point")
                            point_frame = gr.Number(0, label="Frame", precision=0, elem_id="fv-point-frame")
                            with gr.Row():
                                point_zoom = gr.Number(1.0, label="Zoom", step=0.1, elem_id="fv-point-zoom")
                                point_yaw = gr.Number(0.0, label="Yaw orbit (°)", step=5)
                            with gr.Row():
                                point_pan_x = gr.Number(0.0, label="Pan x", step=0.05)
                                point_pan_y = gr.Number(0.0, label="Pan y", step=0.05)
                            with gr.Row():
                                point_easing = gr.Dropdown(list(EASINGS), value="linear", label="Easing")
                                point_label = gr.Textbox(label="Label", placeholder="e.g. CU")
                            with gr.Row():
                                point_apply = gr.Button("Set point", variant="primary", elem_id="fv-point-apply")
                                point_delete = gr.Button("Delete point", variant="stop")
                        camera_note = gr.Markdown("")
                        shots_table = gr.Dataframe(headers=["shot", "frames", "seconds", "name"], label="Shots",
                                                   interactive=False, wrap=True)

            # ---- Generate ---------------------------------------------------------------------------------
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=2):
                        model_source = gr.Radio([DEFAULT_MODEL, MODEL_DIRECTORY], value=default_source, label="Model")
                        model_dir = gr.Textbox(str(model or ""), label="Model directory",
                                               placeholder="a FreeView model directory (freeview convert / train output)")
                        with gr.Row():
                            steps = gr.Slider(1, 50, value=recommended["steps"], step=1, label="Steps", elem_id="fv-steps")
                            guidance = gr.Slider(1.0, 6.0, value=recommended["guidance"], step=0.1, label="Guidance")
                        with gr.Row():
                            seed = gr.Number(0, label="Seed", precision=0)
                            top_k = gr.Dropdown(["default", "0.5", "1", "2", "all"], value="default", allow_custom_value=True,
                                                label="Top-K (references' worth of tokens)")
                        with gr.Row():
                            clip_frames = gr.Slider(1, 24, value=12, step=1, label="Clip length")
                            overlap = gr.Slider(0, 12, value=4, step=1, label="Clip overlap")
                        with gr.Row():
                            out_width = gr.Number(0, label="Width (0 = model's)", precision=0)
                            out_height = gr.Number(0, label="Height (0 = model's)", precision=0)
                        with gr.Row():
                            generate_btn = gr.Button("Generate", variant="primary", size="lg", elem_id="fv-generate")
                            cancel_btn = gr.Button("Cancel", variant="stop", size="lg", elem_id="fv-cancel")
                        gen_status = gr.Markdown("", elem_id="fv-gen-status")
                        gen_preview = gr.Image(label="Pose | current estimate", height=200,
                                               interactive=False)
                    with gr.Column(scale=3):
                        result_video = gr.Video(label="Result", height=380, autoplay=True, loop=True, elem_id="fv-result")
                        result_file = gr.File(label="Download MP4")
                        correlation_image = gr.Image(label="Which reference regions each frame used (red = most)",
                                                     interactive=False)
                        recent = gr.Dataframe(headers=["time", "file"], label="Recent outputs", interactive=False)

        with gr.Accordion("Project", open=False):
            with gr.Row():
                save_btn = gr.Button("Save project (.freeview)")
                saved_file = gr.File(label="Saved project")
                load_file = gr.File(label="Open a project", file_types=[".freeview", ".zip"])

        settings_inputs = [steps, guidance, seed, top_k, clip_frames, overlap, out_width, out_height]
        camera_outputs = [project, timeline, frame_slider, camera_image, curves_image, shots_table, point_kind, point_frame,
                          point_zoom, point_pan_x, point_pan_y, point_yaw, camera_note]
        assert len(camera_outputs) == CAMERA_VIEW_COUNT

        # ---- references handlers ----------------------------------------------------------------------------
        def on_upload(proj: state.Project, files):
            files = [Path(f) for f in files or []]
            poses = {f.name[: -len(".pose.json")]: f for f in files if f.name.endswith(".pose.json")}
            notes = []
            for f in files:
                if f.name.endswith(".json"):
                    continue
                try:
                    pose = load_pose_file(poses[f.stem]).keypoints[0] if f.stem in poses else None
                    ref = load_reference(f, pose=pose)
                    warning = _people_warning(ref) if pose is None else None
                    proj = state.add_reference(proj, ref, warning)
                    if warning:
                        notes.append(f"{f.name}: {warning}")
                except ERRORS as exc:
                    notes.append(f"{f.name}: {exc}")
            for note in notes:
                gr.Warning(note)
            message = "**Problem:** " + "; ".join(notes) if notes else f"Added {len(files) - len(poses)} photo(s)."
            return proj, gallery_items(proj), reference_summary(proj), None, message

        ref_upload.upload(on_upload, [project, ref_upload], [project, gallery, ref_summary, ref_upload, status],
                          api_name="add_references")

        def on_select(evt: gr.SelectData):
            return evt.index

        gallery.select(on_select, None, selected_ref)

        def on_move(proj, index, offset):
            try:
                proj, index = state.move_reference(proj, index, offset)
            except ERRORS as exc:
                return _fail(exc, 4)
            return proj, gallery_items(proj), index, f"Moved to position {index + 1}."

        move_left.click(lambda p, i: on_move(p, i, -1), [project, selected_ref], [project, gallery, selected_ref, status])
        move_right.click(lambda p, i: on_move(p, i, 1), [project, selected_ref], [project, gallery, selected_ref, status])

        def on_remove(proj, index):
            try:
                proj = state.remove_reference(proj, index)
            except ERRORS as exc:
                return _fail(exc, 5)
            return proj, gallery_items(proj), reference_summary(proj), -1, "Removed."

        remove_ref.click(on_remove, [project, selected_ref], [project, gallery, ref_summary, selected_ref, status])

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
            return cards, refs, f"Suggested {len(refs)} frame(s) covering {', '.join(sorted({r.shot for r in refs}))}."

        suggest_btn.click(on_suggest, [suggest_video, suggest_count], [suggestions, suggested_frames, status])

        def on_add_suggestions(proj, refs):
            if not refs:
                return _fail(UserError("suggest frames from a video first"), 4)
            for ref in refs:
                proj = state.add_reference(proj, ref)
            return proj, gallery_items(proj), reference_summary(proj), f"Added {len(refs)} suggested reference(s)."

        add_suggestions.click(on_add_suggestions, [project, suggested_frames], [project, gallery, ref_summary, status])

        # ---- motion handlers ---------------------------------------------------------------------------------
        motion_outputs = [trim_start, trim_stop, motion_info, motion_preview]

        def motion_views(proj: state.Project) -> tuple:
            n = len(proj.motion)
            track = state.working_track(proj)
            info = (f"**{proj.motion_name}** — {n} frames at {proj.motion.fps:g} fps ({n / proj.motion.fps:.1f} s), "
                    f"{proj.motion.width}×{proj.motion.height}; using frames {proj.trim[0]}–{proj.trim[1] - 1}"
                    + (" · retargeted" if proj.retarget and proj.references else ""))
            return (gr.update(maximum=n - 1, value=proj.trim[0]), gr.update(maximum=n, value=proj.trim[1]), info,
                    skeleton_video(track))

        def load_track(proj, track, name):
            proj = state.set_motion(proj, track, name)
            views = camera_views(proj, f"Loaded motion {name}.")
            return (*views, *motion_views(proj))

        all_motion_outputs = camera_outputs + motion_outputs

        def on_demo(proj, name):
            try:
                if not name:
                    raise UserError("pick a demo motion")
                track = load_motion(demo_motions_dir() / f"{name}.json")
                return load_track(proj, track, name)
            except ERRORS as exc:
                return _fail(exc, len(all_motion_outputs))

        demo_choice.input(on_demo, [project, demo_choice], all_motion_outputs, api_name="load_demo_motion")

        def on_motion_file(proj, path, progress=gr.Progress()):
            try:
                if not path:
                    raise UserError("choose a file")
                total = None
                if Path(path).suffix.lower() != ".json":
                    from engine.video import probe_video

                    total = max(probe_video(path).frames, 1)
                track = load_motion(path, progress=pose_progress(progress, total))
                return load_track(proj, track, Path(path).stem)
            except ERRORS as exc:
                return _fail(exc, len(all_motion_outputs))

        motion_video.upload(on_motion_file, [project, motion_video], all_motion_outputs)
        motion_file.upload(on_motion_file, [project, motion_file], all_motion_outputs, api_name="load_motion")

        def on_trim(proj, start, stop, retarget):
            try:
                if proj.motion is None:
                    raise UserError("load a motion first")
                proj = replace(state.set_trim(proj, start, stop), retarget=bool(retarget))
                return (*camera_views(proj), *motion_views(proj))
            except ERRORS as exc:
                return _fail(exc, len(all_motion_outputs))

        for control in (trim_start, trim_stop):
            control.release(on_trim, [project, trim_start, trim_stop, retarget_box], all_motion_outputs)
        retarget_box.input(on_trim, [project, trim_start, trim_stop, retarget_box], all_motion_outputs)

        # ---- camera handlers ---------------------------------------------------------------------------------
        def guarded(transform):
            def handler(proj, *args):
                try:
                    return camera_views(transform(proj, *args))
                except ERRORS as exc:
                    return _fail(exc, CAMERA_VIEW_COUNT)
            return handler

        timeline.edit(guarded(state.apply_timeline_payload), [project, timeline], camera_outputs,
                      trigger_mode="always_last", api_name="timeline_edit")
        frame_slider.input(guarded(lambda p, f: replace(p, frame=int(f), selected=None)), [project, frame_slider],
                           camera_outputs, trigger_mode="always_last", show_progress="hidden")
        for button, name, kind in preset_buttons:
            button.click(guarded(lambda p, name=name, kind=kind: state.add_preset(p, name, kind)), [project], camera_outputs)

        def set_point(proj, kind, frame, zoom, pan_x, pan_y, yaw, easing, label):
            values = {"zoom": float(zoom), "pan_x": float(pan_x), "pan_y": float(pan_y), "yaw": float(yaw),
                      "easing": easing, "label": label or None, "shot": None}
            old = proj.selected[1] if proj.selected and proj.selected[0] == kind else None
            if old is None and state.find_point(proj.timeline, kind, int(frame)) is not None:
                old = int(frame)
            return state.put_point(proj, kind, int(frame), values, replace_frame=old)

        point_apply.click(guarded(set_point), [project, point_kind, point_frame, point_zoom, point_pan_x, point_pan_y,
                                               point_yaw, point_easing, point_label], camera_outputs, api_name="set_point")
        point_delete.click(guarded(lambda p, kind, frame: state.delete_point(p, kind, int(frame))),
                           [project, point_kind, point_frame], camera_outputs)

        # ---- generate ---------------------------------------------------------------------------------------
        def on_generate(proj, source, directory, *settings_values, progress=gr.Progress()):
            names = ("steps", "guidance", "seed", "top_k", "clip_frames", "overlap", "width", "height")
            values = dict(zip(names, settings_values))
            skip = (gr.skip(),) * 5
            try:
                if not proj.references:
                    raise UserError("add at least one reference photo (References tab)")
                track = state.working_track(proj)
                proj.timeline.check_frames(len(track))
                pipe = get_pipeline(directory.strip() if source == MODEL_DIRECTORY and directory else None)
                settings = state.animate_settings({**values, "retarget": proj.retarget}, pipe.size_multiple)
                motion = proj.motion.slice(*proj.trim)
                seen = apply_camera(track, proj.timeline)
            except ERRORS as exc:
                gr.Warning(str(exc))
                yield (*skip, gr.skip(), f"**Problem:** {exc}")
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
            while (item := events.get()) is not None:
                if item[0] == "preview":
                    latest = item[1]
                    continue
                step, total_steps, clip, clips = item
                done, total = step * clips + clip + 1, total_steps * clips
                progress((done, total), desc=f"step {step + 1}/{total_steps} · clip {clip + 1}/{clips}")
                frame = min(len(seen) - 1, clip * stride + settings.clip_frames // 2)
                pose = preview.render_pose_view(seen, frame)
                if latest is not None:
                    pose = preview.beside(pose, latest)
                yield (*skip, pose, f"Generating: step **{step + 1}/{total_steps}**, clip **{clip + 1}/{clips}** "
                                    f"({time.perf_counter() - started:.0f} s)")
            worker.join()
            if "error" in outcome:
                exc = outcome["error"]
                logger.exception("generation failed", exc_info=exc)
                gr.Warning(str(exc))
                yield (*skip, gr.skip(), f"**Generation failed:** {exc}")
                return
            animation = outcome.get("animation")
            if animation is None:
                yield (*skip, gr.skip(), "Cancelled — nothing was written; your project is unchanged.")
                return
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = write_video(output_dir() / f"freeview-{stamp}-{int(time.time() * 1000) % 1000:03d}.mp4",
                              animation.frames, animation.fps)
            correlation = preview.correlation_or_none([r.image for r in refs], animation.correlation)
            proj = replace(proj, outputs=[str(out)] + proj.outputs, settings=values)
            rows = [[time.strftime("%H:%M:%S", time.localtime(Path(p).stat().st_mtime)), Path(p).name]
                    for p in proj.outputs if Path(p).exists()]
            t = animation.timings
            kept = selection_caption([r.shot for r in refs], animation.correlation, animation.top_k, settings.disable_pcm)
            yield (proj, str(out), str(out), correlation, rows, gr.skip(),
                   f"**Done:** {len(animation.frames)} frames in {sum(t.values()):.1f} s → `{out.name}`"
                   + (f" · {kept}" if kept else ""))

        generate_btn.click(
            on_generate, [project, model_source, model_dir, *settings_inputs],
            [project, result_video, result_file, correlation_image, recent, gen_preview, gen_status],
            concurrency_limit=1, concurrency_id="device", api_name="generate")
        cancel_btn.click(cancel_generation, None, gen_status, queue=False, api_name="cancel")

        # ---- project ------------------------------------------------------------------------------------------
        def on_save(proj, *settings_values):
            names = ("steps", "guidance", "seed", "top_k", "clip_frames", "overlap", "width", "height")
            proj = replace(proj, settings=dict(zip(names, settings_values)))
            try:
                path = state.save_project(proj, output_dir() / f"project-{time.strftime('%Y%m%d-%H%M%S')}.freeview")
            except ERRORS as exc:
                return _fail(exc, 3)
            return proj, str(path), f"Saved {path.name}."

        save_btn.click(on_save, [project, *settings_inputs], [project, saved_file, status], api_name="save_project")

        project_outputs = [*camera_outputs, *motion_outputs, gallery, ref_summary, *settings_inputs, status]

        def project_views(proj, message: str) -> tuple:
            views = camera_views(proj, message)
            motion = motion_views(proj) if proj.motion is not None else (gr.skip(),) * len(motion_outputs)
            s = proj.settings
            fields = [s.get(name, gr.skip()) for name in ("steps", "guidance", "seed", "top_k", "clip_frames", "overlap",
                                                         "width", "height")]
            return (*views, *motion, gallery_items(proj), reference_summary(proj), *fields, message)

        def keep_current(proj) -> str:
            """Save the user's work before another project replaces it; a note saying where, or ''."""
            if not proj.references and proj.motion is None:
                return ""
            path = state.save_project(proj, output_dir() / f"project-before-{time.strftime('%Y%m%d-%H%M%S')}.freeview")
            return f" Your previous project is saved as `{path.name}` (Project → Open brings it back)."

        def on_open(proj, path):
            try:
                if not path:
                    raise UserError("choose a project file")
                opened = state.load_project(path)
                note = keep_current(proj)
            except ERRORS as exc:
                return _fail(exc, len(project_outputs))
            return project_views(opened, f"Opened {Path(path).name}.{note}")

        load_file.upload(on_open, [project, load_file], project_outputs, api_name="open_project")

        def on_load_demo(proj):
            try:
                demo_proj = state.demo_project(demo_dir())
                note = keep_current(proj)
            except ERRORS as exc:
                return _fail(exc, len(project_outputs))
            return project_views(demo_proj, f"Loaded the demo: press **Generate** on the Generate tab.{note}")

        demo_btn.click(on_load_demo, [project], project_outputs, api_name="load_demo")
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
