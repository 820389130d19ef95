"""The synthetic multi-shot world: determinism, visibility, shot content, datasets, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import UserError
from engine.poses.track import BODY_INDEX, FACE
from train.synth import SynthDataset, make_dataset
from train.synth.camera import make_camera
from train.synth.character import make_character
from train.synth.dataset import MakeSettings, load_clip, plan_clips
from train.synth.motion import make_motion
from train.synth.render import Backdrop, Renderer
from train.synth.world import ClipSpec, render_clip

SMALL = MakeSettings(identities=2, eval_identities=1, size=128, seed=3, clips_per_identity=3, frames=6)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    make_dataset(root, SMALL)
    return root


def _scene(identity: int, shot: str, frames: int = 8, size: int = 128, seed: int = 5):
    character = make_character(identity)
    motion = make_motion(character, frames, seed)
    camera = make_camera(character, motion, shot, size, seed)
    backdrop = Backdrop.random(np.random.default_rng(seed))
    return character, motion, camera, backdrop, Renderer(character, size)


def test_same_seed_same_clip():
    spec = ClipSpec(identity_seed=11, motion_seed=12, camera_seed=13, shot="medium", num_frames=4, size=128, zoom=1.2, cut_at=2)
    a, b = render_clip(spec), render_clip(spec)
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.keypoints, b.keypoints)
    assert np.array_equal(a.world, b.world)
    other = render_clip(ClipSpec(identity_seed=14, motion_seed=12, camera_seed=13, shot="medium", num_frames=4, size=128))
    assert not np.array_equal(a.frames, other.frames)
    assert plan_clips(SMALL) == plan_clips(SMALL)


def test_characters_differ_and_are_stable():
    people = [make_character(s) for s in range(12)]
    assert make_character(3) == make_character(3)
    looks = {(p.skin, p.hair_style, p.hair_colour, p.shirt_colour, p.pattern, p.lower_colour, p.shoe_colour) for p in people}
    assert len(looks) == len(people)


@pytest.mark.parametrize("shot", ["close-up", "medium", "wide"])
def test_visible_keypoints_lie_on_the_body(shot):
    character, motion, camera, backdrop, renderer = _scene(identity=4, shot=shot, frames=6)
    seen = 0
    for i in range(len(motion)):
        image, keypoints, in_frame = renderer.render(motion, camera, i, backdrop)
        background = cv2.resize(renderer.background(backdrop, camera, i, motion), (128, 128), interpolation=cv2.INTER_AREA)
        visible = keypoints[:, 2] > 0
        assert not (visible & ~in_frame).any()
        cells = np.floor(keypoints[visible, :2] * 128).astype(int)
        diff = np.abs(image[cells[:, 1], cells[:, 0]].astype(int) - background[cells[:, 1], cells[:, 0]].astype(int)).sum(1)
        assert (diff > 6).all(), f"visible keypoints on the background: {np.flatnonzero(visible)[diff <= 6]}"
        seen += visible.sum()
    assert seen > 20 * len(motion)


def _find_character(predicate) -> int:
    for seed in range(200):
        if predicate(make_character(seed)):
            return seed
    raise AssertionError("no character matches")


def test_close_ups_resolve_the_face_and_wide_shots_show_the_shoes():
    def distinct_shoes(ch):
        others = [ch.skin, ch.shirt_colour, ch.pattern_colour, ch.logo_colour, ch.lower_colour, ch.hair_colour, ch.lip_colour]
        return all(np.abs(np.subtract(ch.shoe_colour, o)).sum() > 150 for o in others)

    identity = _find_character(distinct_shoes)
    shoe = np.array(make_character(identity).shoe_colour)
    results = {}
    for shot in ("close-up", "wide"):
        character, motion, camera, backdrop, renderer = _scene(identity, shot, frames=4)
        frames = [renderer.render(motion, camera, i, backdrop) for i in range(len(motion))]
        image, keypoints, in_frame = frames[0]
        eyes = keypoints[[BODY_INDEX["r_eye"], BODY_INDEX["l_eye"]], :2] * 128
        face = keypoints[FACE][36:48, :2] * 128
        x0, y0 = np.floor(face.min(0)).astype(int)
        x1, y1 = np.ceil(face.max(0)).astype(int) + 1
        eye_box = image[max(y0, 0):y1, max(x0, 0):x1].astype(int)
        shoe_pixels = sum(int((np.abs(f[0].astype(int) - shoe).sum(-1) < 20).sum()) for f in frames)
        ankles_seen = np.mean([f[1][[BODY_INDEX["r_ankle"], BODY_INDEX["l_ankle"]], 2].mean() for f in frames])
        ankles_in_frame = np.mean([f[2][[BODY_INDEX["r_ankle"], BODY_INDEX["l_ankle"]]].mean() for f in frames])
        results[shot] = dict(
            interocular=float(np.linalg.norm(eyes[0] - eyes[1])),
            eye_whites=int((eye_box.min(-1) > 215).sum()) if eye_box.size else 0,
            shoe_pixels=shoe_pixels, ankles_seen=ankles_seen, ankles_in_frame=ankles_in_frame,
        )
    close, wide = results["close-up"], results["wide"]
    assert close["interocular"] > 8 and close["interocular"] > 2.5 * wide["interocular"]
    assert close["eye_whites"] >= 3 and wide["eye_whites"] == 0
    assert wide["shoe_pixels"] > 40 and close["shoe_pixels"] < 0.05 * wide["shoe_pixels"]
    assert wide["ankles_seen"] > 0.5 and close["ankles_in_frame"] == 0


def test_clip_file_contents(dataset):
    index = json.loads((dataset / "index.json").read_text())
    assert {c["split"] for c in index["clips"]} == {"train", "eval"}
    assert {i["split"] for i in index["identities"]} == {"train", "eval"}
    clip = load_clip(dataset / index["clips"][0]["file"])
    f = SMALL.frames
    assert clip["frames"].shape == (f, 128, 128, 3) and clip["frames"].dtype == np.uint8
    assert clip["keypoints"].shape == (f, 128, 3) and clip["keypoints"].dtype == np.float32
    assert clip["world"].shape == (f, 128, 3)
    assert clip["shots"].shape == (f,) and clip["shots"][0] == index["clips"][0]["shot"]
    assert clip["camera_K"].shape == (f, 3, 3) and clip["camera_R"].shape == (f, 3, 3) and clip["camera_t"].shape == (f, 3)
    assert set(np.unique(clip["keypoints"][..., 2])) <= {0.0, 1.0}


def test_training_samples_take_references_from_other_shots(dataset):
    ds = SynthDataset(dataset, split="train", num_refs=3, num_frames=2, seed=0)
    index = json.loads((dataset / "index.json").read_text())
    shot_of = {c["file"]: (c["identity"], c["shot"]) for c in index["clips"]}
    for i in range(0, len(ds), 3):
        sample = ds[i]
        assert sample["ref_images"].shape == (3, 3, 128, 128)
        assert sample["ref_poses"].shape == (3, 3, 128, 128)
        assert sample["target_images"].shape == (2, 3, 128, 128)
        assert sample["target_poses"].shape == (2, 3, 128, 128)
        assert sample["ref_keypoints"].shape == (3, 128, 3) and sample["target_keypoints"].shape == (2, 128, 3)
        assert -1 <= sample["ref_images"].min() and sample["target_images"].max() <= 1
        assert 0 <= sample["ref_poses"].min() and sample["ref_poses"].max() <= 1 and sample["ref_poses"].max() > 0
        for ref in sample["ref_clips"].split(","):
            identity, shot = shot_of[ref]
            assert identity == sample["identity"] and shot != sample["target_shot"]
        assert sample["identity"].startswith("train")
    eval_ds = SynthDataset(dataset, split="eval", num_refs=2, num_frames=1, size=64)
    sample = eval_ds[0]
    assert sample["identity"].startswith("eval") and sample["ref_images"].shape == (2, 3, 64, 64)
    assert eval_ds[0]["ref_clips"] == sample["ref_clips"]  # the eval split is deterministic


def test_reference_shots_other_or_any():
    from train.synth.dataset import reference_candidates

    clips = [{"file": f"{who}_{shot}{n}", "identity": who, "shot": shot}
             for who in ("a", "b") for shot in ("close-up", "wide") for n in (0, 1)]
    target = clips[0]  # a, close-up, clip 0
    assert [c["file"] for c in reference_candidates(clips, target)] == ["a_wide0", "a_wide1"]
    assert [c["file"] for c in reference_candidates(clips, target, "any")] == ["a_close-up1", "a_wide0", "a_wide1"]
    with pytest.raises(ValueError, match="reference shots"):
        reference_candidates(clips, target, "same")


def test_any_shot_references_include_the_targets_shot_but_never_its_clip(tmp_path):
    root = tmp_path / "two-of-each"  # two clips of every shot: a cut back to the target's framing exists
    make_dataset(root, MakeSettings(identities=1, eval_identities=0, size=128, seed=4, clips_per_identity=6, frames=1))
    index = json.loads((root / "index.json").read_text())
    shot_of = {c["file"]: (c["identity"], c["shot"]) for c in index["clips"]}
    same_shot = {}
    for shots in ("other", "any"):
        ds = SynthDataset(root, split="train", num_refs=4, num_frames=1, seed=1, reference_shots=shots)
        same_shot[shots] = 0
        for sample in (ds[i] for i in range(len(ds))):
            refs = sample["ref_clips"].split(",")
            assert sample["target_clip"] not in refs and {shot_of[r][0] for r in refs} == {sample["identity"]}
            same_shot[shots] += sum(shot_of[r][1] == sample["target_shot"] for r in refs)
    assert same_shot["other"] == 0 and same_shot["any"] > 0


def test_backdrop_is_one_place_per_identity_or_one_per_clip():
    def places(backdrop: str) -> dict[str, set]:
        settings = MakeSettings(**{**SMALL.__dict__, "frames": 1, "backdrop": backdrop})
        found: dict[str, set] = {}
        for clip in plan_clips(settings)[1]:
            found.setdefault(clip["identity"], set()).add(render_clip(clip["spec"]).backdrop)
        return found

    assert all(len(seen) == 1 for seen in places("identity").values())  # every shot of a person in one place
    assert any(len(seen) > 1 for seen in places("clip").values())


@pytest.mark.parametrize("field, value", [("size", 100), ("size", 132), ("size", 520), ("identities", 0), ("seed", -1),
                                          ("clips_per_identity", 1), ("backdrop", "garden")])
def test_bad_settings_name_the_value(field, value):
    with pytest.raises(UserError, match=str(value)):
        MakeSettings(**{**SMALL.__dict__, field: value}).check()


def test_cli_rejects_bad_size(tmp_path, capsys):
    from engine.cli import main

    assert main(["synth", "make", "-o", str(tmp_path / "d"), "--size", "100"]) == 2
    assert "100" in capsys.readouterr().err


def test_interrupted_make_completes_without_corrupt_files(tmp_path, monkeypatch):
    from train.synth import dataset as dataset_module

    settings = MakeSettings(identities=1, eval_identities=0, size=128, seed=1, clips_per_identity=3, frames=2)
    real_save = dataset_module.save_clip
    calls = []

    def flaky_save(path, clip):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_save(path, clip)

    monkeypatch.setattr(dataset_module, "save_clip", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(tmp_path, settings)
    assert not (tmp_path / "index.json").exists()
    assert len(list((tmp_path / "clips").glob("*.npz"))) == 1
    monkeypatch.setattr(dataset_module, "save_clip", real_save)
    index = make_dataset(tmp_path, settings)
    files = sorted(p.name for p in (tmp_path / "clips").iterdir())
    assert files == sorted(Path(c["file"]).name for c in index["clips"])  # no temporary leftovers
    for c in index["clips"]:
        assert load_clip(tmp_path / c["file"])["frames"].shape == (2, 128, 128, 3)
    with pytest.raises(UserError, match="other settings"):
        make_dataset(tmp_path, MakeSettings(**{**settings.__dict__, "frames": 3}))


def test_bench_synth_reports_fps():
    from train.synth.commands import bench_synth

    figures = bench_synth(size=128, frames=6)
    assert figures["size"] == 128 and figures["fps"] > 0
