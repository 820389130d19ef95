"""On a CUDA GPU (skipped elsewhere): the same network, pipeline and training code as on the CPU.

Run on a GPU machine with ``pytest -m gpu tests/test_gpu.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.metrics import basic_metrics

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _clip(size: int = 128, frames: int = 6):
    """References (close-up, wide) and a target pose track of one synthetic person."""
    from train.synth.world import ClipSpec, render_clip

    refs = [render_clip(ClipSpec(identity_seed=3, motion_seed=i, camera_seed=i, shot=shot, num_frames=1, size=size))
            for i, shot in enumerate(("close-up", "wide"))]
    target = render_clip(ClipSpec(identity_seed=3, motion_seed=7, camera_seed=7, shot="medium", num_frames=frames, size=size))
    return [r.frames[0] for r in refs], [r.keypoints[0] for r in refs], target.keypoints


@pytest.mark.parametrize("precision, min_psnr", [("fp32", 40.0), ("bf16", 25.0), ("fp16", 30.0)])
def test_embedded_default_on_cuda_matches_the_cpu(precision, min_psnr):
    from engine.model import load_pipeline

    images, poses, target = _clip()
    frames = {}
    for device, prec in (("cpu", "fp32"), ("cuda", precision)):
        pipe = load_pipeline(device=device, precision=prec)
        assert pipe.denoising_unet.device.type == device
        frames[device] = pipe(images, poses, target, num_inference_steps=2, guidance_scale=1.5,
                              generator=torch.Generator().manual_seed(0)).frames
    assert frames["cuda"].shape == frames["cpu"].shape == (len(target), 128, 128, 3)
    assert basic_metrics(frames["cuda"], frames["cpu"])["PSNR"] > min_psnr  # same noise, same network


def test_training_stages_run_on_cuda_in_bf16(tmp_path):
    from engine.model import load_pipeline
    from train.config import make_config
    from train.loop import train
    from train.synth import MakeSettings, make_dataset

    data = tmp_path / "synth"
    make_dataset(data, MakeSettings(identities=2, eval_identities=0, size=128, clips_per_identity=3, frames=4, supersample=1))
    common = dict(architecture="tiny", data=str(data), resolution=32, batch_size=2, max_refs=2, warmup_steps=0,
                  learning_rate=1e-3, mixed_precision="bf16", checkpoint_every=3, log_every=1)
    image = make_config("tiny-synthetic", stage="image", output_dir=str(tmp_path / "image"), steps=3, sample_every=3,
                        **common)
    result = train(image)
    assert result["step"] == 3 and np.isfinite(result["loss"])
    assert (tmp_path / "image" / "samples" / "step-0000003.png").exists()  # the preview samples on the GPU
    decoder = make_config("tiny-synthetic", stage="decoder", init_from=str(tmp_path / "image" / "model"),
                          output_dir=str(tmp_path / "decoder"), steps=2, **common)
    assert np.isfinite(train(decoder)["loss"])
    pipe = load_pipeline(tmp_path / "decoder" / "model", device="cuda")
    images, poses, target = _clip(size=32, frames=3)
    out = pipe(images, poses, target, height=32, width=32, num_inference_steps=1, guidance_scale=1.0,
               generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (3, 32, 32, 3)
