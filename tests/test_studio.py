"""The studio: state transforms, previews, the Blocks build, and a generation through gradio's own client."""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.animate import Reference
from engine.errors import UserError
from engine.poses import PoseTrack, save_pose_file

from studio import state


# -- fixtures: a tiny model, synthetic references with pose sidecars, a demo motion -----------------------------
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from engine.models.configs import build_components
    from engine.pipeline import FreeViewPipeline

    path = tmp_path_factory.mktemp("tiny_model")
    FreeViewPipeline(**build_components("tiny", seed=0)).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def studio_assets(tmp_path_factory):
    """references/{close-up,medium,wide}.png (+ .pose.json) and motions/walk.json (a 10-frame synthetic motion)."""
    from PIL import Image

    from train.synth.world import ClipSpec, render_clip

    root = tmp_path_factory.mktemp("studio_assets")
    (root / "references").mkdir()
    (root / "motions").mkdir()
    for i, shot in enumerate(("close-up", "medium", "wide")):
        clip = render_clip(ClipSpec(identity_seed=7, motion_seed=i, camera_seed=i, shot=shot, num_frames=1, size=64))
        Image.fromarray(clip.frames[0]).save(root / "references" / f"{shot}.png")
        save_pose_file(PoseTrack(clip.keypoints[:1], 64, 64), root / "references" / f"{shot}.pose.json")
    clip = render_clip(ClipSpec(identity_seed=7, motion_seed=9, camera_seed=9, shot="wide", num_frames=10, size=64))
    save_pose_file(PoseTrack(clip.keypoints, 64, 64, 25.0, clip.world), root / "motions" / "walk.json")
    return root


@pytest.fixture(scope="session")
def long_track(studio_assets):
    """A 10-second (250-frame) track: the synthetic walk, repeated."""
    from engine.poses import load_pose_file

    walk = load_pose_file(studio_assets / "motions" / "walk.json")
    reps = int(np.ceil(250 / len(walk)))
    return PoseTrack(np.tile(walk.keypoints, (reps, 1, 1))[:250], walk.width, walk.height, 25.0,
                     np.tile(walk.world, (reps, 1, 1))[:250])


def _reference(studio_assets, shot: str) -> Reference:
    from engine.animate import load_reference

    return load_reference(studio_assets / "references" / f"{shot}.png")


@pytest.fixture()
def project(studio_assets, long_track):
    proj = state.Project()
    for shot in ("close-up", "wide"):
        proj = state.add_reference(proj, _reference(studio_assets, shot))
    return state.set_motion(proj, long_track, "walk")


# -- references ------------------------------------------------------------------------------------------
def test_reference_shot_labels_and_reorder(studio_assets):
    proj = state.Project()
    for shot in ("close-up", "medium", "wide"):
        proj = state.add_reference(proj, _reference(studio_assets, shot))
    assert [e.shot for e in proj.references] == ["close-up", "medium", "wide"]
    moved, index = state.move_reference(proj, 2, -1)
    assert index == 1 and [e.shot for e in moved.references] == ["close-up", "wide", "medium"]
    assert [e.shot for e in proj.references] == ["close-up", "medium", "wide"]  # the original is untouched
    assert [e.shot for e in state.remove_reference(moved, 0).references] == ["wide", "medium"]
    with pytest.raises(UserError, match="select a reference"):
        state.remove_reference(proj, 5)


def test_reference_card_draws_skeleton_and_label(studio_assets):
    from studio.preview import reference_card

    card = reference_card(_reference(studio_assets, "wide"), "2 people in the photo")
    assert card.ndim == 3 and card.dtype == np.uint8 and max(card.shape[:2]) == 384


def test_non_image_and_huge_references(tmp_path):
    from PIL import Image

    from engine.animate import MAX_REFERENCE_SIDE, load_reference

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(UserError, match="not an image"):
        load_reference(text)
    huge = tmp_path / "huge.png"
    Image.new("RGB", (4000, 3000), (90, 90, 90)).save(huge)
    pose = np.zeros((128, 3), np.float32)
    pose[:18] = [0.5, 0.5, 1.0]
    assert max(load_reference(huge, pose=pose).image.shape[:2]) == MAX_REFERENCE_SIDE


