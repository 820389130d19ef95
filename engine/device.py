"""Devices, precision and memory."""

from __future__ import annotations

import logging
import resource
import sys

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA, then MPS, then CPU."""
    if device:
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise ValueError(f"unknown device {device!r}; expected cpu, cuda, cuda:N or mps") from None
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device cuda was asked for but no CUDA GPU is available")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """fp32 on CPU (bf16 matmuls are ~250x slower there); bf16 on GPUs that have it, else fp16."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        return torch.float32
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on CUDA; the process's peak resident memory elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def estimate_peak_memory_mb(pipe, frames: int, height: int, width: int, refs: int, clip_frames: int = 12) -> float:
    """A rough upper estimate of a generation's peak memory: weights + reference bank + one clip's activations."""
    element = torch.finfo(pipe.denoising_unet.dtype).bits // 8
    weights = sum(p.numel() for p in pipe.components.values() if isinstance(p, torch.nn.Module) for p in p.parameters())
    factor = pipe.vae_scale_factor
    latent_tokens = (height // factor) * (width // factor)
    width0 = pipe.denoising_unet.config.block_out_channels[0]
    layers = len(pipe.network.reference_layers)
    bank = refs * latent_tokens * width0 * layers * element
    selected = min(clip_frames, frames) * latent_tokens * width0 * layers * element * 2
    activations = 2 * min(clip_frames, frames) * latent_tokens * width0 * 24 * element
    decode = 8 * height * width * pipe.vae.config.block_out_channels[0] * 4 * element
    return (weights * element + bank + selected + activations + decode) / 2**20
