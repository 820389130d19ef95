"""Camera timelines: framing maths, cuts, easing, shot presets, validation, orbit, speed."""

import json
import math

from dataclasses import replace

import numpy as np
import pytest

from engine.camera import (
    CameraState, CameraTimeline, Cut, Keyframe, apply_camera, camera_at, camera_curves, list_shots, shot_preset,
)
from engine.errors import UserError
from engine.poses.track import BODY_INDEX, NUM_KEYPOINTS, PoseTrack

STANDING = {  # a full-body person in a 512x512 frame, normalised
    "nose": (0.5, 0.15), "neck": (0.5, 0.25), "r_shoulder": (0.42, 0.25), "r_elbow": (0.38, 0.38),
    "r_wrist": (0.36, 0.5), "l_shoulder": (0.58, 0.25), "l_elbow": (0.62, 0.38), "l_wrist": (0.64, 0.5),
    "r_hip": (0.45, 0.52), "r_knee": (0.45, 0.7), "r_ankle": (0.45, 0.88), "l_hip": (0.55, 0.52),
    "l_knee": (0.55, 0.7), "l_ankle": (0.55, 0.88), "r_eye": (0.48, 0.13), "l_eye": (0.52, 0.13),
    "r_ear": (0.46, 0.14), "l_ear": (0.54, 0.14),
}


def standing_track(frames: int = 30, world: bool = True, size=(512, 512)) -> PoseTrack:
    keypoints = np.zeros((frames, NUM_KEYPOINTS, 3), np.float32)
    for name, (x, y) in STANDING.items():
        keypoints[:, BODY_INDEX[name]] = (x, y, 0.9)
    w = None
    if world:
        w = np.zeros_like(keypoints)
        w[..., 0] = (keypoints[..., 0] - 0.5) * 1.7  # metres, origin between the hips
        w[..., 1] = (keypoints[..., 1] - 0.52) * 1.7
        w[:, BODY_INDEX["nose"], 2] = -0.1
    return PoseTrack(keypoints, size[0], size[1], 25.0, world=w)


def test_zoom_two_about_the_centre_doubles_distances():
    track = standing_track(5)
    out = apply_camera(track, CameraTimeline(keyframes=[Keyframe(0, zoom=2.0)]))
    src = (track.keypoints[..., :2] - 0.5) * 512
    dst = (out.keypoints[..., :2] - 0.5) * 512
    np.testing.assert_allclose(dst, 2 * src, atol=1e-4)
    assert (out.width, out.height) == (512, 512)


def test_pan_moves_the_view_centre():
    track = standing_track(1)
    out = apply_camera(track, CameraTimeline(keyframes=[Keyframe(0, pan_x=0.1, pan_y=-0.05)]))
    np.testing.assert_allclose(out.keypoints[0, :18, :2], track.keypoints[0, :18, :2] - [0.1, -0.05], atol=1e-6)


def test_cut_changes_framing_exactly_at_its_frame():
    track = standing_track(30)
    timeline = CameraTimeline(keyframes=[Keyframe(0, zoom=1.0), Keyframe(25, zoom=1.5)], cuts=[Cut(10, zoom=2.0, pan_y=-0.1)])
    curves, _ = camera_curves(timeline, track)
    out = apply_camera(track, timeline)
    change = np.abs(np.diff(out.keypoints[..., :2], axis=0)).max(axis=(1, 2))
    assert change[9] > 0.01  # frame 9 -> 10
    assert np.all(change[:9] == 0)  # holds before the cut (no easing into a cut)
    assert curves[9, 0] == 1.0 and curves[10, 0] == 2.0 and curves[10, 2] == pytest.approx(-0.1)
    # after the cut it moves on from the cut's values to the next keyframe
    assert curves[25, 0] == pytest.approx(1.5) and 1.5 < curves[17, 0] < 2.0


def test_cut_alone_changes_nothing_else():
    track = standing_track(20)
    out = apply_camera(track, CameraTimeline(cuts=[Cut(7, zoom=1.8)]))
    change = np.abs(np.diff(out.keypoints[..., :2], axis=0)).max(axis=(1, 2))
    assert np.flatnonzero(change > 0).tolist() == [6]


@pytest.mark.parametrize("easing", ["linear", "ease-in-out"])
def test_easing_is_monotonic_between_keyframes(easing):
    track = standing_track(40)
    timeline = CameraTimeline(keyframes=[Keyframe(5, zoom=1.0, yaw=0, easing=easing), Keyframe(30, zoom=3.0, pan_x=-0.2)])
    curves, _ = camera_curves(timeline, track)
    zoom, pan = curves[:, 0], curves[:, 1]
    assert np.all(np.diff(zoom) >= 0) and np.all(np.diff(pan) <= 0)
    assert zoom[5] == 1.0 and zoom[30] == 3.0 and zoom[0] == 1.0 and zoom[39] == 3.0
    if easing == "ease-in-out":  # slow at both ends
        assert zoom[6] - zoom[5] < zoom[18] - zoom[17]


