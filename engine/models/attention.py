"""Attention processors that carry reference tokens between the two UNets.

Installed through diffusers' ``set_attn_processor``. Per-call data travels in
``cross_attention_kwargs={"reference": ...}``:

* reference UNet, spatial ``attn1``: *writes* its (already normalised) input
  hidden states into a :class:`CapturedTokens` under the layer name;
* denoising UNet, spatial ``attn1``: *reads* ``reference[layer]`` — the selected
  tokens, ``(batch * frames, k, channels)`` — and appends them to its keys/values;
* every other attention: plain attention. All share one signature so diffusers
  passes the kwargs without warnings.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

WRITE, READ, PLAIN = "write", "read", "plain"


def is_spatial_self_attention(name: str) -> bool:
    """``name`` of a processor (``...attn1.processor``) in a spatial transformer block."""
    return name.endswith("attn1.processor") and "motion_modules" not in name


def layer_name(processor_name: str) -> str:
    return processor_name.removesuffix(".processor")


class CapturedTokens:
    """Where the reference UNet's spatial attentions write their input hidden states, by layer name.
    Not a dict: wrappers that rebuild the containers in their inputs (FSDP's hooks on wrapped blocks copy the
    dicts and lists in their kwargs) pass an object like this one on as it is, so the writes reach the caller."""

    def __init__(self):
        self.tokens: dict[str, torch.Tensor] = {}

    def __setitem__(self, layer: str, hidden_states: torch.Tensor) -> None:
        self.tokens[layer] = hidden_states


class ReferenceAttnProcessor:
    """Scaled-dot-product attention that writes or reads reference tokens (see module docstring)."""

    _attention = AttnProcessor2_0()

    def __init__(self, layer: str, mode: str):
        if mode not in (WRITE, READ, PLAIN):
            raise ValueError(f"unknown reference attention mode {mode!r}; expected write, read or plain")
        self.layer = layer
        self.mode = mode

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        reference: CapturedTokens | dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if reference is not None:
            if self.mode == WRITE:
                reference[self.layer] = hidden_states
            elif self.mode == READ and self.layer in reference:
                extra = reference[self.layer].to(hidden_states.dtype)
                encoder_hidden_states = torch.cat([hidden_states, extra], dim=1)
        return self._attention(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


def install_reference_processors(unet, mode: str) -> list[str]:
    """Put a :class:`ReferenceAttnProcessor` on every attention of ``unet``.

    Spatial self-attentions get ``mode`` (write or read); the rest are plain.
    Returns the names of the spatial self-attention layers, in module order.
    """
    processors = {}
    layers = []
    for name in unet.attn_processors:
        if is_spatial_self_attention(name):
            processors[name] = ReferenceAttnProcessor(layer_name(name), mode)
            layers.append(layer_name(name))
        else:
            processors[name] = ReferenceAttnProcessor(layer_name(name), PLAIN)
    unet.set_attn_processor(processors)
    return layers
