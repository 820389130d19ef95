"""Framing prior: an auxiliary loss that teaches the PCM which reference is framed like the target.

Not in the paper. Learned from the diffusion loss alone, our small PCM weighs references by
their kind (a close-up always counts more) whatever the target's framing, so a wide target
draws on a close-up as much as on a wide reference (model card). This loss adds the missing
signal: for every target frame, the references' mean correlations, as a softmax, should
follow how close each reference's framing is to the target's. Framing is the size of the
face in the picture (the spread of its visible keypoints), present from close-up to wide.
Only the per-reference *level* of the maps is supervised; where within a reference the
correlation is high stays the diffusion loss's choice.

Tried on the embedded default and not adopted (its model card, "Earlier experiments"): the
PCM did turn to the reference framed like the target, but the frames did not get better.
Off by default (``framing_loss_weight: 0``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from engine.poses.track import FACE

# Log face-size differences are measured in units of SCALE_WIDTH (a close-up's face is about
# 3x a wide shot's: log 3 = 1.1), mean correlations in units of CORRELATION_TEMPERATURE.
SCALE_WIDTH = 0.3
CORRELATION_TEMPERATURE = 0.25
MIN_FACE_POINTS = 10


def face_size(keypoints: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """keypoints ``(..., 128, 3)`` normalised x, y, visibility -> ``(...)`` RMS spread of the visible
    face keypoints around their centre; NaN where fewer than ``MIN_FACE_POINTS`` are visible."""
    face = keypoints[..., FACE, :]
    visible = (face[..., 2] > threshold).to(face.dtype)
    count = visible.sum(-1)
    centre = (face[..., :2] * visible[..., None]).sum(-2) / count.clamp(min=1)[..., None]
    spread = (((face[..., :2] - centre[..., None, :]) ** 2).sum(-1) * visible).sum(-1) / count.clamp(min=1)
    size = spread.sqrt()
    return torch.where(count >= MIN_FACE_POINTS, size, torch.full_like(size, float("nan")))


def framing_weights(ref_keypoints: torch.Tensor, target_keypoints: torch.Tensor) -> torch.Tensor:
    """``(batch, refs, 128, 3)``, ``(batch, frames, 128, 3)`` -> ``(batch, frames, refs)`` target
    distribution over references (rows sum to 1), NaN rows where a face size is missing."""
    log_ref = face_size(ref_keypoints).log()  # (b, r)
    log_target = face_size(target_keypoints).log()  # (b, f)
    distance = (log_target[:, :, None] - log_ref[:, None, :]).abs()
    return torch.softmax(-distance / SCALE_WIDTH, dim=-1)


def framing_loss(correlation: torch.Tensor, ref_keypoints: torch.Tensor, target_keypoints: torch.Tensor) -> torch.Tensor:
    """KL(framing prior || softmax of the references' mean correlation), averaged over the target
    frames that have a prior; zero with one reference or when no frame has one.

    correlation ``(batch, refs, frames, h, w)`` (the PCM's maps); keypoints as in :func:`framing_weights`.
    """
    if correlation.shape[1] < 2:
        return correlation.new_zeros(())
    prior = framing_weights(ref_keypoints.float(), target_keypoints.float())  # (b, f, r)
    levels = correlation.float().mean(dim=(-2, -1)).permute(0, 2, 1)  # (b, f, r)
    log_q = F.log_softmax(levels / CORRELATION_TEMPERATURE, dim=-1)
    valid = torch.isfinite(prior).all(-1)
    if not valid.any():
        return correlation.new_zeros(())
    prior, log_q = prior[valid], log_q[valid]
    return (prior * (prior.clamp(min=1e-8).log() - log_q)).sum(-1).mean()
