"""Fine-tuning on personal footage: settings inherited from the starting model, export keeps its sampling,
progress on the console, the held-out split and the before/after report of `freeview train personal`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import UserError
from train.config import load_config, make_config


def save_tiny_model(path: Path, *, prediction_type="v_prediction", zero_snr=True, sampling=None) -> Path:
    """A tiny model directory whose scheduler has the given objective (and a sampling.json)."""
    from engine.model import save_model_dir
    from engine.models.configs import build_components

    components = build_components("tiny", seed=0)
    scheduler = components["scheduler"]
    components["scheduler"] = type(scheduler).from_config(scheduler.config, prediction_type=prediction_type,
                                                          rescale_betas_zero_snr=zero_snr)
    save_model_dir(components, path)
    if sampling is not None:
        (path / "sampling.json").write_text(json.dumps(sampling))
    return path


@pytest.fixture(scope="module")
def vmodel(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("vmodel") / "model", sampling={"steps": 2, "guidance": 1.0, "top_k": 2.0,
                                                                                         "noise_correlation": 0.5})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from train.synth import MakeSettings, make_dataset

    root = tmp_path_factory.mktemp("synth")
    make_dataset(root, MakeSettings(identities=2, eval_identities=0, size=128, clips_per_identity=2, frames=4, supersample=1))
    return root


# -- what a config leaves out comes from the model it starts from --------------------------------------
def test_a_minimal_config_trains_the_objective_of_the_model_it_starts_from(vmodel, dataset, tmp_path, monkeypatch, capsys):
    from diffusers import DDIMScheduler

    from train.loop import train

    yaml_file = tmp_path / "mine.yaml"
    yaml_file.write_text(f"stage: image\ninit_from: {vmodel}\ndata: {dataset}\nlora_rank: 4\n"
                         f"output_dir: {tmp_path / 'run'}\nsteps: 2\nbatch_size: 1\nmax_refs: 1\nwarmup_steps: 0\n")
    config = load_config(yaml_file)
    assert (config.prediction_type, config.zero_terminal_snr) == ("v_prediction", True)
    from engine.pipeline import FreeViewPipeline

    generates_at = FreeViewPipeline.from_pretrained(vmodel).default_resolution[0]
    assert (config.architecture, config.resolution) == ("tiny", generates_at)  # not the preset's default / 128
    assert generates_at != 128
    assert (config.sampling_steps, config.sampling_guidance, config.sampling_noise_correlation) == (2, 1.0, 0.5)  # its sampling.json

    velocities = []
    get_velocity = DDIMScheduler.get_velocity
    monkeypatch.setattr(DDIMScheduler, "get_velocity", lambda self, *a: velocities.append(1) or get_velocity(self, *a))
    train(config)
    assert len(velocities) == 2  # the loss's goal was the velocity at both steps
    saved = json.loads((tmp_path / "run" / "model" / "scheduler" / "scheduler_config.json").read_text())
    assert saved["prediction_type"] == "v_prediction" and saved["rescale_betas_zero_snr"] is True
    err = capsys.readouterr().err
    assert "train image 2/2" in err and "loss " in err  # the progress bar: step, loss, time left


def test_a_config_that_contradicts_the_models_objective_is_refused_unless_it_says_so(vmodel, tmp_path):
    with pytest.raises(UserError, match=r"prediction_type='epsilon' contradicts .* prediction_type='v_prediction'"):
        make_config(init_from=str(vmodel), prediction_type="epsilon")
    with pytest.raises(UserError, match=r"zero_terminal_snr=False contradicts"):
        make_config(init_from=str(vmodel), zero_terminal_snr=False)
    allowed = make_config(init_from=str(vmodel), prediction_type="epsilon", objective_change="allow")
    assert allowed.prediction_type == "epsilon"
    assert make_config(init_from=str(vmodel), prediction_type="v_prediction").prediction_type == "v_prediction"
    with pytest.raises(UserError, match="objective_change='sometimes' must be 'refuse' or 'allow'"):
        make_config(objective_change="sometimes")


def test_the_output_of_a_vae_run_has_no_objective_to_contradict(tmp_path):
    # the first step of the default recipe: an autoencoder run, then stage 1 chooses the objective
    model = save_tiny_model(tmp_path / "vae-run" / "model", prediction_type="epsilon", zero_snr=False)
    (tmp_path / "vae-run" / "config.yaml").write_text("stage: vae\n")
    config = make_config(init_from=str(model), prediction_type="v_prediction", zero_terminal_snr=True)
    assert config.prediction_type == "v_prediction"
    assert make_config(init_from=str(model)).prediction_type == "epsilon"  # the preset's, not the untrained model's


def test_without_a_starting_model_the_preset_decides(tmp_path):
    config = make_config("tiny-synthetic")
    assert (config.architecture, config.resolution, config.prediction_type, config.sampling_steps) == ("default", 128, "epsilon", 1)
    sd15 = make_config("sd15", init_from=None)
    assert (sd15.prediction_type, sd15.resolution, sd15.sampling_steps, sd15.sampling_guidance) == ("v_prediction", 512, 20, 2.0)
    missing = make_config(init_from=str(tmp_path / "nowhere"))  # the loop says it is missing, with the path
    assert missing.architecture == "default"


# -- export keeps the sampling of the model a run started from ---------------------------------------
def test_export_without_flags_keeps_the_starting_models_sampling(vmodel, tmp_path):
    from train.export import export_model_dir

    run = tmp_path / "runs" / "mine"
    save_tiny_model(run / "model")
    (run / "config.yaml").write_text(f"stage: image\ninit_from: {vmodel}\n")
    out = export_model_dir(run / "model", tmp_path / "shipped")
    assert json.loads((out / "sampling.json").read_text()) == {"steps": 2, "guidance": 1.0, "top_k": 2.0,
                                                                      "noise_correlation": 0.5}
    out = export_model_dir(run / "model", tmp_path / "shipped-3", steps=3)
    assert json.loads((out / "sampling.json").read_text()) == {"steps": 3, "guidance": 1.0, "top_k": 2.0,
                                                                      "noise_correlation": 0.5}
    orphan = save_tiny_model(tmp_path / "orphan")
    assert not (export_model_dir(orphan, tmp_path / "orphan-out") / "sampling.json").exists()  # none to keep


# -- freeview train personal ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Three clips of one synthetic person, standing in for a person's prepared footage (three videos)."""
    from train.synth import MakeSettings, make_dataset

    root = tmp_path_factory.mktemp("person")
    make_dataset(root, MakeSettings(identities=1, eval_identities=0, size=128, clips_per_identity=3, frames=6, supersample=1))
    return root