def test_suggest_reference_frames_covers_shots():
    keypoints = np.zeros((6, 128, 3), np.float32)
    keypoints[..., :2] = 0.5
    head_and_shoulders = [0, 1, 2, 5, 14, 15, 16, 17]
    keypoints[0, head_and_shoulders, 2] = 1.0                  # close-up
    keypoints[1, head_and_shoulders + [3, 6, 8, 11], 2] = 1.0  # medium
    keypoints[2, :18, 2] = 1.0                                 # wide, everything
    keypoints[3, :18, 2] = 0.9                                 # another wide (adds nothing)
    # frames 4 and 5: nobody
    picks = state.suggest_reference_frames(PoseTrack(keypoints, 64, 64), 3)
    assert picks[0] == 2 and set(picks) == {0, 1, 2}
    assert state.suggest_reference_frames(PoseTrack(np.zeros((3, 128, 3), np.float32), 64, 64), 3) == []


# -- camera timeline transforms ------------------------------------------------------------------------------
def test_points_add_move_delete_and_conflicts(project):
    proj = state.put_point(project, "keyframe", 0, {"zoom": 1.0})
    proj = state.put_point(proj, "keyframe", 100, {"zoom": 2.0, "easing": "ease-in-out"})
    proj = state.put_point(proj, "cut", 150, {"zoom": 1.5})
    assert [k.frame for k in proj.timeline.keyframes] == [0, 100] and proj.selected == ("cut", 150)
    with pytest.raises(UserError, match="frame 100 already has a keyframe"):
        state.put_point(proj, "cut", 100)
    with pytest.raises(UserError, match="frame 150 already has a cut"):
        state.put_point(proj, "keyframe", 150, replace_frame=100)
    moved = state.put_point(proj, "keyframe", 120, replace_frame=100)
    assert [k.frame for k in moved.timeline.keyframes] == [0, 120] and moved.timeline.keyframes[1].zoom == 2.0
    with pytest.raises(UserError, match="beyond|outside"):
        state.put_point(proj, "keyframe", 400)
    with pytest.raises(UserError, match="zoom must be > 0"):
        state.put_point(proj, "keyframe", 10, {"zoom": 0.0})
    assert state.delete_point(moved, "cut", 150).timeline.cuts == ()
    # a new point starts from the camera there, so adding it changes nothing
    halfway = state.put_point(proj, "keyframe", 50)
    assert 1.0 < halfway.timeline.keyframes[1].zoom < 2.0


def test_presets_and_shots(project):
    proj = replace(project, frame=40)
    proj = state.add_preset(proj, "close-up", "cut")
    proj = state.add_preset(replace(proj, frame=0), "wide", "keyframe")
    cut = proj.timeline.cuts[0]
    assert cut.frame == 40 and cut.label == "close-up" and cut.zoom > proj.timeline.keyframes[0].zoom
    rows = state.shot_rows(proj)
    assert [r[3] for r in rows] == ["wide", "close-up"] and rows[1][1] == "40–249"


def test_timeline_payload_edits(project):
    payload = json.loads(state.timeline_payload(project, "data:x"))
    assert payload["n"] == 250 and payload["keyframes"] == [] and payload["strip"] == "data:x"
    payload["edit"] = {"op": "add", "kind": "keyframe", "frame": 30}
    proj = state.apply_timeline_payload(project, json.dumps(payload))
    assert [k.frame for k in proj.timeline.keyframes] == [30]
    payload["edit"] = {"op": "add", "kind": "cut", "frame": 80}
    proj = state.apply_timeline_payload(proj, json.dumps(payload))
    payload["edit"] = {"op": "move", "kind": "cut", "from": 80, "frame": 90}
    proj = state.apply_timeline_payload(proj, json.dumps(payload))
    assert [c.frame for c in proj.timeline.cuts] == [90] and proj.frame == 90
    payload["edit"] = {"op": "move", "kind": "cut", "from": 90, "frame": 30}  # onto the keyframe: refused
    with pytest.raises(UserError, match="already has a keyframe"):
        state.apply_timeline_payload(proj, json.dumps(payload))
    payload["edit"] = {"op": "delete", "kind": "keyframe", "frame": 30}
    assert state.apply_timeline_payload(proj, json.dumps(payload)).timeline.keyframes == ()
    payload["edit"], payload["frame"] = {"op": "scrub"}, 12
    assert state.apply_timeline_payload(proj, json.dumps(payload)).frame == 12
    with pytest.raises(UserError, match="unreadable|not valid JSON"):
        state.apply_timeline_payload(proj, "{nope")


def test_trim_drops_points_beyond(project):
    proj = state.put_point(project, "keyframe", 200)
    trimmed = state.set_trim(proj, 10, 110)
    assert len(state.working_track(trimmed)) == 100 and trimmed.timeline.keyframes == ()


