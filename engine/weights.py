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


MAX_SHAPE_LINES = 20


def check_state_dict(
    expected: Mapping[str, tuple[int, ...]],
    found: Mapping[str, Any],
    *,
    what: str,
    may_be_missing: set[str] | frozenset[str] = frozenset(),
    tolerate_unexpected: bool = False,
) -> list[str]:
    """Compare tensor names and shapes; return the allowed missing keys, raise on anything else.

    ``expected`` maps names to shapes; ``found`` maps names to tensors (or shapes). The error's first
    line sums up; then one line per tensor of the wrong shape, naming ``what`` (the file), the tensor and
    both shapes. ``tolerate_unexpected``: keys the architecture has no place for are listed in a warning
    and skipped (as the loader of the file's own project does), not refused.
    """
    shapes = {key: tuple(getattr(value, "shape", value)) for key, value in found.items()}
    missing = [key for key in expected if key not in shapes]
    unexpected = [key for key in shapes if key not in expected]
    mismatched = [
        f"{what}: {key} is {list(shapes[key])}, the architecture needs {list(expected[key])}"
        for key in expected
        if key in shapes and shapes[key] != tuple(expected[key])
    ]
    really_missing = [key for key in missing if key not in may_be_missing]
    if unexpected and tolerate_unexpected:
        log.warning("%s: ignoring %d tensors the architecture has no place for (%s), as AnimateAnyone's own "
                    "loader does", what, len(unexpected), _listing(unexpected))
        unexpected = []
    problems = []
    if really_missing:
        problems.append(f"missing {_listing(really_missing)}")
    if unexpected:
        problems.append(f"unexpected {_listing(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} tensor(s) of the wrong shape")
    if problems:
        lines = mismatched[:MAX_SHAPE_LINES]
        if len(mismatched) > MAX_SHAPE_LINES:
            lines.append(f"{what}: ... and {len(mismatched) - MAX_SHAPE_LINES} more of the wrong shape")
        raise UserError("\n".join([f"{what} does not match the architecture: {'; '.join(problems)}", *lines]))
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


