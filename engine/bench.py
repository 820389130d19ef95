"""Engine benchmarks: ``freeview bench refs`` and ``freeview bench animate`` (figures printed and written as JSON)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from .files import write_text_atomic


def _sync(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA runs asynchronously), so timings measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, repeats: int, device: torch.device = torch.device("cpu")) -> float:
    def timed() -> float:
        start = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - start

    timed()  # warm-up
    return statistics.median(timed() for _ in range(repeats))


@torch.no_grad()
def bench_refs(preset: str = "mid", refs=(1, 2, 4, 8), frames: int = 2, latent: int = 32, repeats: int = 3,
               top_k: float | None = None) -> dict:
    """One denoising forward pass with R references, with selection (``top_k`` references' worth of
    tokens, None: the engine's default, one) and with all tokens appended (random weights of
    ``preset``, on the best device in its precision)."""
    from .device import pick_device, pick_dtype
    from .errors import UserError
    from .models.configs import build_components
    from .models.network import FreeViewNetwork
    from .models.selection import check_top_k

    try:
        check_top_k(top_k)
    except ValueError as exc:
        raise UserError(f"--top-k: {exc}") from None
    device = pick_device()
    c = build_components(preset)
    with torch.no_grad():  # as a trained PCM: an untrained one keeps every token (nothing to choose by)
        c["pcm"].conv_out.weight.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    net = FreeViewNetwork(c["reference_unet"], c["denoising_unet"], c["pose_guider"], c["pcm"]).eval()
    dtype = pick_dtype(device)
    net.to(device, dtype)
    to = lambda x: x.to(device, dtype)
    g = torch.Generator().manual_seed(0)
    factor = 2 ** (len(c["vae"].config.block_out_channels) - 1)
    size = latent * factor
    dim = c["denoising_unet"].config.cross_attention_dim
    max_refs = max(refs)
    ref_latents = to(torch.randn(1, max_refs, 4, latent, latent, generator=g))
    ref_embeds = to(torch.randn(1, max_refs, dim, generator=g))
    ref_poses = to(torch.rand(1, max_refs, 3, size, size, generator=g))
    target_poses = to(torch.rand(1, frames, 3, size, size, generator=g))
    latents = to(torch.randn(1, 4, frames, latent, latent, generator=g))
    t = torch.tensor([500], device=device)
    start = time.perf_counter()
    bank = net.encode_references(ref_latents, ref_embeds, ref_poses)
    _sync(device)
    encode = (time.perf_counter() - start) / max_refs
    pose = net.encode_poses(target_poses)
    result = {"preset": preset, "frames": frames, "latent": latent, "device": str(device), "top_k": top_k,
              "selection": {}, "all_tokens": {}, "select_once_s": {}}
    for r in refs:
        sub = type(bank)({k: v[:, :r] for k, v in bank.tokens.items()}, bank.shapes, bank.image_embeds[:, :r], bank.poses[:, :r])
        for mode, k in (("selection", top_k), ("all_tokens", "all")):
            start = time.perf_counter()
            selected = net.select_references(sub, target_poses, top_k=k)
            _sync(device)
            if mode == "selection":
                result["select_once_s"][str(r)] = time.perf_counter() - start
            result[mode][str(r)] = _median_seconds(lambda: net.denoise(latents, t, pose, sub.image_embeds, selected),
                                                   repeats, device)
    last, first = str(max(refs)), str(min(refs))
    result["ratio_8_to_1"] = {m: result[m][last] / result[m][first] for m in ("selection", "all_tokens")}
    result["encode_per_reference_s"] = encode
    return result


def bench_animate(model: str | None = None, frames: int = 48, steps: int | None = None, refs: int = 2,
                  preset: str | None = None) -> dict:
    """A whole generation on the demo assets with the embedded default, a model directory, or
    randomly initialised weights of an architecture ``preset`` (timing only, e.g. ``sd15`` on a GPU)."""
    from .animate import AnimateSettings, animate, load_motion, load_reference
    from .device import peak_memory_mb, pick_device, pick_dtype, reset_peak_memory
    from .model import ASSETS, load_pipeline

    if preset is not None:
        from .models.configs import architecture, build_components
        from .pipeline import FreeViewPipeline

        device = pick_device()
        pipe = FreeViewPipeline(**build_components(preset)).to(device, pick_dtype(device))
        pipe.set_progress_bar_config(disable=True)
        height, width = architecture(preset).default_resolution
    else:
        pipe = load_pipeline(model)
        height, width = pipe.default_resolution
    demo = ASSETS / "demo"
    ref_paths = sorted((demo / "references").glob("*.png"))[:refs]
    motion = load_motion(sorted((demo / "motions").glob("*.json"))[0])
    if len(motion) < frames:
        reps = -(-frames // len(motion))
        motion = type(motion)(np.concatenate([motion.keypoints] * reps)[:frames], motion.width, motion.height, motion.fps)
    settings = AnimateSettings(frames=frames, height=height, width=width, **({"steps": steps} if steps else {}))
    device = pipe.device
    reset_peak_memory(device)
    start = time.perf_counter()
    result = animate(pipe, [load_reference(p) for p in ref_paths], motion, None, settings, return_correlation=False)
    total = time.perf_counter() - start
    return {
        "frames": len(result.frames), "total_s": total, "seconds_per_frame": total / len(result.frames),
        "peak_memory_mb": peak_memory_mb(device), "split_s": result.timings,
        "steps": settings.steps or getattr(pipe, "sampling_defaults", {}).get("steps"),
        "resolution": list(result.frames.shape[1:3]), "device": str(device), "refs": len(ref_paths),
        "model": preset or str(model or "default"),
    }


def _emit(result: dict, path: str | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        write_text_atomic(Path(path), text + "\n")


def register(subparsers, bench) -> None:
    p = bench.add_parser("refs", help="denoising cost vs number of references, with and without selection")
    p.add_argument("--preset", default="mid", help="architecture (default: mid)")
    p.add_argument("--frames", type=int, default=2, help="frames per denoising pass (default %(default)s)")
    p.add_argument("--latent", type=int, default=32, help="latent side (image side / 8; default %(default)s)")
    p.add_argument("--top-k", type=float, help="references' worth of tokens kept (default: the engine's, 1)")
    p.add_argument("--json")
    p.set_defaults(func=lambda a: _emit(bench_refs(a.preset, frames=a.frames, latent=a.latent, top_k=a.top_k), a.json))
    p = bench.add_parser("animate", help="seconds per frame of a generation with the default model")
    p.add_argument("--model", help="model directory (default: the embedded default)")
    p.add_argument("--preset", help="time random weights of an architecture instead (e.g. sd15 at 768x512 on a GPU)")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--steps", type=int)
    p.add_argument("--json")
    p.set_defaults(func=lambda a: _emit(bench_animate(a.model, a.frames, a.steps, preset=a.preset), a.json))