def test_animate_settings_validation():
    s = state.animate_settings({"steps": 2, "top_k": "all", "height": 16, "width": 32}, 4)
    assert (s.steps, s.top_k, s.height, s.width) == (2, "all", 16, 32)
    for bad, match in (({"steps": 0}, "^Steps must be between 1 and 10000, got 0$"), ({"guidance": 0.5}, "^Guidance"),
                       ({"guidance": float("inf")}, "^Guidance must be a finite"), ({"top_k": "many"}, "^Top-K"),
                       ({"height": 18}, "multiple of 4"), ({"clip_frames": 4, "overlap": 4}, "^Clip overlap"),
                       ({"width": -16}, "^Width must be positive"), ({"width": -5}, "^Width must be positive"),
                       ({"height": 20000}, "^Height must be between 1 and 8192, got 20000$"),
                       ({"seed": 10**30}, "^Seed must be between"), ({"steps": 2.5}, "^Steps must be a whole")):
        with pytest.raises(UserError, match=match):
            state.animate_settings(bad, 4)


def test_checked_numbers_name_the_field():
    assert state.check_number("zoom", "2.5") == 2.5
    for value, match in ((1e9, "^Zoom must be between 0.1 and 20, got 1e\\+09$"), (float("nan"), "^Zoom must be a finite"),
                         ("x", "^Zoom must be a number")):
        with pytest.raises(UserError, match=match):
            state.check_number("zoom", value)
    assert "0.1 to 20" in state.range_help("zoom")


def test_the_studio_checks_the_engines_ranges():
    """One set of ranges: what a studio field refuses is what the engine refuses, and the reverse."""
    from engine.animate import AnimateSettings
    from engine.camera import CameraTimeline
    from engine.limits import RANGES as LIMITS

    for name, (label, low, high) in state.RANGES.items():
        assert (low, high) == LIMITS["side" if name in ("width", "height") else name], name
    for name in ("zoom", "pan_x", "pan_y", "yaw"):
        low, high = LIMITS[name]
        assert state.check_number(name, high) == high
        for outside in (high * 1.5 + 1, low - 1):
            with pytest.raises(UserError, match=f"^{state.RANGES[name][0]} must be between"):
                state.check_number(name, outside)
            with pytest.raises(UserError, match=rf"keyframes\[0\]\.{name} must be"):
                CameraTimeline.from_json(json.dumps({"version": 2, "keyframes": [{"frame": 0, name: outside}]}))
    with pytest.raises(UserError, match="^top k must be"):
        AnimateSettings(top_k=LIMITS["top_k"][1] * 2).check()


# -- the edit history ---------------------------------------------------------------------------------------
def test_undo_after_three_edits_restores_the_plan_exactly_and_redo_reapplies(project):
    start = state.record(project, state.put_point(project, "keyframe", 0, {"zoom": 1.0}), "add keyframe")
    first = state.record(start, state.put_point(start, "keyframe", 100, {"zoom": 2.0, "easing": "ease-in-out"}), "add")
    second = state.record(first, state.put_point(first, "cut", 150, {"zoom": 1.5}), "add cut")
    third = state.record(second, state.put_point(second, "keyframe", 120, replace_frame=100), "move keyframe")
    fourth = state.record(third, replace(third, settings={"steps": 3}), "steps")
    assert len(fourth.history.past) == 5 and fourth.history.future == ()
    back = fourth
    for expected in (third, second, first, start):
        back, what = state.undo(back)
        assert back.timeline == expected.timeline and back.settings == expected.settings
    assert back.timeline.keyframes == (state.find_point(start.timeline, "keyframe", 0),)
    assert what == "add" and len(back.history.future) == 4
    forward = back
    for expected in (first, second, third, fourth):
        forward, _ = state.redo(forward)
        assert forward.timeline == expected.timeline and forward.settings == expected.settings
    with pytest.raises(UserError, match="nothing to redo"):
        state.redo(forward)
    # a new edit after an undo drops the redo stack
    undone, _ = state.undo(forward)
    branched = state.record(undone, state.delete_point(undone, "cut", 150), "delete cut")
    assert branched.history.future == () and branched.timeline.cuts == ()


def test_scrubbing_and_selecting_are_not_edits_and_undo_keeps_results(project):
    proj = state.record(project, state.put_point(project, "keyframe", 10), "add")
    scrubbed = state.record(proj, replace(proj, frame=42, selected=None), "scrub")
    assert scrubbed.history == proj.history
    with_output = replace(scrubbed, outputs=["result.mp4"])
    undone, _ = state.undo(with_output)
    assert undone.timeline.keyframes == () and undone.outputs == ["result.mp4"]
    with pytest.raises(UserError, match="nothing to undo"):
        state.undo(undone)
    long = project
    for i in range(state.HISTORY_LIMIT + 5):
        long = state.record(long, replace(long, settings={"seed": i}), "seed")
    assert len(long.history.past) == state.HISTORY_LIMIT


