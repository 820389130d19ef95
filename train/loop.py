"""The training loop: one readable loop on accelerate, for every stage.

Randomness is a pure function of ``(seed, rank, step)`` — which samples a step
sees, how many references, the noise, the timesteps, the reference dropout — so
a run resumed from a checkpoint continues exactly as if it had never stopped,
and every rank sees different data.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, broadcast_object_list
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from einops import rearrange

from engine.errors import UserError
from engine.files import atomic_dir, atomic_path, write_text_atomic
from engine.model import OPTIONAL_COMPONENTS as OPTIONAL
from engine.model import check_model_dir
from engine.models.configs import build_components
from engine.models.network import FreeViewNetwork
from engine.pipeline import FreeViewPipeline, clip_pixels, warp_tensors

from .config import TrainConfig, config_to_yaml, inherit_from_model
from .framing import framing_loss

logger = logging.getLogger(__name__)
CHECKPOINT = re.compile(r"^step-(\d{7})$")
COMPONENTS = ("vae", "image_encoder", "reference_unet", "denoising_unet", "pose_guider", "pcm", "scheduler")


# -- model ------------------------------------------------------------------------------------------
def load_components(config: TrainConfig) -> dict:
    if config.init_from is None:
        components = build_components(config.architecture, seed=config.seed)
        components["scheduler"] = training_scheduler(config, components["scheduler"])
        return with_refiner(config, with_appearance(config, components))
    try:
        path = check_model_dir(config.init_from)
    except UserError as exc:
        raise UserError(f"init_from: {exc}") from None
    # float32 master weights whatever the model was stored in (an export is float16)
    pipe = FreeViewPipeline.from_pretrained(path, torch_dtype=torch.float32)
    components = {name: getattr(pipe, name, None) for name in COMPONENTS + OPTIONAL}
    components["scheduler"] = training_scheduler(config, components["scheduler"])
    check_architecture(config, components, f"init_from {path}")
    return with_refiner(config, with_appearance(config, components))


def with_appearance(config: TrainConfig, components: dict) -> dict:
    """``appearance: warp`` gives the pose guider its zero-initialised appearance input (the warped references'
    latents and coverage) when it has none; the model computes what it computed before until it learns to use it."""
    if config.appearance == "warp" and config.stage in ("image", "temporal"):
        from engine.models.pose_guider import PoseGuider

        channels = components["vae"].config.latent_channels + 1
        components["pose_guider"] = PoseGuider.with_appearance(components["pose_guider"], channels)
    return components


def with_refiner(config: TrainConfig, components: dict) -> dict:
    """The refiner stage adds a zero-initialised appearance refiner to a model that has none (it renders as before
    until trained)."""
    components.setdefault("refiner", None)
    if config.stage == "refiner" and components["refiner"] is None:
        from engine.models.refiner import AppearanceRefiner

        components["refiner"] = AppearanceRefiner()
    return components


def training_scheduler(config: TrainConfig, scheduler):
    """The model's scheduler with the objective this run trains, so the exported model samples with it
    (the decoder and refiner stages train no diffusion objective: they sample with the model's own)."""
    if config.stage in ("decoder", "refiner"):
        return scheduler
    overrides = {"prediction_type": config.prediction_type}
    if config.zero_terminal_snr is not None:
        overrides["rescale_betas_zero_snr"] = config.zero_terminal_snr
    return type(scheduler).from_config(scheduler.config, **overrides)


def check_architecture(config: TrainConfig, components: dict, where: str) -> None:
    """A model directory must have the config's architecture: one clear error instead of shape mismatches later."""
    from engine.models.configs import PRESETS

    if config.architecture not in PRESETS:
        raise UserError(f"config: architecture={config.architecture!r} is not one of {', '.join(PRESETS)}")
    wanted = PRESETS[config.architecture].unet
    have = components["denoising_unet"].config
    plain = lambda v: list(v) if isinstance(v, (list, tuple)) else v
    for key in ("block_out_channels", "cross_attention_dim", "layers_per_block"):
        if plain(have[key]) != plain(wanted[key]):
            raise UserError(f"{where} is not a {config.architecture!r} model ({key} {have[key]} vs {wanted[key]}); "
                            "set architecture: to the model's architecture or use a matching model")


def trainable_parameters(config: TrainConfig, components: dict, network: FreeViewNetwork) -> list[torch.nn.Parameter]:
    for module in components.values():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False)
    if config.stage == "vae":
        modules = [components["vae"]]
    elif config.stage == "decoder":
        vae = components["vae"]
        modules = [vae.decoder] + ([vae.post_quant_conv] if vae.post_quant_conv is not None else [])
    elif config.stage == "refiner":
        modules = [components["refiner"]]
    elif config.stage == "image":
        modules = [network.reference_unet, network.denoising_unet, network.pose_guider, network.pcm]
        if config.train_image_encoder:
            modules.append(components["image_encoder"])
    else:
        modules = [m for n, m in network.denoising_unet.named_modules() if n.endswith("motion_modules")]
    for module in modules:
        module.requires_grad_(True)
    if config.stage == "image":
        for name, module in network.denoising_unet.named_modules():  # motion modules belong to stage 2
            if name.endswith("motion_modules"):
                module.requires_grad_(False)
    if config.lora_rank is not None:
        from .lora import add_lora

        return add_lora(config, network)
    return [p for m in modules for p in m.parameters() if p.requires_grad]


