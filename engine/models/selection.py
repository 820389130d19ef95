"""Adaptive reference selection: pure functions over token scores (unit-tested on their own)."""

from __future__ import annotations

import torch


def select_token_indices(
    scores: torch.Tensor,
    k: int,
    *,
    compensatory: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Indices of the tokens to keep, per row, in ascending order.

    scores: ``(..., tokens)`` correlation of every candidate token.
    Returns ``(..., k + k_comp)`` int64 indices: the top ``k`` by score and, when
    ``compensatory``, up to ``k`` more drawn uniformly from the rest (the paper's
    compensatory tokens: argsort has no gradient, so random extra tokens keep
    the correlation module learning everywhere). ``k >= tokens`` keeps all.
    Sorting the result keeps the original token order, so "keep all" is exactly
    "append all".
    """
    if k <= 0:
        raise ValueError(f"top-K must be positive, got {k}")
    total = scores.shape[-1]
    if k >= total:
        return torch.arange(total, device=scores.device).expand(*scores.shape[:-1], total)
    top = scores.topk(k, dim=-1, sorted=False).indices
    if compensatory:
        k_comp = min(k, total - k)
        noise = torch.rand(scores.shape, generator=generator, device="cpu").to(scores.device)
        noise.scatter_(-1, top, -1.0)  # never pick a top-K token twice
        extra = noise.topk(k_comp, dim=-1, sorted=False).indices
        top = torch.cat([top, extra], dim=-1)
    return top.sort(dim=-1).values


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """tokens ``(batch, candidates, channels)``, indices ``(batch, frames, k)`` -> ``(batch, frames, k, channels)``."""
    batch, frames, k = indices.shape
    flat = indices.reshape(batch, frames * k, 1).expand(-1, -1, tokens.shape[-1])
    return tokens.gather(1, flat).reshape(batch, frames, k, tokens.shape[-1])