# -- the inspector -------------------------------------------------------------------------------------------
def test_inspector_keeps_what_it_does_not_edit():
    from studio.app import ASSETS

    demo = state.demo_project(ASSETS / "demo")
    wide = demo.timeline.keyframes[0]
    assert (wide.easing, wide.label, wide.shot) == ("ease-in-out", "wide", "wide")
    selected = replace(demo, selected=("keyframe", 0), frame=0)
    shown = state.inspector_values(selected)
    assert (shown["easing"], shown["label"], shown["shot"], shown["selected"]) == ("ease-in-out", "wide", "wide", True)
    framing = state.camera_at(demo.timeline, 0, state.working_track(demo))
    assert shown["pan_y"] == round(framing.pan_y, 3) and shown["zoom"] == round(framing.zoom, 3)
    # "Set" with the form as shown changes nothing
    form = {name: shown[name] for name in state.INSPECTOR_FIELDS}
    assert state.edit_point(selected, "keyframe", form).timeline == demo.timeline
    # only the zoom typed: easing, label and the framing's pan stay; the rule gives way to the typed zoom
    edited = state.edit_point(selected, "keyframe", {**form, "zoom": 1.2})
    point = state.find_point(edited.timeline, "keyframe", 0)
    assert (point.zoom, point.easing, point.label) == (1.2, "ease-in-out", "wide")
    assert point.shot is None and (point.pan_x, point.pan_y) == pytest.approx((framing.pan_x, framing.pan_y))
    assert edited.timeline.keyframes[1:] == demo.timeline.keyframes[1:] and edited.timeline.cuts == demo.timeline.cuts
    # only the label typed: the shot rule stays
    relabelled = state.find_point(state.edit_point(selected, "keyframe", {**form, "label": "W"}).timeline, "keyframe", 0)
    assert (relabelled.label, relabelled.shot, relabelled.easing, relabelled.zoom) == ("W", "wide", "ease-in-out", wide.zoom)
    # a zoom out of range changes nothing and names the field
    with pytest.raises(UserError, match="^Zoom must be between"):
        state.edit_point(selected, "keyframe", {**form, "zoom": 1e9})
    # nothing selected: "Set" adds a point at the scrubber's frame
    added = state.edit_point(replace(demo, frame=20, selected=None), "keyframe",
                             {**state.inspector_values(replace(demo, frame=20, selected=None)), "zoom": 3.0})
    assert state.find_point(added.timeline, "keyframe", 20).zoom == 3.0 and len(added.timeline.keyframes) == 3
    moved = state.edit_point(selected, "keyframe", {**form, "frame": 5})
    assert state.find_point(moved.timeline, "keyframe", 5).label == "wide" and state.find_point(moved.timeline, "keyframe", 0) is None


def test_suggestion_note_says_why_fewer():
    keypoints = np.zeros((4, 128, 3), np.float32)
    keypoints[..., :2] = 0.5
    keypoints[0, :18, 2] = 1.0
    keypoints[1, :18, 2] = 0.9
    track = PoseTrack(keypoints, 64, 64)
    picks = state.suggest_reference_frames(track, 3)
    assert picks == [0]
    assert "add no body part" in state.suggestion_note(track, picks, 3)
    only = PoseTrack(keypoints[:1], 64, 64)
    assert state.suggestion_note(only, [0], 3) == "only 1 of the video's 1 frames show a person"
    assert state.suggestion_note(track, picks, 1) == ""



def _lost_person(people: int):
    """A 100-frame, 25 fps track whose person is not seen in frames 10-12, 40-69 and from 90 on, what the follower
    reports of it, and what fill_gaps did there."""
    from engine.poses import FollowReport, fill_gaps

    keypoints = np.zeros((100, 128, 3), np.float32)
    keypoints[:, :18] = (0.5, 0.5, 1.0)
    lost = [*range(10, 13), *range(40, 70), *range(90, 100)]
    keypoints[lost] = 0
    track = PoseTrack(keypoints, 64, 64, 25.0)
    follow = FollowReport(people_at_start=people, person=people, start_frame=0, lost=lost)
    return track, follow, fill_gaps(track)[1]


def test_lost_note_tells_where_the_person_is_not_seen_and_what_the_motion_holds_there():
    _, follow, gaps = _lost_person(1)
    note = state.lost_note(follow, gaps)
    assert note.startswith("The person is not seen in frames 10-12, 40-69, 90-99 (43 frames); nobody else is taken")
    assert "interpolated between their own poses around the gap in 3 frames" in note
    assert "held from the nearest frame they are seen in in 10 frames" in note
    assert "left out (no pose is drawn: over a second without them) in 30 frames" in note
    _, two, _ = _lost_person(2)
    assert state.lost_note(two, None) == ("Person 2 is not seen in frames 10-12, 40-69, 90-99 (43 frames); "
                                          "nobody else is taken there.")
    assert state.lost_note(replace(follow, lost=[]), gaps) == ""


