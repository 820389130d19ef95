"""The multi-reference video pipeline on the tiny model (CPU)."""

import numpy as np
import pytest
import torch

from engine.context import aggregation_weights, context_windows
from engine.pipeline import FreeViewPipeline

SIZE = 32


@pytest.fixture(scope="module")
def pipe():
    from engine.models.configs import build_components

    p = FreeViewPipeline(**build_components("tiny", seed=0))
    p.set_progress_bar_config(disable=True)
    return p


def stick_figure(shift=0.0):
    kp = np.zeros((128, 3), np.float32)
    body = np.array([[.5, .2], [.5, .3], [.4, .3], [.35, .45], [.33, .6], [.6, .3], [.65, .45], [.67, .6],
                     [.45, .6], [.45, .75], [.45, .9], [.55, .6], [.55, .75], [.55, .9], [.48, .18], [.52, .18], [.46, .19], [.54, .19]])
    kp[:18, :2] = body + [shift, 0]
    kp[:18, 2] = 1
    return kp


def references(n, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(40, 30), (64, 64), (20, 50), (33, 33)]
    return [rng.integers(0, 255, (*sizes[i % 4], 3), dtype=np.uint8) for i in range(n)], [stick_figure(0.01 * i) for i in range(n)]


def motion(frames):
    return np.stack([stick_figure(0.1 * np.sin(i / 3)) for i in range(frames)])


def run(pipe, refs=2, frames=5, steps=2, seed=0, **kw):
    images, poses = references(refs)
    return pipe(images, poses, motion(frames), height=SIZE, width=SIZE, num_inference_steps=steps,
                generator=torch.Generator().manual_seed(seed), **kw)


def test_same_seed_same_video_and_other_seed_differs(pipe):
    a, b, c = run(pipe, seed=3), run(pipe, seed=3), run(pipe, seed=4)
    assert a.frames.shape == (5, SIZE, SIZE, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("frames,clip,overlap", [(30, 12, 4), (5, 12, 4), (1, 12, 4), (13, 12, 4), (50, 8, 0)])
def test_clips_cover_every_frame_and_weights_sum_to_one(frames, clip, overlap):
    windows = context_windows(frames, clip, overlap)
    weights = aggregation_weights(windows, frames)
    covered = sorted(set(i for w in windows for i in w))
    assert covered == list(range(frames))
    assert all(len(w) == min(clip, frames) for w in windows)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=0, atol=1e-6)
    for a, b in zip(windows, windows[1:]):
        assert a.stop - b.start >= overlap  # neighbours share at least `overlap` frames
    assert (weights[weights > 0] <= 1).all()


def test_30_frames_with_clip_12_overlap_4_windows():
    assert [(w.start, w.stop) for w in context_windows(30, 12, 4)] == [(0, 12), (8, 20), (16, 28), (18, 30)]


@pytest.mark.parametrize("bad", [dict(clip_frames=0), dict(overlap=12), dict(overlap=-1)])
def test_bad_clip_settings(bad):
    with pytest.raises(ValueError, match="clip"):
        context_windows(10, bad.get("clip_frames", 12), bad.get("overlap", 4))


@pytest.mark.parametrize("refs", [1, 2, 3, 4])
def test_any_reference_count_and_correlation_maps(pipe, refs):
    out = run(pipe, refs=refs, frames=3, steps=1, return_correlation=True)
    assert out.frames.shape == (3, SIZE, SIZE, 3)
    assert out.correlation.shape[:2] == (3, refs)
    assert set(out.timings) == {"reference", "denoise", "decode"}


def test_long_video_uses_several_clips_and_reports_progress(pipe):
    calls = []
    out = run(pipe, frames=14, steps=2, context_frames=6, context_overlap=2, progress=lambda *a: calls.append(a))
    assert out.frames.shape[0] == 14
    clips = len(context_windows(14, 6, 2))
    assert len(calls) == 2 * clips
    assert calls[-1] == (1, 2, clips - 1, clips)


def test_dpm_solver_is_selectable_and_unknown_scheduler_rejected(pipe):
    out = run(pipe, steps=2, scheduler="dpmsolver++")
    assert out.frames.shape[0] == 5
    with pytest.raises(ValueError, match="scheduler"):
        run(pipe, scheduler="euler-magic")


