"""``freeview train export``: a trained model directory, ready to ship (half-precision weights, sampling advice)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from engine.errors import UserError
from engine.files import atomic_dir
from engine.model import COMPONENTS, MODEL_DIR_ENTRIES, OPTIONAL_COMPONENTS, SAMPLING_FILE, check_model_dir


def export_model_dir(source: str | Path, out: str | Path, *, half: bool = True, steps: int | None = None,
                     guidance: float | None = None, top_k: float | str | None = None,
                     noise_correlation: float | None = None, card: str | Path | None = None) -> Path:
    """Copy ``source`` to ``out`` atomically, weights in float16 when ``half`` (the engine loads them in the
    precision of the device), with a model card and ``sampling.json``: the one of the model the run started from
    (:func:`starting_sampling`), with ``steps``/``guidance``/``top_k``/``noise_correlation`` replaced where given."""
    from engine.pipeline import FreeViewPipeline

    from engine.files import check_outputs
    from engine.model import check_model_output_dir

    source = check_model_dir(source)
    check_model_output_dir(out)
    check_outputs({"MODEL": source, "--card": card}, {"-o": out}, folders=("-o",))
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if guidance is not None and not guidance >= 1:
        raise UserError(f"--guidance must be >= 1, got {guidance}")
    if noise_correlation is not None and not 0 <= noise_correlation <= 1:
        raise UserError(f"--noise-correlation must be in [0, 1], got {noise_correlation}")
    from engine.models.selection import check_top_k

    try:
        check_top_k(top_k)
    except ValueError as exc:
        raise UserError(f"--top-k: {exc}") from None
    # loaded in the precision written: a .to() cast afterwards makes diffusers warn on every export
    pipe = FreeViewPipeline.from_pretrained(source, dtype=torch.float16 if half else torch.float32)
    given = {k: v for k, v in (("steps", steps), ("guidance", guidance), ("top_k", top_k),
                               ("noise_correlation", noise_correlation)) if v is not None}
    sampling = {**starting_sampling(source), **given}
    with atomic_dir(out, replaces=MODEL_DIR_ENTRIES) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if sampling:
            (tmp / SAMPLING_FILE).write_text(json.dumps(sampling, indent=2) + "\n")
        if card is not None:
            shutil.copyfile(card, tmp / "README.md")
        check_model_dir(tmp)
    return Path(out)


def starting_sampling(model_dir: str | Path, hops: int = 16) -> dict:
    """The sampling a model was made to be used with: its own ``sampling.json``, else that of the model its
    training run started from (``init_from`` in the ``config.yaml`` that `train run` writes beside
    ``runs/NAME/model``), followed back through earlier runs; ``{}`` when none records one."""
    import yaml

    path = Path(model_dir)
    for _ in range(hops):
        try:
            found = json.loads((path / SAMPLING_FILE).read_text())
            if isinstance(found, dict):
                return found
        except (OSError, ValueError):
            pass
        try:
            start = (yaml.safe_load((path.parent / "config.yaml").read_text()) or {}).get("init_from")
        except (OSError, yaml.YAMLError, AttributeError):
            return {}
        if not start:
            return {}
        path = Path(start)
    return {}


def model_size_mb(path: str | Path) -> float:
    return sum(f.stat().st_size for name in COMPONENTS + OPTIONAL_COMPONENTS for f in (Path(path) / name).rglob("*") if f.is_file()) / 2**20
