#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA GPU: the gpu-marked tests (the same network, pipeline and training code
# as on the CPU), then speed and memory of the full-size architecture (sd15: random weights, timing only).
# Figures go to $OUT (default gpu-out/). Needs the project's Python packages, e.g. `pip install -e .` or, on a
# machine with PyTorch but no network, diffusers' wheel installed with --target and put on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fv="python3 -m engine.cli"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)" | tee -a "$out/gpu.txt"

timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 | tee "$out/pytest.log"

# The embedded default (a fresh process: CUDA's one-off start-up is in the figure), then sd15 at its 768x512.
timeout 45 $fv bench animate --json "$out/animate-default.json"
timeout 150 $fv bench animate --preset sd15 --frames 24 --steps 20 --json "$out/animate-sd15.json"
timeout 150 $fv bench refs --preset sd15 --frames 12 --latent 64 --json "$out/refs-sd15.json"

# Stage-1 training steps of sd15 as train/configs/sd15.yaml sets them (512 px, batch 4, up to 4 references,
# fp16 mixed precision, gradient checkpointing), from random weights on a small synthetic world.
timeout 150 python3 - "$out/train-sd15.json" <<'EOF'
import json, sys, tempfile, time
import torch
from train.config import make_config
from train.loop import train
from train.synth import MakeSettings, make_dataset

with tempfile.TemporaryDirectory() as tmp:
    make_dataset(f"{tmp}/data", MakeSettings(identities=2, eval_identities=0, size=512, clips_per_identity=3, frames=2, supersample=1))
    config = make_config("sd15", init_from=None, data=f"{tmp}/data", output_dir=f"{tmp}/run", steps=8,
                         checkpoint_every=10**9, warmup_steps=0, log_every=1)
    train(config, max_steps=2)  # warm-up
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train(config, resume=None, max_steps=6)
    figures = {"preset": "sd15", "resolution": config.resolution, "batch_size": config.batch_size,
               "max_refs": config.max_refs, "mixed_precision": config.mixed_precision,
               "gradient_checkpointing": config.gradient_checkpointing,
               "seconds_per_step": result["seconds_per_step"], "loss": result["loss"],
               "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20, "device": torch.cuda.get_device_name()}
print(json.dumps(figures, indent=2))
open(sys.argv[1], "w").write(json.dumps(figures, indent=2) + "\n")
EOF