def _load_strict(model, state_dict, *, what: str, may_be_missing=frozenset(), seed: int = 0,
                 tolerate_unexpected: bool = False) -> list[str]:
    """Load every tensor of ``state_dict`` into ``model``; fill only allowed missing keys freshly."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    filled = check_state_dict(expected, state_dict, what=what, may_be_missing=may_be_missing,
                              tolerate_unexpected=tolerate_unexpected)
    full = {key: _as_float32(value) for key, value in state_dict.items() if key in expected}
    full.update(_fresh_tensors(model, filled, seed))
    model.load_state_dict(full, strict=True, assign=True)
    return filled


# --------------------------------------------------------------------------- the architecture, read from the tensors


def _indices(keys, prefix: str) -> list[int]:
    """The distinct integers right after ``prefix`` in ``keys`` (``down_blocks.`` -> the levels)."""
    found = set()
    for key in keys:
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _shape(state_dict: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise UserError(f"{what} has no {key}: it is not a checkpoint of this kind (Moore-AnimateAnyone naming)")
    return tuple(getattr(state_dict[key], "shape", state_dict[key]))


def _note_differences(what: str, given: Mapping[str, Any], inferred: Mapping[str, Any], source: str) -> None:
    for key, value in inferred.items():
        if key in given and _as_list(given[key]) != _as_list(value):
            log.warning("%s: %s is %s in the tensors but %s in the %s; using the tensors'",
                        what, key, _as_list(value), _as_list(given[key]), source)


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def infer_unet_config(state_dict: Mapping[str, Any], base: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    """A ``UNet2DConditionModel`` config whose widths, layers, block types, cross-attention size and
    projection kind are read from ``state_dict``'s tensors (diffusers names, as Moore's UNets use);
    what tensors do not show (head count, GroupNorm groups, time embedding) comes from ``base``."""
    levels = _indices(state_dict, "down_blocks.")
    if not levels:
        raise UserError(f"{what} has no down_blocks.* tensors: it is not a UNet checkpoint")
    channels = [_shape(state_dict, f"down_blocks.{i}.resnets.0.conv1.weight", what)[0] for i in levels]
    has_attention = [bool(_indices(state_dict, f"down_blocks.{i}.attentions.")) for i in levels]
    up_attention = [bool(_indices(state_dict, f"up_blocks.{i}.attentions.")) for i in levels]
    cross = next((k for k in state_dict if k.endswith(".attn2.to_k.weight") and "motion_modules" not in k), None)
    proj_in = next((k for k in state_dict if k.endswith(".proj_in.weight") and "motion_modules" not in k), None)
    inferred: dict[str, Any] = dict(
        in_channels=_shape(state_dict, "conv_in.weight", what)[1],
        block_out_channels=channels,
        layers_per_block=len(_indices(state_dict, "down_blocks.0.resnets.")),
        down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in has_attention],
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in up_attention],
    )
    if "conv_out.weight" in state_dict:
        inferred["out_channels"] = _shape(state_dict, "conv_out.weight", what)[0]
    if cross is not None:
        inferred["cross_attention_dim"] = _shape(state_dict, cross, what)[1]
    if proj_in is not None:
        inferred["use_linear_projection"] = len(_shape(state_dict, proj_in, what)) == 2
    depth = [len(_indices(state_dict, f"down_blocks.{i}.attentions.0.transformer_blocks.")) for i, a in zip(levels, has_attention) if a]
    if depth and any(d != 1 for d in depth):
        inferred["transformer_layers_per_block"] = [
            len(_indices(state_dict, f"down_blocks.{i}.attentions.0.transformer_blocks.")) or 1 for i in levels]
    _note_differences(what, base, inferred, "UNet config")
    config = {**dict(base), **inferred}
    heads = config.get("num_attention_heads") or config.get("attention_head_dim") or 8
    for width in channels:
        if width % (heads[0] if isinstance(heads, (list, tuple)) else heads):
            raise UserError(f"{what}: width {width} does not split into {heads} attention heads (the UNet config's "
                            "attention_head_dim); give a UNet config with a head count that divides every width")
    return config


def infer_motion_config(motion: Mapping[str, Any], unet_config: Mapping[str, Any], preset_motion: Mapping[str, Any],
                        *, what: str = "motion_module.pth") -> dict[str, Any]:
    """``MotionAdapter`` settings read from AnimateDiff-named motion-module tensors: widths, modules per block,
    mid-block module, transformer depth, position-table length; the head count (not in the tensors) from the
    preset (AnimateDiff: 8); the GroupNorm groups are the UNet's (``UNetMotionModel`` uses them)."""
    levels = _indices(motion, "down_blocks.")
    if not levels:
        raise UserError(f"{what} has no down_blocks.*.motion_modules.* tensors: it is not a motion-module checkpoint")
    channels = [_shape(motion, f"down_blocks.{i}.motion_modules.0.temporal_transformer.proj_in.weight", what)[1]
                for i in levels]
    block = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks."
    pe = next((k for k in motion if k.endswith("pos_encoder.pe")), None)
    config: dict[str, Any] = dict(
        block_out_channels=channels,
        motion_layers_per_block=len(_indices(motion, "down_blocks.0.motion_modules.")),
        motion_num_attention_heads=preset_motion["motion_num_attention_heads"],
        motion_norm_num_groups=unet_config.get("norm_num_groups", 32),
        motion_max_seq_length=_shape(motion, pe, what)[1] if pe else preset_motion["motion_max_seq_length"],
        use_motion_mid_block=any(k.startswith("mid_block.motion_modules.") for k in motion),
    )
    depth = len(_indices(motion, block))
    if depth != 1:
        config["motion_transformer_layers_per_block"] = depth
    unet_channels = list(unet_config["block_out_channels"])
    if channels != unet_channels:
        raise UserError(f"{what} has motion modules of widths {channels} but denoising_unet.pth has levels of "
                        f"{unet_channels}: the two files are not from the same model")
    heads = config["motion_num_attention_heads"]
    if any(width % heads for width in channels):
        raise UserError(f"{what}: widths {channels} do not split into {heads} attention heads (the preset's); "
                        "choose a --preset whose motion head count divides every width")
    return config


def infer_pose_guider_config(state_dict: Mapping[str, Any], *, what: str = "pose_guider.pth") -> dict[str, Any]:
    """``PoseGuider`` settings from the tensors: input and output channels, the width of every level."""
    conv_in = _shape(state_dict, "conv_in.weight", what)
    strided = _indices(state_dict, "blocks.")[1::2]  # each level: a stride-1 conv, then a stride-2 one
    return dict(
        conditioning_channels=conv_in[1],
        conditioning_embedding_channels=_shape(state_dict, "conv_out.weight", what)[0],
        block_out_channels=[conv_in[0], *(_shape(state_dict, f"blocks.{i}.weight", what)[0] for i in strided)],
    )


