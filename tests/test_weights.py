"""Model directories and the Moore-AnimateAnyone conversion, on tiny modules and meta tensors."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine import weights
from engine.errors import UserError
from engine.models.configs import architecture, build_components
from engine.model import check_model_dir, save_model_dir
from engine.weights import (
    BaseModels,
    check_state_dict,
    convert_moore,
    convert_moore_state_dicts,
    convert_state_dict_motion,
    load_pth,
)


def load_model_dir(path):
    from engine.pipeline import FreeViewPipeline

    return FreeViewPipeline.from_pretrained(check_model_dir(path)).components

REPO = Path(__file__).resolve().parents[1]
INTEROP = Path(__file__).resolve().parents[2] / "shared" / "interop" / "moore_animateanyone_keys.json"

# diffusers -> AnimateDiff, the interop rules inverted
_INVERSE_RENAMES = (
    (".attn1", ".attention_blocks.0"),
    (".attn2", ".attention_blocks.1"),
    (".norm1", ".norms.0"),
    (".norm2", ".norms.1"),
    (".norm3", ".ff_norm"),
)


class NotATensor:
    """Anything that is not a tensor needs full pickle to load."""


def interop():
    if not INTEROP.is_file():
        print(f"skipping: {INTEROP} is absent")
        pytest.skip(f"interop key file {INTEROP} is absent")
    return json.loads(INTEROP.read_text())


def to_moore_motion_key(key: str) -> str:
    """``down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.weight`` -> AnimateDiff naming."""
    head, _, tail = key.partition(".motion_modules.")
    index, _, rest = tail.partition(".")
    rest = "." + rest
    for new, old in _INVERSE_RENAMES:
        rest = rest.replace(new, old)
    return f"{head}.motion_modules.{index}.temporal_transformer{rest}"


def fake_moore(components, seed=1):
    """Moore-layout state dicts for ``components``' architecture, with random values."""
    g = torch.Generator().manual_seed(seed)

    def rand(t):
        return torch.randn(t.shape, generator=g)

    reference = {k: rand(v) for k, v in components["reference_unet"].state_dict().items()
                 if k not in weights.REFERENCE_UNET_ABSENT}
    denoising, motion = {}, {}
    for key, value in components["denoising_unet"].state_dict().items():
        if "motion_modules" not in key:
            denoising[key] = rand(value)
        elif key.endswith(".pos_embed.pe"):
            block = to_moore_motion_key(key[: -len(".pos_embed.pe")])
            for attention in (0, 1):  # Moore keeps one (random here: it must be dropped) pe per attention block
                motion[f"{block}.attention_blocks.{attention}.pos_encoder.pe"] = rand(value)
        else:
            motion[to_moore_motion_key(key)] = rand(value)
    pose_guider = {k: rand(v) for k, v in components["pose_guider"].state_dict().items()}
    return {"pose_guider.pth": pose_guider, "reference_unet.pth": reference,
            "denoising_unet.pth": denoising, "motion_module.pth": motion}


def write_moore(tmp_path, components, seed=1):
    moore = tmp_path / "moore"
    moore.mkdir()
    state_dicts = fake_moore(components, seed)
    for name, sd in state_dicts.items():
        torch.save(sd, moore / name)
    return moore, state_dicts


def write_base(tmp_path, components, unet=None):
    sdiv, vae = tmp_path / "sdiv", tmp_path / "vae"
    (unet or components["reference_unet"]).save_config(sdiv / "unet")
    components["image_encoder"].save_pretrained(sdiv / "image_encoder")
    components["vae"].save_pretrained(vae)
    return BaseModels(sdiv, vae)


# ---------------------------------------------------------------- pure functions


