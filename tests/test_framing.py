"""Follow framing, swap repair and person following on small hand-made tracks."""

import json

import numpy as np
import pytest

from engine.camera import CameraTimeline, Keyframe, apply_camera, camera_plan
from engine.errors import UserError
from engine.framing import CLOSE_UP_HEAD, HEAD_HEIGHT, FollowSettings, body_height, preset_rule, without_short_reversals
from engine.poses.follow import follow_person
from engine.poses.repair import repair_swaps
from engine.poses.track import BODY_INDEX as J, NUM_KEYPOINTS, PoseTrack
from tests.test_camera import STANDING


def walking_track(frames=60, speed=0.006, size=(640, 360), raise_leg_at=None, tilt_head=False) -> PoseTrack:
    """A person of about 0.55 frame heights walking right at ``speed`` frame widths per frame."""
    keypoints = np.zeros((frames, NUM_KEYPOINTS, 3), np.float32)
    for name, (x, y) in STANDING.items():
        keypoints[:, J[name]] = (0.2 + (x - 0.5) * 0.35 * size[1] / size[0], 0.1 + y * 0.6, 0.9)
    keypoints[:, :18, 0] += speed * np.arange(frames)[:, None]
    keypoints[:, :18, 0] += 0.002 * np.sin(np.arange(frames))[:, None]  # jitter the dead zone should absorb
    if raise_leg_at is not None:
        keypoints[raise_leg_at:, J["r_ankle"], :2] = keypoints[raise_leg_at:, J["r_hip"], :2] + [-0.12, 0.0]
        keypoints[raise_leg_at:, J["r_knee"], :2] = keypoints[raise_leg_at:, J["r_hip"], :2] + [-0.07, 0.02]
    if tilt_head:  # head tilted down to the shoulder line: head-to-shoulder height collapses
        for name in ("nose", "r_eye", "l_eye", "r_ear", "l_ear"):
            keypoints[:, J[name], 1] = keypoints[:, J["neck"], 1] - 0.01
    return PoseTrack(keypoints, size[0], size[1], 25.0)


def shown_share(track, name):
    timeline = CameraTimeline(keyframes=[Keyframe(0, shot=name)])
    out = apply_camera(track, timeline)
    seen = track.keypoints[:, :18, 2] > 0.5
    return np.mean([np.all(out.keypoints[f, :18, 2][seen[f]] > 0) for f in range(len(track))]), camera_plan(timeline, track)


@pytest.mark.parametrize("raise_leg_at", [None, 30])
def test_wide_follows_a_walking_person_and_keeps_every_joint(raise_leg_at):
    track = walking_track(raise_leg_at=raise_leg_at)
    share, plan = shown_share(track, "wide")
    assert share == 1.0
    pan = plan.curves[:, 1]
    assert pan[-1] - pan[0] > 0.15  # the camera went with the person
    assert np.abs(np.diff(pan)).max() < 0.02  # smoothly
    locked_share = np.mean(apply_camera(track, CameraTimeline(keyframes=[Keyframe(0, shot="wide", framing="locked")])).keypoints[:, :18, 2].min(1) > 0)
    assert locked_share == 1.0  # locked still shows the whole walk, just wider
    assert len(set(np.round(camera_plan(CameraTimeline(keyframes=[Keyframe(0, shot="wide", framing="locked")]), track).curves[:, 0], 6))) == 1


def test_dead_zone_keeps_a_still_person_s_camera_still():
    track = walking_track(speed=0.0)
    _, plan = shown_share(track, "medium")
    assert np.ptp(plan.curves[:, 1]) < 1e-9 and np.ptp(plan.curves[:, 0]) < 1e-9


def test_scale_from_body_measures_survives_a_tilted_head():
    upright, tilted = walking_track(10), walking_track(10, tilt_head=True)
    h_up = body_height(upright.keypoints[:, :18], upright.width, upright.height)
    h_tilt = body_height(tilted.keypoints[:, :18], tilted.width, tilted.height)
    assert np.allclose(h_up, h_tilt, rtol=0.15)
    rule = preset_rule(tilted.keypoints[:, :18], tilted.width, tilted.height, "close-up")
    upright_rule = preset_rule(upright.keypoints[:, :18], upright.width, upright.height, "close-up")
    assert rule.met.all() and np.allclose(rule.view_height, upright_rule.view_height, rtol=0.15)