def convert_moore_state_dicts(
    state_dicts: Mapping[str, Mapping[str, torch.Tensor]],
    unet_config: Mapping[str, Any],
    *,
    preset: str = "sd15",
    seed: int = 0,
) -> dict[str, Any]:
    """Moore's four state dicts (keyed by file name) -> reference_unet, denoising_unet, pose_guider, pcm.

    The architecture is read from the tensors (:func:`infer_unet_config`, :func:`infer_motion_config`,
    :func:`infer_pose_guider_config`); ``unet_config`` (SD 1.5 image variation for real weights) and
    ``preset`` give what tensors do not show (head counts, GroupNorm groups, the new PCM). Modules are
    built on the meta device and take the loaded tensors as they are (fp32), so no memory is spent on
    an initialisation that is overwritten.
    """
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

    from .models.configs import architecture
    from .models.motion import PER_FRAME, set_motion_norm
    from .models.pcm import PoseCorrelationModule
    from .models.pose_guider import PoseGuider

    arch = architecture(preset)
    unet_config = infer_unet_config(state_dicts["denoising_unet.pth"], unet_config, what="denoising_unet.pth")
    motion_config = infer_motion_config(state_dicts["motion_module.pth"], unet_config, arch.motion)
    pose_guider_config = infer_pose_guider_config(state_dicts["pose_guider.pth"])
    if pose_guider_config["conditioning_embedding_channels"] != unet_config["block_out_channels"][0]:
        raise UserError(
            f"pose_guider.pth: conv_out.weight gives {pose_guider_config['conditioning_embedding_channels']} channels "
            f"but the UNet's first level has {unet_config['block_out_channels'][0]}: not from the same model")
    try:
        with torch.device("meta"):
            pose_guider = PoseGuider(**pose_guider_config)
            reference_unet = UNet2DConditionModel.from_config(dict(unet_config))
            spatial = UNet2DConditionModel.from_config(dict(unet_config))
            denoising_unet = UNetMotionModel.from_unet2d(spatial, MotionAdapter(**motion_config))
    except (ValueError, TypeError, RuntimeError) as exc:  # diffusers refuses the combination
        raise UserError(f"cannot build the architecture the files describe: {_last_reason(exc)}") from None
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
    filled = _load_strict(  # Moore loads these two with strict=False: stray tensors are skipped with a warning
        denoising_unet, combined, what="denoising_unet.pth + motion_module.pth", may_be_missing=pe_keys, seed=seed,
        tolerate_unexpected=True,
    )
    log.info("recomputed %d sinusoidal motion-module position buffers (%s)", len(filled), MOTION_PE_SUFFIX[1:])
    set_motion_norm(denoising_unet, PER_FRAME)  # AnimateDiff's motion modules normalise every frame on its own

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pcm = PoseCorrelationModule(**arch.pcm)
    log.info("pose correlation module is new and zero-initialised: the converted model behaves as AnimateAnyone")
    return dict(reference_unet=reference_unet, denoising_unet=denoising_unet, pose_guider=pose_guider, pcm=pcm)


# --------------------------------------------------------------------------- conversion


def write_animate_anyone_extras(model_dir: Path, image_variations: Path) -> None:
    """Beside a converted model: ``sampling.json`` with AnimateAnyone's own sampling settings, and the base
    model's CLIP preprocessing (``feature_extractor/``) where it has one."""
    import json

    from .clip import PREPROCESSOR_FILE, ClipPreprocessing, write_clip_preprocessing
    from .files import atomic_path
    from .model import SAMPLING_FILE
    from .models.configs import ANIMATE_ANYONE_SAMPLING

    base_processor = image_variations / PREPROCESSOR_FILE
    if base_processor.is_file():
        size = json.loads((model_dir / "image_encoder" / "config.json").read_text()).get("image_size", 224)
        try:
            preprocessing = ClipPreprocessing.from_processor_config(json.loads(base_processor.read_text()), size)
        except ValueError as exc:
            raise UserError(f"{base_processor}: {exc}") from None
        write_clip_preprocessing(model_dir, preprocessing)
    with atomic_path(model_dir / SAMPLING_FILE) as tmp:
        Path(tmp).write_text(json.dumps(ANIMATE_ANYONE_SAMPLING, indent=2) + "\n")


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
    out = save_model_dir(components, out_dir, overwrite=overwrite)
    write_animate_anyone_extras(out, image_variations)
    return out


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
