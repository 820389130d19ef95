"""The pose-correlated multi-reference network, composed from its components.

:class:`FreeViewNetwork` owns no weights: it wires the reference UNet, the pose
guider, the Pose Correlation Module and the denoising UNet together. The
pipeline and the training loop both go through it, so inference and training
run the same code.

Per generation: :meth:`encode_references` (reference UNet, once) ->
per clip: :meth:`select_references` (PCM + top-K, once) -> per step:
:meth:`denoise`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from .attention import READ, WRITE, CapturedTokens, install_reference_processors
from .motion import apply_motion_norm
from .selection import gather_tokens, select_token_indices, tokens_per_layer_k

_POSE_FEATURES: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("pose_features", default=None)


def _add_pose_features(module, inputs, output):
    """Forward hook on the denoising UNet's ``conv_in``: add the pose guider's features."""
    pose = _POSE_FEATURES.get()
    if pose is None:
        return output
    if pose.shape != output.shape:
        raise ValueError(f"pose features {tuple(pose.shape)} do not match the latents after conv_in {tuple(output.shape)}")
    return output + pose.to(output.dtype)


@contextlib.contextmanager
def _pose_features(features: torch.Tensor | None):
    token = _POSE_FEATURES.set(features)
    try:
        yield
    finally:
        _POSE_FEATURES.reset(token)


@dataclass
class ReferenceBank:
    """What the reference UNet saw, kept for a whole generation.

    tokens: layer -> ``(batch, refs, tokens_l, channels)`` spatial self-attention inputs.
    shapes: layer -> ``(h_l, w_l)`` of those tokens.
    image_embeds: ``(batch, refs, dim)`` CLIP image embeddings.
    poses: ``(batch, refs, 3, H, W)`` reference pose images in [0, 1].
    """

    tokens: dict[str, torch.Tensor]
    shapes: dict[str, tuple[int, int]]
    image_embeds: torch.Tensor
    poses: torch.Tensor

    @property
    def num_refs(self) -> int:
        return self.image_embeds.shape[1]


@dataclass
class SelectedReferences:
    """Reference tokens chosen for one clip.

    tokens: layer -> ``(batch * frames, k_l, channels)``, already weighted by ``1 + R``.
    correlation: ``(batch, refs, frames, h, w)`` the PCM's maps (for display and analysis).
    """

    tokens: dict[str, torch.Tensor]
    correlation: torch.Tensor


class FreeViewNetwork(nn.Module):
    """Reference UNet + pose guider + PCM + denoising UNet (with motion modules)."""

    def __init__(self, reference_unet, denoising_unet, pose_guider, pcm):
        super().__init__()
        self.reference_unet = reference_unet
        self.denoising_unet = denoising_unet
        self.pose_guider = pose_guider
        self.pcm = pcm
        apply_motion_norm(denoising_unet)  # per frame or across frames, as the UNet's config says (engine.models.motion)
        self.reference_layers = install_reference_processors(reference_unet, WRITE)
        self.denoising_layers = install_reference_processors(denoising_unet, READ)
        if self.reference_layers != self.denoising_layers:
            missing = sorted(set(self.reference_layers) ^ set(self.denoising_layers))[:5]
            raise ValueError(f"reference and denoising UNets have different spatial attention layers, e.g. {missing}")
        if _add_pose_features not in denoising_unet.conv_in._forward_hooks.values():  # once per UNet, however often composed
            denoising_unet.conv_in.register_forward_hook(_add_pose_features)

    # -- 1. once per generation -------------------------------------------------------------
    def encode_references(self, latents: torch.Tensor, image_embeds: torch.Tensor, poses: torch.Tensor) -> ReferenceBank:
        """latents ``(batch, refs, c, h, w)``, image_embeds ``(batch, refs, dim)``, poses ``(batch, refs, 3, H, W)``."""
        batch, refs, _, height, width = latents.shape
        if refs < 1:
            raise ValueError("at least one reference is needed")
        if image_embeds.shape[:2] != (batch, refs) or poses.shape[:2] != (batch, refs):
            raise ValueError(
                f"got {refs} reference latents but {image_embeds.shape[1]} image embeddings and {poses.shape[1]} reference poses"
            )
        captured = CapturedTokens()
        timestep = torch.zeros(batch * refs, device=latents.device, dtype=torch.long)
        self.reference_unet(
            rearrange(latents, "b r c h w -> (b r) c h w"),
            timestep,
            encoder_hidden_states=rearrange(image_embeds, "b r d -> (b r) 1 d"),
            cross_attention_kwargs={"reference": captured},
        )
        tokens, shapes = {}, {}
        for layer in self.reference_layers:
            hidden = captured.tokens[layer]
            scale = math.sqrt(height * width / hidden.shape[1])
            shapes[layer] = (round(height / scale), round(width / scale))
            tokens[layer] = rearrange(hidden, "(b r) n c -> b r n c", b=batch)
        return ReferenceBank(tokens, shapes, image_embeds, poses)

    # -- 2. once per clip ---------------------------------------------------------------------
    def select_references(
        self,
        bank: ReferenceBank,
        target_poses: torch.Tensor,
        *,
        top_k: float | str | None = None,
        disable_pcm: bool = False,
        compensatory: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> SelectedReferences:
        """Correlate and keep the top-K reference tokens per layer and target frame.

        target_poses ``(batch, frames, 3, H, W)`` in [0, 1]. ``compensatory`` defaults to
        ``self.training``. ``disable_pcm`` forces the correlation to zero (ablation).
        """
        batch, frames = target_poses.shape[:2]
        if disable_pcm:
            h, w = (s // self.pcm.downsample_factor for s in bank.poses.shape[-2:])
            correlation = torch.zeros(batch, bank.num_refs, frames, h, w, device=target_poses.device, dtype=target_poses.dtype)
        else:
            correlation = self.pcm(bank.poses, target_poses)
        if compensatory is None:
            compensatory = self.training
        if top_k is None and not disable_pcm and not compensatory and self.pcm.is_untrained:
            top_k = "all"  # every correlation ties at zero: nothing to choose by, so no reference is dropped
        selected = {}
        for layer, tokens in bank.tokens.items():
            refs, n = tokens.shape[1], tokens.shape[2]
            h, w = bank.shapes[layer]
            corr = F.interpolate(rearrange(correlation, "b r f h w -> (b r f) 1 h w"), size=(h, w), mode="bilinear", align_corners=False)
            scores = rearrange(corr, "(b r f) 1 h w -> b f (r h w)", b=batch, r=refs)
            k = tokens_per_layer_k(top_k, n, refs)
            indices = select_token_indices(scores, k, compensatory=compensatory, generator=generator, tokens_per_reference=n)
            chosen = gather_tokens(rearrange(tokens, "b r n c -> b (r n) c"), indices)
            weight = 1.0 + scores.gather(-1, indices).unsqueeze(-1)
            selected[layer] = rearrange(chosen * weight.to(chosen.dtype), "b f k c -> (b f) k c")
        return SelectedReferences(selected, correlation)

    @property
    def appearance_channels(self) -> int:
        """Channels of the appearance estimate the pose guider takes (0: none; see :mod:`engine.warps`)."""
        return self.pose_guider.config.get("appearance_channels", 0)

    def encode_poses(self, pose_images: torch.Tensor, appearance: torch.Tensor | None = None) -> torch.Tensor:
        """pose_images ``(batch, frames, 3, H, W)`` in [0, 1] -> pose features ``(batch, c, frames, h, w)``.

        appearance ``(batch, frames, appearance_channels, h, w)``: the references warped into the target poses,
        at the latent size, for a model that takes it (None: none, as in the unconditional branch)."""
        if appearance is not None:
            appearance = rearrange(appearance, "b f c h w -> b c f h w")
        return self.pose_guider(rearrange(pose_images, "b f c h w -> b c f h w"), appearance)

    # -- 3. every step ----------------------------------------------------------------------
    def denoise(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        pose_features: torch.Tensor,
        image_embeds: torch.Tensor,
        references: SelectedReferences | None,
    ) -> torch.Tensor:
        """Predict noise for ``latents`` ``(batch, c, frames, h, w)``.

        pose_features ``(batch, c0, frames, h, w)``; image_embeds ``(batch, tokens, dim)``.
        ``references=None`` is the unconditional branch (no reference tokens; pass zero
        image embeddings), the pose is always kept.
        """
        frames = latents.shape[2]
        encoder_hidden_states = image_embeds.repeat_interleave(frames, dim=0)
        with _pose_features(rearrange(pose_features, "b c f h w -> (b f) c h w")):
            return self.denoising_unet(
                latents,
                timestep,
                encoder_hidden_states=encoder_hidden_states,
                cross_attention_kwargs={"reference": None if references is None else references.tokens},
            ).sample

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timestep: torch.Tensor,
        reference_latents: torch.Tensor | None,
        reference_embeds: torch.Tensor | None,
        reference_poses: torch.Tensor | None,
        target_poses: torch.Tensor,
        *,
        top_k: float | str | None = None,
        disable_pcm: bool = False,
        return_correlation: bool = False,
        target_appearance: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """One training pass. ``reference_latents=None`` trains the unconditional branch (no appearance either).
        ``return_correlation`` also returns the PCM's maps (None for the unconditional branch).

        noisy_latents ``(batch, c, frames, h, w)``; reference_latents ``(batch, refs, c, h, w)``;
        reference_embeds ``(batch, refs, dim)``; reference_poses ``(batch, refs, 3, H, W)``;
        target_poses ``(batch, frames, 3, H, W)``; target_appearance ``(batch, frames, c_a, h, w)`` for a model
        that takes it.
        """
        pose_features = self.encode_poses(target_poses, None if reference_latents is None else target_appearance)
        if reference_latents is None:
            dim = self.denoising_unet.config.cross_attention_dim
            embeds = noisy_latents.new_zeros(noisy_latents.shape[0], 1, dim)
            pred = self.denoise(noisy_latents, timestep, pose_features, embeds, None)
            return (pred, None) if return_correlation else pred
        bank = self.encode_references(reference_latents, reference_embeds, reference_poses)
        selected = self.select_references(bank, target_poses, top_k=top_k, disable_pcm=disable_pcm)
        pred = self.denoise(noisy_latents, timestep, pose_features, reference_embeds, selected)
        return (pred, selected.correlation) if return_correlation else pred