def test_a_video_of_one_person_who_leaves_gets_the_lost_note_and_no_people_picture(tiny_model_dir, tmp_path,
                                                                                  monkeypatch):
    """The Motion tab's message of a one-person video names the frames the person is not seen in; the
    picture to pick a person stays hidden (the landmarker is replaced by the hand-made track)."""
    import studio.app as app
    from engine.video import write_video

    track, follow, _ = _lost_person(1)

    def fake_load_motion(path, progress=None, person=None, report=None):
        from engine.poses import fill_gaps

        filled, report["gaps"] = fill_gaps(track)
        report["follow"] = follow
        return filled

    monkeypatch.setattr(app, "load_motion", fake_load_motion)
    monkeypatch.setattr(app.AUTOSAVER, "save", lambda *args, **kwargs: None)
    video = tmp_path / "one person.mp4"
    write_video(video, np.full((100, 64, 64, 3), 90, np.uint8), 25.0)
    demo = app.create_app(model=tiny_model_dir)
    on_video = next(d.fn for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "on_motion_file")
    result = on_video(state.Project(), "0" * 32, str(video), progress=lambda *args, **kwargs: None)
    message = next(r for r in result if isinstance(r, str) and "frames at 25 fps" in r)
    assert "The person is not seen in frames 10-12, 40-69, 90-99 (43 frames)" in message, message
    assert "people in the video" not in message
    assert result[-2]["visible"] is False and result[-1] is None  # no picture to pick a person from
    follow.people_at_start = 2  # the same video with two people at the start: the picture, and the note in it
    result = on_video(state.Project(), "0" * 32, str(video), progress=lambda *args, **kwargs: None)
    message = next(r for r in result if isinstance(r, str) and "frames at 25 fps" in r)
    assert "2 people in the video" in message and "Person 1 is not seen in frames 10-12" in message, message
    assert result[-2]["visible"] is True and result[-1]["person"] == 1

# -- project files -------------------------------------------------------------------------------------------
def test_project_roundtrip(project, tmp_path):
    proj = state.put_point(project, "keyframe", 20, {"zoom": 1.7})
    proj = state.put_point(proj, "cut", 60, {"zoom": 2.5})
    proj = replace(state.set_trim(proj, 5, 205), retarget=True, settings={"steps": 3})
    path = state.save_project(proj, tmp_path / "p.freeview")
    back = state.load_project(path)
    assert [e.reference.name for e in back.references] == ["close-up", "wide"]
    np.testing.assert_array_equal(back.references[1].reference.image, proj.references[1].reference.image)
    assert back.trim == (5, 205) and back.retarget and back.settings == {"steps": 3}
    assert back.timeline == proj.timeline
    assert len(back.motion) == 250


def test_project_newer_or_corrupted(project, tmp_path):
    path = state.save_project(project, tmp_path / "p.freeview")
    newer = tmp_path / "newer.freeview"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "manifest.json":
                manifest = json.loads(data)
                manifest["version"] = state.PROJECT_VERSION + 1
                data = json.dumps(manifest)
            dst.writestr(item, data)
    with pytest.raises(UserError, match="newer FreeView"):
        state.load_project(newer)
    broken = tmp_path / "broken.freeview"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(UserError, match="damaged"):
        state.load_project(broken)
    # a failed save leaves the previous file as it was
    before = path.read_bytes()
    with pytest.raises(Exception):
        state.save_project(replace(project, settings={"bad": object()}), path)
    assert path.read_bytes() == before


# -- previews and their speed ------------------------------------------------------------------------------------
def test_camera_views_and_preview_speed(project, capsys):
    """An edit on a 10-second track re-renders the timeline, scrubber, curves and shots (timing printed only)."""
    from studio.app import camera_views

    proj = state.put_point(project, "keyframe", 0, {"zoom": 1.0})
    proj = state.put_point(proj, "keyframe", 80, {"zoom": 2.2, "pan_y": -0.1, "easing": "ease-in-out"})
    proj = state.add_preset(replace(proj, frame=140), "close-up", "cut")
    proj = state.add_preset(replace(proj, frame=200), "wide", "cut")
    camera_views(proj)  # warm the strip cache (computed once per motion)
    timings = []
    for frame in (10, 90, 150, 230):
        start = time.perf_counter()
        views = camera_views(state.put_point(proj, "keyframe", 80, {"zoom": 2.0 + frame / 1000}, replace_frame=80))
        timings.append(time.perf_counter() - start)
        assert views[3].ndim == 3 and views[4].ndim == 3
    best = min(timings) * 1000
    with capsys.disabled():
        print(f"\n[studio bench] preview update for a 10-second (250-frame) track: {best:.0f} ms (best of 4), "
              f"{np.median(timings) * 1000:.0f} ms median")
    # the speed target (at or below ~120 ms median on an idle machine) lives in `freeview bench studio`


