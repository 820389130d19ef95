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
    return save_tiny_model(tmp_path_factory.mktemp("vmodel") / "model", sampling={"steps": 2, "guidance": 1.0, "top_k": 2.0})


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
    assert (config.sampling_steps, config.sampling_guidance) == (2, 1.0)  # the model's sampling.json

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
    assert json.loads((out / "sampling.json").read_text()) == {"steps": 2, "guidance": 1.0, "top_k": 2.0}
    out = export_model_dir(run / "model", tmp_path / "shipped-3", steps=3)
    assert json.loads((out / "sampling.json").read_text()) == {"steps": 3, "guidance": 1.0, "top_k": 2.0}
    orphan = save_tiny_model(tmp_path / "orphan")
    assert not (export_model_dir(orphan, tmp_path / "orphan-out") / "sampling.json").exists()  # none to keep
