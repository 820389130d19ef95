"""Loading a model directory (the embedded default unless told otherwise)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from .device import pick_device, pick_dtype
from .errors import UserError

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_MODEL_DIR = ASSETS / "default_model"
COMPONENTS = ("vae", "image_encoder", "reference_unet", "denoising_unet", "pose_guider", "pcm", "scheduler")
OPTIONAL_COMPONENTS = ("refiner",)  # a model may have these (engine.models.refiner) or not
RESTORE_HINT = (
    "restore it with `git checkout -- assets/default_model` (or re-install FreeView), "
    "or re-train it with the command in assets/default_model/README.md"
)


# top_k None: the engine's default, one reference's worth of tokens per layer (engine.models.selection);
# clip_frames / overlap: the temporal windows the motion modules were trained on (AnimateAnyone: 24 / 4);
# noise_correlation: how alike the frames' starting noise is (0: independent, AnimateAnyone's; 1: one noise for all)
DEFAULT_SAMPLING = {"steps": 20, "guidance": 2.0, "top_k": None, "clip_frames": 12, "overlap": 4, "noise_correlation": 0.0}
SAMPLING_FILE = "sampling.json"  # a model's recommended sampling settings, beside model_index.json


def sampling_defaults(model_dir: str | os.PathLike | None = None) -> dict:
    """Steps, guidance, top-K and windows the model recommends (``sampling.json``), else the engine's defaults."""
    values = dict(DEFAULT_SAMPLING)
    try:
        found = json.loads((Path(model_dir or default_model_dir()) / SAMPLING_FILE).read_text())
        values.update({key: found[key] for key in DEFAULT_SAMPLING if key in found})
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    from .models.selection import check_top_k

    try:
        check_top_k(values["top_k"])
    except (ValueError, TypeError):  # a top-K the engine cannot use is no recommendation
        values["top_k"] = None
    clip, overlap = values["clip_frames"], values["overlap"]
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (clip, overlap))
    if not (whole and clip >= 1 and 0 <= overlap < clip):  # windows the engine cannot use are no recommendation
        values["clip_frames"], values["overlap"] = DEFAULT_SAMPLING["clip_frames"], DEFAULT_SAMPLING["overlap"]
    rho = values["noise_correlation"]
    if not (isinstance(rho, (int, float)) and not isinstance(rho, bool) and 0 <= rho <= 1):
        values["noise_correlation"] = DEFAULT_SAMPLING["noise_correlation"]
    return values


def default_model_dir() -> Path:
    return Path(os.environ.get("FREEVIEW_MODEL", DEFAULT_MODEL_DIR))


# Said once wherever the embedded default animates (freeview animate, the studio), so a photo of a real person
# that comes back as an invented cartoon is not a mystery.
DOMAIN_NOTE = ("the embedded default model is trained on synthetic characters only: it draws a cartoon person, "
               "and photos of real people need real weights (README, \"Real weights (GPU)\": "
               "`freeview weights fetch animate-anyone`)")


def domain_note(model_dir: str | os.PathLike | None = None) -> str | None:
    """:data:`DOMAIN_NOTE` when ``model_dir`` (None: the model FreeView would load) is the embedded default, else None."""
    path = Path(model_dir or default_model_dir())
    return DOMAIN_NOTE if path.resolve() == DEFAULT_MODEL_DIR.resolve() else None


def missing_in_model_dir(path: str | os.PathLike) -> list[str]:
    """What a model directory lacks, as relative paths (empty when complete)."""
    path = Path(path)
    missing = [] if (path / "model_index.json").is_file() else ["model_index.json"]
    for name in COMPONENTS:
        folder = path / name
        config = "scheduler_config.json" if name == "scheduler" else "config.json"
        if not folder.is_dir():
            missing.append(f"{name}/")
        elif not (folder / config).is_file():
            missing.append(f"{name}/{config}")
        elif name != "scheduler" and not (any(folder.glob("*.safetensors")) or any(folder.glob("*.safetensors.index.json"))):
            missing.append(f"{name}/*.safetensors")
    return missing


