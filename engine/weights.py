"""Model directories, and Moore-AnimateAnyone's released weights converted into one.

A model directory is diffusers' pipeline layout: ``model_index.json`` plus one
subfolder per component, each written by its ``save_pretrained`` in safetensors::

    vae/ image_encoder/ reference_unet/ denoising_unet/ pose_guider/ pcm/ scheduler/

:func:`convert_moore` builds one from Moore-AnimateAnyone's four ``.pth`` files
(tensor names in ``shared/interop/moore_animateanyone_keys.json``) plus the SD 1.5
image-variation UNet config, CLIP image encoder and ``sd-vae-ft-mse`` VAE. The PCM
is new and zero-initialised, so the converted model behaves as AnimateAnyone.
Loading is strict: every tensor of every file must land, and only the documented
gaps are filled (the reference UNet's unused ``conv_norm_out``/``conv_out`` and the
motion modules' recomputed sinusoidal ``pos_embed.pe`` buffers).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import pickle
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from .errors import UserError
from .model import save_model_dir

log = logging.getLogger(__name__)

MOORE_FILES = ("pose_guider.pth", "reference_unet.pth", "denoising_unet.pth", "motion_module.pth")
# Moore's reference net has no output head (its output is never used), see the interop notes.
REFERENCE_UNET_ABSENT = ("conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias")
MOTION_PE_SUFFIX = ".pos_embed.pe"

# AnimateDiff -> diffusers motion-module names, plain substring replacements in this order
# (diffusers' convert_animatediff_checkpoint_to_diffusers; shared/interop).
MOTION_RENAMES = (
    (".norms.0", ".norm1"),
    (".norms.1", ".norm2"),
    (".ff_norm", ".norm3"),
    (".attention_blocks.0", ".attn1"),
    (".attention_blocks.1", ".attn2"),
    (".temporal_transformer", ""),
)
SHOW_KEYS = 5
OVERWRITE_HELP = ("write into a non-empty folder that is not a FreeView model; only the model's own component "
                  "folders and files are replaced, everything else in it is kept")


# --------------------------------------------------------------------------- model directories


def convert_state_dict_motion(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """AnimateDiff / Moore motion-module names -> diffusers ``UNetMotionModel`` names.

    ``pos_encoder`` buffers are dropped (diffusers recomputes the same sinusoid as
    ``pos_embed.pe``); keys without ``motion_module`` pass through unchanged.
    """
    converted = {}
    for key, value in state_dict.items():
        if "motion_module" in key:
            if "pos_encoder" in key:
                continue
            for old, new in MOTION_RENAMES:
                key = key.replace(old, new)
        converted[key] = value
    return converted


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOW_KEYS])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > SHOW_KEYS else shown


def check_state_dict(
    expected: Mapping[str, tuple[int, ...]],
    found: Mapping[str, Any],
    *,
    what: str,
    may_be_missing: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Compare tensor names and shapes; return the allowed missing keys, raise on anything else.

    ``expected`` maps names to shapes; ``found`` maps names to tensors (or shapes).
    """
    shapes = {key: tuple(getattr(value, "shape", value)) for key, value in found.items()}
    missing = [key for key in expected if key not in shapes]
    unexpected = [key for key in shapes if key not in expected]
    mismatched = [
        f"{key} {list(shapes[key])} (expected {list(expected[key])})"
        for key in expected
        if key in shapes and shapes[key] != tuple(expected[key])
    ]
    really_missing = [key for key in missing if key not in may_be_missing]
    problems = []
    if really_missing:
        problems.append(f"missing {_listing(really_missing)}")
    if unexpected:
        problems.append(f"unexpected {_listing(unexpected)}")
    if mismatched:
        problems.append(f"wrong shape {_listing(mismatched)}")
    if problems:
        raise UserError(f"{what} does not match the architecture: {'; '.join(problems)}")
    return [key for key in missing if key in may_be_missing]


def _last_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = next((line for line in lines if "error:" in line.lower()), lines[0] if lines else type(exc).__name__)
    return reason.split("error:", 1)[-1].strip() if "error:" in reason.lower() else reason