# -- data -------------------------------------------------------------------------------------------
def make_dataset(config: TrainConfig, split: str = "train"):
    from .synth.dataset import SynthDataset

    root = Path(config.data)
    if not (root / "index.json").exists():
        raise UserError(f"data: {root} holds no dataset (no index.json); make one with `freeview synth make` or `freeview train prepare`")
    dataset = SynthDataset(root, split=split, num_refs=config.max_refs, num_frames=config.frames, size=config.resolution,
                           cache_clips=100_000, reference_shots=config.reference_shots)
    if len(dataset) == 0:
        raise UserError(f"data: {root} has no {split} samples")
    return dataset


def step_generator(config: TrainConfig, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(config.seed * 1_000_003 + rank * 10_007 + step)


def trace(rank: int, record: Callable[[], dict]) -> None:
    """Tests: what each rank saw and did, one JSON line per record, when FREEVIEW_TRAIN_TRACE names a file stem.
    ``record`` is called only then, so tracing costs nothing in a normal run."""
    stem = os.environ.get("FREEVIEW_TRAIN_TRACE")
    if stem:
        with open(f"{stem}.rank{rank}", "a") as fh:
            fh.write(json.dumps({"rank": rank, **record()}) + "\n")


def average_gradients(accelerator: Accelerator, params: list[torch.nn.Parameter]) -> None:
    """Mean of ``params``' gradients over all processes, for parameters trained outside the DDP-wrapped model
    (the image encoder). A rank that did not use them this step (reference dropout) contributes zeros."""
    if accelerator.num_processes == 1 or not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    flat = accelerator.reduce(flat, reduction="mean")
    for p, grad in zip(params, flat.split([p.numel() for p in params])):
        p.grad = grad.view_as(p).clone()


def zero_missing_gradients(params: list[torch.nn.Parameter]) -> None:
    """FSDP: a zero gradient for each parameter that got none this step (the reference UNet's layers after its
    last read one, or all of it when the references are dropped), as sharded data parallelism treats them anyway,
    so that every parameter has optimizer state: a sharded checkpoint lacking some cannot be resumed (torch's
    distributed checkpoint loads the optimizer state of every parameter)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)


def batch_for_step(dataset, config: TrainConfig, rank: int, step: int) -> dict:
    g = step_generator(config, rank, step)
    indices = torch.randint(len(dataset), (config.batch_size,), generator=g).tolist()
    trace(rank, lambda: {"step": step, "indices": indices})
    samples = []
    for j, i in enumerate(indices):
        with torch.random.fork_rng():  # the dataset draws references from torch's RNG: pin it to (step, rank, j)
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=g)))
            samples.append(dataset[i])
    keys = ("ref_images", "ref_poses", "target_images", "target_poses", "ref_keypoints", "target_keypoints")
    return {k: torch.stack([s[k] for s in samples]) for k in keys}


# -- losses -----------------------------------------------------------------------------------------
@torch.no_grad()
def warped_appearance(vae, ref_images: torch.Tensor, ref_keypoints: torch.Tensor, target_keypoints: torch.Tensor) -> torch.Tensor:
    """The appearance input for a batch: each sample's references warped into its target poses (engine.warps),
    encoded as the pipeline does. ref_images ``(b, r, 3, H, W)`` in [-1, 1]; keypoints ``(b, r|f, 128, 3)``
    -> ``(b, f, latent_channels + 1, h, w)``."""
    from engine.pipeline import appearance_latents
    from engine.warps import ReferenceWarper

    b, _, _, height, width = ref_images.shape
    pixels = ((ref_images + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 1, 3, 4, 2).cpu().numpy()
    images, coverage = [], []
    for i in range(b):
        warper = ReferenceWarper(list(pixels[i]), list(ref_keypoints[i].cpu().numpy()))
        warped, covered = warper.compose_track(target_keypoints[i].cpu().numpy(), height, width)
        images.append(warped)
        coverage.append(covered)
    images, coverage = warp_tensors(np.concatenate(images), np.concatenate(coverage), ref_images.device)
    return rearrange(appearance_latents(vae, images, coverage), "(b f) c h w -> b f c h w", b=b)


def vae_loss(config: TrainConfig, vae, batch: dict, g: torch.Generator) -> torch.Tensor:
    images = rearrange(batch["target_images"], "b f c h w -> (b f) c h w")
    posterior = vae.encode(images).latent_dist
    latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=g).to(images)
    recon = vae.decode(latents).sample
    return F.l1_loss(recon, images) + F.mse_loss(recon, images) + config.kl_weight * posterior.kl().mean()


@torch.no_grad()
def model_samples(config: TrainConfig, pipe: FreeViewPipeline, batch: dict, g: torch.Generator) -> list:
    """The frozen model's latents for each of a batch's targets (1 to ``max_refs`` references, seeded from ``g``),
    sampled as at inference (``sampling_steps`` / ``sampling_guidance`` / ``sampling_noise_correlation``): what the
    decoder and refiner stages learn from. Each output also holds the warp composite and its coverage when the model
    has a refiner."""
    b, _, _, h, w = batch["target_images"].shape
    refs = int(torch.randint(1, batch["ref_images"].shape[1] + 1, (1,), generator=g))
    ref_images = ((batch["ref_images"][:, :refs] + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 1, 3, 4, 2).cpu().numpy()
    outputs = []
    for i in range(b):
        seed = int(torch.randint(2**62, (1,), generator=g))
        outputs.append(pipe(list(ref_images[i]), list(batch["ref_keypoints"][i, :refs].cpu().numpy()),
                            batch["target_keypoints"][i].cpu().numpy(), height=h, width=w,
                            num_inference_steps=config.sampling_steps, guidance_scale=config.sampling_guidance,
                            noise_correlation=config.sampling_noise_correlation,
                            generator=torch.Generator().manual_seed(seed), output_type="latent"))
    return outputs


def decoder_loss(config: TrainConfig, vae, pipe: FreeViewPipeline, batch: dict, g: torch.Generator) -> torch.Tensor:
    """The decoder learns to turn the latents the trained model samples (as it will at inference) into the
    real frames: for a model sampled in few steps those latents are smoother than the encoder's, and a decoder
    that has only seen the encoder's renders them blurrier than it must."""
    latents = torch.cat([out.latents for out in model_samples(config, pipe, batch, g)])
    latents = rearrange(latents, "b c f h w -> (b f) c h w") / vae.config.scaling_factor
    recon = vae.decode(latents.to(batch["target_images"])).sample
    images = rearrange(batch["target_images"], "b f c h w -> (b f) c h w")
    return F.l1_loss(recon, images) + F.mse_loss(recon, images)


def refiner_loss(config: TrainConfig, refiner, pipe: FreeViewPipeline, batch: dict, g: torch.Generator) -> torch.Tensor:
    """The refiner learns to correct the frames the trained model renders (sampled and decoded as at inference) with
    the references warped into the target poses, towards the real frames: L1 + MSE, and ``gradient_loss_weight`` times
    the L1 between their image gradients (edges: what the autoencoder blurs)."""
    device = batch["target_images"].device
    outputs = model_samples(config, pipe, batch, g)
    with torch.no_grad():
        latents = rearrange(torch.cat([out.latents for out in outputs]), "b c f h w -> (b f) c h w")
        frames = pipe.vae.decode((latents / pipe.vae.config.scaling_factor).to(batch["target_images"])).sample.clamp(-1, 1)
    warped, coverage = warp_tensors(np.concatenate([out.warped for out in outputs]),
                                    np.concatenate([out.coverage for out in outputs]), device)
    poses = rearrange(batch["target_poses"], "b f c h w -> (b f) c h w")
    refined = refiner(frames, warped, coverage, poses)
    images = rearrange(batch["target_images"], "b f c h w -> (b f) c h w")
    loss = F.l1_loss(refined, images) + F.mse_loss(refined, images)
    if config.gradient_loss_weight:
        loss = loss + config.gradient_loss_weight * gradient_loss(refined, images)
    return loss


def gradient_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical finite differences of two image batches ``(n, c, H, W)``."""
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]
    return F.l1_loss(dx(output), dx(target)) + F.l1_loss(dy(output), dy(target))


def diffusion_loss(config: TrainConfig, network, components: dict, batch: dict, g: torch.Generator) -> torch.Tensor:
    vae, image_encoder, scheduler = components["vae"], components["image_encoder"], components["scheduler"]
    device = batch["target_images"].device
    b, f = batch["target_images"].shape[:2]
    refs = int(torch.randint(1, batch["ref_images"].shape[1] + 1, (1,), generator=g))
    drop = float(torch.rand(1, generator=g)) < config.reference_dropout
    scale = vae.config.scaling_factor
    with torch.no_grad():
        target = vae.encode(rearrange(batch["target_images"], "b f c h w -> (b f) c h w")).latent_dist.mean * scale
        target = rearrange(target, "(b f) c h w -> b c f h w", b=b)
        ref_images = batch["ref_images"][:, :refs]
        ref_latents = vae.encode(rearrange(ref_images, "b r c h w -> (b r) c h w")).latent_dist.mean * scale
        ref_latents = rearrange(ref_latents, "(b r) c h w -> b r c h w", b=b)
    with torch.set_grad_enabled(image_encoder.training and not drop):
        pixels = clip_pixels(rearrange((ref_images + 1) / 2, "b r c h w -> (b r) c h w"), image_encoder.config.image_size)
        ref_embeds = rearrange(image_encoder(pixels).image_embeds, "(b r) d -> b r d", b=b)
    noise = torch.randn(target.shape, generator=g).to(device)
    timesteps = sample_timesteps(config, scheduler.config.num_train_timesteps, b, g).to(device)
    noisy = scheduler.add_noise(target, noise, timesteps)
    goal = noise if config.prediction_type == "epsilon" else scheduler.get_velocity(target, noise, timesteps)
    if drop:
        pred = network(noisy, timesteps, None, None, None, batch["target_poses"])
    else:
        appearance = None
        if components["pose_guider"].config.get("appearance_channels", 0):
            appearance = warped_appearance(vae, ref_images, batch["ref_keypoints"][:, :refs], batch["target_keypoints"])
        pred, correlation = network(noisy, timesteps, ref_latents, ref_embeds, batch["ref_poses"][:, :refs],
                                    batch["target_poses"], return_correlation=True, target_appearance=appearance)
    loss = F.mse_loss(pred.float(), goal.float(), reduction="none").mean(dim=(1, 2, 3, 4))
    loss = (loss * snr_weights(config, scheduler, timesteps)).mean()
    if config.framing_loss_weight and not drop and refs > 1:
        loss = loss + config.framing_loss_weight * framing_loss(
            correlation, batch["ref_keypoints"][:, :refs], batch["target_keypoints"])
    return loss


def timestep_weights(config: TrainConfig, num_train_timesteps: int) -> torch.Tensor:
    """Probability of drawing each training timestep (uniform unless ``timestep_bias_strategy`` says otherwise)."""
    weights = torch.ones(num_train_timesteps, dtype=torch.float64)
    if config.timestep_bias_strategy != "none":
        portion = max(1, round(config.timestep_bias_portion * num_train_timesteps))
        biased = slice(num_train_timesteps - portion, None) if config.timestep_bias_strategy == "later" else slice(0, portion)
        weights[biased] *= config.timestep_bias_multiplier
    return weights / weights.sum()


def sample_timesteps(config: TrainConfig, num_train_timesteps: int, batch: int, g: torch.Generator) -> torch.Tensor:
    if config.timestep_bias_strategy == "none":  # the uniform draw, unchanged
        return torch.randint(0, num_train_timesteps, (batch,), generator=g)
    return torch.multinomial(timestep_weights(config, num_train_timesteps), batch, replacement=True, generator=g)


def snr_weights(config: TrainConfig, scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023, arXiv 2303.09556); ones when ``snr_gamma`` is unset."""
    if config.snr_gamma is None:
        return torch.ones(timesteps.shape, device=timesteps.device)
    alphas = scheduler.alphas_cumprod.to(timesteps.device)[timesteps]
    snr = alphas / (1 - alphas)
    clipped = snr.clamp(max=config.snr_gamma)
    return clipped / (snr + 1) if config.prediction_type == "v_prediction" else clipped / snr


# -- checkpoints ------------------------------------------------------------------------------------
def checkpoints(output_dir: Path) -> list[Path]:
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if CHECKPOINT.match(p.name) and (p / "COMPLETE").exists())