def test_empty_timeline_views():
    from studio.app import camera_views

    views = camera_views(state.Project())
    assert json.loads(views[1])["n"] == 0 and views[3] is None


# -- the app -----------------------------------------------------------------------------------------------------
def test_blocks_build_without_launching(tiny_model_dir):
    import gradio as gr

    from studio.app import create_app

    demo = create_app(model=tiny_model_dir)
    assert isinstance(demo, gr.Blocks)
    names = {d.api_name for d in demo.fns.values() if d.api_name}
    assert {"add_references", "load_demo_motion", "timeline_edit", "set_point", "generate", "cancel"} <= names
    generate = next(d for d in demo.fns.values() if d.api_name == "generate")
    assert generate.concurrency_limit == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def running_app(tiny_model_dir, studio_assets, tmp_path, monkeypatch):
    from studio.app import create_app, launch_kwargs

    monkeypatch.setenv("FREEVIEW_DEMO_MOTIONS", str(studio_assets / "motions"))
    monkeypatch.setenv("FREEVIEW_STUDIO_OUTPUTS", str(tmp_path / "outputs"))
    demo = create_app(model=tiny_model_dir)
    demo.queue()
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


def test_api_generation_with_gradio_client(running_app, studio_assets, tiny_model_dir):
    from gradio_client import Client, handle_file

    _, url = running_app
    client = Client(url, verbose=False)
    refs = studio_assets / "references"
    files = [handle_file(str(refs / name)) for name in ("close-up.png", "close-up.pose.json", "wide.png", "wide.pose.json")]
    client.predict(files, api_name="/add_references")
    client.predict("walk", api_name="/load_demo_motion")
    client.predict("keyframe", 0, 1.0, 0.0, 0.0, 0.0, "linear", "", "none", api_name="/set_point")
    client.predict("cut", 5, 1.8, 0.0, -0.1, 0.0, "linear", "CU", "none", api_name="/set_point")
    # the embedded default model, at its own resolution
    result = client.predict("embedded default", "", 1, 1.0, 0, "default", 4, 1, 0, 0, api_name="/generate")
    video = result[0]["video"] if isinstance(result[0], dict) else result[0]
    assert Path(video).is_file() and Path(video).stat().st_size > 0, result
    from engine.video import probe_video

    info = probe_video(video)
    assert (info.width, info.height) == (128, 128) and info.frames >= 2
    # the model recommends two photos' worth of tokens: with two photos nothing is chosen, so no caption
    assert "Done" in result[-1] and "kept per photo" not in result[-1], result
    result = client.predict("embedded default", "", 1, 1.0, 0, "1", 4, 1, 0, 0, api_name="/generate")
    assert "Done" in result[-1] and "kept per photo: 1 close-up" in result[-1] and "· 2 wide" in result[-1], result

    # one click loads the shipped demo; the work it replaces is saved first, never lost
    status = client.predict(api_name="/load_demo")[-1]
    assert "Loaded the demo" in status and "saved as" in status, status
    saved = list(Path(os.environ["FREEVIEW_STUDIO_OUTPUTS"]).glob("project-before-*.freeview"))
    assert len(saved) == 1 and len(state.load_project(saved[0]).references) == 2


def test_demo_project_is_the_shipped_demo(tmp_path):
    from studio.app import ASSETS

    proj = state.demo_project(ASSETS / "demo")
    assert [e.shot for e in proj.references] == ["close-up", "medium", "wide"]
    assert len(state.working_track(proj)) == 96 and proj.motion_name == "presenter"
    assert len(proj.timeline.keyframes) == 2 and len(proj.timeline.cuts) == 1
    with pytest.raises(UserError, match="freeview synth demo"):
        state.demo_project(tmp_path)


def test_preview_beside_keeps_the_left_height():
    import numpy as np

    from studio.preview import beside

    left = np.zeros((100, 60, 3), np.uint8)
    right = np.full((32, 32, 3), 200, np.uint8)
    both = beside(left, right)
    assert both.shape == (100, 60 + 4 + 100, 3) and both[:, -1].min() == 200


