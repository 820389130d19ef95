"""The multi-reference video pipeline: reference photos + target poses -> frames."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from einops import rearrange
from torch.nn import functional as F

from .clip import ClipPreprocessing, read_clip_preprocessing, write_clip_preprocessing
from .context import aggregation_weights, context_windows
from .model import DEFAULT_SAMPLING
from .models.network import FreeViewNetwork
from .models.pcm import PoseCorrelationModule  # noqa: F401  (from_pretrained loads only imported libraries)
from .models.pose_guider import PoseGuider  # noqa: F401
from .models.refiner import AppearanceRefiner  # noqa: F401

logger = logging.getLogger(__name__)

SCHEDULERS = {
    "ddim": lambda config: DDIMScheduler.from_config(config),
    "dpmsolver++": lambda config: DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++"),
}


def clip_pixels(images: torch.Tensor, size: int) -> torch.Tensor:
    """images ``(n, 3, H, W)`` in [0, 1] -> CLIP-normalised pixels ``(n, 3, size, size)``: the short side
    resized to ``size``, the centre cropped (``CLIPImageProcessor``'s rule, :mod:`engine.clip`)."""
    return ClipPreprocessing.for_size(size)(images)


@torch.no_grad()
def appearance_latents(vae, images: torch.Tensor, coverage: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """The appearance input of a pose guider that takes one: the references warped into the target poses
    (:mod:`engine.warps`) as VAE latents, and their coverage at the latent size.

    images ``(n, 3, H, W)`` in [-1, 1], coverage ``(n, 1, H, W)`` in [0, 1] -> ``(n, latent_channels + 1, h, w)``.
    """
    latents = torch.cat([vae.encode(part.to(vae.dtype)).latent_dist.mean for part in images.split(chunk)])
    latents = latents * vae.config.scaling_factor
    covered = F.interpolate(coverage.to(latents.dtype), size=latents.shape[-2:], mode="area")
    return torch.cat([latents, covered], 1)


def warp_tensors(warped: np.ndarray, coverage: np.ndarray, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The warp composite ``(n, H, W, 3)`` uint8 and its coverage ``(n, H, W)`` (:mod:`engine.warps`) as tensors:
    images ``(n, 3, H, W)`` in [-1, 1] and coverage ``(n, 1, H, W)`` in [0, 1]."""
    images = torch.from_numpy(np.ascontiguousarray(warped)).permute(0, 3, 1, 2).to(device, dtype) / 127.5 - 1
    return images, torch.from_numpy(np.ascontiguousarray(coverage))[:, None].to(device, dtype)


def starting_noise(shape: tuple[int, ...], generator: torch.Generator | None, device, correlation: float = 0.0) -> torch.Tensor:
    """Standard normal noise ``(b, c, frames, h, w)`` float32 whose frames are correlated by ``correlation``: each
    frame's own noise mixed with one shared by all (PYoCo's mixed noise prior), every value still N(0, 1).
    0 draws exactly diffusers' ``randn_tensor``; it is drawn on the generator's device."""
    noise = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
    if correlation > 0:
        shared = randn_tensor((*shape[:2], 1, *shape[3:]), generator=generator, device=device, dtype=torch.float32)
        noise = (1 - correlation) ** 0.5 * noise + correlation ** 0.5 * shared
    return noise


def extract_reference_pose(image: np.ndarray) -> np.ndarray:
    """The pose ``(128, 3)`` of the one person in ``image``; a clear error when nobody is there."""
    from .errors import UserError
    from .poses import extract_image_pose

    track = extract_image_pose(image)
    if not track.detected[0]:
        raise UserError("no person found in a reference image; use photos that show the person clearly")
    return track.keypoints[0]


@dataclass
class FreeViewPipelineOutput(BaseOutput):
    """frames: ``(frames, height, width, 3)`` uint8 (None when interrupted or when latents were asked for).
    latents: ``(1, channels, frames, h, w)`` the sampled latents, scaled, when ``output_type="latent"``.
    correlation: ``(frames, refs, h, w)`` float32 PCM maps, when asked for.
    timings: seconds spent in ``reference``, ``denoise`` and ``decode``.
    warped: ``(frames, height, width, 3)`` uint8 the references warped into the target poses, and coverage
    ``(frames, height, width)`` float32 where they show the person, for a model that takes them (its pose guider's
    appearance input, its refiner)."""

    frames: np.ndarray | None
    latents: torch.Tensor | None = None
    correlation: np.ndarray | None = None
    warped: np.ndarray | None = None
    coverage: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


class FreeViewPipeline(DiffusionPipeline):
    """Free-viewpoint human animation (pose-correlated reference selection).

    Components: ``vae``, ``image_encoder`` (CLIP vision with projection), ``reference_unet``,
    ``denoising_unet`` (with motion modules), ``pose_guider``, ``pcm``, ``scheduler``, and optionally
    ``refiner`` (:class:`~engine.models.refiner.AppearanceRefiner`, which corrects the decoded frames with the
    references warped into the target poses; AnimateAnyone has none).
    """

    model_cpu_offload_seq = "image_encoder->reference_unet->pcm->pose_guider->denoising_unet->vae->refiner"
    _optional_components = ["refiner"]

    def __init__(self, vae, image_encoder, reference_unet, denoising_unet, pose_guider, pcm, scheduler, refiner=None):
        super().__init__()
        self.register_modules(
            vae=vae, image_encoder=image_encoder, reference_unet=reference_unet, denoising_unet=denoising_unet,
            pose_guider=pose_guider, pcm=pcm, scheduler=scheduler, refiner=refiner,
        )
        self.network = FreeViewNetwork(reference_unet, denoising_unet, pose_guider, pcm)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        # CLIPImageProcessor's settings; from_pretrained reads the model's own (feature_extractor/)
        self.clip_preprocessing = ClipPreprocessing.for_size(image_encoder.config.image_size)
        self._interrupt = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        pipe = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        if Path(pretrained_model_name_or_path).is_dir():
            pipe.clip_preprocessing = read_clip_preprocessing(
                pretrained_model_name_or_path, pipe.image_encoder.config.image_size)
        return pipe

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        write_clip_preprocessing(save_directory, self.clip_preprocessing)

    # -- helpers --------------------------------------------------------------------------------
    @property
    def size_multiple(self) -> int:
        """Output height and width must be multiples of this (VAE and UNet downsampling)."""
        levels = len(self.denoising_unet.config.block_out_channels)
        return self.vae_scale_factor * 2 ** (levels - 1)

    def interrupt(self) -> None:
        """Ask a running generation to stop at the next clip (thread-safe flag)."""
        self._interrupt = True

    def _clip_pixels(self, images: torch.Tensor) -> torch.Tensor:
        return self.clip_preprocessing(images)

    @staticmethod
    def _pose_images(keypoints: np.ndarray, height: int, width: int) -> torch.Tensor:
        """keypoints ``(n, 128, 3)`` -> rendered pose images ``(n, 3, H, W)`` in [0, 1]."""
        from .poses.render import render_pose

        images = np.stack([render_pose(kp, width, height) for kp in keypoints])
        return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0

    def check_inputs(self, reference_images, reference_poses, target_poses, height, width, steps, guidance_scale):
        if len(reference_images) == 0:
            raise ValueError("at least one reference image is needed")
        if reference_poses is not None and len(reference_poses) != len(reference_images):
            raise ValueError(f"got {len(reference_images)} reference images but {len(reference_poses)} reference poses")
        if target_poses.ndim != 3 or target_poses.shape[0] < 1 or target_poses.shape[1:] != (128, 3):
            raise ValueError(f"target poses must have shape (frames >= 1, 128, 3), got {tuple(target_poses.shape)}")
        multiple = self.size_multiple
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            raise ValueError(f"output size {width}x{height} must be positive multiples of {multiple} for this model")
        if steps <= 0:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if not 1.0 <= guidance_scale < float("inf"):
            raise ValueError(f"guidance must be a finite number >= 1 (1 turns classifier-free guidance off), got {guidance_scale}")

    # -- the call ---------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        reference_images: list[np.ndarray],
        reference_poses: list[np.ndarray] | None,
        target_poses: np.ndarray,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 2.0,
        generator: torch.Generator | None = None,
        top_k: float | str | None = None,
        disable_pcm: bool = False,
        scheduler: str = "ddim",
        context_frames: int | None = None,
        context_overlap: int | None = None,
        noise_correlation: float | None = None,
        decode_chunk_size: int = 8,
        return_correlation: bool = False,
        progress: Callable[[int, int, int, int], None] | None = None,
        preview: Callable[[int, np.ndarray], None] | None = None,
        output_type: str = "np",
    ) -> FreeViewPipelineOutput:
        """Animate the person in ``reference_images`` along ``target_poses``.

        reference_images: R images ``(H_i, W_i, 3)`` uint8, each already framed to the
        output aspect (see :func:`engine.animate.fit_to_frame`). reference_poses: R keypoint
        arrays ``(128, 3)`` normalised to their image. target_poses: ``(frames, 128, 3)``
        normalised keypoints at the output framing (camera already applied).
        ``progress(step, steps, clip, clips)`` is called for every clip of every step;
        ``preview(step, image)`` after every step with the current estimate of the middle frame
        ``(H, W, 3)`` uint8 (one extra VAE decode per step). ``output_type="latent"`` returns the
        sampled latents instead of decoded frames. ``noise_correlation`` (0..1, None: the model's ``sampling.json``,
        else 0) mixes one noise shared by every frame into each frame's own, so that correlation between any two
        frames' starting noise (each frame's noise stays standard normal): a model sampled in few steps then draws
        one person, not a slightly different one per frame.
        """
        # 1. Check inputs
        target_poses = np.asarray(target_poses, dtype=np.float32)
        default_h, default_w = self.default_resolution
        height, width = height or default_h, width or default_w
        self.check_inputs(reference_images, reference_poses, target_poses, height, width, num_inference_steps, guidance_scale)
        if scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; expected one of {', '.join(SCHEDULERS)}")
        if output_type not in ("np", "latent"):
            raise ValueError(f"unknown output_type {output_type!r}; expected 'np' or 'latent'")
        num_frames, refs = target_poses.shape[0], len(reference_images)
        recommended = getattr(self, "sampling_defaults", DEFAULT_SAMPLING)  # the model's windows (sampling.json)
        context_frames = recommended["clip_frames"] if context_frames is None else context_frames
        context_overlap = recommended["overlap"] if context_overlap is None else context_overlap
        noise_correlation = recommended.get("noise_correlation", 0.0) if noise_correlation is None else noise_correlation
        if not 0.0 <= noise_correlation <= 1.0:
            raise ValueError(f"noise_correlation must be in [0, 1], got {noise_correlation}")
        windows = context_windows(num_frames, context_frames, context_overlap)
        weights = torch.from_numpy(aggregation_weights(windows, num_frames))
        device, dtype = self._execution_device, self.denoising_unet.dtype
        do_cfg = guidance_scale > 1.0
        self._interrupt = False
        timings = {"reference": 0.0, "denoise": 0.0, "decode": 0.0}

        # 2. Encode the references once: VAE latents, CLIP embeddings, reference UNet features
        start = time.perf_counter()
        ref_pixels = torch.stack([
            F.interpolate(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0,
                          size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]
            for img in reference_images
        ]).clamp(0, 1).to(device)
        ref_latents = self.vae.encode((ref_pixels * 2 - 1).to(dtype)).latent_dist.mean * self.vae.config.scaling_factor
        ref_embeds = self.image_encoder(self._clip_pixels(ref_pixels).to(dtype)).image_embeds
        if reference_poses is None:
            reference_poses = [extract_reference_pose(img) for img in reference_images]
        ref_pose_images = self._pose_images(np.stack(reference_poses), height, width).to(device, dtype)
        bank = self.network.encode_references(ref_latents[None], ref_embeds[None], ref_pose_images[None])
        target_pose_images = self._pose_images(target_poses, height, width).to(device, dtype)
        warped = coverage = appearance = None
        if self.network.appearance_channels or self.refiner is not None:  # the references warped into every target pose
            from .warps import ReferenceWarper

            warped, coverage = ReferenceWarper(reference_images, reference_poses).compose_track(target_poses, height, width)
        if self.network.appearance_channels:  # ... as the pose guider's input
            appearance = appearance_latents(self.vae, *warp_tensors(warped, coverage, device), decode_chunk_size)[None]
        pose_features = self.network.encode_poses(target_pose_images[None], appearance)
        uncond_pose_features = self.network.encode_poses(target_pose_images[None]) if appearance is not None and do_cfg else pose_features
        selections = [
            self.network.select_references(
                bank, target_pose_images[None, w.start:w.stop], top_k=top_k, disable_pcm=disable_pcm, compensatory=False
            )
            for w in windows
        ]
        uncond_embeds = torch.zeros_like(ref_embeds[None])
        timings["reference"] = time.perf_counter() - start

        # 3. Prepare the timesteps and the initial noise
        start = time.perf_counter()
        sampler = SCHEDULERS[scheduler](self.scheduler.config)
        sampler.set_timesteps(num_inference_steps, device=device)
        latent_shape = (1, self.denoising_unet.config.in_channels, num_frames, height // self.vae_scale_factor, width // self.vae_scale_factor)
        # diffusers' helper: drawn on the generator's device (a CPU generator gives the same noise on every device)
        latents = starting_noise(latent_shape, generator, device, noise_correlation).to(dtype) * sampler.init_noise_sigma

        # 4. Denoising loop: every clip predicts noise for its frames; predictions are averaged per frame
        with self.progress_bar(total=num_inference_steps * len(windows)) as bar:
            for step, t in enumerate(sampler.timesteps):
                model_input = sampler.scale_model_input(latents, t)
                noise = torch.zeros_like(latents)
                for clip, (window, selected) in enumerate(zip(windows, selections)):
                    if self._interrupt:
                        return FreeViewPipelineOutput(frames=None, timings=timings, interrupted=True)
                    clip_latents = model_input[:, :, window.start:window.stop]
                    clip_pose = pose_features[:, :, window.start:window.stop]
                    pred = self.network.denoise(clip_latents, t, clip_pose, bank.image_embeds, selected)
                    if do_cfg:
                        uncond_pose = uncond_pose_features[:, :, window.start:window.stop]
                        uncond = self.network.denoise(clip_latents, t, uncond_pose, uncond_embeds, None)
                        pred = uncond + guidance_scale * (pred - uncond)
                    clip_weights = weights[clip, window.start:window.stop].to(device, pred.dtype).view(1, 1, -1, 1, 1)
                    noise[:, :, window.start:window.stop] += pred * clip_weights
                    bar.update()
                    if progress is not None:
                        progress(step, num_inference_steps, clip, len(windows))
                stepped = sampler.step(noise, t, latents)
                latents = stepped.prev_sample
                if preview is not None:
                    estimate = getattr(stepped, "pred_original_sample", None)
                    estimate = latents if estimate is None else estimate
                    middle = estimate[:, :, num_frames // 2] / self.vae.config.scaling_factor
                    image = self.vae.decode(middle).sample[0].float().clamp(-1, 1)
                    preview(step, ((image + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())
        timings["denoise"] = time.perf_counter() - start

        if output_type == "latent":  # what the decoder stage of training learns from
            self.maybe_free_model_hooks()
            return FreeViewPipelineOutput(frames=None, latents=latents, timings=timings, warped=warped, coverage=coverage)

        # 5. Decode in chunks
        start = time.perf_counter()
        flat = rearrange(latents, "b c f h w -> (b f) c h w") / self.vae.config.scaling_factor
        frames = []
        for index, chunk in zip(range(0, num_frames, decode_chunk_size), flat.split(decode_chunk_size)):
            image = self.vae.decode(chunk).sample
            if self.refiner is not None:
                part = slice(index, index + len(chunk))
                image = self.refine(image, warped[part], coverage[part], target_pose_images[part])
            frames.append(((image.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu())
        video = torch.cat(frames).numpy()
        timings["decode"] = time.perf_counter() - start

        correlation = None
        if return_correlation:
            maps = torch.zeros(num_frames, refs, *selections[0].correlation.shape[-2:])
            for clip, (window, selected) in enumerate(zip(windows, selections)):
                w = weights[clip, window.start:window.stop].view(-1, 1, 1, 1)
                maps[window.start:window.stop] += rearrange(selected.correlation[0].float().cpu(), "r f h w -> f r h w") * w
            correlation = maps.numpy()
        self.maybe_free_model_hooks()
        return FreeViewPipelineOutput(frames=video, correlation=correlation, timings=timings, warped=warped, coverage=coverage)

    def refine(self, frames: torch.Tensor, warped: np.ndarray, coverage: np.ndarray, pose_images: torch.Tensor) -> torch.Tensor:
        """Decoded frames ``(n, 3, H, W)`` in [-1, 1] corrected by the refiner with the warp composite ``(n, H, W, 3)``
        uint8, its coverage ``(n, H, W)`` and the target pose images ``(n, 3, H, W)`` in [0, 1]."""
        images, covered = warp_tensors(warped, coverage, frames.device, frames.dtype)
        return self.refiner(frames, images, covered, pose_images.to(frames.dtype))

    @property
    def default_resolution(self) -> tuple[int, int]:
        """``(height, width)`` the model was trained at."""
        size = self.denoising_unet.config.sample_size
        size = (size[0] if isinstance(size, (list, tuple)) else size) * self.vae_scale_factor
        return size, size