def resolve_resume(output_dir: Path, resume: str | None) -> Path | None:
    if resume is None:
        return None
    if resume == "latest":
        found = checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "COMPLETE").exists():
        raise UserError(f"resume: {path} is not a complete checkpoint")
    return path


@contextlib.contextmanager
def pipeline_of(components: dict, fuse_lora: bool = False):
    """A FreeViewPipeline over the training components (sharing their weights).
    ``fuse_lora``: plain UNet copies with the adapters fused (for export)."""
    parts = {name: components.get(name) for name in COMPONENTS + OPTIONAL}
    if fuse_lora:
        from .lora import has_lora, merged_unet

        for name in ("reference_unet", "denoising_unet"):
            if has_lora(parts[name]):
                parts[name] = merged_unet(parts[name])
    yield FreeViewPipeline(**parts)


def export_model(components: dict, directory: Path) -> None:
    """A loadable model directory (diffusers layout); LoRA adapters are fused into the weights."""
    with pipeline_of(components, fuse_lora=True) as pipe:
        pipe.save_pretrained(directory, safe_serialization=True)


def check_fsdp(config: TrainConfig, version: int) -> None:
    """What FSDP trains here: the animation network of stages 1 and 2 (sharded), full fine-tuning, no EMA,
    FSDP2 (``fsdp_version: 2``)."""
    if version != 2:
        raise UserError(f"FSDP: fsdp_version {version} is not supported; set fsdp_version: 2 in the accelerate config")
    if config.stage not in ("image", "temporal"):
        what = "the appearance refiner" if config.stage == "refiner" else "the autoencoder through its own encode/decode"
        raise UserError(f"FSDP: stage {config.stage} trains {what}, outside the sharded forward pass of the animation "
                        "network; train it with DDP (accelerate launch --multi_gpu)")
    for key in ("lora_rank", "ema_decay"):
        if getattr(config, key) is not None:
            raise UserError(f"FSDP: {key} is not supported with sharded parameters; unset it or train with DDP "
                            "(accelerate launch --multi_gpu)")


