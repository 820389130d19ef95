"""The training loop on tiny models: losses fall, resume is exact, two ranks, LoRA, bad input."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.errors import UserError
from train.config import config_to_yaml, load_config, make_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from train.synth import MakeSettings, make_dataset

    root = tmp_path_factory.mktemp("synth")
    make_dataset(root, MakeSettings(identities=2, eval_identities=0, size=128, clips_per_identity=2, frames=4, supersample=1))
    return root


def tiny(dataset, out, **overrides):
    values = dict(architecture="tiny", data=str(dataset), output_dir=str(out), resolution=32, batch_size=2, max_refs=2,
                  steps=4, warmup_steps=0, learning_rate=1e-3, reference_dropout=0.0, checkpoint_every=2, log_every=1)
    return make_config("tiny-synthetic", **{**values, **overrides})


def overfit(config, steps=30):
    from engine.models.configs import build_components
    from engine.models.network import FreeViewNetwork
    from train.loop import (
        batch_for_step,
        diffusion_loss,
        make_dataset,
        trainable_parameters,
    )

    components = build_components("tiny", seed=0)
    network = FreeViewNetwork(components["reference_unet"], components["denoising_unet"], components["pose_guider"], components["pcm"])
    params = trainable_parameters(config, components, network)
    batch = batch_for_step(make_dataset(config), config, 0, 0)
    before = {n: p.detach().clone() for n, p in network.named_parameters()}
    losses = fit(lambda: diffusion_loss(config, network, components, batch, torch.Generator().manual_seed(0)), params,
                 config.learning_rate, steps)
    changed = {n for n, p in network.named_parameters() if not torch.equal(before[n], p.detach())}
    return losses, changed, components


def fit(loss_of, params, learning_rate, steps=25) -> list[float]:
    """AdamW on ``params`` for ``steps`` steps of the loss ``loss_of()`` (one fixed batch); the losses seen."""
    optimizer = torch.optim.AdamW(params, lr=learning_rate)
    losses = []
    for _ in range(steps):
        loss = loss_of()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
@pytest.mark.parametrize("stage,frames", [("image", 1), ("temporal", 3)])
def test_loss_falls_overfitting_one_batch(dataset, tmp_path, stage, frames):
    losses, changed, _ = overfit(tiny(dataset, tmp_path, stage=stage, frames=frames, learning_rate=3e-3), steps=25)
    assert min(losses[-5:]) < 0.6 * losses[0], losses
    if stage == "temporal":
        assert changed and all("motion_modules" in n for n in changed)
    else:
        assert not any("motion_modules" in n for n in changed)


@pytest.mark.slow
def test_decoder_stage_learns_to_render_the_models_own_samples(dataset, tmp_path):
    from engine.models.configs import build_components
    from engine.models.network import FreeViewNetwork
    from engine.pipeline import FreeViewPipeline
    from train.loop import COMPONENTS, batch_for_step, decoder_loss, make_dataset, trainable_parameters

    # the components are built here, so init_from is only there to pass the config's check
    config = tiny(dataset, tmp_path, stage="decoder", init_from="unused", learning_rate=3e-3)
    components = build_components("tiny", seed=0)
    network = FreeViewNetwork(components["reference_unet"], components["denoising_unet"], components["pose_guider"], components["pcm"])
    params = trainable_parameters(config, components, network)
    vae = components["vae"]
    assert {id(p) for p in params} == {id(p) for m in (vae.decoder, vae.post_quant_conv) for p in m.parameters()}
    pipe = FreeViewPipeline(**{name: components[name] for name in COMPONENTS})
    pipe.set_progress_bar_config(disable=True)
    batch = batch_for_step(make_dataset(config), config, 0, 0)
    encoder = {n: p.detach().clone() for n, p in vae.encoder.named_parameters()}
    losses = fit(lambda: decoder_loss(config, vae, pipe, batch, torch.Generator().manual_seed(0)), params, config.learning_rate)
    assert min(losses[-5:]) < 0.6 * losses[0], losses
    assert all(torch.equal(encoder[n], p) for n, p in vae.encoder.named_parameters())  # the latent space stays


@pytest.mark.slow
def test_decoder_stage_keeps_everything_but_the_decoder(dataset, tmp_path):
    from engine.pipeline import FreeViewPipeline
    from train.loop import train

    train(tiny(dataset, tmp_path / "a", steps=1, prediction_type="v_prediction", zero_terminal_snr=True))
    source = FreeViewPipeline.from_pretrained(tmp_path / "a" / "model")
    train(tiny(dataset, tmp_path / "b", stage="decoder", init_from=str(tmp_path / "a" / "model"), steps=2))
    tuned = FreeViewPipeline.from_pretrained(tmp_path / "b" / "model")
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not same(source.vae.decoder, tuned.vae.decoder)
    for name in ("reference_unet", "denoising_unet", "pose_guider", "pcm", "image_encoder"):
        assert same(getattr(source, name), getattr(tuned, name)), name
    assert same(source.vae.encoder, tuned.vae.encoder)
    assert tuned.vae.config.scaling_factor == source.vae.config.scaling_factor
    # it trained no diffusion objective: the model keeps its own (the config's default is epsilon)
    assert tuned.scheduler.config.prediction_type == "v_prediction" and tuned.scheduler.config.rescale_betas_zero_snr


@pytest.mark.slow
def test_lora_trains_only_adapters_and_exports_a_plain_model(dataset, tmp_path):
    from engine.pipeline import FreeViewPipeline
    from train.loop import export_model

    config = tiny(dataset, tmp_path, lora_rank=4)
    losses, changed, components = overfit(config, steps=3)
    assert changed and all(".lora_" in n for n in changed)
    export_model(components, tmp_path / "model")
    pipe = FreeViewPipeline.from_pretrained(tmp_path / "model")
    keys = pipe.denoising_unet.state_dict().keys()
    assert not any("lora" in k or "base_layer" in k for k in keys)
    # fused weights reproduce the adapted layer
    adapted = components["denoising_unet"].down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    fused = pipe.denoising_unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    x = torch.randn(3, fused.in_features)
    torch.testing.assert_close(fused(x), adapted(x), atol=1e-5, rtol=1e-4)
    assert len(components["denoising_unet"].conv_in._forward_hooks) == 1  # export left no extra pose hook


@pytest.mark.slow
def test_train_writes_checkpoints_samples_and_logs(dataset, tmp_path, monkeypatch):
    from engine.pipeline import FreeViewPipeline
    from train.loop import checkpoints, train

    sampled, call = [], FreeViewPipeline.__call__
    monkeypatch.setattr(FreeViewPipeline, "__call__", lambda self, *a, **k: sampled.append(
        (k["num_inference_steps"], k["guidance_scale"])) or call(self, *a, **k))
    config = tiny(dataset, tmp_path, steps=4, checkpoint_every=2, keep_checkpoints=1, sample_every=4,
                  sampling_steps=2, sampling_guidance=1.5)
    result = train(config)
    assert result["step"] == 4
    assert sampled == [(2, 1.5)]  # the preview samples as the model will be used
    assert [p.name for p in checkpoints(tmp_path)] == ["step-0000004"]
    assert (tmp_path / "model" / "model_index.json").exists() and (tmp_path / "samples" / "step-0000004.png").exists()
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert not list((tmp_path / "checkpoints").glob(".*"))  # no temporary leftovers


@pytest.mark.slow
def test_cosine_schedule_decays_the_learning_rate_to_zero_at_the_last_step(dataset, tmp_path):
    from train.loop import train

    train(tiny(dataset, tmp_path, steps=4, warmup_steps=1, lr_schedule="cosine", checkpoint_every=4))
    lrs = [float(r["lr"]) for r in csv.DictReader((tmp_path / "log.csv").open())]
    assert lrs[0] == pytest.approx(1e-3) and lrs[1] > lrs[2] > lrs[3] and lrs[-1] == 0.0, lrs


@pytest.mark.slow
def test_full_disk_during_checkpoint_keeps_earlier_ones(dataset, tmp_path, monkeypatch):
    from train import loop

    config = tiny(dataset, tmp_path, steps=4, checkpoint_every=2)
    loop.train(config, max_steps=2)
    good = loop.checkpoints(tmp_path)
    assert [p.name for p in good] == ["step-0000002"]

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop, "export_model", full)
    with pytest.raises(UserError, match="no space left.*earlier checkpoints are intact"):
        loop.train(config, resume="latest")
    assert loop.checkpoints(tmp_path) == good and (good[0] / "model" / "model_index.json").exists()
    assert not list((tmp_path / "checkpoints").glob(".*"))


def test_resume_into_another_architecture_is_one_clear_error(dataset, tmp_path):
    from train.loop import train

    train(tiny(dataset, tmp_path, steps=2, checkpoint_every=2))
    with pytest.raises(UserError, match="architecture"):
        train(tiny(dataset, tmp_path, architecture="default", steps=4), resume="latest")
    with pytest.raises(UserError, match="is not a 'default' model"):
        train(tiny(dataset, tmp_path / "b", architecture="default", init_from=str(tmp_path / "model")))


def test_fine_tune_from_a_float16_export(dataset, tmp_path):
    from train.export import export_model_dir
    from train.loop import load_components, train

    train(tiny(dataset, tmp_path / "a", steps=1))
    export_model_dir(tmp_path / "a" / "model", tmp_path / "exported")  # float16, as shipped
    config = tiny(dataset, tmp_path / "b", steps=1, init_from=str(tmp_path / "exported"))
    dtypes = {p.dtype for name in ("reference_unet", "denoising_unet", "pose_guider", "pcm")
              for p in load_components(config)[name].parameters()}
    assert dtypes == {torch.float32}
    assert train(config)["step"] == 1


@pytest.mark.parametrize("text, message", [
    ("stage: image\nlearning_rat: 1\n", "unknown key.*learning_rat"),
    ("stage: decoder\n", "init_from.*trained model for the decoder stage"),
    ("stage: refiner\n", "init_from.*trained model for the refiner stage"),
    ("stage: refiner\ninit_from: runs/x/model\ngradient_loss_weight: -1\n", "gradient_loss_weight=-1.0 must be a finite number >= 0"),
    ("stage: decoder\ninit_from: runs/x/model\nlora_rank: 4\n", "lora_rank.*image and temporal stages, not 'decoder'"),
    ("stage: image\nreference_shots: same\n", "reference_shots='same' must be 'other' or 'any'"),
    ("stage: sideways\n", "stage"),
    ("stage: image\nframing_loss_weight: -0.1\n", "framing_loss_weight=-0.1 must be a number >= 0"),
])
def test_bad_config_files(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(UserError, match=message):
        load_config(tmp_path / "bad.yaml")


def test_training_without_a_dataset(tmp_path):
    with pytest.raises(UserError, match="no dataset"):
        from train.loop import train

        train(make_config(architecture="tiny", data=str(tmp_path / "empty"), output_dir=str(tmp_path / "o"), resolution=32))


def _run_cli(config_path, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "train", "run", "--config", str(config_path), *extra], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_kill_9_then_resume_continues_exactly(dataset, tmp_path):
    from train.loop import checkpoints, train

    config = tiny(dataset, tmp_path / "killed", steps=40, checkpoint_every=2)
    path = tmp_path / "killed.yaml"
    path.write_text(config_to_yaml(config))
    proc = _run_cli(path)
    deadline = time.time() + 120
    while not checkpoints(Path(config.output_dir)) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    found = checkpoints(Path(config.output_dir))
    assert found, proc.stdout.read()
    step = int((found[-1] / "COMPLETE").read_text())
    assert step < 40
    resumed = train(config, resume="latest", max_steps=1)
    assert resumed["step"] == step + 1

    straight = tiny(dataset, tmp_path / "straight", steps=40, checkpoint_every=1000)
    train(straight, max_steps=step + 1)
    rows = {int(r["step"]): float(r["loss"]) for r in csv.DictReader((tmp_path / "straight" / "log.csv").open())}
    assert abs(rows[step + 1] - resumed["loss"]) < 1e-5, (rows[step + 1], resumed["loss"])


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["image", "vae"])
def test_two_processes_see_different_data_and_write_one_checkpoint(dataset, tmp_path, stage):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tiny(dataset, tmp_path / "ddp", stage=stage, steps=2, checkpoint_every=2, train_image_encoder=True)
    path = tmp_path / "ddp.yaml"
    path.write_text(config_to_yaml(config))
    trace = tmp_path / "trace"
    accelerate = Path(sys.executable).with_name("accelerate")
    result = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--main_process_port", str(port), "-m", "train", "run", "--config", str(path)],
        cwd=ROOT, env={**os.environ, "ACCELERATE_USE_CPU": "true", "FREEVIEW_TRAIN_TRACE": str(trace), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == ["step-0000002"]
    records = {r: [json.loads(line) for line in Path(f"{trace}.rank{r}").read_text().splitlines()] for r in (0, 1)}
    seen = {r: [x["indices"] for x in records[r] if "indices" in x] for r in (0, 1)}
    assert len(seen[0]) == len(seen[1]) == 2 and seen[0] != seen[1]
    # the image encoder (stage 1) and the autoencoder (its own encode/decode) train outside DDP's forward pass:
    # their gradients are averaged by hand, so both ranks keep the same weights
    sums = {r: [x["outside_ddp_sum"] for x in records[r] if "outside_ddp_sum" in x] for r in (0, 1)}
    assert len(sums[0]) == 2 and sums[0] == pytest.approx(sums[1], rel=1e-9, abs=1e-9)


FSDP_CONFIG = """\
distributed_type: FSDP
num_machines: 1
num_processes: 2
mixed_precision: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: BasicTransformerBlock
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_cpu_ram_efficient_loading: false
"""


def _model_weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return {(f.parent.name, k): v for f in sorted(model_dir.glob("*/*.safetensors")) for k, v in load_file(f).items()}


@pytest.mark.slow
def test_fsdp_on_two_processes_trains_saves_resumes_and_exports_the_full_model(dataset, tmp_path):
    """The README's FSDP config (fsdp_version 2, BasicTransformerBlock wrapping, sharded state) on two gloo
    processes: a 3-step run, and a run resumed from its step-2 checkpoint, export the same model, equal to the
    one a single process exports from the sharded step-3 state."""
    import socket

    import torch.distributed.checkpoint as dcp

    from engine.models.network import FreeViewNetwork
    from train.loop import export_model, load_components

    (tmp_path / "fsdp.yaml").write_text(FSDP_CONFIG)
    accelerate = Path(sys.executable).with_name("accelerate")

    def launch(name, *extra):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        path = tmp_path / f"{name}.yaml"
        path.write_text(config_to_yaml(tiny(dataset, tmp_path / name, steps=3, checkpoint_every=2)))
        result = subprocess.run(
            [str(accelerate), "launch", "--config_file", str(tmp_path / "fsdp.yaml"), "--main_process_port", str(port),
             "-m", "tests.fsdp_on_cpu", "run", "--config", str(path), *extra],
            cwd=ROOT, env={**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
                           "FREEVIEW_TRAIN_TRACE": str(tmp_path / f"{name}.trace")},
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return {r: [json.loads(line) for line in Path(f"{tmp_path / name}.trace.rank{r}").read_text().splitlines()]
                for r in (0, 1)}

    straight = launch("straight")
    step_2 = tmp_path / "straight" / "checkpoints" / "step-0000002"
    resumed = launch("resumed", "--resume", str(step_2))
    seen = {r: [x["step"] for x in straight[r]] + [x["step"] for x in resumed[r]] for r in (0, 1)}
    assert seen[0] == seen[1] == [0, 1, 2, 2]  # both ranks train; the resumed run starts at step 2
    assert straight[0][0]["indices"] != straight[1][0]["indices"]
    step_3 = tmp_path / "straight" / "checkpoints" / "step-0000003"
    assert len(list((step_3 / "state" / "pytorch_model_fsdp_0").glob("*.distcp"))) == 2  # sharded: a file per rank

    losses = {name: {int(r["step"]): r["loss"] for r in csv.DictReader((tmp_path / name / "log.csv").open())}
              for name in ("straight", "resumed")}
    assert losses["resumed"] == {3: losses["straight"][3]}  # resumed exactly

    exported = _model_weights(tmp_path / "straight" / "model")
    for name in ("resumed/model", "straight/checkpoints/step-0000003/model"):
        weights = _model_weights(tmp_path / name)
        assert weights.keys() == exported.keys(), name
        assert all(torch.equal(weights[k], exported[k]) for k in exported), name

    # one process, no FSDP: the step-3 shards loaded into the plain model, exported as a single-process run would
    config = load_config(step_3 / "config.yaml")
    components = load_components(config)
    network = FreeViewNetwork(components["reference_unet"], components["denoising_unet"], components["pose_guider"], components["pcm"])
    state = {f"model.{k}": v for k, v in network.state_dict().items()}
    dcp.load(state, checkpoint_id=str(step_3 / "state" / "pytorch_model_fsdp_0"))
    export_model(components, tmp_path / "single")
    single = _model_weights(tmp_path / "single")
    assert single.keys() == exported.keys()
    assert all(torch.equal(single[k], exported[k]) for k in exported)
    before = _model_weights(tmp_path / "straight" / "checkpoints" / "step-0000002" / "model")  # it trained
    assert not all(torch.equal(before[k], exported[k]) for k in exported if k[0] == "denoising_unet")



@pytest.mark.parametrize("overrides, version, message", [
    ({}, 1, "fsdp_version 1"), ({"stage": "vae"}, 2, "stage vae"), ({"ema_decay": 0.99}, 2, "ema_decay"),
    ({"lora_rank": 4}, 2, "lora_rank"),
])
def test_what_fsdp_does_not_shard_is_one_clear_error(tmp_path, overrides, version, message):
    from train.loop import check_fsdp

    check_fsdp(tiny(tmp_path, tmp_path), 2)
    with pytest.raises(UserError, match=message):
        check_fsdp(tiny(tmp_path, tmp_path, **overrides), version)

def test_min_snr_weights_only_lower_the_easy_timesteps():
    from diffusers import DDIMScheduler

    from engine.models.configs import SMALL_SCHEDULER
    from train.config import make_config
    from train.loop import snr_weights

    scheduler = DDIMScheduler(**SMALL_SCHEDULER)
    t = torch.arange(0, 1000, 50)
    plain = snr_weights(make_config("tiny-synthetic"), scheduler, t)
    assert torch.equal(plain, torch.ones(len(t)))
    weights = snr_weights(make_config("tiny-synthetic", snr_gamma=5.0), scheduler, t)
    alphas = scheduler.alphas_cumprod[t]
    snr = alphas / (1 - alphas)
    assert torch.all(weights[snr <= 5] == 1) and torch.all(weights[snr > 5] < 1)
    assert torch.all(weights[1:] >= weights[:-1])  # noisier timesteps never weigh less


def test_trim_log_forgets_rows_after_the_checkpoint(tmp_path):
    from train.loop import append_log, trim_log

    log = tmp_path / "log.csv"
    for step in (10, 20, 30):
        append_log(log, step, 0.5, 1e-4)
    trim_log(log, 20)
    assert [line.split(",")[0] for line in log.read_text().splitlines()] == ["step", "10", "20"]


def test_the_scheduler_follows_the_training_objective():
    from engine.models.configs import build_components
    from train.loop import training_scheduler

    scheduler = build_components("tiny")["scheduler"]
    assert scheduler.config.prediction_type == "epsilon"
    config = make_config("tiny-synthetic", architecture="tiny", prediction_type="v_prediction", zero_terminal_snr=True)
    trained = training_scheduler(config, scheduler)
    assert trained.config.prediction_type == "v_prediction"
    assert float(trained.alphas_cumprod[-1]) == 0.0
    assert training_scheduler(make_config("tiny-synthetic"), trained).config.rescale_betas_zero_snr  # None keeps the model's


def test_timestep_bias_draws_the_noisy_end_more_often():
    from train.loop import sample_timesteps, timestep_weights

    uniform = make_config("tiny-synthetic")
    assert torch.allclose(timestep_weights(uniform, 1000), torch.full((1000,), 1e-3, dtype=torch.float64))
    later = make_config("tiny-synthetic", timestep_bias_strategy="later", timestep_bias_portion=0.25, timestep_bias_multiplier=3.0)
    weights = timestep_weights(later, 1000)
    assert float(weights[750:].sum()) == pytest.approx(0.5)  # 250 * 3 of 750 + 250 * 3
    assert float(weights[:750].max()) < float(weights[750:].min())
    drawn = sample_timesteps(later, 1000, 20000, torch.Generator().manual_seed(0))
    assert drawn.min() >= 0 and drawn.max() <= 999
    assert 0.47 < float((drawn >= 750).float().mean()) < 0.53
    earlier = make_config("tiny-synthetic", timestep_bias_strategy="earlier", timestep_bias_portion=0.1, timestep_bias_multiplier=9.0)
    assert float(timestep_weights(earlier, 1000)[:100].sum()) == pytest.approx(0.5)


@pytest.mark.parametrize("key, value", [("timestep_bias_strategy", "middle"), ("timestep_bias_portion", 0.0),
                                        ("timestep_bias_multiplier", -1.0)])
def test_bad_timestep_bias_is_one_clear_error(key, value):
    from engine.errors import UserError

    with pytest.raises(UserError, match=f"config: {key}="):
        make_config("tiny-synthetic", **{key: value})


def test_the_default_recipe_chains_its_seven_steps():
    order = ["default-vae", "default-image", "default-people", "default-temporal", "default-decoder", "default-refiner",
             "default-refiner-settle"]
    configs = {p.stem: load_config(p) for p in (ROOT / "train" / "configs").glob("default-*.yaml")}
    assert sorted(configs) == sorted(order)
    assert [configs[n].stage for n in order] == ["vae", "image", "image", "temporal", "decoder", "refiner", "refiner"]
    for before, after in zip(order, order[1:]):
        assert configs[after].init_from == f"{configs[before].output_dir}/model"
    recipe = (ROOT / "train" / "recipes" / "default_model.sh").read_text().splitlines()
    runs = [line.split("--config ")[1].split()[0] for line in recipe if line.startswith("freeview train run")]
    assert runs == [f"train/configs/{n}.yaml" for n in order]
    assert any(line.startswith(f"freeview train export {configs[order[-1]].output_dir}/model ") for line in recipe)


def test_the_warp_experiment_continues_from_the_default_with_the_appearance_input():
    warp = load_config(ROOT / "train" / "configs" / "experiment-warp.yaml")
    boost = load_config(ROOT / "train" / "configs" / "experiment-warp-boost.yaml")
    assert (warp.stage, warp.appearance, warp.init_from) == ("image", "warp", "runs/default-decoder/model")
    assert boost.init_from == f"{warp.output_dir}/model" and boost.appearance_learning_rate == pytest.approx(10 * boost.learning_rate)


# -- the framing prior (train/framing.py) --------------------------------------------------------


def _face_keypoints(size: float, visible: int = 68, centre=(0.5, 0.3)) -> torch.Tensor:
    """Keypoints ``(128, 3)`` whose face points lie on a circle of radius ``size`` (RMS spread ``size``)."""
    kp = torch.zeros(128, 3)
    angles = torch.linspace(0, 2 * torch.pi, 69)[:68]
    kp[60:, 0] = centre[0] + size * torch.cos(angles)
    kp[60:, 1] = centre[1] + size * torch.sin(angles)
    kp[60:60 + visible, 2] = 1.0
    kp[:18, :2], kp[:18, 2] = 0.5, 1.0  # a body, which the face size ignores
    return kp


def test_face_size_is_the_spread_of_the_visible_face_and_nan_without_one():
    from train.framing import MIN_FACE_POINTS, face_size

    sizes = face_size(torch.stack([_face_keypoints(0.1), _face_keypoints(0.03, centre=(0.2, 0.8)),
                                   _face_keypoints(0.1, visible=MIN_FACE_POINTS - 1)]))
    assert sizes[0] == pytest.approx(0.1, rel=1e-4) and sizes[1] == pytest.approx(0.03, rel=1e-4)
    assert torch.isnan(sizes[2])


def test_the_framing_loss_prefers_the_reference_framed_like_the_target():
    from train.framing import framing_loss, framing_weights

    refs = torch.stack([_face_keypoints(0.1), _face_keypoints(0.03)])[None]  # a close-up and a wide reference
    targets = torch.stack([_face_keypoints(0.03), _face_keypoints(0.095)])[None]  # a wide and a close-up frame
    prior = framing_weights(refs, targets)[0]
    assert prior[0].argmax() == 1 and prior[1].argmax() == 0
    assert torch.allclose(prior.sum(-1), torch.ones(2))

    def loss_for(levels):  # levels[f][r]: the mean correlation of reference r for target frame f
        correlation = torch.tensor(levels).T[None, :, :, None, None].expand(1, 2, 2, 4, 4).clone().requires_grad_()
        return framing_loss(correlation, refs, targets), correlation

    follows, _ = loss_for([[0.0, 0.8], [0.8, 0.0]])
    by_kind, correlation = loss_for([[0.8, 0.0], [0.8, 0.0]])  # the close-up first whatever the target
    assert follows < by_kind
    by_kind.backward()
    # the gradient lowers the close-up for the wide frame and raises the wide reference there
    assert correlation.grad[0, 0, 0].sum() > 0 > correlation.grad[0, 1, 0].sum()
    assert framing_loss(torch.zeros(1, 1, 2, 4, 4), refs[:, :1], targets) == 0  # one reference: nothing to prefer
    no_face = torch.stack([_face_keypoints(0.1, visible=0)] * 2)[None]
    assert framing_loss(torch.zeros(1, 2, 2, 4, 4), refs, no_face) == 0  # no prior without faces


@pytest.mark.slow
def test_the_framing_loss_is_added_to_the_diffusion_loss_and_trains_the_pcm(dataset, tmp_path):
    from engine.models.configs import build_components
    from engine.models.network import FreeViewNetwork
    from train.framing import framing_loss
    from train.loop import batch_for_step, diffusion_loss, make_dataset

    components = build_components("tiny", seed=0)
    pcm = components["pcm"]
    torch.nn.init.normal_(pcm.conv_out.weight, std=0.05)  # a fresh PCM outputs zeros: start from something
    network = FreeViewNetwork(components["reference_unet"], components["denoising_unet"], components["pose_guider"], pcm)
    plain, framed = (tiny(dataset, tmp_path, max_refs=2, framing_loss_weight=w) for w in (0.0, 1.0))
    batch = batch_for_step(make_dataset(plain), plain, 0, 0)
    # a step that draws both references (the count is drawn from the step's generator)
    seed = next(s for s in range(100) if int(torch.randint(1, 3, (1,), generator=torch.Generator().manual_seed(s))) == 2)
    with torch.no_grad():
        total = {c.framing_loss_weight: diffusion_loss(c, network, components, batch, torch.Generator().manual_seed(seed))
                 for c in (plain, framed)}
        expected = framing_loss(pcm(batch["ref_poses"], batch["target_poses"]), batch["ref_keypoints"], batch["target_keypoints"])
    assert expected > 0
    assert float(total[1.0] - total[0.0]) == pytest.approx(float(expected), rel=1e-4)

    optimizer = torch.optim.AdamW(pcm.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = framing_loss(pcm(batch["ref_poses"], batch["target_poses"]), batch["ref_keypoints"], batch["target_keypoints"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
def test_refiner_stage_learns_to_correct_the_models_frames_and_trains_nothing_else(dataset, tmp_path):
    from engine.pipeline import FreeViewPipeline
    from train.loop import COMPONENTS, batch_for_step, load_components, make_dataset, refiner_loss, trainable_parameters
    from engine.models.network import FreeViewNetwork

    train_config = tiny(dataset, tmp_path / "a", steps=1, prediction_type="v_prediction", zero_terminal_snr=True)
    from train.loop import train

    train(train_config)
    config = tiny(dataset, tmp_path / "b", stage="refiner", init_from=str(tmp_path / "a" / "model"), learning_rate=3e-3,
                  gradient_loss_weight=1.0)
    components = load_components(config)
    refiner = components["refiner"]
    assert refiner is not None and not refiner.unet.conv_out.weight.any()  # added, zero-initialised
    network = FreeViewNetwork(components["reference_unet"], components["denoising_unet"], components["pose_guider"], components["pcm"])
    params = trainable_parameters(config, components, network)
    assert {id(p) for p in params} == {id(p) for p in refiner.parameters()}
    pipe = FreeViewPipeline(**{name: components[name] for name in COMPONENTS}, refiner=refiner)
    pipe.set_progress_bar_config(disable=True)
    batch = batch_for_step(make_dataset(config), config, 0, 0)
    losses = fit(lambda: refiner_loss(config, refiner, pipe, batch, torch.Generator().manual_seed(0)), params,
                 config.learning_rate)
    assert min(losses[-5:]) < 0.8 * losses[0], losses

    train(tiny(dataset, tmp_path / "c", stage="refiner", init_from=str(tmp_path / "a" / "model"), steps=2))
    source = FreeViewPipeline.from_pretrained(tmp_path / "a" / "model")
    tuned = FreeViewPipeline.from_pretrained(tmp_path / "c" / "model")
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert source.refiner is None and tuned.refiner is not None and tuned.refiner.unet.conv_out.weight.any()
    for name in ("vae", "reference_unet", "denoising_unet", "pose_guider", "pcm", "image_encoder"):
        assert same(getattr(source, name), getattr(tuned, name)), name
    assert tuned.scheduler.config.prediction_type == "v_prediction"