@pytest.fixture(scope="module")
def start_model(tmp_path_factory):
    """A tiny v-prediction model that generates at 32 px, with a recommended sampling."""
    from engine.model import save_model_dir
    from engine.models.configs import build_components

    components = build_components("tiny", seed=0)
    components["denoising_unet"].register_to_config(sample_size=16)
    components["scheduler"] = type(components["scheduler"]).from_config(
        components["scheduler"].config, prediction_type="v_prediction", rescale_betas_zero_snr=True)
    path = save_model_dir(components, tmp_path_factory.mktemp("start") / "model")
    (path / "sampling.json").write_text(json.dumps({"steps": 1, "guidance": 1.0, "top_k": 2.0}))
    return path


def test_hold_out_keeps_the_end_of_every_clip_back(footage, tmp_path):
    from train.personal import hold_out
    from train.synth.dataset import SynthDataset, load_clip, load_index

    index = hold_out(footage, tmp_path / "split", "mara", mode="tail", share=0.34, min_frames=2)
    assert index["holdout"]["mode"] == "tail"
    original = load_index(footage)["clips"]
    for clip in original:
        stem = Path(clip["file"]).stem
        train = load_clip(tmp_path / "split" / "clips" / f"{stem}_train.npz")["frames"]
        held = load_clip(tmp_path / "split" / "clips" / f"{stem}_eval.npz")["frames"]
        whole = load_clip(footage / clip["file"])["frames"]
        assert len(held) == 2 and np.array_equal(np.concatenate([train, held]), whole)  # the last 2 of 6 frames
    trained_on = {c["file"] for c in SynthDataset(tmp_path / "split", "train", num_refs=1, reference_shots="any").clips}
    assert trained_on and all(f.endswith("_train.npz") for f in trained_on)
    assert {c["identity"] for c in load_index(tmp_path / "split")["clips"]} == {"mara"}