def keep_reference_gathered(network: FreeViewNetwork) -> None:
    """FSDP2 re-gathers a resharded layer's parameters for backward when the gradient reaches its outputs; the
    reference UNet's hidden states are read by the denoising UNet from inside its layers, so backward reaches them
    there: its layers keep their parameters gathered from forward to backward (the denoising UNet's reshard)."""
    from torch.distributed.fsdp import FSDPModule

    for module in network.reference_unet.modules():
        if isinstance(module, FSDPModule):
            module.set_reshard_after_forward(False, recurse=False)


def full_components(accelerator: Accelerator, model, components: dict) -> dict | None:
    """``components`` holding the full trained weights, for export. Without FSDP: ``components`` themselves.
    With FSDP the model's parameters are shards: their full state is gathered (every rank must call this) and
    the main process gets plain copies of the model's modules loaded with it, the other ranks None."""
    if accelerator.distributed_type != DistributedType.FSDP:
        return components
    state = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return None
    parts = dict(components)
    for name, module in accelerator.unwrap_model(model).named_children():
        with torch.device("meta"):
            plain = type(module).from_config(module.config)
        plain.load_state_dict({k.removeprefix(f"{name}."): v for k, v in state.items() if k.startswith(f"{name}.")},
                              assign=True)
        parts[name] = plain
    return parts