def test_convert_state_dict_motion_renames_and_drops_pe():
    p = "down_blocks.0.motion_modules.1.temporal_transformer."
    sd = {
        p + "norm.weight": 1,
        p + "proj_in.bias": 2,
        p + "transformer_blocks.0.attention_blocks.0.to_q.weight": 3,
        p + "transformer_blocks.0.attention_blocks.1.to_out.0.bias": 4,
        p + "transformer_blocks.0.attention_blocks.1.pos_encoder.pe": 5,
        p + "transformer_blocks.0.norms.0.weight": 6,
        p + "transformer_blocks.0.norms.1.bias": 7,
        p + "transformer_blocks.0.ff_norm.weight": 8,
        p + "transformer_blocks.0.ff.net.0.proj.weight": 9,
        "mid_block.attentions.0.transformer_blocks.0.norm1.weight": 10,
    }
    q = "down_blocks.0.motion_modules.1."
    assert convert_state_dict_motion(sd) == {
        q + "norm.weight": 1,
        q + "proj_in.bias": 2,
        q + "transformer_blocks.0.attn1.to_q.weight": 3,
        q + "transformer_blocks.0.attn2.to_out.0.bias": 4,
        q + "transformer_blocks.0.norm1.weight": 6,
        q + "transformer_blocks.0.norm2.bias": 7,
        q + "transformer_blocks.0.norm3.weight": 8,
        q + "transformer_blocks.0.ff.net.0.proj.weight": 9,
        "mid_block.attentions.0.transformer_blocks.0.norm1.weight": 10,
    }


def test_convert_state_dict_motion_matches_interop_examples():
    pairs = interop()["animatediff_to_diffusers_target"]["example_pairs"]
    converted = convert_state_dict_motion({old: old for old, _ in pairs})
    assert {new: old for old, new in pairs if new is not None} == converted


def test_check_state_dict_lists_first_mismatching_keys():
    expected = {f"k{i}": (2, 3) for i in range(9)}
    found = {f"k{i}": torch.empty(2, 3) for i in range(1, 8)} | {"extra": torch.empty(1), "k8": torch.empty(3, 2)}
    with pytest.raises(UserError) as info:
        check_state_dict(expected, found, what="x.pth")
    message = str(info.value)
    assert "x.pth" in message and "missing k0" in message and "unexpected extra" in message
    assert "x.pth: k8 is [3, 2], the architecture needs [2, 3]" in message.splitlines()
    fixed = {k: v for k, v in found.items() if k != "extra"} | {"k8": torch.empty(2, 3)}
    assert check_state_dict(expected, fixed, what="x", may_be_missing={"k0"}) == ["k0"]
    many = {f"m{i}": (1,) for i in range(12)}
    with pytest.raises(UserError, match=r"missing m0, m1, m2, m3, m4, \.\.\. \(12 in all\)"):
        check_state_dict(many, {}, what="y")


# ---------------------------------------------------------------- the real key set, on meta tensors


def test_sd15_moore_keys_load_with_only_documented_gaps():
    files = interop()["files"]
    state_dicts = {
        name: {key: torch.empty(shape, device="meta") for key, shape in files[name]["keys"].items()}
        for name in weights.MOORE_FILES
    }
    out = convert_moore_state_dicts(state_dicts, architecture("sd15").unet, preset="sd15")

    def materialised(module):
        return sorted(k for k, v in module.state_dict().items() if v.device.type != "meta")

    # everything came from the (meta) files except exactly the documented fills
    assert materialised(out["pose_guider"]) == []
    assert materialised(out["reference_unet"]) == sorted(weights.REFERENCE_UNET_ABSENT)
    pe = materialised(out["denoising_unet"])
    assert len(pe) == 21 and all(k.endswith(".pos_embed.pe") for k in pe)
    assert len(out["denoising_unet"].state_dict()) == 1253
    pcm = out["pcm"]
    assert torch.count_nonzero(pcm.conv_out.weight) == 0 and torch.count_nonzero(pcm.conv_out.bias) == 0


# ---------------------------------------------------------------- model directories


