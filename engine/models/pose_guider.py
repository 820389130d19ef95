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

    ``appearance_channels > 0`` adds ``appearance_in``, a zero-initialised conv that adds an
    appearance estimate already at the output size (the latents of the references warped into the
    target pose and its coverage, see :mod:`engine.warps`) to the same features. It starts at zero,
    so a guider given one computes exactly what it computed without it until it is trained; a guider
    without one (AnimateAnyone's) is unchanged.
    """

    @register_to_config
    def __init__(
        self,
        conditioning_embedding_channels: int = 320,
        conditioning_channels: int = 3,
        block_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        appearance_channels: int = 0,
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
        if appearance_channels < 0:
            raise ValueError(f"appearance_channels must be 0 or more, got {appearance_channels}")
        self.appearance_in = None
        if appearance_channels:
            self.appearance_in = nn.Conv2d(appearance_channels, conditioning_embedding_channels, kernel_size=3, padding=1)
            nn.init.zeros_(self.appearance_in.weight)
            nn.init.zeros_(self.appearance_in.bias)

    @classmethod
    def with_appearance(cls, guider: "PoseGuider", channels: int) -> "PoseGuider":
        """A copy of ``guider`` with a zero-initialised appearance input of ``channels`` channels (its pose path,
        and so its output, unchanged). A guider that already has one of that size is returned as it is."""
        if guider.config.appearance_channels == channels:
            return guider
        if guider.config.appearance_channels:
            raise ValueError(f"the pose guider already takes {guider.config.appearance_channels} appearance channels, not {channels}")
        config = {k: v for k, v in guider.config.items() if not k.startswith("_")}
        new = cls.from_config({**config, "appearance_channels": channels})
        missing, unexpected = new.load_state_dict(guider.state_dict(), strict=False)
        if unexpected or any(not key.startswith("appearance_in.") for key in missing):
            raise ValueError(f"pose guider weights do not fit: missing {missing}, unexpected {unexpected}")
        new.to(guider.device)
        return new if new.dtype == guider.dtype else new.to(guider.dtype)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, pose_images: torch.Tensor, appearance: torch.Tensor | None = None) -> torch.Tensor:
        """pose_images ``(batch, 3, frames, height, width)`` in [0, 1] -> ``(batch, channels, frames, h, w)``.

        appearance ``(batch, appearance_channels, frames, h, w)`` at the output size, for a guider that takes one;
        None stands for no appearance estimate (all zeros: the unconditional branch, reference dropout).
        """
        frames = pose_images.shape[2]
        x = rearrange(pose_images, "b c f h w -> (b f) c h w")
        x = F.silu(self.conv_in(x))
        for block in self.blocks:
            x = F.silu(block(x))
        x = self.conv_out(x)
        if self.appearance_in is not None:
            if appearance is None:
                appearance = x.new_zeros(x.shape[0], self.config.appearance_channels, *x.shape[-2:])
            else:
                if appearance.shape[1] != self.config.appearance_channels or appearance.shape[-2:] != x.shape[-2:]:
                    raise ValueError(f"appearance {tuple(appearance.shape)} does not fit this pose guider: expected "
                                     f"{self.config.appearance_channels} channels at {tuple(x.shape[-2:])}")
                appearance = rearrange(appearance, "b c f h w -> (b f) c h w").to(x.dtype)
            x = x + self.appearance_in(appearance)
        elif appearance is not None:
            raise ValueError("this pose guider takes no appearance input (appearance_channels is 0)")
        return rearrange(x, "(b f) c h w -> b c f h w", f=frames)