def check_model_dir(path: str | os.PathLike) -> Path:
    """Raise :class:`UserError` naming everything a model directory lacks; returns the path."""
    path = Path(path)
    hint = f"; {RESTORE_HINT}" if path.resolve() == DEFAULT_MODEL_DIR.resolve() else ""
    if not path.is_dir():
        raise UserError(f"model folder {path} does not exist{hint}")
    missing = missing_in_model_dir(path)
    if missing:
        raise UserError(
            f"model folder {path} is incomplete: missing {', '.join(missing)} "
            f"(expected one subfolder per component: {', '.join(COMPONENTS)}){hint}"
        )
    return path


# Everything a model directory holds that FreeView writes: replaced when a model is saved over another one;
# any other file in the folder is the user's and stays.
MODEL_DIR_ENTRIES = (*COMPONENTS, *OPTIONAL_COMPONENTS, "model_index.json", SAMPLING_FILE, "README.md")


def is_model_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is (or was begun as) a FreeView / diffusers model directory."""
    return (Path(path) / "model_index.json").is_file()


def check_model_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Before any work: ``path`` is new, empty or a model directory (else refused unless ``overwrite``)."""
    from .files import check_output_folder

    return check_output_folder(path, ours=is_model_dir, what="FreeView model folder", overwrite=overwrite)


def save_model_dir(components: dict, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save a model directory (``FreeViewPipeline.save_pretrained``, safetensors) atomically.

    Keys of ``components`` beyond the model directory's are ignored. Into an existing folder only
    :data:`MODEL_DIR_ENTRIES` are replaced; a non-empty folder that is not a model is refused unless ``overwrite``.
    """
    from .files import atomic_dir
    from .pipeline import FreeViewPipeline

    absent = [name for name in COMPONENTS if name not in components]
    if absent:
        raise ValueError(f"cannot save a model directory without {', '.join(absent)}")
    out_dir = check_model_output_dir(out_dir, overwrite)
    with atomic_dir(out_dir, replaces=MODEL_DIR_ENTRIES) as tmp:
        parts = {name: components.get(name) for name in COMPONENTS + OPTIONAL_COMPONENTS}
        FreeViewPipeline(**parts).save_pretrained(tmp, safe_serialization=True)
        check_model_dir(tmp)
    return out_dir


def load_pipeline(
    model_dir: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    precision: str = "auto",
    cpu_offload: bool = False,
    channels_last: bool = False,
    compile: bool = False,
):
    """Load a :class:`~engine.pipeline.FreeViewPipeline` onto the best device.

    ``model_dir=None`` loads the embedded default. Device: CUDA, then MPS, then CPU;
    precision fp32 on CPU, bf16/fp16 on GPUs.
    """
    from .pipeline import FreeViewPipeline

    path = check_model_dir(model_dir or default_model_dir())
    target = pick_device(device)
    dtype = pick_dtype(target, precision)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()  # the image encoder's "Loading weights" bar
    try:
        pipe = FreeViewPipeline.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        hint = f"; {RESTORE_HINT}" if path.resolve() == DEFAULT_MODEL_DIR.resolve() else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UserError(f"cannot load the model in {path}: {first}{hint}") from None
    finally:
        diffusers_logging.enable_progress_bar()
        transformers_logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    pipe.sampling_defaults = sampling_defaults(path)
    pipe.vae.enable_slicing()
    if cpu_offload and target.type == "cuda":
        pipe.enable_model_cpu_offload(device=target)
    else:
        pipe.to(target)
    if channels_last:
        for unet in (pipe.reference_unet, pipe.denoising_unet):
            unet.to(memory_format=torch.channels_last)
    if compile:
        pipe.network.denoising_unet = torch.compile(pipe.denoising_unet)
    logger.info("loaded %s on %s (%s)", path, target, dtype)
    return pipe