def save_checkpoint(accelerator: Accelerator, config: TrainConfig, model, components: dict, step: int) -> Path:
    """Accelerate state + a loadable model, written to a temporary folder and renamed when complete.
    Every rank calls it (with FSDP each writes its shards of the state); the main process writes the rest."""
    output_dir = Path(config.output_dir)
    final = output_dir / "checkpoints" / f"step-{step:07d}"
    main = accelerator.is_main_process
    try:
        with atomic_dir(final) if main else contextlib.nullcontext() as tmp:
            tmp = broadcast_object_list([tmp])[0]  # the main process's temporary folder
            accelerator.save_state(str(tmp / "state"))
            parts = full_components(accelerator, model, components)
            if main:
                export_model(parts, tmp / "model")
                (tmp / "config.yaml").write_text(config_to_yaml(config))
                (tmp / "COMPLETE").write_text(f"{step}\n")
            accelerator.wait_for_everyone()  # every rank's shards are written before the folder is renamed
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(f"no space left on the disk while writing checkpoint step {step} in {final.parent}; "
                            "the half-written one was removed and earlier checkpoints are intact. Free some space "
                            "(or lower keep_checkpoints) and resume with --resume latest") from None
        raise
    if main:
        for old in checkpoints(output_dir)[: -config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    return final


# -- the loop ---------------------------------------------------------------------------------------
def train(config: TrainConfig, resume: str | None = None, *, max_steps: int | None = None) -> dict:
    """Run (or continue) training; returns ``{"step", "loss", "seconds_per_step"}``.

    ``max_steps`` stops early (for benchmarks and tests) without changing the schedule.
    """
    if max_steps is not None and max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {max_steps}")
    config = inherit_from_model(config.validate())  # what the config leaves out: the starting model's
    resolve_resume(Path(config.output_dir), resume)  # a --resume that is not a checkpoint: refused before any work
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    rank = accelerator.process_index
    sharded = accelerator.distributed_type == DistributedType.FSDP
    if sharded:
        check_fsdp(config, accelerator.state.fsdp_plugin.fsdp_version)
    components = load_components(config)
    network = FreeViewNetwork(components["reference_unet"], components["denoising_unet"], components["pose_guider"], components["pcm"])
    params = trainable_parameters(config, components, network)
    if not params:
        raise UserError(f"stage {config.stage}: nothing to train")
    if config.gradient_checkpointing:
        for unet in (network.reference_unet, network.denoising_unet):
            unet.enable_gradient_checkpointing()
    optimizer = make_optimizer(config, parameter_groups(config, components, params))
    lr_scheduler = get_scheduler(f"{config.lr_schedule}_with_warmup" if config.lr_schedule == "constant" else config.lr_schedule,
                                 optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.steps)
    model = {"vae": components["vae"], "decoder": components["vae"], "refiner": components["refiner"]}.get(config.stage, network)
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    if sharded:  # the optimizer now holds the model's shards
        params = [p for group in optimizer.param_groups for p in group["params"]]
        keep_reference_gathered(network)
    ema = EMAModel(params, decay=config.ema_decay) if config.ema_decay else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    for name in ("vae", "image_encoder"):
        components[name].to(accelerator.device)
    components["image_encoder"].train(config.train_image_encoder and config.stage == "image")
    # Trained outside the DDP-wrapped forward pass, so DDP does not average their gradients: averaged by hand.
    # (The image encoder in stage 1; everything the autoencoder stages train, as they call the VAE's encode/decode.)
    if config.stage in ("vae", "decoder"):
        outside_ddp = params
    elif config.stage == "image":
        outside_ddp = [p for p in components["image_encoder"].parameters() if p.requires_grad]
    else:
        outside_ddp = []
    dataset = make_dataset(config)
    sampler = None
    if config.stage in ("decoder", "refiner"):  # the frozen animation model, sampling what these stages learn from
        sampler = FreeViewPipeline(**{name: components[name] for name in COMPONENTS}, refiner=components["refiner"])
        sampler.set_progress_bar_config(disable=True)
        network.to(accelerator.device).eval()  # not prepared by accelerate in this stage: placed here

    step = 0
    checkpoint = resolve_resume(output_dir, resume)
    if checkpoint is not None:
        load_checkpoint(accelerator, config, checkpoint)
        step = int((checkpoint / "COMPLETE").read_text())
        logger.info("resumed from %s at step %d", checkpoint, step)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        trim_log(output_dir / "log.csv", step)  # steps after the checkpoint (all, from scratch) are trained again
        write_text_atomic(output_dir / "config.yaml", config_to_yaml(config))
    log_path = output_dir / "log.csv"
    board = tensorboard_writer(output_dir) if accelerator.is_main_process else None

    last_loss, started, first_step = math.nan, time.perf_counter(), step
    stop = config.steps if max_steps is None else min(config.steps, step + max_steps)
    model.train()
    bar = progress_bar(config, step, stop, disable=not accelerator.is_main_process)
    while step < stop:
        g = step_generator(config, rank, step)
        batch = {k: v.to(accelerator.device) for k, v in batch_for_step(dataset, config, rank, step).items()}
        with accelerator.accumulate(model):
            if config.stage == "vae":
                loss = vae_loss(config, accelerator.unwrap_model(model), batch, g)
            elif config.stage == "decoder":
                loss = decoder_loss(config, accelerator.unwrap_model(model), sampler, batch, g)
            elif config.stage == "refiner":
                loss = refiner_loss(config, model, sampler, batch, g)
            else:
                loss = diffusion_loss(config, model, components, batch, g)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                average_gradients(accelerator, outside_ddp)
                if sharded:
                    zero_missing_gradients(params)
                accelerator.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(params)
        if outside_ddp:
            trace(rank, lambda: {"step": step,
                                 "outside_ddp_sum": float(sum(p.detach().double().sum() for p in outside_ddp))})
        step += 1
        last_loss = accelerator.gather(loss.detach()[None]).mean().item()
        bar.set_postfix_str(f"loss {last_loss:.4f}", refresh=False)
        bar.update(1)
        if accelerator.is_main_process and (step % config.log_every == 0 or step == stop):
            append_log(log_path, step, last_loss, lr_scheduler.get_last_lr()[0])
            if board is not None:
                board.add_scalar("train/loss", last_loss, step)
                board.add_scalar("train/lr", lr_scheduler.get_last_lr()[0], step)
        if config.sample_every and step % config.sample_every == 0 and config.stage != "vae" and accelerator.is_main_process:
            model.eval()
            bar.write(f"step {step}: preview {save_sample(components, dataset, config, step, output_dir / 'samples')}")
            model.train()
        if step % config.checkpoint_every == 0 or step == config.steps:
            accelerator.wait_for_everyone()
            if config.stage == "vae" and accelerator.is_main_process:
                calibrate_latent_scale(components["vae"], dataset, config)
            saved = save_checkpoint(accelerator, config, model, components, step)
            if accelerator.is_main_process:
                bar.write(f"step {step}: checkpoint {saved}")
    if step == config.steps:
        with ema_weights(ema, params):
            parts = full_components(accelerator, model, components)
            if accelerator.is_main_process:
                with atomic_dir(output_dir / "model") as tmp:
                    export_model(parts, tmp)
    bar.close()
    elapsed = time.perf_counter() - started
    if board is not None:
        board.close()
    accelerator.end_training()
    return {"step": step, "loss": last_loss, "seconds_per_step": elapsed / max(1, step - first_step)}


def progress_bar(config: TrainConfig, step: int, stop: int, disable: bool = False):
    """The console's view of a run: step, loss, seconds per step and time left (tqdm). On a terminal it
    redraws each second; into a file or pipe it writes a line every 30 s, so a log stays readable."""
    import sys

    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=stop, initial=step, desc=f"train {config.stage}", unit="step", disable=disable,
                mininterval=1.0 if tty else 30.0, dynamic_ncols=tty, ascii=not tty,
                bar_format="{desc} {n_fmt}/{total_fmt} {bar} [{elapsed}<{remaining}, {rate_inv_fmt}] {postfix}")


