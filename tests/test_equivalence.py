"""A converted AnimateAnyone model computes what AnimateAnyone computes.

The motion-module maths (AnimateDiff's ``TemporalTransformer3DModel``) and AnimateAnyone's
reference attention (Moore-AnimateAnyone's ``ReferenceAttentionControl``: the reference
net's normalised ``attn1`` inputs appended to the denoising net's keys/values, repeated
for every frame; the unconditional half of guidance attends to itself only) are written
out here in plain torch from the papers' published code, reading Moore's own tensor names.
They replace the converted model's motion modules and spatial self-attentions (forward
hooks on a copy); everything else (resnets, cross-attention, time embedding) is the same
diffusers code on both sides.
"""

import copy
import math

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor
from einops import rearrange
from torch.nn import functional as F

from engine.models.configs import architecture, build_components
from engine.models.motion import ACROSS_FRAMES, FrameGroupNorm, motion_norm, set_motion_norm
from engine.models.network import FreeViewNetwork
from engine.models.selection import select_token_indices
from engine.weights import convert_moore_state_dicts
from tests.test_weights import fake_moore

FRAMES = 8
LAT = 8  # latent side; the tiny VAE halves the pixels
ARCH = architecture("tiny")
SPATIAL_HEADS = ARCH.unet["attention_head_dim"]  # diffusers' UNet2DConditionModel reads this as the head count
MOTION_HEADS = ARCH.motion["motion_num_attention_heads"]
MOTION_GROUPS = ARCH.unet["norm_num_groups"]  # UNetMotionModel gives its motion modules the UNet's groups


# ---------------------------------------------------------------- AnimateDiff / AnimateAnyone maths, plain torch


def sinusoid(length, dim):
    """AnimateDiff's ``PositionalEncoding`` table ``(1, length, dim)``."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


def linear(x, w, name, bias=True):
    return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"] if bias else None)


def attention(x, context, w, name, heads):
    """Multi-head attention of ``x`` ``(n, q, c)`` over ``context`` ``(n, k, c)``; q/k/v without bias."""
    q, k, v = (linear(t, w, f"{name}.to_{p}", bias=False) for t, p in ((x, "q"), (context, "k"), (context, "v")))
    q, k, v = (rearrange(t, "n l (h d) -> n h l d", h=heads) for t in (q, k, v))
    weights = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)
    return linear(rearrange(weights @ v, "n h l d -> n l (h d)"), w, f"{name}.to_out.0")


def layer_norm(x, w, name):
    return F.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], eps=1e-5)


def animatediff_motion_module(x, w, name, frames):
    """``TemporalTransformer3DModel`` on ``x`` ``((b f), c, h, w)``: GroupNorm of every frame, then attention
    along the frames at every pixel (sinusoidal positions), feed-forward (GEGLU), residual."""
    bf, c, h, wd = x.shape
    y = F.group_norm(x, MOTION_GROUPS, w[f"{name}.norm.weight"], w[f"{name}.norm.bias"], eps=1e-6)
    y = linear(y.permute(0, 2, 3, 1).reshape(bf, h * wd, c), w, f"{name}.proj_in")
    blocks = sorted({int(k[len(name):].split(".")[2]) for k in w if k.startswith(f"{name}.transformer_blocks.")})
    for block in blocks:
        p = f"{name}.transformer_blocks.{block}"
        for i in (0, 1):
            t = rearrange(layer_norm(y, w, f"{p}.norms.{i}"), "(b f) d c -> (b d) f c", f=frames)
            t = t + w[f"{p}.attention_blocks.{i}.pos_encoder.pe"][:, :frames]
            t = attention(t, t, w, f"{p}.attention_blocks.{i}", MOTION_HEADS)
            y = rearrange(t, "(b d) f c -> (b f) d c", d=h * wd) + y
        hidden, gate = linear(layer_norm(y, w, f"{p}.ff_norm"), w, f"{p}.ff.net.0.proj").chunk(2, dim=-1)
        y = linear(hidden * F.gelu(gate), w, f"{p}.ff.net.2") + y
    y = linear(y, w, f"{name}.proj_out").reshape(bf, h, wd, c).permute(0, 3, 1, 2)
    return y + x


class AnimateAnyone:
    """The converted model's UNets with the maths above in place of their motion modules and reference attention."""

    def __init__(self, net, moore):
        self.reference_unet = copy.deepcopy(net.reference_unet)
        self.denoising_unet = copy.deepcopy(net.denoising_unet)
        self.pose_guider = net.pose_guider
        for unet in (self.reference_unet, self.denoising_unet):
            unet.set_attn_processor(AttnProcessor())  # diffusers' plain attention; attn1 is replaced below
        self.denoising_unet.conv_in._forward_hooks.clear()  # the network's pose hook; added below instead
        self.denoising_unet.conv_in.register_forward_hook(lambda m, a, out: out + self.pose)
        self.bank, self.use_bank = {}, False
        motion = moore["motion_module.pth"]
        spatial = moore["denoising_unet.pth"]
        for name, module in self.denoising_unet.named_modules():
            if name.endswith(tuple(f"motion_modules.{i}" for i in range(4))):
                module.register_forward_hook(self._motion_hook(motion, f"{name}.temporal_transformer"), with_kwargs=True)
            elif name.endswith("attn1") and "motion_modules" not in name:
                module.register_forward_hook(self._read_hook(spatial, name))
        for name, module in self.reference_unet.named_modules():
            if name.endswith("attn1"):
                module.register_forward_hook(self._write_hook(name))

    def _motion_hook(self, w, name):
        return lambda module, args, kwargs, out: animatediff_motion_module(args[0], w, name, self.frames)

    def _write_hook(self, name):
        def hook(module, args, out):
            self.bank[name] = args[0]  # the normalised hidden states entering attn1 (Moore's "write" mode)
        return hook

    def _read_hook(self, w, name):
        def hook(module, args, out):
            x = args[0]
            if not self.use_bank:
                return attention(x, x, w, name, SPATIAL_HEADS)
            frames = x.shape[0] // self.bank[name].shape[0]
            bank = rearrange(self.bank[name].unsqueeze(1).repeat(1, frames, 1, 1), "b t l c -> (b t) l c")
            return attention(x, torch.cat([x, bank], dim=1), w, name, SPATIAL_HEADS)
        return hook

    def __call__(self, latents, t, target_poses, ref_latents, ref_embeds, guidance):
        """One guided noise prediction; ``latents`` ``(1, c, f, h, w)``, one reference."""
        frames = self.frames = latents.shape[2]
        self.pose = rearrange(self.pose_guider(rearrange(target_poses, "b f c h w -> b c f h w")), "b c f h w -> (b f) c h w")
        self.bank.clear()
        self.reference_unet(ref_latents[:, 0], torch.zeros(1, dtype=torch.long), encoder_hidden_states=ref_embeds)
        preds = []
        for use_bank, embeds in ((False, torch.zeros_like(ref_embeds)), (True, ref_embeds)):
            self.use_bank = use_bank
            preds.append(self.denoising_unet(latents, t, encoder_hidden_states=embeds.repeat_interleave(frames, 0)).sample)
        uncond, cond = preds
        return uncond + guidance * (cond - uncond)