def test_hold_easing_jumps_at_the_next_keyframe():
    track = standing_track(20)
    curves, _ = camera_curves(CameraTimeline(keyframes=[Keyframe(0, zoom=1, easing="hold"), Keyframe(10, zoom=2)]), track)
    assert np.all(curves[:10, 0] == 1) and np.all(curves[10:, 0] == 2)


@pytest.mark.parametrize("size", [(512, 512), (1280, 720), (720, 1280)])
def test_shot_presets_frame_the_joints_they_promise(size):
    track = standing_track(3)
    j = BODY_INDEX
    promises = {
        "close-up": (["nose", "r_shoulder", "l_shoulder", "neck", "r_eye", "l_eye"], ["r_knee", "l_knee", "r_ankle"]),
        "medium": (["nose", "r_shoulder", "l_shoulder", "r_hip", "l_hip"], ["r_knee", "l_knee", "r_ankle", "l_ankle"]),
        "wide": (list(STANDING), []),
    }
    zooms = {}
    for name, (kept, dropped) in promises.items():
        timeline = CameraTimeline(keyframes=[Keyframe(0, shot=name)], width=size[0], height=size[1])
        out = apply_camera(track, timeline)
        conf = out.keypoints[0, :, 2]
        assert all(conf[j[k]] > 0 for k in kept), (name, [k for k in kept if conf[j[k]] == 0])
        assert all(conf[j[k]] == 0 for k in dropped), (name, [k for k in dropped if conf[j[k]] > 0])
        assert camera_at(timeline, 1, track).shot == name
        zooms[name] = shot_preset(track, 0, name, *size).zoom
    assert zooms["close-up"] > zooms["medium"] > zooms["wide"]


def test_shot_preset_over_a_range_and_unknown_name():
    track = standing_track(10)
    key = shot_preset(track, (0, 10), "medium")
    assert isinstance(key, Keyframe) and key.zoom > 1 and key.shot == "medium"
    with pytest.raises(UserError, match="extreme"):
        shot_preset(track, 0, "extreme")


def test_camera_at_and_list_shots():
    track = standing_track(30)
    timeline = CameraTimeline(keyframes=[Keyframe(0, shot="wide", label="establishing")],
                              cuts=[Cut(12, shot="close-up"), Cut(20, zoom=1.2, label="reaction")])
    state = camera_at(timeline, 15, track)
    assert isinstance(state, CameraState) and state.shot == "close-up" and state.zoom > 1.5
    assert camera_at(timeline, 0, track).shot == "establishing"
    shots = list_shots(timeline, 30)
    assert [(s.start, s.stop, s.name) for s in shots] == [(0, 12, "establishing"), (12, 20, "close-up"), (20, 30, "reaction")]
    with pytest.raises(UserError, match="beyond"):
        camera_at(timeline, 30, track)


def test_keypoints_leaving_the_frame_become_invisible():
    track = standing_track(2)
    out = apply_camera(track, CameraTimeline(keyframes=[Keyframe(0, zoom=4.0, pan_y=-0.3)]))
    conf = out.keypoints[0, :, 2]
    assert conf[BODY_INDEX["nose"]] > 0 and conf[BODY_INDEX["l_ankle"]] == 0


def test_output_size_and_aspect():
    track = standing_track(2)
    assert apply_camera(track, CameraTimeline(width=320, height=180)).width == 320
    out = apply_camera(track, CameraTimeline(aspect="9:16"))
    assert (out.width, out.height) == (288, 512)
    with pytest.raises(UserError, match="aspect"):
        CameraTimeline(aspect="wide")


def test_json_round_trip(tmp_path):
    timeline = CameraTimeline(keyframes=[Keyframe(0, zoom=1.2, easing="ease-in-out", label="a"), Keyframe(9, yaw=20.0)],
                              cuts=[Cut(5, shot="medium")], width=640, height=360)
    assert CameraTimeline.from_json(timeline.to_json()) == timeline
    path = timeline.save(tmp_path / "t.json")
    assert CameraTimeline.load(path) == timeline
    assert json.loads(path.read_text())["version"] == 2


@pytest.mark.parametrize("keyframes, field, value", [
    ([{"frame": 10}, {"frame": 5}], "keyframes[1].frame", "5"),
    ([{"frame": 3}, {"frame": 3}], "keyframes[1].frame", "3"),
    ([{"frame": 0, "zoom": 0}], "keyframes[0].zoom", "0"),
    ([{"frame": 0, "zoom": -2}], "keyframes[0].zoom", "-2"),
    ([{"frame": 0, "pan_x": float("nan")}], "keyframes[0].pan_x", "nan"),
    ([{"frame": float("nan")}], "keyframes[0].frame", "NaN"),
    ([{"frame": 0, "easing": "bounce"}], "keyframes[0].easing", "bounce"),
    ([{"frame": 0, "shot": "extreme"}], "keyframes[0].shot", "extreme"),
    ([{"frame": -1}], "keyframes[0].frame", "-1"),
])
def test_bad_keyframes_are_rejected_naming_field_and_value(keyframes, field, value):
    text = json.dumps({"version": 1, "keyframes": keyframes})
    with pytest.raises(UserError) as info:
        CameraTimeline.from_json(text)
    assert field in str(info.value) and value in str(info.value)