def _refusal(path: Path, exc: BaseException) -> str | None:
    """Our own one line for a pickle ``torch.load(weights_only=True)`` refused, or None when ``exc`` is not one.
    (torch's message suggests ``weights_only=False``, which would run whatever the file holds.)"""
    while exc is not None:
        if isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in str(exc):
            globals_needed = re.findall(r"GLOBAL ([\w.]+)", str(exc))
            what = f" ({globals_needed[0]})" if globals_needed else ""
            return (f"{path} is refused: it holds pickled Python objects{what}, not only tensors, and FreeView never "
                    "unpickles code; use a copy in safetensors or a plain state dict (name -> tensor)")
        exc = exc.__cause__ or exc.__context__
    return None


def _damage(path: Path, exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        return f"{path} is not a readable PyTorch checkpoint (neither a torch zip file nor a plain pickle of tensors)"
    if isinstance(exc, EOFError) or "central directory" in text or "zip archive" in text or "truncated" in text.lower():
        return f"{path} is damaged or truncated (not a complete PyTorch checkpoint); download it again"
    return f"{path} is not a readable PyTorch checkpoint ({_last_reason(exc)})"


def load_pth(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain ``name -> tensor`` dict from a ``.pth`` file; never unpickles code (``weights_only=True``)."""
    import warnings

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise UserError(_refusal(path, exc) or _damage(path, exc)) from None
    if not isinstance(obj, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in obj.items()
    ):
        raise UserError(f"{path} is not a plain state dict (name -> tensor), as Moore-AnimateAnyone's files are")
    return dict(obj)


def load_component(model_class, folder: Path, what: str):
    """``model_class.from_pretrained(folder)`` with one clear line for a refused pickle, a damaged file or a
    broken config, naming ``folder``."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model_class.from_pretrained(folder)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, KeyError) as exc:
        weights = next(iter(sorted(folder.glob("*.bin")) + sorted(folder.glob("*.safetensors"))), folder)
        refusal = _refusal(weights, exc)
        if refusal:
            raise UserError(refusal) from None
        raise UserError(f"{what} in {folder} cannot be loaded: {_last_reason(exc)}") from None


def _fresh_tensors(model: torch.nn.Module, keys: list[str], seed: int) -> dict[str, torch.Tensor]:
    """Freshly initialised CPU values for ``keys`` of ``model`` (which may live on the meta device)."""
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    fresh_modules: dict[str, torch.nn.Module] = {}
    tensors = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for key in keys:
            owner, _, attribute = key.rpartition(".")
            if owner not in fresh_modules:
                module = model.get_submodule(owner)
                if isinstance(module, SinusoidalPositionalEmbedding):
                    _, length, dim = module.pe.shape
                    with torch.device("cpu"):
                        fresh = SinusoidalPositionalEmbedding(dim, length)
                else:
                    fresh = copy.deepcopy(module).to_empty(device="cpu")
                    fresh.reset_parameters()
                fresh_modules[owner] = fresh
            tensors[key] = getattr(fresh_modules[owner], attribute).detach()
    return tensors


def _as_float32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor


def _load_strict(model, state_dict, *, what: str, may_be_missing=frozenset(), seed: int = 0) -> list[str]:
    """Load every tensor of ``state_dict`` into ``model``; fill only allowed missing keys freshly."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    filled = check_state_dict(expected, state_dict, what=what, may_be_missing=may_be_missing)
    full = {key: _as_float32(value) for key, value in state_dict.items()}
    full.update(_fresh_tensors(model, filled, seed))
    model.load_state_dict(full, strict=True, assign=True)
    return filled


def convert_moore_state_dicts(
    state_dicts: Mapping[str, Mapping[str, torch.Tensor]],
    unet_config: Mapping[str, Any],
    *,
    preset: str = "sd15",
    seed: int = 0,
) -> dict[str, Any]:
    """Moore's four state dicts (keyed by file name) -> reference_unet, denoising_unet, pose_guider, pcm.

    The UNets follow ``unet_config`` (SD 1.5 image variation for real weights); the
    motion modules, pose guider and PCM follow ``preset``. Modules are built on the
    meta device and take the loaded tensors as they are (fp32), so no memory is
    spent on an initialisation that is overwritten.
    """
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

    from .models.configs import architecture
    from .models.motion import PER_FRAME, set_motion_norm
    from .models.pcm import PoseCorrelationModule
    from .models.pose_guider import PoseGuider

    arch = architecture(preset)
    with torch.device("meta"):
        pose_guider = PoseGuider(**arch.pose_guider)
        reference_unet = UNet2DConditionModel.from_config(dict(unet_config))
        spatial = UNet2DConditionModel.from_config(dict(unet_config))
        denoising_unet = UNetMotionModel.from_unet2d(spatial, MotionAdapter(**arch.motion))
    del spatial

    _load_strict(pose_guider, state_dicts["pose_guider.pth"], what="pose_guider.pth")

    filled = _load_strict(
        reference_unet, state_dicts["reference_unet.pth"], what="reference_unet.pth",
        may_be_missing=frozenset(REFERENCE_UNET_ABSENT), seed=seed,
    )
    if filled:
        log.info("reference_unet.pth has no %s (Moore's reference net has no output head); "
                 "filled from a fresh initialisation, its output is never used", ", ".join(filled))

    denoising = state_dicts["denoising_unet.pth"]
    motion = state_dicts["motion_module.pth"]
    overlap = sorted(set(denoising) & set(motion))
    if overlap:
        log.warning("%d tensors are in both denoising_unet.pth and motion_module.pth; using motion_module.pth's",
                    len(overlap))
    combined = convert_state_dict_motion({**denoising, **motion})
    pe_keys = frozenset(key for key in denoising_unet.state_dict() if key.endswith(MOTION_PE_SUFFIX))
    filled = _load_strict(
        denoising_unet, combined, what="denoising_unet.pth + motion_module.pth", may_be_missing=pe_keys, seed=seed,
    )
    log.info("recomputed %d sinusoidal motion-module position buffers (%s)", len(filled), MOTION_PE_SUFFIX[1:])
    set_motion_norm(denoising_unet, PER_FRAME)  # AnimateDiff's motion modules normalise every frame on its own

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pcm = PoseCorrelationModule(**arch.pcm)
    log.info("pose correlation module is new and zero-initialised: the converted model behaves as AnimateAnyone")
    return dict(reference_unet=reference_unet, denoising_unet=denoising_unet, pose_guider=pose_guider, pcm=pcm)


# --------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class BaseModels:
    """Local folders of the base components AnimateAnyone was trained from.

    ``image_variations``: a copy of ``lambdalabs/sd-image-variations-diffusers`` holding
    at least ``unet/config.json`` and ``image_encoder/`` (config + weights).
    ``vae``: a copy of ``stabilityai/sd-vae-ft-mse`` (``config.json`` + weights).
    """

    image_variations: Path
    vae: Path


def _require_files(folder: Path, names: tuple[str, ...], what: str) -> None:
    if not folder.is_dir():
        raise UserError(f"{what} folder {folder} does not exist")
    absent = [name for name in names if not (folder / name).is_file()]
    if absent:
        raise UserError(f"{what} folder {folder} lacks {', '.join(absent)}")


def _require_weights(folder: Path, what: str) -> None:
    _require_files(folder, ("config.json",), what)
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise UserError(f"{what} folder {folder} has no weights (*.safetensors or *.bin)")


def convert_moore(
    moore_dir: str | Path, out_dir: str | Path, *, base: BaseModels, preset: str = "sd15", seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Moore-AnimateAnyone's released files + base components -> a FreeView model directory.

    ``out_dir`` must be new, empty or a FreeView model (its components are replaced, other files kept);
    ``overwrite`` also accepts another non-empty folder (still only the component folders are replaced)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionModelWithProjection

    from .models.configs import ANIMATE_ANYONE_SCHEDULER

    from .files import check_outputs
    from .model import check_model_output_dir

    moore_dir, out_dir = Path(moore_dir), Path(out_dir)
    image_variations, vae_dir = Path(base.image_variations), Path(base.vae)
    check_model_output_dir(out_dir, overwrite=overwrite)
    check_outputs({"--moore": moore_dir, "--sd-image-variations": image_variations, "--vae": vae_dir},
                  {"-o": out_dir}, folders=("-o",))
    _require_files(moore_dir, MOORE_FILES, "Moore-AnimateAnyone weights")
    _require_files(image_variations / "unet", ("config.json",), "sd-image-variations UNet")
    _require_weights(image_variations / "image_encoder", "sd-image-variations image encoder")
    _require_weights(vae_dir, "VAE")

    try:
        unet_config = UNet2DConditionModel.load_config(image_variations / "unet")
    except (OSError, ValueError) as exc:
        raise UserError(f"{image_variations / 'unet' / 'config.json'} is not a readable UNet config ({_last_reason(exc)})") from None
    state_dicts = {}
    for name in MOORE_FILES:
        log.info("loading %s", moore_dir / name)
        state_dicts[name] = load_pth(moore_dir / name)
    components = convert_moore_state_dicts(state_dicts, unet_config, preset=preset, seed=seed)
    del state_dicts

    image_encoder = load_component(CLIPVisionModelWithProjection, image_variations / "image_encoder",
                                   "the sd-image-variations image encoder").float()
    cross_attention_dim = components["reference_unet"].config.cross_attention_dim
    if image_encoder.config.projection_dim != cross_attention_dim:
        raise UserError(
            f"image encoder projects to {image_encoder.config.projection_dim} but the UNet's "
            f"cross_attention_dim is {cross_attention_dim}: {image_variations} is not the matching base model"
        )
    components.update(
        vae=load_component(AutoencoderKL, vae_dir, "the VAE"),
        image_encoder=image_encoder,
        scheduler=DDIMScheduler(**ANIMATE_ANYONE_SCHEDULER),
    )
    return save_model_dir(components, out_dir, overwrite=overwrite)


# --------------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class HubSource:
    repo: str
    # each entry lists alternatives; the first one the repo has is downloaded
    files: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class FetchPreset:
    architecture: str
    moore: HubSource
    image_variations: HubSource
    vae: HubSource


FETCH_PRESETS: dict[str, FetchPreset] = {
    "animate-anyone": FetchPreset(
        architecture="sd15",
        moore=HubSource("patrolli/AnimateAnyone", tuple((name,) for name in MOORE_FILES)),
        image_variations=HubSource(
            "lambdalabs/sd-image-variations-diffusers",
            (
                ("unet/config.json",),
                ("image_encoder/config.json",),
                ("image_encoder/model.safetensors", "image_encoder/pytorch_model.bin"),
            ),
        ),
        vae=HubSource(
            "stabilityai/sd-vae-ft-mse",
            (("config.json",), ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")),
        ),
    ),
}


class _Offline(Exception):
    pass


def offline_instructions(preset: str, out_dir: str | Path) -> str:
    """One line: what to download by hand and the ``freeview weights convert`` call that follows."""
    spec = FETCH_PRESETS[preset]

    def names(source: HubSource) -> str:
        return ", ".join(" or ".join(alternatives) for alternatives in source.files)

    return (
        f"cannot download the {preset} weights (HF_HUB_OFFLINE is set or the Hugging Face Hub is unreachable). "
        f"Download {spec.moore.repo} ({names(spec.moore)}) into MOORE_DIR, "
        f"{spec.image_variations.repo} ({names(spec.image_variations)}) into SDIV_DIR and "
        f"{spec.vae.repo} ({names(spec.vae)}) into VAE_DIR, keeping their folder layout, then run: "
        f"freeview weights convert --moore MOORE_DIR --sd-image-variations SDIV_DIR --vae VAE_DIR "
        f"-o {out_dir} --preset {spec.architecture}"
    )


def hub_reachable() -> bool:
    """Whether the hub's host name resolves; without it huggingface_hub would retry for ~30 s per file.

    Behind an HTTPS proxy, local name resolution proves nothing, so the answer is yes.
    """
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.getaddrinfo(host, 443)
    except (OSError, UnicodeError):
        return False
    return True


def _download(source: HubSource, cache_dir: str | Path | None, local_files_only: bool = False) -> Path:
    """Download ``source``'s files (or take them from the hub cache); return the snapshot folder."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
    )

    root = None
    for alternatives in source.files:
        offline = False
        for filename in alternatives:
            try:
                path = Path(
                    hf_hub_download(source.repo, filename, cache_dir=cache_dir, local_files_only=local_files_only)
                )
            except LocalEntryNotFoundError:  # offline or unreachable, and not cached
                offline = True
                continue
            except RemoteEntryNotFoundError:
                continue
            except (OfflineModeIsEnabled, ConnectionError, TimeoutError) as exc:
                raise _Offline() from exc
            except HfHubHTTPError as exc:
                raise UserError(f"downloading {source.repo}/{filename} failed: {str(exc).splitlines()[0]}") from None
            root = path.parents[len(PurePosixPath(filename).parts) - 1]
            break
        else:
            if offline:
                raise _Offline()
            raise UserError(f"{source.repo} has none of {', '.join(alternatives)}")
    assert root is not None
    return root


def fetch(preset: str, out_dir: str | Path, *, cache_dir: str | Path | None = None, overwrite: bool = False) -> Path:
    """Download a preset's public weights (through the Hugging Face cache) and convert them into ``out_dir``."""
    from .model import check_model_output_dir

    if preset not in FETCH_PRESETS:
        raise UserError(f"unknown weights preset {preset!r}; expected one of {', '.join(FETCH_PRESETS)}")
    check_model_output_dir(Path(out_dir), overwrite=overwrite)
    spec = FETCH_PRESETS[preset]
    local_only = not hub_reachable()
    if local_only:
        log.info("the Hugging Face Hub is unreachable; looking in the local hub cache only")
    try:
        moore = _download(spec.moore, cache_dir, local_only)
        image_variations = _download(spec.image_variations, cache_dir, local_only)
        vae = _download(spec.vae, cache_dir, local_only)
    except _Offline:
        raise UserError(offline_instructions(preset, out_dir)) from None
    log.info("converting %s (%s, %s, %s)", preset, moore, image_variations, vae)
    return convert_moore(moore, out_dir, base=BaseModels(image_variations, vae), preset=spec.architecture,
                         overwrite=overwrite)


# --------------------------------------------------------------------------- CLI


def _cmd_convert(args: argparse.Namespace) -> int:
    out = convert_moore(
        args.moore, args.out, base=BaseModels(Path(args.sd_image_variations), Path(args.vae)), preset=args.preset,
        overwrite=args.overwrite,
    )
    print(out)
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    print(fetch(args.preset, args.out, overwrite=args.overwrite))
    return 0


def register(subparsers, bench) -> None:
    """``freeview weights convert|fetch``."""
    from .models.configs import PRESETS

    weights = subparsers.add_parser("weights", help="convert or download model weights into a model folder")
    actions = weights.add_subparsers(dest="weights_command", metavar="ACTION")
    actions.required = True

    convert = actions.add_parser(
        "convert", help="Moore-AnimateAnyone .pth files + SD image-variation base -> model folder"
    )
    convert.add_argument("--moore", required=True, metavar="DIR", help=f"folder with {', '.join(MOORE_FILES)}")
    convert.add_argument(
        "--sd-image-variations", required=True, metavar="DIR",
        help="copy of lambdalabs/sd-image-variations-diffusers (unet/config.json, image_encoder/)",
    )
    convert.add_argument("--vae", required=True, metavar="DIR", help="copy of stabilityai/sd-vae-ft-mse")
    convert.add_argument("-o", "--out", required=True, metavar="MODEL_DIR", help="model folder to write")
    convert.add_argument("--preset", default="sd15", choices=sorted(PRESETS), help="architecture (default: sd15)")
    convert.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    convert.set_defaults(func=_cmd_convert)

    fetch_parser = actions.add_parser("fetch", help="download public weights and convert them (needs network)")
    fetch_parser.add_argument("preset", choices=sorted(FETCH_PRESETS), metavar="PRESET",
                              help=f"one of {', '.join(FETCH_PRESETS)}")
    fetch_parser.add_argument("-o", "--out", required=True, metavar="DIR", help="model folder to write")
    fetch_parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    fetch_parser.set_defaults(func=_cmd_fetch)