def load_checkpoint(accelerator: Accelerator, config: TrainConfig, checkpoint: Path) -> None:
    """Restore model, optimizer, scheduler and RNG; a checkpoint of another architecture or stage is one clear error."""
    saved = checkpoint / "config.yaml"
    if saved.exists():
        import yaml

        before = yaml.safe_load(saved.read_text()) or {}
        for key in ("architecture", "stage", "lora_rank"):
            if key in before and before[key] != getattr(config, key):
                raise UserError(f"resume: {checkpoint} was trained with {key}={before[key]!r}, this config has "
                                f"{key}={getattr(config, key)!r}; use a new output_dir or the same {key}")
    try:
        accelerator.load_state(str(checkpoint / "state"))
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UserError(f"resume: {checkpoint} does not fit this model (another architecture?): {first}") from None


def tensorboard_writer(output_dir: Path):
    """A TensorBoard writer under ``output_dir/tensorboard`` when tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(output_dir / "tensorboard"))


@torch.no_grad()
def save_sample(components: dict, dataset, config: TrainConfig, step: int, folder: Path) -> Path:
    """A preview PNG of the fixed eval sample: references | ground truth | generated frames, sampled as the
    model will be (``sampling_steps`` / ``sampling_guidance``), seeded."""
    import cv2
    import numpy as np

    sample = dataset[0] if dataset.split != "train" else _fixed_item(dataset)
    to_uint8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    refs = to_uint8(sample["ref_images"])
    truth = to_uint8(sample["target_images"])
    size = truth.shape[1]
    with pipeline_of(components) as pipe:
        out = pipe(list(refs), list(sample["ref_keypoints"].numpy()), sample["target_keypoints"].numpy(),
                   height=size, width=size, num_inference_steps=config.sampling_steps, guidance_scale=config.sampling_guidance,
                   noise_correlation=config.sampling_noise_correlation, generator=torch.Generator().manual_seed(config.seed))
    rows = [np.concatenate(list(refs), 1), np.concatenate(list(truth), 1), np.concatenate(list(out.frames), 1)]
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], 0)
    path = folder / f"step-{step:07d}.png"
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def _fixed_item(dataset) -> dict:
    with torch.random.fork_rng():  # train-split references come from torch's RNG: the same sample every time
        torch.manual_seed(0)
        return dataset[0]


def parameter_groups(config: TrainConfig, components: dict, params: list) -> list:
    """The optimizer's parameter groups: everything at ``learning_rate``, the pose guider's appearance input at
    ``appearance_learning_rate`` when set (a new, zero-initialised path in a trained network)."""
    guider = components.get("pose_guider")
    path = getattr(guider, "appearance_in", None)
    if config.appearance_learning_rate is None or path is None:
        return params
    ids = {id(p) for p in path.parameters()}
    new = [p for p in params if id(p) in ids]
    rest = [p for p in params if id(p) not in ids]
    return [{"params": rest}, {"params": new, "lr": config.appearance_learning_rate}] if new else params


def make_optimizer(config: TrainConfig, params):
    if config.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise UserError("optimizer: adamw8bit needs bitsandbytes (pip install bitsandbytes) and a CUDA GPU") from None
        return bnb.optim.AdamW8bit(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


class ema_weights:
    """Use the EMA weights while exporting, then put the trained ones back."""

    def __init__(self, ema, params):
        self.ema, self.params = ema, params

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.params)
            self.ema.copy_to(self.params)

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.params)


@torch.no_grad()
def calibrate_latent_scale(vae, dataset, config: TrainConfig, samples: int = 32) -> float:
    """Set ``vae.config.scaling_factor`` so the latents have unit variance (as SD's 0.18215 does)."""
    g = torch.Generator().manual_seed(config.seed)
    indices = torch.randint(len(dataset), (samples,), generator=g).tolist()
    images = torch.stack([dataset[i]["target_images"][0] for i in indices]).to(vae.device)
    std = vae.encode(images).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))
    return vae.config.scaling_factor


def trim_log(path: Path, step: int) -> None:
    """Forget logged steps after ``step`` (they are trained again after a resume)."""
    if not path.exists() or not path.read_text().strip():
        return
    lines = path.read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",")[0].isdigit() and int(line.split(",")[0]) <= step]
    write_text_atomic(path, "\n".join(kept) + "\n")


def append_log(path: Path, step: int, loss: float, lr: float) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["step", "loss", "lr", "time"])
        writer.writerow([step, f"{loss:.6f}", f"{lr:.3e}", f"{time.time():.1f}"])