# ---------------------------------------------------------------- the converted model


@pytest.fixture(scope="module")
def moore():
    state_dicts = fake_moore(build_components("tiny", seed=0), seed=3)
    for key, value in state_dicts["motion_module.pth"].items():
        if key.endswith("pos_encoder.pe"):  # Moore's files hold AnimateDiff's sinusoid
            state_dicts["motion_module.pth"][key] = sinusoid(value.shape[1], value.shape[2])
    return state_dicts


@pytest.fixture(scope="module")
def converted(moore):
    tiny = build_components("tiny", seed=0)
    parts = convert_moore_state_dicts(moore, tiny["reference_unet"].config, preset="tiny")
    return FreeViewNetwork(parts["reference_unet"], parts["denoising_unet"], parts["pose_guider"], parts["pcm"]).eval()


def inputs(refs, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        latents=torch.randn(1, 4, FRAMES, LAT, LAT, generator=g),
        t=torch.tensor([700]),
        target_poses=torch.rand(1, FRAMES, 3, 2 * LAT, 2 * LAT, generator=g),
        ref_latents=torch.randn(1, refs, 4, LAT, LAT, generator=g),
        ref_embeds=torch.randn(1, refs, ARCH.unet["cross_attention_dim"], generator=g),
        ref_poses=torch.rand(1, refs, 3, 2 * LAT, 2 * LAT, generator=g),
    )


def freeview(net, x, guidance, top_k=None):
    bank = net.encode_references(x["ref_latents"], x["ref_embeds"], x["ref_poses"])
    selected = net.select_references(bank, x["target_poses"], top_k=top_k)
    pose = net.encode_poses(x["target_poses"])
    cond = net.denoise(x["latents"], x["t"], pose, bank.image_embeds, selected)
    uncond = net.denoise(x["latents"], x["t"], pose, torch.zeros_like(bank.image_embeds), None)
    return uncond + guidance * (cond - uncond)


def relative(a, b):
    return float((a - b).norm() / b.norm())


@torch.no_grad()
def test_converted_model_equals_animateanyone_over_8_frames_with_guidance(converted, moore):
    assert motion_norm(converted.denoising_unet) == "per_frame"
    x = inputs(refs=1)
    reference = AnimateAnyone(converted, moore)
    expected = reference(x["latents"], x["t"], x["target_poses"], x["ref_latents"], x["ref_embeds"], guidance=3.5)
    got = freeview(converted, x, guidance=3.5)
    assert relative(got, expected) <= 1e-5, relative(got, expected)

    # the check can fail: diffusers' own norm (statistics over all frames) is visibly different
    across = copy.deepcopy(converted)
    set_motion_norm(across.denoising_unet, ACROSS_FRAMES)
    assert relative(freeview(across, x, guidance=3.5), expected) > 1e-3
    print(f"[equivalence] 8 frames, guidance 3.5: relative difference {relative(got, expected):.1e} per frame norm, "
          f"{relative(freeview(across, x, guidance=3.5), expected):.1e} across frames")