def test_frames_without_the_person_hold_the_last_framing_and_are_reported():
    track = walking_track(40)
    track.keypoints[20:26] = 0
    track.detected[20:26] = False
    timeline = CameraTimeline(keyframes=[Keyframe(0, shot="close-up")])
    plan = camera_plan(timeline, track)
    assert plan.unmet == tuple(range(20, 26))
    assert np.all(np.isfinite(plan.curves))
    track.keypoints[:] = 0
    track.detected[:] = False
    with pytest.raises(UserError, match="not seen"):
        camera_plan(timeline, track)


def camera_moves(plan, track) -> np.ndarray:
    """Change per frame ``(frames - 1, 3)`` as a share of the view: relative zoom, pan in view widths and heights
    (the output is the track's size)."""
    zoom, pan_x, pan_y = plan.curves[:, 0], plan.curves[:, 1], plan.curves[:, 2]
    view_w, view_h = track.width / zoom, track.height / zoom
    return np.stack([np.abs(np.diff(np.log(zoom))), np.abs(np.diff(pan_x)) * track.width / view_w[1:],
                     np.abs(np.diff(pan_y)) * track.height / view_h[1:]], axis=1)


def short_reversals(values: np.ndarray, still: float = 1e-4, within: int = 5) -> int:
    """Turns of direction that come fewer than ``within`` frames after the previous turn."""
    steps = np.diff(values)
    sign = np.sign(steps[np.abs(steps) > still])
    frames = np.flatnonzero(np.abs(steps) > still)
    turns = frames[1:][sign[1:] != sign[:-1]]
    return int(np.sum(np.diff(turns) < within))


def bouncing_track(frames=60, period=6, amplitude=0.03) -> PoseTrack:
    """A person standing still who bobs up and down (a jump on the spot every ``period`` frames)."""
    track = walking_track(frames, speed=0.0)
    track.keypoints[:, :18, 1] += amplitude * np.abs(np.sin(np.pi * np.arange(frames) / period))[:, None]
    return track


def test_a_close_up_of_a_still_person_shows_the_head_at_its_share():
    track = walking_track(30, speed=0.0)
    timeline = CameraTimeline(keyframes=[Keyframe(0, shot="close-up")])
    plan = camera_plan(timeline, track)
    tall = body_height(track.keypoints[:, :18], track.width, track.height, track.fps)
    head = HEAD_HEIGHT * tall * plan.curves[:, 0] / track.height  # the rule's head, as a share of the output
    np.testing.assert_allclose(head, CLOSE_UP_HEAD, rtol=0.1)
    out = apply_camera(track, timeline).keypoints
    assert (out[:, [J["nose"], J["r_shoulder"], J["l_shoulder"]], 2] > 0).all()


@pytest.mark.parametrize("speed, widens", [(0.006, False), (0.012, True)])
def test_a_close_up_follows_a_fast_walker_within_the_change_limit(speed, widens):
    """At 0.006 frame widths per frame the close-up pans at its limit and lets the walker drift across it; at
    0.012 no close-up of that size can keep up within the limit, so the view widens instead of whipping."""
    track = walking_track(60, speed=speed)
    timeline = CameraTimeline(keyframes=[Keyframe(0, shot="close-up")])
    plan = camera_plan(timeline, track)
    out = apply_camera(track, timeline).keypoints
    assert (out[:, [J["nose"], J["r_shoulder"], J["l_shoulder"]], 2] > 0).all()  # head and shoulders never lost
    assert camera_moves(plan, track).max() <= FollowSettings().max_change + 1e-6
    still = camera_plan(timeline, walking_track(60, speed=0.0)).curves[0, 0]
    assert (plan.curves[30, 0] < 0.9 * still) == widens
    assert np.all(np.diff(plan.curves[:, 1]) >= 0) and plan.curves[-1, 1] - plan.curves[0, 1] > 0.25 * speed * 60
    assert all(short_reversals(plan.curves[:, axis]) == 0 for axis in range(3))


