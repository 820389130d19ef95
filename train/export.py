"""``freeview train export``: a trained model directory, ready to ship (half-precision weights, sampling advice)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from engine.errors import UserError
from engine.files import atomic_dir
from engine.model import COMPONENTS, SAMPLING_FILE, check_model_dir


def export_model_dir(source: str | Path, out: str | Path, *, half: bool = True, steps: int | None = None,
                     guidance: float | None = None, top_k: float | str | None = None, card: str | Path | None = None) -> Path:
    """Copy ``source`` to ``out`` atomically, weights in float16 when ``half`` (the engine loads them in the
    precision of the device), with ``sampling.json`` when ``steps``/``guidance``/``top_k`` are given and a model card."""
    from engine.pipeline import FreeViewPipeline

    source = check_model_dir(source)
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if guidance is not None and not guidance >= 1:
        raise UserError(f"--guidance must be >= 1, got {guidance}")
    from engine.models.selection import check_top_k

    try:
        check_top_k(top_k)
    except ValueError as exc:
        raise UserError(f"--top-k: {exc}") from None
    pipe = FreeViewPipeline.from_pretrained(source)
    if half:
        pipe.to(torch.float16)
    with atomic_dir(out) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        sampling = {k: v for k, v in (("steps", steps), ("guidance", guidance), ("top_k", top_k)) if v is not None}
        if sampling:
            (tmp / SAMPLING_FILE).write_text(json.dumps(sampling, indent=2) + "\n")
        if card is not None:
            shutil.copyfile(card, tmp / "README.md")
        check_model_dir(tmp)
    return Path(out)


def model_size_mb(path: str | Path) -> float:
    return sum(f.stat().st_size for name in COMPONENTS for f in (Path(path) / name).rglob("*") if f.is_file()) / 2**20