def test_selection_caption_says_which_photos_the_selection_drew_on():
    from engine.animate import selection_caption

    correlation = np.zeros((4, 2, 3, 3), np.float32)  # 4 frames, 2 photos
    correlation[:, 1] = 0.2                            # the second photo matches every frame better
    assert selection_caption(["close-up", "wide"], correlation) == "kept per photo: 1 close-up 0% · 2 wide 100%"
    correlation[:2, 0] = 0.5                           # ... except in the first two frames
    assert selection_caption(["close-up", "wide"], correlation) == "kept per photo: 1 close-up 50% · 2 wide 50%"
    assert selection_caption(["close-up", "wide"], correlation, top_k="all") == ""  # nothing chosen
    assert selection_caption(["close-up", "wide"], correlation, top_k=2.0) == ""  # two photos' worth of two: all kept
    assert selection_caption(["close-up", "medium", "wide"], np.zeros((4, 3, 3, 3), np.float32), top_k=2.0) != ""
    assert selection_caption(["close-up", "wide"], correlation, disable_pcm=True) == ""
    assert selection_caption(["wide"], correlation[:, :1]) == ""
    assert selection_caption(["close-up", "wide"], None) == ""


# -- messages, autosave, playback and the labelled pictures ------------------------------------------------------
def test_user_messages_name_files_never_temporary_paths(tmp_path):
    import tempfile

    from studio.app import user_message

    upload = Path(tempfile.gettempdir()) / "gradio" / "3f2a9c" / "holiday.mp4"
    message = user_message(UserError(f"cannot read video {upload}: not a video\n(moov atom not found)"))
    assert message == "cannot read video holiday.mp4: not a video (moov atom not found)"
    assert user_message(UserError("model not found: /home/ana/models/x")) == "model not found: /home/ana/models/x"


def test_autosave_writes_in_the_background_and_is_offered_back(project, tmp_path, monkeypatch):
    from studio.app import AUTOSAVER, Autosaver, autosave_offer

    monkeypatch.setenv("FREEVIEW_STUDIO_AUTOSAVE", str(tmp_path / "autosave"))
    key = "0123456789abcdef0123456789abcdef"
    assert autosave_offer(key) == (False, "")
    edited = state.record(project, state.put_point(project, "keyframe", 30, {"zoom": 1.6}), "add")
    AUTOSAVER.save(edited, key)
    AUTOSAVER.save(state.Project(), "../../etc/passwd")  # not a key: ignored
    AUTOSAVER.flush()
    assert Autosaver.path(key).exists() and not list(tmp_path.glob("**/*.tmp*"))
    offered, note = autosave_offer(key)   # a page load: the autosave is kept aside and described
    assert offered and "Restore the project from" in note and "2 photo(s)" in note and "1 keyframe(s)" in note
    assert not Autosaver.path(key).exists() and Autosaver.previous_path(key).exists()
    back = state.load_project(Autosaver.previous_path(key))
    assert back.timeline == edited.timeline and len(back.references) == 2
    AUTOSAVER.save(state.Project(), key)  # an empty project never overwrites anything
    AUTOSAVER.flush()
    assert not Autosaver.path(key).exists()


def test_playback_data_follows_the_camera(project):
    from engine.camera import apply_camera, camera_curves
    from studio.preview import playback_data

    proj = state.put_point(project, "keyframe", 0, {"zoom": 1.0})
    proj = state.put_point(proj, "keyframe", 200, {"zoom": 3.0})
    track = state.working_track(proj)
    curves, shots = camera_curves(proj.timeline, track)
    play = playback_data(track, proj.timeline, curves, apply_camera(track, proj.timeline), shots)
    assert len(play["seen"]) == len(play["source"]) == len(play["rect"]) == 250 and len(play["seen"][0]) == 36
    width = lambda f: play["rect"][f][2] - play["rect"][f][0]  # noqa: E731
    assert width(0) == pytest.approx(3 * width(200), rel=0.01)  # three times the zoom, a third of the view
    json.dumps(play)