@pytest.mark.parametrize("name", ["close-up", "medium", "wide"])
def test_a_bouncing_person_does_not_make_the_camera_twitch(name):
    track = bouncing_track()
    timeline = CameraTimeline(keyframes=[Keyframe(0, shot=name)])
    plan = camera_plan(timeline, track)
    assert all(short_reversals(plan.curves[:, axis]) == 0 for axis in range(3))
    assert camera_moves(plan, track).max() <= FollowSettings().max_change + 1e-6
    out = apply_camera(track, timeline).keypoints
    assert (out[:, [J["nose"], J["r_shoulder"], J["l_shoulder"]], 2] > 0).all()


def test_short_reversals_are_held_flat_and_never_lower_a_view():
    wiggle = np.array([0, 1, 2, 3, 2.5, 2, 2.8, 3.5, 4, 5, 6], float)  # back 1.0 for two frames, then on
    held = without_short_reversals(wiggle, 0.01)
    np.testing.assert_array_equal(held, [0, 1, 2, 3, 3, 3, 3, 3.5, 4, 5, 6])
    assert np.abs(np.diff(held)).max() <= np.abs(np.diff(wiggle)).max()  # no step grows
    bump = -wiggle  # falling, with a short rise: a view size keeps the rise's top from before it
    up = without_short_reversals(bump, 0.01, only_up=True)
    assert (up >= bump).all() and np.all(np.diff(up) <= 0)
    long_turn = np.concatenate([np.arange(10.0), 10 - np.arange(1, 10.0)])  # one real turn stays
    np.testing.assert_array_equal(without_short_reversals(long_turn, 0.01), long_turn)


def test_version_1_timelines_load_as_follow_and_save_as_version_2():
    old = {"version": 1, "keyframes": [{"frame": 0, "zoom": 1.0, "pan_x": 0.0, "pan_y": 0.0, "yaw": 0.0,
                                        "easing": "linear", "shot": "wide", "label": None}], "cuts": []}
    timeline = CameraTimeline.from_json(json.dumps(old))
    assert timeline.keyframes[0].framing == "follow"
    saved = json.loads(timeline.to_json())
    assert saved["version"] == 2 and saved["keyframes"][0]["framing"] == "follow"
    with pytest.raises(UserError, match="framing"):
        CameraTimeline(keyframes=[Keyframe(0, shot="wide", framing="jiggle")])


def mirrored(track: PoseTrack, frames) -> PoseTrack:
    """The track with every left/right pair swapped (and 3D depth reversed) on ``frames``: a detector's swap."""
    from engine.poses.repair import _swap

    keypoints, world = track.keypoints.copy(), track.world.copy()
    for group in ("arms", "legs", "head"):
        _swap(keypoints, frames, group)
        _swap(world, frames, group)
    world[frames, :, 2] *= -1
    return PoseTrack(keypoints, track.width, track.height, track.fps, world, track.detected.copy())


def turning_track(frames=60):
    """A person facing the camera, turning slowly (world landmarks: x right, z away)."""
    track = walking_track(frames, speed=0.0)
    world = np.zeros_like(track.keypoints)
    angle = np.radians(np.linspace(-20, 20, frames))
    for name, (x, y) in STANDING.items():
        world[:, J[name], 0] = (x - 0.5) * np.cos(angle)
        world[:, J[name], 2] = -(x - 0.5) * np.sin(angle)
        world[:, J[name], 1] = y - 0.52
    return PoseTrack(track.keypoints, track.width, track.height, track.fps, world)


def test_swap_repair_undoes_a_mirrored_run_and_reports_it():
    clean = turning_track()
    frames = np.zeros(len(clean), bool)
    frames[20:35] = True
    broken = mirrored(clean, frames)
    repaired, report = repair_swaps(broken)
    assert report.spans == ((20, 35),)
    np.testing.assert_allclose(repaired.keypoints, clean.keypoints, atol=1e-6)
    untouched, none = repair_swaps(clean)
    assert none.frames == 0 and np.array_equal(untouched.keypoints, clean.keypoints)


