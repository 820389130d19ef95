"""Adaptive reference selection: pure functions over token scores (unit-tested on their own)."""

from __future__ import annotations

import math

import torch


def check_top_k(top_k: float | str | None) -> None:
    """ValueError unless ``top_k`` is None (the default), ``"all"`` or a positive number of references' worth."""
    if top_k is None:
        return
    if isinstance(top_k, str):
        if top_k != "all":
            raise ValueError(f"top_k must be a positive number of references' worth of tokens or 'all', got {top_k!r}")
        return
    if not math.isfinite(top_k) or top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")


def tokens_per_layer_k(top_k: float | str | None, tokens_one_reference: int, num_refs: int) -> int:
    """K_l for one layer: ``top_k`` references' worth of tokens; ``"all"`` keeps every token.

    None means the paper's default, one reference's worth (so cost does not grow with R).
    """
    check_top_k(top_k)
    if top_k is None:
        top_k = 1.0
    if top_k == "all":
        return tokens_one_reference * num_refs
    return max(1, round(top_k * tokens_one_reference))


def keeps_every_token(top_k: float | str | None, num_refs: int) -> bool:
    """Whether ``top_k`` keeps all the tokens of ``num_refs`` references (nothing is chosen)."""
    return top_k == "all" or (isinstance(top_k, (int, float)) and top_k >= num_refs)


def tie_order(total: int, tokens_per_reference: int) -> torch.Tensor:
    """The order in which tied candidates are kept: ``(total,)`` candidate indices.

    Candidates are ``refs * tokens_per_reference`` tokens, reference-major. Tied tokens are
    taken one spatial position at a time from alternating references (position ``j`` first
    from reference ``j mod refs``, then from the next one, ...), so when every score ties,
    as with an untrained PCM, K tokens cover the image evenly and each reference keeps an
    equal share (within one token) instead of whatever ``topk`` happens to return.
    """
    if tokens_per_reference <= 0 or total % tokens_per_reference:
        raise ValueError(f"{total} candidate tokens are not a whole number of references of {tokens_per_reference}")
    refs = total // tokens_per_reference
    index = torch.arange(total)
    ref, position = index // tokens_per_reference, index % tokens_per_reference
    return (((position - ref) % refs) * tokens_per_reference + position).argsort()


def select_token_indices(
    scores: torch.Tensor,
    k: int,
    *,
    compensatory: bool = False,
    generator: torch.Generator | None = None,
    tokens_per_reference: int | None = None,
) -> torch.Tensor:
    """Indices of the tokens to keep, per row, in ascending order.

    scores: ``(..., tokens)`` correlation of every candidate token.
    Returns ``(..., k + k_comp)`` int64 indices: the top ``k`` by score and, when
    ``compensatory``, up to ``k`` more drawn uniformly from the rest (the paper's
    compensatory tokens: argsort has no gradient, so random extra tokens keep
    the correlation module learning everywhere). ``k >= tokens`` keeps all.
    Sorting the result keeps the original token order, so "keep all" is exactly
    "append all". With ``tokens_per_reference`` (candidates reference-major), a row whose
    scores all tie (an untrained or switched-off PCM) keeps the first ``k`` of :func:`tie_order`,
    so no reference is dropped by the tie; other ties are broken as ``torch.topk`` breaks them
    (a full sort by a tie key cost several times a ``topk`` at R = 8).
    """
    if k <= 0:
        raise ValueError(f"top-K must be positive, got {k}")
    total = scores.shape[-1]
    if k >= total:
        return torch.arange(total, device=scores.device).expand(*scores.shape[:-1], total)
    top = scores.topk(k, dim=-1, sorted=False).indices
    if tokens_per_reference is not None:
        tied = (scores == scores[..., :1]).all(dim=-1, keepdim=True)  # nothing to choose by
        if tied.any():
            fair = tie_order(total, tokens_per_reference).to(scores.device)[:k]
            top = torch.where(tied, fair.expand_as(top), top)
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


def reference_shares(correlation: torch.Tensor, top_k: float | str | None = None) -> torch.Tensor:
    """Which reference the top-K selection draws on: correlation maps ``(frames, refs, h, w)`` ->
    ``(refs,)`` the fraction of the kept cells that belong to each reference, K taken as the
    network takes it (``top_k`` references' worth), at the maps' own resolution (the network
    selects from them interpolated to every layer's), averaged over frames."""
    frames, refs, h, w = correlation.shape
    kept = select_token_indices(correlation.reshape(frames, refs * h * w), tokens_per_layer_k(top_k, h * w, refs),
                                tokens_per_reference=h * w)
    return torch.bincount((kept // (h * w)).flatten(), minlength=refs).float() / kept.numel()