def test_playback_shows_the_photos_warped_into_each_frame(project):
    """The player's sprite: one tile per stride frames, the photos' colours where the person stands."""
    import base64

    import cv2

    from engine.animate import Reference
    from studio.preview import warp_sprite

    track = state.working_track(project)
    keypoints = track.keypoints[0]  # a photo of the first frame's pose, the person drawn red on grey
    height = 200
    width = round(height * track.width / track.height)
    photo = np.full((height, width, 3), 30, np.uint8)
    body = keypoints[:, 2] > 0.3
    for x, y in keypoints[body, :2] * (width, height):
        cv2.circle(photo, (int(x), int(y)), 12, (220, 40, 40), -1)
    assert warp_sprite([], track) is None
    sprite = warp_sprite([Reference(photo, keypoints, name="red.png")], track, tile_height=48, max_tiles=40)
    assert sprite["stride"] == int(np.ceil(len(track) / 40)) and sprite["count"] == len(range(0, len(track), sprite["stride"]))
    sheet = cv2.imdecode(np.frombuffer(base64.b64decode(sprite["url"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert sheet.shape[1] == sprite["cols"] * sprite["tw"] and sheet.shape[0] >= sprite["th"]
    tile = sheet[:sprite["th"], :sprite["tw"]].astype(int)
    red = (tile[..., 0] > 150) & (tile[..., 1] < 110)
    points = track.keypoints[0][track.keypoints[0][:, 2] > 0.3, :2] * (sprite["tw"], sprite["th"])
    hits = [red[min(int(y), sprite["th"] - 1), min(int(x), sprite["tw"] - 1)] for x, y in points]
    assert red.any() and np.mean(hits) > 0.5  # the red person stands where the first frame's joints are


def test_curve_plot_draws_yaw_and_correlation_picture_is_labelled():
    from studio.preview import YAW, correlation_or_none, curve_plot

    curves = np.zeros((50, 4))
    curves[:, 0] = 1.0
    flat = curve_plot(curves, [], [], 0)
    curves[:, 3] = np.linspace(0, 30, 50)
    orbit = curve_plot(curves, [], [], 0)
    violet = lambda im: int(np.all(np.abs(im.astype(int) - YAW) < 30, axis=-1).sum())  # noqa: E731
    assert violet(orbit) > violet(flat) + 50
    photos = [np.full((64, 48, 3), v, np.uint8) for v in (60, 200)]
    correlation = np.random.default_rng(0).random((10, 2, 4, 4)).astype(np.float32)
    labelled = correlation_or_none(photos, correlation, ["close-up", "wide"], [0.25, 0.75])
    from engine.animate import correlation_picture

    grid = correlation_picture(photos, correlation)
    assert labelled.shape[0] > grid.shape[0] and labelled.shape[1] > grid.shape[1]  # room for names, frames, scale


def test_edits_and_moves_keep_fields_the_studio_does_not_show(project):
    from engine.camera import FRAMINGS

    other = [f for f in FRAMINGS if f != state.Keyframe(0).framing][0]
    proj = state.put_point(project, "keyframe", 10, {"zoom": 1.5})
    locked = replace(proj, timeline=replace(proj.timeline, keyframes=(replace(proj.timeline.keyframes[0], framing=other),)))
    moved = state.put_point(locked, "keyframe", 20, replace_frame=10)
    assert moved.timeline.keyframes[0].framing == other and moved.timeline.keyframes[0].zoom == 1.5
    selected = replace(locked, selected=("keyframe", 10))
    edited = state.edit_point(selected, "keyframe", {**state.inspector_values(selected), "label": "CU"})
    assert edited.timeline.keyframes[0].framing == other


def test_the_people_picture_numbers_people_and_a_click_picks_one():
    from engine.poses.follow import follow_person
    from studio.preview import people_picture, person_at

    def body(x: float) -> np.ndarray:  # a standing person centred at x (normalised), 18 joints
        b = np.zeros((18, 3), np.float32)
        b[:, 0] = x + np.linspace(-0.05, 0.05, 18)
        b[:, 1] = np.linspace(0.1, 0.9, 18)
        b[:, 2] = 1.0
        return b

    frames = [np.stack([body(0.7), body(0.3)]) for _ in range(3)]  # the detector lists the right one first
    _, report = follow_person(frames, 200, 100, 25.0)
    boxes = report.start_boxes
    assert report.start_frame == 0 and len(boxes) == 2 and boxes[0][0] < boxes[1][0]  # person 1 is the leftmost
    assert person_at(boxes, 60, 50) == 1 and person_at(boxes, 140, 50) == 2
    assert person_at(boxes, 140, 97) == 2     # just below a box: the nearest within a box size
    assert person_at(boxes, 100, 50 + 400) is None and person_at([], 1, 1) is None
    frame = np.zeros((100, 200, 3), np.uint8)
    picture = people_picture(frame, boxes, chosen=2, max_side=200)
    assert picture.shape == (100, 200, 3)
    right, left = picture[:, 100:].reshape(-1, 3), picture[:, :100].reshape(-1, 3)
    accent = np.all(np.abs(right.astype(int) - (255, 138, 61)) < 30, axis=1)
    assert accent.sum() > 50                                       # the followed person's box, in the accent colour
    assert not np.all(np.abs(left.astype(int) - (255, 138, 61)) < 30, axis=1).any()
