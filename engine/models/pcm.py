"""Pose Correlation Module: where in each reference is what a target frame needs."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange, repeat
from torch import nn
from torch.nn import functional as F


class PoseEncoder(nn.Module):
    """Pose image ``(n, 3, H, W)`` -> features ``(n, dim, H / 2**(levels-1), W / 2**(levels-1))``."""

    def __init__(self, in_channels: int, block_out_channels: tuple[int, ...]):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=2)
            for c_in, c_out in zip(block_out_channels[:-1], block_out_channels[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv_in(x))
        for block in self.blocks:
            x = F.silu(block(x))
        return x


class PoseCorrelationModule(ModelMixin, ConfigMixin):
    """Correlation map ``R[i, j]`` for every reference ``i`` and target frame ``j``.

    Two pose encoders with separate weights (reference poses, target poses), one
    transformer cross-attention layer with the reference tokens as queries and
    the target frame's tokens as keys/values, then a zero-initialised conv to
    one channel. A fresh module returns exactly zero everywhere, so features
    weighted as ``F * (1 + R)`` are unchanged at initialisation.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        block_out_channels: tuple[int, ...] = (16, 32, 64, 128, 128),
        num_attention_heads: int = 4,
    ):
        super().__init__()
        dim = block_out_channels[-1]
        if dim % num_attention_heads:
            raise ValueError(f"PCM width {dim} is not divisible by num_attention_heads={num_attention_heads}")
        self.reference_encoder = PoseEncoder(in_channels, tuple(block_out_channels))
        self.target_encoder = PoseEncoder(in_channels, tuple(block_out_channels))
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.cross_attention = Attention(
            query_dim=dim, cross_attention_dim=dim, heads=num_attention_heads, dim_head=dim // num_attention_heads
        )
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, mult=2, activation_fn="geglu")
        self.conv_out = nn.Conv2d(dim, 1, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def is_untrained(self) -> bool:
        """Whether the output conv is still all zero (fresh, or converted from AnimateAnyone): every
        correlation is then exactly 0 and no reference token is preferred over another."""
        return not (bool(self.conv_out.weight.detach().any()) or bool(self.conv_out.bias.detach().any()))

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, reference_poses: torch.Tensor, target_poses: torch.Tensor) -> torch.Tensor:
        """reference_poses ``(batch, refs, 3, H, W)``, target_poses ``(batch, frames, 3, H', W')`` in [0, 1]
        -> correlation ``(batch, refs, frames, h, w)`` at the reference pose-feature resolution."""
        batch, refs = reference_poses.shape[:2]
        frames = target_poses.shape[1]
        ref = self.reference_encoder(rearrange(reference_poses, "b r c h w -> (b r) c h w"))
        height, width = ref.shape[-2:]
        tgt = self.target_encoder(rearrange(target_poses, "b f c h w -> (b f) c h w"))
        queries = repeat(ref, "(b r) c h w -> (b r f) (h w) c", b=batch, f=frames)
        context = repeat(tgt, "(b f) c h w -> (b r f) (h w) c", b=batch, r=refs)
        x = queries + self.cross_attention(self.norm_query(queries), encoder_hidden_states=self.norm_context(context))
        x = x + self.ff(self.norm_ff(x))
        x = rearrange(x, "n (h w) c -> n c h w", h=height, w=width)
        return rearrange(self.conv_out(x), "(b r f) 1 h w -> b r f h w", b=batch, r=refs)
