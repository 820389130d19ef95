"""The pose-correlated multi-reference network on the tiny configuration."""

import copy

import pytest
import torch

from engine.models.configs import build_components
from engine.models.network import FreeViewNetwork, SelectedReferences
from engine.models.selection import tokens_per_layer_k
from engine.models.pcm import PoseCorrelationModule
from engine.models.pose_guider import PoseGuider
from engine.models.selection import select_token_indices

H = W = 32  # pixels; the tiny VAE halves it
LAT = 16


def make_network(seed=0):
    c = build_components("tiny", seed=seed)
    return FreeViewNetwork(c["reference_unet"], c["denoising_unet"], c["pose_guider"], c["pcm"]).eval()


@pytest.fixture(scope="module")
def net():
    return make_network()


def inputs(batch=1, refs=2, frames=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        noisy_latents=torch.randn(batch, 4, frames, LAT, LAT, generator=g),
        timestep=torch.tensor([500]),
        reference_latents=torch.randn(batch, refs, 4, LAT, LAT, generator=g),
        reference_embeds=torch.randn(batch, refs, 32, generator=g),
        reference_poses=torch.rand(batch, refs, 3, H, W, generator=g),
        target_poses=torch.rand(batch, frames, 3, H, W, generator=g),
    )


def randomise_pcm_output(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.pcm.conv_out.weight.copy_(torch.randn(net.pcm.conv_out.weight.shape, generator=g) * 0.5)


@pytest.mark.parametrize("refs", [1, 2, 3, 4])
@pytest.mark.parametrize("batch,frames", [(1, 1), (2, 3)])
def test_output_shape_for_any_reference_count(net, refs, batch, frames):
    x = inputs(batch, refs, frames)
    with torch.no_grad():
        out = net(**x)
    assert out.shape == (batch, 4, frames, LAT, LAT)
    assert torch.isfinite(out).all()


def test_save_load_round_trip_gives_identical_outputs(tmp_path, net):
    from diffusers import UNet2DConditionModel, UNetMotionModel

    randomise_pcm_output(trained := copy.deepcopy(net))
    with torch.no_grad():
        trained.pose_guider.conv_out.weight.normal_()
    trained.reference_unet.save_pretrained(tmp_path / "reference_unet")
    trained.denoising_unet.save_pretrained(tmp_path / "denoising_unet")
    trained.pose_guider.save_pretrained(tmp_path / "pose_guider")
    trained.pcm.save_pretrained(tmp_path / "pcm")
    assert (tmp_path / "pcm" / "diffusion_pytorch_model.safetensors").exists()
    loaded = FreeViewNetwork(
        UNet2DConditionModel.from_pretrained(tmp_path / "reference_unet"),
        UNetMotionModel.from_pretrained(tmp_path / "denoising_unet"),
        PoseGuider.from_pretrained(tmp_path / "pose_guider"),
        PoseCorrelationModule.from_pretrained(tmp_path / "pcm"),
    ).eval()
    x = inputs(refs=3)
    with torch.no_grad():
        assert torch.equal(trained(**x), loaded(**x))


def test_fresh_pcm_equals_pcm_disabled(net):
    x = inputs(refs=3, frames=2)
    with torch.no_grad():  # at the same top-K (the default would keep every token of an untrained PCM)
        with_pcm = net(**x, top_k=1.0)
        without = net(**x, top_k=1.0, disable_pcm=True)
        assert torch.equal(net(**x), net(**x, top_k="all"))
        assert net.select_references(
            net.encode_references(x["reference_latents"], x["reference_embeds"], x["reference_poses"]), x["target_poses"]
        ).correlation.abs().max() == 0
    torch.testing.assert_close(with_pcm, without, atol=1e-6, rtol=0)


def test_trained_pcm_changes_the_output(net):
    trained = copy.deepcopy(net)
    randomise_pcm_output(trained)
    x = inputs(refs=2)
    with torch.no_grad():
        assert not torch.allclose(net(**x), trained(**x), atol=1e-5)


def test_selecting_every_token_equals_appending_all_reference_tokens(net):
    x = inputs(refs=3, frames=2)
    frames = 2
    with torch.no_grad():
        bank = net.encode_references(x["reference_latents"], x["reference_embeds"], x["reference_poses"])
        selected = net.select_references(bank, x["target_poses"], top_k=10.0)  # K_l >= all tokens
        appended = {
            layer: t.flatten(1, 2).repeat_interleave(frames, dim=0)  # (b f) (r n) c, no selection at all
            for layer, t in bank.tokens.items()
        }
        pose = net.encode_poses(x["target_poses"])
        a = net.denoise(x["noisy_latents"], x["timestep"], pose, x["reference_embeds"], selected)
        b = net.denoise(x["noisy_latents"], x["timestep"], pose, x["reference_embeds"], SelectedReferences(appended, selected.correlation))
    for layer in appended:
        assert torch.equal(selected.tokens[layer], appended[layer])
    assert torch.equal(a, b)


@pytest.mark.parametrize("top_k", [None, 0.5, 2.0])
def test_appended_token_count_is_k_whatever_the_reference_count(net, top_k):
    randomise_pcm_output(net := copy.deepcopy(net))  # trained: an untrained PCM keeps every token by default
    counts = []
    for refs in (1, 2, 4):
        x = inputs(refs=refs, frames=2)
        with torch.no_grad():
            bank = net.encode_references(x["reference_latents"], x["reference_embeds"], x["reference_poses"])
            selected = net.select_references(bank, x["target_poses"], top_k=top_k)
        per_layer = {}
        for layer, tokens in selected.tokens.items():
            n = bank.tokens[layer].shape[2]
            k = min(tokens_per_layer_k(top_k, n, refs), n * refs)
            assert tokens.shape[:2] == (2, k)
            per_layer[layer] = tokens.shape[1]
        counts.append(per_layer)
    if top_k is None or top_k <= 1:
        assert counts[0] == counts[1] == counts[2]


def test_compensatory_tokens_only_in_training_mode():
    net = make_network()
    randomise_pcm_output(net)  # trained: an untrained PCM keeps every token at inference
    x = inputs(refs=3, frames=1)
    bank = net.encode_references(x["reference_latents"], x["reference_embeds"], x["reference_poses"])
    net.eval()
    with torch.no_grad():
        eval_tokens = net.select_references(bank, x["target_poses"]).tokens
    net.train()
    train_tokens = net.select_references(bank, x["target_poses"]).tokens
    for layer, tokens in eval_tokens.items():
        n = bank.tokens[layer].shape[2]
        assert tokens.shape[1] == n
        assert train_tokens[layer].shape[1] == 2 * n  # top-K plus K compensatory


def test_compensatory_indices_avoid_top_k_and_are_unique():
    scores = torch.arange(20.0).repeat(3, 1)
    idx = select_token_indices(scores, 5, compensatory=True, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (3, 10)
    for row in idx:
        assert len(set(row.tolist())) == 10
        assert set(range(15, 20)) <= set(row.tolist())
    assert torch.equal(select_token_indices(scores, 5), torch.arange(15, 20).repeat(3, 1))


def test_gradients_reach_the_pcm_in_training():
    net = make_network().train()
    x = inputs(refs=2, frames=2)
    net(**x).square().mean().backward()
    grad = net.pcm.conv_out.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # once the correlation is non-zero, the PCM's encoders learn too
    net.zero_grad()
    randomise_pcm_output(net)
    net(**x).square().mean().backward()
    assert net.pcm.reference_encoder.conv_in.weight.grad.abs().sum() > 0
    assert net.pcm.target_encoder.conv_in.weight.grad.abs().sum() > 0


def test_unconditional_branch_ignores_references(net):
    x = inputs(refs=2)
    with torch.no_grad():
        a = net(**{**x, "reference_latents": None, "reference_embeds": None, "reference_poses": None})
        x2 = inputs(refs=2, seed=5)
        x2["noisy_latents"], x2["target_poses"] = x["noisy_latents"], x["target_poses"]
        b = net(**{**x2, "reference_latents": None, "reference_embeds": None, "reference_poses": None})
        c = net(**x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_pose_guider_output_starts_at_zero_and_matches_moore_layout():
    guider = PoseGuider()
    shapes = {k: list(v.shape) for k, v in guider.state_dict().items()}
    assert shapes["conv_in.weight"] == [16, 3, 3, 3]
    assert shapes["blocks.5.weight"] == [256, 96, 3, 3]
    assert shapes["conv_out.weight"] == [320, 256, 3, 3]
    assert len(shapes) == 16
    out = guider(torch.rand(1, 3, 2, 64, 64))
    assert out.shape == (1, 320, 2, 8, 8) and out.abs().max() == 0


def test_bad_inputs_raise_value_errors_naming_the_problem(net):
    x = inputs(refs=2)
    with pytest.raises(ValueError, match="reference poses"):
        net(**{**x, "reference_poses": x["reference_poses"][:, :1]})
    with pytest.raises(ValueError, match="at least one reference"):
        net.encode_references(x["reference_latents"][:, :0], x["reference_embeds"][:, :0], x["reference_poses"][:, :0])
    with pytest.raises(ValueError, match="top_k must be positive"):
        net(**x, top_k=0)
    with pytest.raises(ValueError, match="top_k must be positive"):
        net(**x, top_k=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        net(**x, top_k="most")


def test_sd15_configuration_instantiates_on_meta():
    c = build_components("sd15", device="meta")
    unet = c["reference_unet"]
    assert unet.config.block_out_channels == (320, 640, 1280, 1280)
    assert unet.config.cross_attention_dim == 768
    assert len(unet.state_dict()) == 686
    motion_keys = [k for k in c["denoising_unet"].state_dict() if "motion_modules" in k]
    assert len(motion_keys) == 567  # 546 weights + 21 pos_embed buffers (AnimateDiff v2)
    net = FreeViewNetwork(c["reference_unet"], c["denoising_unet"], c["pose_guider"], c["pcm"])
    assert len(net.reference_layers) == 16


def test_composing_the_network_twice_adds_the_pose_features_once():
    c = build_components("tiny", seed=0)
    with torch.no_grad():
        c["pose_guider"].conv_out.weight.normal_()
    first = FreeViewNetwork(c["reference_unet"], c["denoising_unet"], c["pose_guider"], c["pcm"]).eval()
    x = inputs(refs=2)
    with torch.no_grad():
        before = first(**x)
        second = FreeViewNetwork(c["reference_unet"], c["denoising_unet"], c["pose_guider"], c["pcm"]).eval()
        assert torch.equal(second(**x), before)
    assert len(c["denoising_unet"].conv_in._forward_hooks) == 1