def test_save_model_dir_layout_and_missing_component(tmp_path, tiny_components):
    out = save_model_dir(tiny_components, tmp_path / "model")
    index = json.loads((out / "model_index.json").read_text())
    assert index.pop("_diffusers_version")
    assert index == {
        "_class_name": "FreeViewPipeline",
        "vae": ["diffusers", "AutoencoderKL"],
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "reference_unet": ["diffusers", "UNet2DConditionModel"],
        "denoising_unet": ["diffusers", "UNetMotionModel"],
        "pose_guider": ["engine.models.pose_guider", "PoseGuider"],
        "pcm": ["engine.models.pcm", "PoseCorrelationModule"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "refiner": [None, None],  # an optional component this model does not have
    }
    assert check_model_dir(out) == out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    for path in (out / "pcm").iterdir():
        path.unlink()
    (out / "pcm").rmdir()
    (out / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(UserError, match=r"missing vae/\*\.safetensors, pcm/"):
        check_model_dir(out)
    with pytest.raises(UserError, match="does not exist"):
        check_model_dir(tmp_path / "nowhere")


# ---------------------------------------------------------------- conversion, tiny architecture


def test_convert_tiny_round_trip(tmp_path, tiny_components):
    moore, fake = write_moore(tmp_path, tiny_components)
    base = write_base(tmp_path, tiny_components)
    out = convert_moore(moore, tmp_path / "model", base=base, preset="tiny")
    loaded = load_model_dir(out)

    def assert_equal(module, expected):
        sd = module.state_dict()
        for key, value in expected.items():
            assert torch.equal(sd[key], value), key

    assert_equal(loaded["pose_guider"], fake["pose_guider.pth"])
    assert_equal(loaded["reference_unet"], fake["reference_unet.pth"])
    assert_equal(loaded["denoising_unet"], convert_state_dict_motion(fake["denoising_unet.pth"] | fake["motion_module.pth"]))
    tiny_sd = tiny_components["denoising_unet"].state_dict()
    for key, value in loaded["denoising_unet"].state_dict().items():
        if key.endswith(".pos_embed.pe"):  # recomputed sinusoid, not Moore's (random here) pe
            assert torch.equal(value, tiny_sd[key]), key
    assert_equal(loaded["vae"], tiny_components["vae"].state_dict())
    assert_equal(loaded["image_encoder"], tiny_components["image_encoder"].state_dict())
    assert torch.count_nonzero(loaded["pcm"].conv_out.weight) == 0
    assert torch.count_nonzero(loaded["pcm"].conv_out.bias) == 0
    assert loaded["scheduler"].config.prediction_type == "v_prediction"
    assert loaded["scheduler"].config.timestep_spacing == "trailing"
    assert all(p.dtype == torch.float32 for p in loaded["denoising_unet"].parameters())


def test_convert_reads_widths_from_the_tensors_not_the_base_config(tmp_path, tiny_components, caplog):
    moore, fake = write_moore(tmp_path, tiny_components)
    other = build_components("tiny")["reference_unet"]
    other.register_to_config(cross_attention_dim=16, block_out_channels=[64, 128])  # the base config says another UNet
    base = write_base(tmp_path, tiny_components, unet=other)
    with caplog.at_level("WARNING", logger="engine.weights"):
        out = convert_moore(moore, tmp_path / "model", base=base, preset="tiny")
    assert "cross_attention_dim is 32 in the tensors but 16 in the UNet config" in caplog.text
    loaded = load_model_dir(out)
    assert loaded["reference_unet"].config.cross_attention_dim == 32
    assert list(loaded["denoising_unet"].config.block_out_channels) == [32, 64]


def test_convert_wrong_shape_is_one_line_per_tensor(tmp_path, tiny_components):
    moore, fake = write_moore(tmp_path, tiny_components)
    reference = fake["reference_unet.pth"]
    keys = [k for k in reference if k.endswith("attn2.to_k.weight")][:2]
    for key in keys:
        reference[key] = torch.zeros(reference[key].shape[0], 16)  # cross-attention of another model
    torch.save(reference, moore / "reference_unet.pth")
    base = write_base(tmp_path, tiny_components)
    with pytest.raises(UserError) as info:
        convert_moore(moore, tmp_path / "model", base=base, preset="tiny")
    lines = str(info.value).splitlines()
    assert lines[0] == "reference_unet.pth does not match the architecture: 2 tensor(s) of the wrong shape"
    assert lines[1:] == [f"reference_unet.pth: {k} is [{reference[k].shape[0]}, 16], the architecture needs "
                         f"[{reference[k].shape[0]}, 32]" for k in sorted(keys, key=list(reference).index)]
    assert not (tmp_path / "model").exists()


def test_convert_renamed_key_is_refused_and_stray_keys_are_tolerated_where_moore_tolerates_them(
        tmp_path, tiny_components, caplog):
    moore, fake = write_moore(tmp_path, tiny_components)
    motion = fake["motion_module.pth"]
    key = next(k for k in motion if ".norms.0." in k)
    motion[key.replace(".norms.0.", ".norms.9.")] = motion.pop(key)
    torch.save(motion, moore / "motion_module.pth")
    base = write_base(tmp_path, tiny_components)
    with pytest.raises(UserError, match=r"motion_module\.pth does not match.*missing .*norm1"):
        convert_moore(moore, tmp_path / "model", base=base, preset="tiny")
    # Moore loads denoising_unet.pth with strict=False: a stray tensor there is skipped with a warning ...
    motion[key] = motion.pop(key.replace(".norms.0.", ".norms.9."))
    torch.save(motion, moore / "motion_module.pth")
    denoising = fake["denoising_unet.pth"] | {"stray.weight": torch.zeros(3)}
    torch.save(denoising, moore / "denoising_unet.pth")
    with caplog.at_level("WARNING", logger="engine.weights"):
        convert_moore(moore, tmp_path / "model", base=base, preset="tiny")
    assert "ignoring 1 tensors the architecture has no place for (stray.weight)" in caplog.text
    # ... but its reference net and pose guider are loaded strictly, and so are they here
    torch.save(fake["pose_guider.pth"] | {"stray.weight": torch.zeros(3)}, moore / "pose_guider.pth")
    with pytest.raises(UserError, match=r"pose_guider\.pth does not match the architecture: unexpected stray\.weight"):
        convert_moore(moore, tmp_path / "model2", base=base, preset="tiny")


def odd_width_components():
    """A model of widths no preset has (64/128, cross-attention 48, 24-frame positions, pose guider 8/24)."""
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

    from engine.models.pose_guider import PoseGuider

    torch.manual_seed(0)
    config = dict(architecture("tiny").unet, block_out_channels=(64, 128), cross_attention_dim=48)
    adapter = MotionAdapter(block_out_channels=(64, 128), motion_layers_per_block=1, motion_num_attention_heads=2,
                            motion_norm_num_groups=8, motion_max_seq_length=24, use_motion_mid_block=True)
    return {"reference_unet": UNet2DConditionModel(**config),
            "denoising_unet": UNetMotionModel.from_unet2d(UNet2DConditionModel(**config), adapter),
            "pose_guider": PoseGuider(conditioning_embedding_channels=64, block_out_channels=(8, 24))}


def test_widths_that_are_no_preset_convert():
    odd = odd_width_components()
    fake = fake_moore(odd)
    out = convert_moore_state_dicts(fake, architecture("tiny").unet, preset="tiny")  # the base config says 32/64
    assert list(out["denoising_unet"].config.block_out_channels) == [64, 128]
    assert out["denoising_unet"].config.cross_attention_dim == 48
    assert out["denoising_unet"].config.motion_max_seq_length == 24
    assert list(out["pose_guider"].config.block_out_channels) == [8, 24]
    sd = out["denoising_unet"].state_dict()
    for key, value in convert_state_dict_motion(fake["denoising_unet.pth"] | fake["motion_module.pth"]).items():
        assert torch.equal(sd[key], value), key
    assert out["denoising_unet"].config["_motion_norm"] == "per_frame"


def test_files_of_two_models_are_one_clear_line():
    fake = fake_moore(odd_width_components())
    tiny = fake_moore(build_components("tiny"))
    with pytest.raises(UserError, match=r"motion_module\.pth has motion modules of widths \[32, 64\] but denoising_unet\.pth "
                                        r"has levels of \[64, 128\]"):
        convert_moore_state_dicts(fake | {"motion_module.pth": tiny["motion_module.pth"]}, architecture("tiny").unet,
                                  preset="tiny")
    with pytest.raises(UserError, match=r"pose_guider\.pth: conv_out\.weight gives 32 channels but the UNet's first level has 64"):
        convert_moore_state_dicts(fake | {"pose_guider.pth": tiny["pose_guider.pth"]}, architecture("tiny").unet,
                                  preset="tiny")


def test_cli_convert_odd_widths_with_a_preset_exits_zero(tmp_path, capsys):
    odd = odd_width_components()
    moore, _ = write_moore(tmp_path, odd)
    tiny = build_components("tiny")
    base = write_base(tmp_path, tiny, unet=odd["reference_unet"])
    tiny["image_encoder"].config.projection_dim = 48
    from transformers import CLIPVisionModelWithProjection

    encoder = CLIPVisionModelWithProjection(tiny["image_encoder"].config)
    encoder.save_pretrained(base.image_variations / "image_encoder")
    from engine.cli import main

    code = main(["weights", "convert", "--moore", str(moore), "--sd-image-variations", str(base.image_variations),
                 "--vae", str(base.vae), "-o", str(tmp_path / "model"), "--preset", "tiny"])
    assert code == 0, capsys.readouterr().err[-2000:]
    sampling = json.loads((tmp_path / "model" / "sampling.json").read_text())
    assert (sampling["clip_frames"], sampling["overlap"], sampling["top_k"]) == (24, 4, "all")
    from engine.model import sampling_defaults

    assert sampling_defaults(tmp_path / "model")["clip_frames"] == 24


def test_pickle_checkpoint_is_refused(tmp_path):
    path = tmp_path / "pose_guider.pth"
    torch.save({"conv_in.weight": torch.zeros(1), "extra": NotATensor()}, path)
    with pytest.raises(UserError, match=r"refused.*NotATensor.*never unpickles code") as refused:
        load_pth(path)
    assert "weights_only=False" not in str(refused.value)
    torch.save({"state_dict": {"a": torch.zeros(1)}}, path)
    with pytest.raises(UserError, match="not a plain state dict"):
        load_pth(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable"):
        load_pth(path)


def test_convert_missing_inputs_named(tmp_path, tiny_components):
    moore, _ = write_moore(tmp_path, tiny_components)
    (moore / "motion_module.pth").unlink()
    base = write_base(tmp_path, tiny_components)
    with pytest.raises(UserError, match="lacks motion_module.pth"):
        convert_moore(moore, tmp_path / "model", base=base, preset="tiny")


# ---------------------------------------------------------------- fetch


def test_fetch_offline_says_what_to_download(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as info:
        weights.fetch("animate-anyone", tmp_path / "model", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    for needed in ("patrolli/AnimateAnyone", "motion_module.pth", "lambdalabs/sd-image-variations-diffusers",
                   "stabilityai/sd-vae-ft-mse", "freeview weights convert --moore"):
        assert needed in message
    assert not (tmp_path / "model").exists()


def test_fetch_without_network_fails_fast(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(weights, "hub_reachable", lambda: False)
    with pytest.raises(UserError, match="Hugging Face Hub is unreachable.*freeview weights convert"):
        weights.fetch("animate-anyone", tmp_path / "model", cache_dir=tmp_path / "cache")


def test_fetch_converts_downloaded_snapshots(tmp_path, monkeypatch, tiny_components):
    """The download layout (hub snapshot folders) feeds the converter; the hub is faked with local files."""
    from dataclasses import replace

    from huggingface_hub.errors import RemoteEntryNotFoundError

    moore, _ = write_moore(tmp_path, tiny_components)
    base = write_base(tmp_path, tiny_components)
    roots = {"patrolli/AnimateAnyone": moore, "lambdalabs/sd-image-variations-diffusers": base.image_variations,
             "stabilityai/sd-vae-ft-mse": base.vae}
    asked = []

    def fake_download(repo_id, filename, cache_dir=None, local_files_only=False):
        asked.append(f"{repo_id}/{filename}")
        path = roots[repo_id] / filename
        if not path.is_file():
            response = SimpleNamespace(headers={}, request=None)
            raise RemoteEntryNotFoundError(f"{filename} not in {repo_id}", response=response)
        return str(path)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    monkeypatch.setitem(weights.FETCH_PRESETS, "animate-anyone",
                        replace(weights.FETCH_PRESETS["animate-anyone"], architecture="tiny"))
    (base.image_variations / "image_encoder" / "model.safetensors").unlink()
    torch.save(tiny_components["image_encoder"].state_dict(), base.image_variations / "image_encoder" / "pytorch_model.bin")
    out = weights.fetch("animate-anyone", tmp_path / "model")
    assert check_model_dir(out) == out
    assert "lambdalabs/sd-image-variations-diffusers/image_encoder/pytorch_model.bin" in asked  # fallback used


# ---------------------------------------------------------------- CLI


def test_cli_fetch_offline_one_line(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(REPO))
    env.pop("FREEVIEW_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "weights", "fetch", "animate-anyone", "-o", str(tmp_path / "model")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("freeview: error:") and "patrolli/AnimateAnyone" in lines[0]


def test_cli_convert_missing_folder(tmp_path, capsys):
    from engine.cli import main

    code = main(["weights", "convert", "--moore", str(tmp_path / "none"), "--sd-image-variations", str(tmp_path),
                 "--vae", str(tmp_path), "-o", str(tmp_path / "model")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and "Moore-AnimateAnyone weights folder" in err