def test_hold_out_a_whole_file_when_there_are_three(footage, tmp_path):
    from train.personal import hold_out

    index = hold_out(footage, tmp_path / "split", "mara")
    held = [c["file"] for c in index["clips"] if c["split"] == "eval"]
    assert index["holdout"]["mode"] == "file" and held == [load_last_clip(footage)]
    with pytest.raises(UserError, match="needs two or more footage files"):
        one = tmp_path / "one"
        hold_out(tmp_path / "split", one, "mara", mode="file") if False else None
        from train.synth.dataset import load_index

        single = {**load_index(footage), "clips": load_index(footage)["clips"][:1]}
        (tmp_path / "single").mkdir()
        (tmp_path / "single" / "index.json").write_text(json.dumps(single))
        hold_out(tmp_path / "single", one, "mara", mode="file")


def load_last_clip(root):
    from train.synth.dataset import load_index

    return load_index(root)["clips"][-1]["file"]


@pytest.mark.slow
def test_train_personal_fine_tunes_exports_and_reports_on_held_out_footage(footage, start_model, tmp_path):
    from PIL import Image

    from engine.pipeline import FreeViewPipeline
    from train.personal import PersonalSettings, train_personal

    settings = PersonalSettings(name="mara", model=str(start_model), steps=3, learning_rate=3e-3, batch_size=2,
                                cases=2, frames=4)
    out = tmp_path / "mara-model"
    report = train_personal([], out, settings, dataset=footage)
    tuned = FreeViewPipeline.from_pretrained(out)
    assert tuned.scheduler.config.prediction_type == "v_prediction"  # inherited, not the preset's epsilon
    assert tuned.default_resolution == (32, 32)
    assert json.loads((out / "sampling.json").read_text()) == {"steps": 1, "guidance": 1.0, "top_k": 2.0}
    assert report["steps"] == 3 and report["holdout"]["mode"] == "file"
    assert report["targets"] == [load_last_clip(footage)]  # the report is on footage it never trained on
    for side in ("before", "after"):
        assert set(report[side]) >= {"L1", "PSNR", "SSIM", "delta_e"} and len(report[side]["per_case"]["PSNR"]) == 2
    assert report["before"]["per_case"]["L1"] != report["after"]["per_case"]["L1"]  # the fine-tune changed the model
    assert report["change"]["PSNR"] == pytest.approx(report["after"]["PSNR"] - report["before"]["PSNR"])
    picture = np.asarray(Image.open(report["picture"]))
    assert picture.shape == (18 + 2 * (32 + 4), (2 + 3 * 3) * 32 + 3 * 6, 3)  # 2 refs | 3 of the 4 frames x 3
    assert "PSNR" in (out / "README.md").read_text()
    with pytest.raises(UserError, match="already exists"):  # a finished model is never replaced
        train_personal([], out, settings, dataset=footage)


