"""train prepare (footage -> dataset) and shot-cut detection."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from train.shots import (
    bench_cuts,
    detect_cuts,
    frame_distances,
    match_cuts,
    segments,
    synthetic_multishot,
)

SEGMENT = 14


def test_cut_detection_on_synthetic_multishot_videos():
    frames, _, truth = synthetic_multishot(seed=3, segments_per_video=4, size=128, min_len=8, max_len=12)
    distances, method = frame_distances(frames, "color")
    assert method == "color" and distances.shape == (len(frames),)
    found = detect_cuts(distances)
    tp, fp, fn = match_cuts(found, truth)
    assert (fp, fn) == (0, 0), (found, truth)
    assert segments(len(frames), found)[0][0] == 0 and segments(len(frames), found)[-1][1] == len(frames)


def test_cut_detection_ignores_motion_and_slow_zoom():
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8), (160, 160), interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(30):  # a slow push-in with panning: one shot
        s = 160 - i
        frames.append(cv2.resize(base[i // 2:i // 2 + s, i // 3:i // 3 + s], (128, 128)))
    assert detect_cuts(frame_distances(frames, "color")[0]) == []


def test_a_one_frame_flash_is_not_a_cut_but_a_real_cut_is():
    from train.shots import frame_features, feature_distance, skip_distances

    rng = np.random.default_rng(1)
    a = cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (96, 96), interpolation=cv2.INTER_CUBIC)
    b = cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (96, 96), interpolation=cv2.INTER_CUBIC)
    frames = [np.roll(a, i, 1) for i in range(20)] + [np.roll(b, i, 1) for i in range(20)]
    frames[8] = np.clip(frames[8].astype(int) * 2 + 60, 0, 255).astype(np.uint8)  # a flash
    feats, method = frame_features(frames, "color")
    d = np.concatenate([[0.0], feature_distance(feats[1:], feats[:-1], method)])
    assert 8 in detect_cuts(d) or 9 in detect_cuts(d)  # without the flash check it cuts on the flash
    assert detect_cuts(d, skips=skip_distances(feats, method)) == [20]


def _standing(x: float, arms: float = 0.0) -> np.ndarray:
    """A standing body ``(18, 3)`` (normalised) at ``x``, its wrists raised by ``arms``."""
    from engine.poses.track import BODY_INDEX as J
    from tests.test_camera import STANDING

    body = np.zeros((18, 3), np.float32)
    for name, (bx, by) in STANDING.items():
        body[J[name]] = (x + (bx - 0.5) * 0.4, 0.1 + by * 0.8, 0.9)
    body[[J["r_wrist"], J["l_wrist"]], 1] -= arms
    return body


def test_people_jump_ignores_label_swaps_and_anyone_who_carries_on():
    from engine.poses.track import BODY_INDEX as J
    from train.shots import body_jump, people_jumps

    a = _standing(0.4)
    swapped = a.copy()
    for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear"):
        swapped[[J["r_" + name], J["l_" + name]]] = a[[J["l_" + name], J["r_" + name]]]
    assert body_jump(a, swapped, 640, 360) == pytest.approx(0.0, abs=1e-6)
    assert body_jump(a, _standing(0.55), 640, 360) > 0.3
    bodies = {0: np.stack([a, _standing(0.8)]), 1: np.stack([_standing(0.55), _standing(0.801)]), 3: a[None]}
    jumps = people_jumps(bodies, 4, 640, 360)
    assert jumps[1] < 0.01  # one of the two jumped, the other carries on: no jump
    assert np.isnan(jumps[2]) and np.isnan(jumps[3])  # frame 2 was not looked at


def test_a_jump_in_time_cuts_where_the_frame_and_the_people_jump_together():
    """Same camera, later in time: the frame changes a little (under the colour floor) and the person stands
    elsewhere at once. Either signal alone is no cut: a fast movement moves the person, a passing car or a zoom's
    start changes the frame."""
    from train.shots import CutSettings, detect_cuts, frames_to_look_at, jump_candidates, people_jumps

    n = 30
    bodies = {i: _standing(0.3 + 0.002 * i + (0.15 if i >= 15 else 0.0), arms=0.01 * (i % 2))[None] for i in range(n)}
    jumps = people_jumps(bodies, n, 640, 360)
    assert jumps[15] > 0.25 and np.nanmax(np.delete(jumps, 15)) < 0.05
    d = np.full(n, 0.03)
    d[15] = 0.08
    residuals = np.full(n, 0.02)
    residuals[15] = 0.09
    assert detect_cuts(d) == []
    assert jump_candidates(d, residuals=residuals) == [15]
    assert frames_to_look_at([15], n) == list(range(11, 19))
    assert detect_cuts(d, jumps=jumps, residuals=residuals) == [15]
    assert detect_cuts(d, jumps=jumps, residuals=np.full(n, 0.02)) == []  # the frame does not change: no cut
    assert detect_cuts(d, jumps=people_jumps({i: bodies[i % 2] for i in range(n)}, n, 640, 360),
                       residuals=residuals) == []  # nobody jumps
    # a jump cut at the start of a digital zoom: the frame changes more after it than before
    residuals[16:] = 0.05
    assert detect_cuts(d, jumps=jumps, residuals=residuals) == [15]
    assert detect_cuts(d, CutSettings(evidence=1000.0), jumps=jumps, residuals=residuals) == []


def test_a_lens_flare_is_a_change_of_light_not_a_cut():
    from train.shots import detect_cuts, feature_distance, frame_features, layout_changes, lens_flare, skip_distances

    rng = np.random.default_rng(2)
    a = cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (96, 96), interpolation=cv2.INTER_CUBIC)
    b = cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (96, 96), interpolation=cv2.INTER_CUBIC)
    frames = [np.roll(a, i, 1) for i in range(24)] + [np.roll(b, i, 1) for i in range(20)]
    frames[10:24] = [lens_flare(f, (0.7, 0.2)) for f in frames[10:24]]  # comes on at 10 and stays
    feats, method = frame_features(frames, "color")
    d = np.concatenate([[0.0], feature_distance(feats[1:], feats[:-1], method)])
    layout = layout_changes(feats, method)
    assert 10 in detect_cuts(d, skips=skip_distances(feats, method))  # by colour alone the flare cuts
    assert layout[10] < 0.35 < layout[24]
    assert detect_cuts(d, skips=skip_distances(feats, method), layout=layout) == [24]


def test_motion_residuals_leave_a_zoom_and_a_pan_out_but_not_a_cut():
    from train.shots import digital_zoom, motion_residuals

    rng = np.random.default_rng(3)
    texture = cv2.resize(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
    other = cv2.resize(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), (160, 160), interpolation=cv2.INTER_CUBIC)
    pan = [texture[20:180, 2 * i:160 + 2 * i] for i in range(10)]
    frames = digital_zoom(pan, 1.25) + [other]
    residuals = motion_residuals(frames)
    assert residuals.shape == (11,) and residuals[0] == 0
    assert residuals[1:10].max() < 0.1 < 0.3 < residuals[10]
    assert len(motion_residuals([])) == 0


def test_synthetic_edits_of_every_kind():
    from train.shots import EDIT_KINDS, synthetic_edit

    for kind in ("zoom", "flash", "light"):
        frames, cuts = synthetic_edit(kind, seed=1, size=64)
        assert frames.shape[1:] == (64, 64, 3) and len(cuts) >= 3
    assert "jump" in EDIT_KINDS
    with pytest.raises(ValueError, match="nope"):
        synthetic_edit("nope", 0)


def test_people_verdict_gives_the_true_reason():
    from train.prepare import people_verdict

    one = np.array([[10, 20, 60, 180]])
    two = np.array([[10, 20, 60, 180], [100, 120, 120, 160]])
    tiny = np.array([[10, 20, 20, 40]])
    assert people_verdict([one] * 3, 200) is None
    assert people_verdict([two, two, one], 200).startswith("several people (2")
    assert people_verdict([np.zeros((0, 4))] * 3, 200) == "no person"
    assert people_verdict([tiny] * 3, 200).startswith("person too small (10%")


def test_match_cuts_counts():
    assert match_cuts([10, 20, 31], [10, 30, 40]) == (2, 1, 1)


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="nope"):
        frame_distances([np.zeros((8, 8, 3), np.uint8)] * 2, "nope")


@pytest.mark.slow
def test_bench_cuts_figures():
    figures = bench_cuts(videos=1, seed=1)
    assert set(figures["kinds"]) == {"camera", "jump", "zoom", "flash", "light"}
    assert figures["precision"] >= 0.9 and figures["recall"] >= 0.8 and figures["true_cuts"] > 0


# -- prepare ------------------------------------------------------------------------------------------
def _shots():
    """Astronaut shots (mediapipe finds her reliably; the synthetic characters not always)."""
    from skimage.data import astronaut

    a = astronaut()
    resize = lambda x: cv2.resize(x, (256, 256), interpolation=cv2.INTER_AREA)
    small = cv2.resize(a, (128, 128), interpolation=cv2.INTER_AREA)
    two = np.full((256, 256, 3), 90, np.uint8)
    two[64:192, :128], two[64:192, 128:] = small, small[:, ::-1]
    empty = np.repeat(np.linspace(30, 220, 256, dtype=np.uint8)[None, :, None], 3, 2).repeat(256, 0)
    return [("one", resize(a)), ("two", two), ("one", resize(a[40:360, 100:420])), ("none", empty),
            ("one", resize(a[:, ::-1]))]


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    from engine.video import write_video

    folder = tmp_path_factory.mktemp("footage")
    frames, kinds = [], []
    for kind, image in _shots():
        for i in range(SEGMENT):  # a little camera drift so each shot moves
            frames.append(np.roll(image, i, axis=1))
        kinds.append(kind)
    write_video(folder / "multishot.mp4", np.stack(frames), fps=12)
    (folder / "broken.mp4").write_bytes(b"\x00\x01 not a video" * 50)
    (folder / "notes.txt").write_text("not footage")
    truth = [SEGMENT * k for k in range(1, len(kinds))]
    return folder, kinds, truth


@pytest.fixture(scope="module")
def prepared(footage, tmp_path_factory):
    from train.prepare import PrepareSettings, prepare_dataset

    folder, _, _ = footage
    out = tmp_path_factory.mktemp("dataset")
    index = prepare_dataset([folder], out, PrepareSettings(size=64, min_frames=6, method="color"))
    return out, index


def test_prepare_finds_cuts_and_keeps_single_person_shots(footage, prepared):
    folder, kinds, truth = footage
    out, index = prepared
    manifest = json.loads(next((out / "sources").glob("multishot-*.json")).read_text())
    assert match_cuts(manifest["cuts"], truth) == (len(truth), 0, 0), manifest["cuts"]
    assert len(index["clips"]) == kinds.count("one")
    reasons = sorted(r["reason"] for r in index["rejected"])
    assert len(reasons) == 2 and reasons[0] == "no person" and reasons[1].startswith("several people (2;")
    skipped = {s["source"].rsplit("/", 1)[-1]: s["reason"] for s in index["skipped"]}
    assert set(skipped) == {"broken.mp4", "notes.txt"} and "unsupported" in skipped["notes.txt"]
    clip = np.load(out / index["clips"][0]["file"])
    assert clip["frames"].shape == (SEGMENT, 64, 64, 3) and clip["keypoints"].shape == (SEGMENT, 128, 3)
    kp = clip["keypoints"]
    seen = kp[..., 2] > 0.3
    assert seen.any() and (kp[..., :2][seen] >= 0).all() and (kp[..., :2][seen] <= 1).all()
    assert {c["shot"] for c in index["clips"]} <= {"close-up", "medium", "wide"}
    assert index["identities"] == [{"id": "id-multishot", "split": "train", "sources": [str(folder / "multishot.mp4")]}]


def test_prepare_output_serves_synth_dataset_and_reruns_skip_work(footage, prepared, monkeypatch):
    from train import prepare
    from train.synth import SynthDataset

    folder, _, _ = footage
    out, index = prepared
    if len({c["shot"] for c in index["clips"]}) >= 2:
        item = SynthDataset(out, num_refs=2, size=32)[0]
        assert item["target_images"].shape == (1, 3, 32, 32) and item["ref_images"].shape == (2, 3, 32, 32)
    original = prepare.prepare_file

    def once(path, *args, **kwargs):
        assert path.name != "multishot.mp4", "finished footage was prepared again"
        return original(path, *args, **kwargs)  # the broken file is tried again, and listed again

    monkeypatch.setattr(prepare, "prepare_file", once)
    again = prepare.prepare_dataset([folder], out, prepare.PrepareSettings(size=64, min_frames=6, method="color"))
    assert again["clips"] == index["clips"] and len(again["skipped"]) == 2
    with pytest.raises(prepare.UserError, match="other settings"):
        prepare.prepare_dataset([folder], out, prepare.PrepareSettings(size=32, min_frames=6, method="color"))


def test_prepare_with_nothing_usable_is_one_clear_error(tmp_path):
    from engine.errors import UserError
    from train.prepare import prepare_dataset

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage")
    with pytest.raises(UserError, match="no usable clip"):
        prepare_dataset([bad], tmp_path / "out")
    with pytest.raises(UserError, match="no footage"):
        prepare_dataset([], tmp_path / "out2")


def test_split_at_gaps_bridges_short_gaps_and_cuts_out_long_ones_and_the_ends():
    from train.prepare import split_at_gaps

    detected = np.ones(30, bool)
    detected[[0, 5, 6, 12, 13, 14, 28, 29]] = False
    pieces, dropped = split_at_gaps(detected, max_gap=2)
    assert pieces == [(1, 12), (15, 28)]  # frames 5-6 are bridged, 12-14 are one too many
    assert [(a, b) for a, b, _ in dropped] == [(0, 1), (12, 15), (28, 30)]
    assert "start" in dropped[0][2] and "3 frames in a row" in dropped[1][2] and "end" in dropped[2][2]
    assert split_at_gaps(detected, max_gap=3)[0] == [(1, 28)]
    assert split_at_gaps(np.ones(5, bool), max_gap=2) == ([(0, 5)], [])


def test_prepare_trains_on_no_frame_where_the_person_is_lost(tmp_path, monkeypatch):
    """A shot whose person is not detected in frame 3, 15-19, 23-25 and 38-39 (the landmarker stands in with a
    hand-made track): frame 3 is interpolated from their own poses, the rest is left out and listed, and the
    frames between become separate clips, the one too short among them left out too."""
    from engine import poses
    from engine.poses.track import BODY_INDEX
    from train import prepare, shots

    from .test_camera import standing_track

    detected = np.ones(40, bool)
    detected[[3]] = False
    detected[15:20] = detected[23:26] = detected[38:] = False
    track = standing_track(40, size=(96, 96))
    seen = track.keypoints[..., 2] > 0
    track.keypoints[..., 0] += np.where(seen, np.arange(40)[:, None] * 0.002, 0)
    track.keypoints[~detected] = 0
    track = poses.PoseTrack(track.keypoints, 96, 96, 25.0, track.world, detected)
    frames = [np.full((96, 96, 3), 100, np.uint8) for _ in range(40)]
    monkeypatch.setattr(prepare, "decode", lambda path: (frames, 25.0))
    monkeypatch.setattr(shots, "find_cuts", lambda frames, method: ([], "color"))
    monkeypatch.setattr(prepare, "people_boxes", lambda frames: [np.array([[20.0, 5.0, 70.0, 90.0]])])
    monkeypatch.setattr(poses, "extract_frames", lambda frames, fps, num_poses: track)
    video = tmp_path / "walk.mp4"
    video.write_bytes(b"stand-in")
    out = tmp_path / "data"
    manifest = prepare.prepare_file(video, out, "id-walk", prepare.PrepareSettings(size=32, min_frames=6))

    assert [(c["start"], c["stop"], c["frames"]) for c in manifest["clips"]] == [(0, 15, 15), (26, 38, 12)]
    left_out = [(r["start"], r["stop"]) for r in manifest["rejected"]]
    assert left_out == [(15, 20), (20, 23), (23, 26), (38, 40)]
    assert "too short" in manifest["rejected"][1]["reason"] and "end" in manifest["rejected"][3]["reason"]
    first, second = (np.load(out / c["file"]) for c in manifest["clips"])
    assert len(first["frames"]) == 15 and len(second["frames"]) == 12 and first["keypoints"].shape == (15, 128, 3)
    nose = BODY_INDEX["nose"]
    kp = first["keypoints"][:, nose]
    assert kp[3, 2] > 0 and abs(kp[3, 0] - (kp[2, 0] + kp[4, 0]) / 2) < 1e-5  # interpolated from its neighbours
    assert (second["keypoints"][:, nose, 2] > 0).all()  # no frame of a clip lacks the person