def test_keyframes_beyond_the_track_and_cut_duplicates():
    track = standing_track(10)
    with pytest.raises(UserError, match=r"keyframes\[1\]\.frame=10 is beyond"):
        apply_camera(track, CameraTimeline(keyframes=[Keyframe(0), Keyframe(10)]))
    with pytest.raises(UserError, match=r"cuts\[0\]\.frame=4 duplicates keyframes\[1\]"):
        CameraTimeline(keyframes=[Keyframe(0), Keyframe(4)], cuts=[Cut(4)])
    with pytest.raises(UserError, match="unknown"):
        CameraTimeline.from_dict({"keyframes": [{"frame": 0, "zom": 2}]})
    with pytest.raises(UserError, match="not valid JSON"):
        CameraTimeline.from_json("{")


def test_yaw_needs_3d_and_rotates_about_the_vertical_axis():
    flat = standing_track(4, world=False)
    with pytest.raises(UserError, match="3D"):
        apply_camera(flat, CameraTimeline(keyframes=[Keyframe(0), Keyframe(3, yaw=30)]))
    track = standing_track(4)
    out = apply_camera(track, CameraTimeline(keyframes=[Keyframe(0, yaw=180)]))
    kp, src = out.keypoints[0], track.keypoints[0]
    # seen from behind: left and right swap sides of the body axis, heights stay
    hip_x = 0.5 * (src[BODY_INDEX["r_hip"], 0] + src[BODY_INDEX["l_hip"], 0])
    for a, b in (("l_shoulder", "r_shoulder"), ("l_ankle", "r_ankle")):
        assert kp[BODY_INDEX[a], 0] == pytest.approx(2 * hip_x - src[BODY_INDEX[a], 0], abs=1e-4)
        assert kp[BODY_INDEX[a], 0] == pytest.approx(src[BODY_INDEX[b], 0], abs=1e-4)
    np.testing.assert_allclose(kp[:18, 1], src[:18, 1], atol=1e-4)
    quarter = apply_camera(track, CameraTimeline(keyframes=[Keyframe(0, yaw=90)])).keypoints[0]
    shoulders = abs(quarter[BODY_INDEX["l_shoulder"], 0] - quarter[BODY_INDEX["r_shoulder"], 0])
    assert shoulders < 1e-4  # side view: the shoulders line up
    assert out.world is not None and not math.isclose(out.world[0, BODY_INDEX["l_shoulder"], 0], track.world[0, BODY_INDEX["l_shoulder"], 0])


def test_an_edited_timeline_frames_its_presets_once(monkeypatch):
    """Speed comes from not doing work twice (the figures are in `freeview bench studio`): asking again for the
    same plan evaluates nothing, and an edit that leaves the preset shots alone (a zoom keyframe) frames no preset
    again."""
    import engine.camera as camera

    rng = np.random.default_rng(0)
    track = standing_track(250)
    track.keypoints[..., :2] += rng.normal(0, 0.005, track.keypoints[..., :2].shape).astype(np.float32)
    timeline = CameraTimeline(
        keyframes=[Keyframe(0, shot="wide"), Keyframe(60, zoom=1.5, yaw=20, easing="ease-in-out"), Keyframe(120, yaw=-10)],
        cuts=[Cut(150, shot="close-up"), Cut(200, shot="medium")], width=768, height=432)
    framed, evaluated = [], []
    real_framing, real_evaluate = camera.preset_framing, camera._evaluate
    monkeypatch.setattr(camera, "preset_framing", lambda *a, **k: framed.append(a[3]) or real_framing(*a, **k))
    monkeypatch.setattr(camera, "_evaluate", lambda *a, **k: evaluated.append(1) or real_evaluate(*a, **k))
    camera._PLANS.clear()
    camera._FRAMINGS.clear()
    first = apply_camera(track, timeline)
    assert sorted(framed) == ["close-up", "medium", "wide"] and len(evaluated) == 1
    again = apply_camera(track, timeline)
    assert len(evaluated) == 1 and np.array_equal(first.keypoints, again.keypoints)
    edited = replace(timeline, keyframes=[timeline.keyframes[0], Keyframe(60, zoom=1.7, yaw=20, easing="ease-in-out"),
                                          timeline.keyframes[2]])
    changed = apply_camera(track, edited)
    assert len(evaluated) == 2 and sorted(framed) == ["close-up", "medium", "wide"]  # no preset framed again
    assert not np.array_equal(changed.keypoints[60], first.keypoints[60])
    assert np.array_equal(changed.keypoints[150:], first.keypoints[150:])  # the preset shots are as before


