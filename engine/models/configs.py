"""Named architectures, all built by the same code.

* ``tiny``    — tests: a forward pass in milliseconds on a CPU.
* ``default`` — the embedded default model (128 px, trained on CPU on the synthetic world).
* ``mid``     — a mid-size network for benchmarks on the CPU.
* ``sd15``    — AnimateAnyone / Stable Diffusion 1.5 sizes (320/640/1280/1280, cross-attention 768,
  AnimateDiff v2 motion modules); instantiate it on ``torch.device("meta")`` for shape checks.

The architecture travels with the weights (each component's ``config.json``); these
presets are only used to create a *new* model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Architecture:
    unet: dict[str, Any]
    motion: dict[str, Any]
    pose_guider: dict[str, Any]
    pcm: dict[str, Any]
    vae: dict[str, Any]
    image_encoder: dict[str, Any]
    scheduler: dict[str, Any] = field(default_factory=dict)
    image_size: int = 224  # CLIP input size
    default_resolution: tuple[int, int] = (512, 512)  # (height, width)
    # the motion modules' GroupNorm: "per_frame" (AnimateDiff's maths) or "across_frames" (diffusers'),
    # see engine.models.motion; the small presets keep what the embedded default was trained with
    motion_norm: str = "across_frames"


def _unet(channels, levels_with_attention, layers, cross_dim, heads, groups, sample_size):
    levels = len(channels)
    down = tuple("CrossAttnDownBlock2D" if i in levels_with_attention else "DownBlock2D" for i in range(levels))
    up = tuple("CrossAttnUpBlock2D" if levels - 1 - i in levels_with_attention else "UpBlock2D" for i in range(levels))
    return dict(
        sample_size=sample_size, in_channels=4, out_channels=4, block_out_channels=tuple(channels),
        down_block_types=down, up_block_types=up, layers_per_block=layers, cross_attention_dim=cross_dim,
        attention_head_dim=heads, norm_num_groups=groups,
    )


def _motion(channels, layers, heads, groups):
    return dict(
        block_out_channels=tuple(channels), motion_layers_per_block=layers, motion_num_attention_heads=heads,
        motion_norm_num_groups=groups, motion_max_seq_length=32, use_motion_mid_block=True,
    )


def _vae(channels, layers, groups, sample_size, scaling_factor):
    return dict(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=tuple(channels),
        down_block_types=("DownEncoderBlock2D",) * len(channels), up_block_types=("UpDecoderBlock2D",) * len(channels),
        layers_per_block=layers, norm_num_groups=groups, sample_size=sample_size, scaling_factor=scaling_factor,
    )


def _clip(hidden, layers, heads, image_size, patch, projection):
    return dict(
        hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers, num_attention_heads=heads,
        image_size=image_size, patch_size=patch, projection_dim=projection,
    )


# AnimateAnyone inference scheduler (configs/inference/inference_v2.yaml), see shared/interop.
ANIMATE_ANYONE_SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False,
    steps_offset=1, prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
    set_alpha_to_one=True,
)
# What AnimateAnyone's own scripts run (scripts/pose2vid.py: 30 steps, guidance 3.5; 24-frame windows, overlap 4),
# see shared/interop; top-K "all" until the PCM is fine-tuned (an untrained one has nothing to choose by).
ANIMATE_ANYONE_SAMPLING = {"steps": 30, "guidance": 3.5, "top_k": "all", "clip_frames": 24, "overlap": 4}
SMALL_SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
    steps_offset=1, prediction_type="epsilon", timestep_spacing="trailing", set_alpha_to_one=True,
)

PRESETS: dict[str, Architecture] = {
    "tiny": Architecture(
        unet=_unet((32, 64), {0, 1}, 1, 32, 2, 8, 8),
        motion=_motion((32, 64), 1, 2, 8),
        pose_guider=dict(conditioning_embedding_channels=32, block_out_channels=(8, 16)),
        pcm=dict(block_out_channels=(8, 16, 16), num_attention_heads=2),
        vae=_vae((8, 16), 1, 8, 32, 1.0),
        image_encoder=_clip(32, 1, 2, 32, 8, 32),
        scheduler=SMALL_SCHEDULER,
        image_size=32,
        default_resolution=(32, 32),
    ),
    "default": Architecture(
        unet=_unet((32, 64, 128), {1, 2}, 1, 64, 4, 8, 32),
        motion=_motion((32, 64, 128), 1, 4, 8),
        pose_guider=dict(conditioning_embedding_channels=32, block_out_channels=(16, 32, 64)),
        pcm=dict(block_out_channels=(16, 32, 64, 64), num_attention_heads=4),
        vae=_vae((16, 32, 64), 1, 8, 128, 1.0),
        image_encoder=_clip(64, 2, 4, 64, 8, 64),
        scheduler=SMALL_SCHEDULER,
        image_size=64,
        default_resolution=(128, 128),
    ),
    "mid": Architecture(
        unet=_unet((128, 256, 512, 512), {0, 1, 2}, 2, 512, 8, 32, 32),
        motion=_motion((128, 256, 512, 512), 2, 8, 32),
        pose_guider=dict(conditioning_embedding_channels=128, block_out_channels=(16, 32, 96, 256)),
        pcm=dict(block_out_channels=(16, 32, 64, 128, 128), num_attention_heads=4),
        vae=_vae((64, 128, 256, 256), 1, 32, 256, 0.18215),
        image_encoder=_clip(256, 2, 4, 112, 14, 512),
        scheduler=SMALL_SCHEDULER,
        image_size=112,
        default_resolution=(256, 256),
    ),
    "sd15": Architecture(
        unet=dict(
            _unet((320, 640, 1280, 1280), {0, 1, 2}, 2, 768, 8, 32, 64),
            flip_sin_to_cos=True, freq_shift=0, norm_eps=1e-5, use_linear_projection=False,
        ),
        motion=_motion((320, 640, 1280, 1280), 2, 8, 32),
        pose_guider=dict(conditioning_embedding_channels=320, block_out_channels=(16, 32, 96, 256)),
        pcm=dict(block_out_channels=(16, 32, 64, 128, 128), num_attention_heads=4),
        vae=_vae((128, 256, 512, 512), 2, 32, 256, 0.18215),
        image_encoder=dict(_clip(1024, 24, 16, 224, 14, 768), intermediate_size=4096, hidden_act="quick_gelu"),
        scheduler=ANIMATE_ANYONE_SCHEDULER,
        image_size=224,
        default_resolution=(768, 512),
        motion_norm="per_frame",
    ),
}


def architecture(preset: str) -> Architecture:
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown model preset {preset!r}; expected one of {', '.join(PRESETS)}") from None


def zero_motion_outputs(unet) -> None:
    """Zero every motion module's output projection (AnimateDiff's init): fresh modules change nothing."""
    for name, module in unet.named_modules():
        if name.endswith("proj_out") and ".motion_modules." in f".{name}":
            torch.nn.init.zeros_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def build_components(
    preset: str, *, device: str | torch.device | None = None, seed: int = 0, motion_norm: str | None = None
) -> dict[str, Any]:
    """Freshly initialised components of a preset (``device="meta"`` builds shapes only).

    ``motion_norm`` (``per_frame`` | ``across_frames``) overrides the preset's."""
    from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from .motion import check_motion_norm, set_motion_norm
    from .pcm import PoseCorrelationModule
    from .pose_guider import PoseGuider

    arch = architecture(preset)
    motion_norm = check_motion_norm(motion_norm or arch.motion_norm)
    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        reference_unet = UNet2DConditionModel(**arch.unet)
        spatial = UNet2DConditionModel(**arch.unet)
        spatial.load_state_dict(reference_unet.state_dict(), assign=True)
        denoising_unet = UNetMotionModel.from_unet2d(spatial, MotionAdapter(**arch.motion))
        zero_motion_outputs(denoising_unet)
        set_motion_norm(denoising_unet, motion_norm)
        pose_guider = PoseGuider(**arch.pose_guider)
        pcm = PoseCorrelationModule(**arch.pcm)
        vae = AutoencoderKL(**arch.vae)
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**arch.image_encoder))
    return dict(
        vae=vae,
        image_encoder=image_encoder,
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=pose_guider,
        pcm=pcm,
        scheduler=DDIMScheduler(**arch.scheduler),
    )