def test_swap_repair_without_3d_uses_image_continuity():
    clean = walking_track(40, speed=0.004)
    frames = np.zeros(len(clean), bool)
    frames[10:18] = True
    from engine.poses.repair import _swap

    keypoints = clean.keypoints.copy()
    for group in ("arms", "legs", "head"):
        _swap(keypoints, frames, group)
    repaired, report = repair_swaps(PoseTrack(keypoints, clean.width, clean.height, clean.fps))
    assert report.spans == ((10, 18),)
    np.testing.assert_allclose(repaired.keypoints[:, :18], clean.keypoints[:, :18], atol=1e-6)


def test_swap_repair_lets_the_image_decide_a_side_on_hip_reading():
    """Arms swapped at one frame while the hips' 3D reading lies 97 degrees from the shoulders: the 3D cannot
    tell, and the hips lie in the image in the same left-right order as the repaired shoulders, so the legs
    keep their labels (the 90-degree rule alone would swap them)."""
    from engine.poses.repair import _swap

    clean = turning_track()
    keypoints, world = clean.keypoints.copy(), clean.world.copy()
    frame = np.zeros(len(clean), bool)
    frame[20] = True
    _swap(keypoints, frame, "arms")
    _swap(world, frame, "arms")
    vec = clean.world[20, J["r_shoulder"]] - clean.world[20, J["l_shoulder"]]
    side_on = np.arctan2(vec[2], vec[0]) - np.radians(97)
    for name, sign in (("r_hip", 1), ("l_hip", -1)):
        world[20, J[name], [0, 2]] = sign * 0.1 * np.array([np.cos(side_on), np.sin(side_on)])
    repaired, report = repair_swaps(PoseTrack(keypoints, clean.width, clean.height, clean.fps, world))
    assert report.spans == ((20, 21),) and report.frames == 1
    assert report.swapped["arms"].tolist() == [20] and report.swapped["legs"].tolist() == []
    np.testing.assert_allclose(repaired.keypoints[:, :18], clean.keypoints[:, :18], atol=1e-6)


def body_at(x, scale=1.0, y=0.5):
    body = np.zeros((18, 3), np.float32)
    for name, (bx, by) in STANDING.items():
        body[J[name]] = (x + (bx - 0.5) * 0.3 * scale, y + (by - 0.5) * 0.6 * scale, 0.9)
    return body


def test_follower_stays_on_one_of_two_crossing_people():
    frames = []
    for t in range(40):
        a, b = body_at(0.2 + 0.015 * t), body_at(0.8 - 0.015 * t, scale=0.9)
        frames.append(np.stack([a, b] if t % 3 else [b, a]))  # the detector's order changes
    chosen, report = follow_person(frames, 640, 360, 25.0, person=1)
    xs = [frames[t][i][J["neck"], 0] for t, i in enumerate(chosen)]
    assert report.person == 1 and not report.lost
    assert np.all(np.diff(xs) > 0)  # always the one walking right: no switch at the crossing


def test_follower_reports_a_lost_person_instead_of_taking_another():
    frames = [np.stack([body_at(0.2), body_at(0.8, 0.8)]) for _ in range(10)] + \
             [np.stack([body_at(0.8, 0.8)]) for _ in range(60)]
    chosen, report = follow_person(frames, 640, 360, 25.0)
    assert chosen[0] == 0 and all(c is None for c in chosen[40:])
    assert report.lost[-1] == 69 and not report.refound
    with pytest.raises(UserError, match="--person 7"):
        follow_person(frames, 640, 360, 25.0, person=7)


def test_shot_scale_trusts_only_joints_inside_the_image():
    from engine.animate import shot_scale

    kp = np.zeros((128, 3), np.float32)
    for name in ("nose", "neck", "r_shoulder", "l_shoulder", "r_hip", "l_hip", "r_knee"):
        kp[J[name]] = (0.5, 0.2 + 0.1 * len(name) / 10, 0.9)
    kp[J["r_knee"], 1] = 1.2  # a knee guessed below the bottom edge: a head-to-hips photo
    assert shot_scale(kp) == "medium"
    kp[J["r_knee"], 1] = 0.9
    assert shot_scale(kp) == "wide"