@torch.no_grad()
def test_untrained_pcm_keeps_every_reference_token(converted):
    assert converted.pcm.is_untrained
    for refs in range(2, 9):
        x = inputs(refs=refs, seed=refs)
        bank = converted.encode_references(x["ref_latents"], x["ref_embeds"], x["ref_poses"])
        default = converted.select_references(bank, x["target_poses"])
        every = converted.select_references(bank, x["target_poses"], top_k="all")
        for layer, tokens in every.tokens.items():
            assert torch.equal(default.tokens[layer], tokens), (refs, layer)
            assert tokens.shape[1] == refs * bank.tokens[layer].shape[2]
    # and so the prediction (R = 8 here) is the all-tokens one, bit for bit
    assert torch.equal(freeview(converted, x, 2.0), freeview(converted, x, 2.0, top_k="all"))


@pytest.mark.parametrize("refs", [2, 3, 8])
def test_tied_scores_give_every_reference_an_equal_share(refs):
    n = 48  # tokens of one reference
    kept = select_token_indices(torch.zeros(2, 3, refs * n), n, tokens_per_reference=n)
    per_reference = torch.stack([(kept // n == r).sum(-1) for r in range(refs)])
    assert per_reference.max() - per_reference.min() <= 1
    assert torch.equal((kept % n).sort(-1).values, torch.arange(n).expand(2, 3, n))  # each position once: covered evenly
    # without a tie rule the scores say nothing, and one reference can take everything
    scores = torch.rand(refs * n)
    untied = select_token_indices(scores, n, tokens_per_reference=n)
    assert torch.equal(untied, select_token_indices(scores, n))  # no ties: the same choice as topk


def test_frame_group_norm_normalises_every_frame_and_keeps_parameter_names():
    torch.manual_seed(0)
    norm = FrameGroupNorm(2, 4)
    x = torch.randn(1, 4, 3, 5, 5) * torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 3, 1, 1)
    y = norm(x)
    per_frame_std = y.transpose(1, 2).reshape(3, -1).std(-1)
    torch.testing.assert_close(per_frame_std, torch.ones(3), atol=1e-2, rtol=0)
    assert set(norm.state_dict()) == {"weight", "bias"}
    with pytest.raises(ValueError, match="'sometimes'"):
        set_motion_norm(build_components("tiny")["denoising_unet"], "sometimes")


# ---------------------------------------------------------------- CLIP's own preprocessing


def test_clip_preprocessing_is_clip_image_processors_rule():
    from skimage import data
    from transformers import CLIPImageProcessor

    from engine.pipeline import clip_pixels

    photo = data.astronaut()[:, 64:448]  # 512 x 384: not square
    expected = CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})(
        images=photo, return_tensors="pt").pixel_values
    pixels = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    got = clip_pixels(pixels, 64)
    assert got.shape == expected.shape
    assert (got - expected).abs().mean() < 0.02  # PIL's bicubic on uint8 vs torch's: resampling noise only
    squashed = clip_pixels(F.interpolate(pixels, size=(64, 64), mode="bicubic", antialias=True), 64)
    assert (squashed - expected).abs().mean() > 0.2  # the old rule (a squashed person) is far off


def test_model_directory_keeps_its_clip_settings(tmp_path, tiny_components):
    from transformers import CLIPImageProcessor

    from engine.clip import ClipPreprocessing, write_clip_preprocessing
    from engine.model import save_model_dir
    from engine.pipeline import FreeViewPipeline

    out = save_model_dir(tiny_components, tmp_path / "model")
    processor = CLIPImageProcessor.from_pretrained(out, subfolder="feature_extractor")
    assert processor.size == {"shortest_edge": 32} and processor.crop_size == {"height": 32, "width": 32}
    write_clip_preprocessing(out, ClipPreprocessing(40, (32, 32)))
    pipe = FreeViewPipeline.from_pretrained(out)
    assert pipe.clip_preprocessing == ClipPreprocessing(40, (32, 32))
    assert pipe._clip_pixels(torch.rand(1, 3, 48, 64)).shape == (1, 3, 32, 32)


# ---------------------------------------------------------------- the model's own windows


def test_animate_takes_the_models_windows_unless_told():
    from types import SimpleNamespace

    from engine.animate import AnimateSettings, with_model_windows

    converted = SimpleNamespace(sampling_defaults={"clip_frames": 24, "overlap": 4})  # what weights convert writes

    def windows(settings, pipe=converted):
        resolved = with_model_windows(settings, pipe)
        return resolved.clip_frames, resolved.overlap

    assert windows(AnimateSettings()) == (24, 4)
    assert windows(AnimateSettings(clip_frames=3)) == (3, 2)  # the model's overlap, kept below a hand-given length
    assert windows(AnimateSettings(clip_frames=16, overlap=0)) == (16, 0)
    assert windows(AnimateSettings(), SimpleNamespace()) == (12, 4)  # a pipeline without advice: the engine's
