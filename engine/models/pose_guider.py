"""Pose guider: pose images -> features added to the denoising UNet right after ``conv_in``."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn
from torch.nn import functional as F


class PoseGuider(ModelMixin, ConfigMixin):
    """A small conv stack, tensor-for-tensor the layout of AnimateAnyone's ``pose_guider.pth``.

    ``conv_in`` -> SiLU, then per level a stride-1 conv and a stride-2 conv (each
    -> SiLU), then ``conv_out`` (zero-initialised, so a fresh guider adds nothing).
    The output is ``2 ** (len(block_out_channels) - 1)`` times smaller than the input.
    """

    @register_to_config
    def __init__(
        self,
        conditioning_embedding_channels: int = 320,
        conditioning_channels: int = 3,
        block_out_channels: tuple[int, ...] = (16, 32, 96, 256),
    ):
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], kernel_size=3, padding=1)
        blocks = []
        for channels_in, channels_out in zip(block_out_channels[:-1], block_out_channels[1:]):
            blocks.append(nn.Conv2d(channels_in, channels_in, kernel_size=3, padding=1))
            blocks.append(nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1, stride=2))
        self.blocks = nn.ModuleList(blocks)
        self.conv_out = nn.Conv2d(block_out_channels[-1], conditioning_embedding_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, pose_images: torch.Tensor) -> torch.Tensor:
        """pose_images ``(batch, 3, frames, height, width)`` in [0, 1] -> ``(batch, channels, frames, h, w)``."""
        frames = pose_images.shape[2]
        x = rearrange(pose_images, "b c f h w -> (b f) c h w")
        x = F.silu(self.conv_in(x))
        for block in self.blocks:
            x = F.silu(block(x))
        x = self.conv_out(x)
        return rearrange(x, "(b f) c h w -> b c f h w", f=frames)