def test_interrupt_stops_within_one_step(pipe):
    calls = []

    def progress(step, steps, clip, clips):
        calls.append((step, clip))
        if len(calls) == 1:
            pipe.interrupt()

    out = run(pipe, frames=14, steps=5, context_frames=6, context_overlap=2, progress=progress)
    assert out.interrupted and out.frames is None
    assert calls == [(0, 0)]
    assert run(pipe, steps=1).frames is not None  # the flag is reset by the next call


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(height=30), "multiples"),
        (dict(num_inference_steps=0), "steps"),
        (dict(guidance_scale=0.5), "guidance"),
    ],
)
def test_bad_arguments(pipe, kwargs, match):
    images, poses = references(2)
    args = dict(height=SIZE, width=SIZE, num_inference_steps=1) | kwargs
    with pytest.raises(ValueError, match=match):
        pipe(images, poses, motion(3), **args)


def test_reference_and_pose_counts_must_match(pipe):
    images, poses = references(2)
    with pytest.raises(ValueError, match="2 reference images but 1 reference poses"):
        pipe(images, poses[:1], motion(3), height=SIZE, width=SIZE, num_inference_steps=1)
    with pytest.raises(ValueError, match="at least one reference"):
        pipe([], [], motion(3), height=SIZE, width=SIZE, num_inference_steps=1)


def test_save_and_load_round_trip(tmp_path, pipe):
    pipe.save_pretrained(tmp_path / "model")
    loaded = FreeViewPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    for name in ("reference_unet", "denoising_unet", "pose_guider", "pcm", "vae", "image_encoder"):
        a, b = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_allclose(run(loaded).frames.astype(int), run(pipe).frames.astype(int), atol=1)


def test_inference_selects_top_k_only(pipe):
    """Compensatory tokens are for training: the pipeline keeps K_l tokens even when modules are in train mode."""
    pipe.network.train()
    try:
        out = run(pipe, refs=4, frames=2, steps=1, return_correlation=True)
        again = run(pipe, refs=4, frames=2, steps=1, return_correlation=True)
    finally:
        pipe.network.eval()
    assert np.array_equal(out.frames, again.frames)


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++"])
def test_preview_shows_the_estimate_after_every_step(pipe, scheduler):
    seen = []
    out = run(pipe, steps=3, scheduler=scheduler, preview=lambda step, image: seen.append((step, image)))
    assert [step for step, _ in seen] == [0, 1, 2]
    assert all(image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8 for _, image in seen)
    assert out.frames is not None


def test_latent_output_is_what_the_frames_are_decoded_from(pipe):
    frames = run(pipe, seed=5, frames=3)
    latents = run(pipe, seed=5, frames=3, output_type="latent")
    assert latents.frames is None and latents.latents.shape == (1, 4, 3, SIZE // pipe.vae_scale_factor, SIZE // pipe.vae_scale_factor)
    flat = latents.latents[0].permute(1, 0, 2, 3) / pipe.vae.config.scaling_factor
    with torch.no_grad():
        decoded = ((pipe.vae.decode(flat).sample.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(decoded, frames.frames)


@pytest.mark.parametrize("correlation", [0.0, 0.5, 0.9, 1.0])
def test_starting_noise_is_standard_normal_with_the_asked_frame_correlation(correlation):
    from diffusers.utils.torch_utils import randn_tensor

    from engine.pipeline import starting_noise

    shape = (1, 4, 6, 64, 64)
    noise = starting_noise(shape, torch.Generator().manual_seed(0), "cpu", correlation)
    frames = noise[0].permute(1, 0, 2, 3).reshape(6, -1)
    assert abs(frames.std().item() - 1) < 0.03 and abs(frames.mean().item()) < 0.05
    pairs = torch.corrcoef(frames)[~torch.eye(6, dtype=bool)]
    assert torch.allclose(pairs, torch.full_like(pairs, correlation), atol=0.04)
    if correlation == 0:  # exactly diffusers' draw: models sampled before keep their videos
        assert torch.equal(noise, randn_tensor(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float32))


def test_correlated_noise_changes_the_video_and_is_checked(pipe):
    plain, same = run(pipe).frames, run(pipe, noise_correlation=0.0).frames
    np.testing.assert_array_equal(plain, same)
    assert not np.array_equal(run(pipe, noise_correlation=0.9).frames, plain)
    with pytest.raises(ValueError, match="noise_correlation must be in"):
        run(pipe, noise_correlation=1.5)
