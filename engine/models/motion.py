"""How the motion modules' GroupNorm treats frames: per frame (AnimateDiff) or across frames (diffusers).

AnimateDiff's ``TemporalTransformer3DModel``, which the released motion modules (AnimateDiff,
Moore-AnimateAnyone's ``motion_module.pth``) were trained with, normalises ``(b f) c h w``:
every frame on its own. diffusers' ``AnimateDiffTransformer3D`` normalises ``b c f h w``:
statistics over all frames of the clip together. Same weights, different numbers.

The choice is a string in the denoising UNet's config (``_motion_norm``; diffusers keeps
config keys its class does not take, without a warning, only when they start with ``_``),
so it travels with the weights. :func:`apply_motion_norm` puts a :class:`FrameGroupNorm`
in place of each motion module's ``norm`` child: the same parameters under the same
names, so ``state_dict`` keys and converted checkpoints are unchanged.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

ACROSS_FRAMES, PER_FRAME = "across_frames", "per_frame"
MOTION_NORMS = (ACROSS_FRAMES, PER_FRAME)
CONFIG_KEY = "_motion_norm"


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm of every frame on its own: ``(batch, channels, frames, h, w)`` in and out.

    Inputs of other ranks are normalised as ``nn.GroupNorm`` does (one frame is one frame).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        batch = x.shape[0]
        y = super().forward(rearrange(x, "b c f h w -> (b f) c h w"))
        return rearrange(y, "(b f) c h w -> b c f h w", b=batch)


def check_motion_norm(mode: str) -> str:
    if mode not in MOTION_NORMS:
        raise ValueError(f"unknown motion norm {mode!r}; expected one of {', '.join(MOTION_NORMS)}")
    return mode


def motion_norm(unet) -> str:
    """The mode a denoising UNet's config asks for (diffusers' ``across_frames`` when it says nothing)."""
    return check_motion_norm(unet.config.get(CONFIG_KEY, ACROSS_FRAMES))


def _motion_transformers(unet):
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    return [module for module in unet.modules() if isinstance(module, AnimateDiffTransformer3D)]


def _swap_norm(transformer, cls: type[nn.GroupNorm]) -> None:
    old = transformer.norm
    if type(old) is cls:
        return
    with torch.device(old.weight.device if old.affine else "cpu"):
        new = cls(old.num_groups, old.num_channels, eps=old.eps, affine=old.affine)
    if old.affine:  # the same Parameter objects: nothing is copied, optimizers and hooks keep working
        new.weight, new.bias = old.weight, old.bias
    transformer.norm = new


def apply_motion_norm(unet) -> str:
    """Make the motion modules of ``unet`` normalise as its config says; returns the mode."""
    mode = motion_norm(unet)
    cls = FrameGroupNorm if mode == PER_FRAME else nn.GroupNorm
    for transformer in _motion_transformers(unet):
        _swap_norm(transformer, cls)
    return mode


def set_motion_norm(unet, mode: str) -> None:
    """Record ``mode`` (``per_frame`` or ``across_frames``) in ``unet``'s config and apply it."""
    unet.register_to_config(**{CONFIG_KEY: check_motion_norm(mode)})
    apply_motion_norm(unet)