def test_train_personal_without_footage_is_one_line(tmp_path, capsys):
    from engine.cli import main

    assert main(["train", "personal", "--name", "mara", "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["freeview: error: give footage (videos or folders of videos) or --dataset"]
    assert not (tmp_path / "m").exists()


# -- the driving video framed like the training clips ---------------------------------------------------
def test_a_portrait_motion_is_cropped_around_the_person_not_letterboxed():
    from engine.animate import fit_keypoints, frame_around_person, target_track
    from engine.poses.track import BODY, PoseTrack

    kp = np.zeros((3, 128, 3), np.float32)
    # a person 200 px tall in the lower half of a 400 x 800 portrait frame
    kp[:, BODY, 0] = np.linspace(150, 250, 18)[None] / 400
    kp[:, BODY, 1] = np.linspace(500, 700, 18)[None] / 800
    kp[:, BODY, 2] = 1.0
    kp[:, 60, :] = (0.02, 0.02, 1.0)  # a face point far from the person: cut off by the crop
    track = PoseTrack(kp, 400, 800, 25.0)
    framed = frame_around_person(track)
    assert framed.width == framed.height == 250  # 1.25 x the person's 200 px (percentile box), inside the frame
    side = framed.width
    left = kp[0, 0, 0] * 400 - framed.keypoints[0, 0, 0] * side
    top = kp[0, 0, 1] * 800 - framed.keypoints[0, 0, 1] * side
    np.testing.assert_allclose(framed.keypoints[:, BODY, 0] * side + left, kp[:, BODY, 0] * 400, atol=1e-3)
    np.testing.assert_allclose(framed.keypoints[:, BODY, 1] * side + top, kp[:, BODY, 1] * 800, atol=1e-3)
    assert framed.keypoints[0, 60, 2] == 0  # outside the square: not seen
    # in the model's square the person is much taller than in a letterbox of the whole frame
    tall = lambda k: np.ptp(k[0, BODY, 1])
    letterboxed = fit_keypoints(kp, 400, 800, 128, 128)
    assert tall(framed.keypoints) > 3 * tall(letterboxed)
    assert target_track(track).width == 400  # "fit" keeps the frame
    assert target_track(track, framing="auto").width == 250  # "auto": a non-square motion is cropped
    square = PoseTrack(kp, 800, 800, 25.0)
    assert target_track(square, framing="auto").width == 800  # a square one is not
    with pytest.raises(UserError, match="motion framing must be one of"):
        target_track(track, framing="zoom")


def test_the_square_around_a_person_grows_past_the_short_side_rather_than_lose_them():
    from engine.animate import frame_around_person
    from engine.poses.track import BODY, BODY_INDEX, PoseTrack

    # a person 150 px tall walking across a 640 x 360 landscape frame, from x = 40 to x = 600
    kp = np.zeros((20, 128, 3), np.float32)
    kp[:, BODY, 0] = (np.linspace(40, 600, 20)[:, None] + np.linspace(-20, 20, 18)[None]) / 640
    kp[:, BODY, 1] = np.linspace(150, 300, 18)[None] / 360
    kp[:, BODY, 2] = 1.0
    framed = frame_around_person(PoseTrack(kp, 640, 360, 25.0))
    assert 360 < framed.width == framed.height <= 640
    assert (framed.keypoints[:, BODY, 2] == 1.0).all()  # every joint of the walk is kept
    # a box taller than even the long side (feet guessed far below a portrait frame): the head is kept
    heights = {"nose": 100, "r_eye": 95, "l_eye": 95, "r_ear": 100, "l_ear": 100, "neck": 140, "r_shoulder": 150,
               "l_shoulder": 150, "r_elbow": 200, "l_elbow": 200, "r_wrist": 250, "l_wrist": 250, "r_hip": 250,
               "l_hip": 250, "r_knee": 330, "l_knee": 330, "r_ankle": 1400, "l_ankle": 1400}
    tall = np.zeros((3, 128, 3), np.float32)
    for name, y in heights.items():
        tall[:, BODY_INDEX[name]] = (0.5, y / 400, 1.0)
    framed = frame_around_person(PoseTrack(tall, 200, 400, 25.0))
    assert framed.width == 400
    kept = {name: bool((framed.keypoints[:, BODY_INDEX[name], 2] > 0).all()) for name in heights}
    assert all(kept[n] for n in ("nose", "r_eye", "l_ear", "r_shoulder", "r_hip", "r_knee"))
    assert not kept["r_ankle"] and not kept["l_ankle"]


# -- close-up references ------------------------------------------------------------------------------
def test_a_close_up_reference_with_a_pose_sidecar_is_accepted_and_labelled_close_up(tmp_path):
    from PIL import Image

    from engine.animate import load_reference

    photo = tmp_path / "me_close.png"
    Image.fromarray(np.full((200, 160, 3), 90, np.uint8)).save(photo)  # nothing a landmarker would find
    with pytest.raises(UserError, match=r"no person found in reference photo me_close.png; .* me_close.pose.json"):
        load_reference(photo)
    body = [[0.0, 0.0, 0.0]] * 18
    for index, (x, y) in {0: (80, 70), 14: (70, 60), 15: (90, 60), 16: (60, 65), 17: (100, 65), 1: (80, 130),
                          2: (30, 150), 5: (130, 150)}.items():  # nose, eyes, ears, neck, shoulders (pixels)
        body[index] = [x, y, 0.9]
    (tmp_path / "me_close.pose.json").write_text(json.dumps(
        {"version": 1, "width": 160, "height": 200, "frames": [{"people": [{"pose_keypoints_2d": sum(body, [])}]}]}))
    reference = load_reference(photo)
    assert reference.shot == "close-up"
    assert reference.keypoints[0, :2] == pytest.approx([80 / 160, 70 / 200], abs=1e-3)
