"""Appearance refiner: the decoded frames, corrected in pixel space with the references warped into the target pose.

The latent model decodes through a small autoencoder that cannot draw fine detail (stripes, checks, a face at
close-up size: the ``autoencoder round trip`` row of ``freeview eval`` is its ceiling). The warp composite of
:mod:`engine.warps` has that detail wherever the references show the part, but holes and seams where they do not.
The refiner sees both, with the warp's coverage and the target's pose image, and outputs per pixel a gate towards
the composite and a residual:

    frame + gate * coverage * (warped - frame) + residual

Its last convolution starts at zero, so a model given a fresh refiner (or none: AnimateAnyone's) renders exactly
the frames it rendered before. The network is diffusers' ``UNet2DModel`` (no attention, timestep fixed at 0).
"""

from __future__ import annotations

import torch
from diffusers import UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

# decoded frame (3), warped references (3), coverage (1), target pose image (3)
INPUT_CHANNELS = 10


class AppearanceRefiner(ModelMixin, ConfigMixin):
    """Pixel-space refinement of decoded frames; see the module docstring."""

    @register_to_config
    def __init__(self, block_out_channels: tuple[int, ...] = (16, 32, 64, 64), layers_per_block: int = 1,
                 norm_num_groups: int = 8):
        super().__init__()
        levels = len(block_out_channels)
        self.unet = UNet2DModel(
            in_channels=INPUT_CHANNELS, out_channels=4, block_out_channels=tuple(block_out_channels),
            down_block_types=("DownBlock2D",) * levels, up_block_types=("UpBlock2D",) * levels,
            layers_per_block=layers_per_block, add_attention=False, norm_num_groups=norm_num_groups,
        )
        nn.init.zeros_(self.unet.conv_out.weight)
        nn.init.zeros_(self.unet.conv_out.bias)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, frames: torch.Tensor, warped: torch.Tensor, coverage: torch.Tensor,
                pose_images: torch.Tensor) -> torch.Tensor:
        """frames, warped ``(n, 3, H, W)`` in [-1, 1]; coverage ``(n, 1, H, W)`` in [0, 1]; pose_images
        ``(n, 3, H, W)`` in [0, 1] -> refined frames ``(n, 3, H, W)`` (not clamped)."""
        if frames.shape != warped.shape or coverage.shape[1] != 1 or coverage.shape[-2:] != frames.shape[-2:]:
            raise ValueError(f"refiner inputs do not fit: frames {tuple(frames.shape)}, warped {tuple(warped.shape)}, "
                             f"coverage {tuple(coverage.shape)}")
        if frames.shape[-1] % self.size_multiple or frames.shape[-2] % self.size_multiple:
            raise ValueError(f"refiner input {tuple(frames.shape[-2:])} must be multiples of {self.size_multiple}")
        dtype = self.unet.conv_in.weight.dtype
        x = torch.cat([frames, warped, coverage * 2 - 1, pose_images * 2 - 1], 1).to(dtype)
        out = self.unet(x, 0).sample.to(frames.dtype)
        gate, residual = out[:, :1], out[:, 1:]
        return frames + gate * coverage.to(frames.dtype) * (warped - frames) + residual
