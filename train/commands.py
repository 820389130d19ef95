"""``freeview train run|prepare`` and ``freeview bench train``."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers, bench) -> None:
    train = subparsers.add_parser("train", help="fine-tune or train a model")
    sub = train.add_subparsers(dest="train_command", metavar="WHAT")
    sub.required = True
    run = sub.add_parser("run", help="run (or resume) a training stage from a YAML config")
    run.add_argument("--config", required=True, help="YAML overrides of a preset (preset: tiny-synthetic | sd15)")
    run.add_argument("--resume", help="'latest' or a checkpoint folder")
    run.add_argument("--max-steps", type=int, help="stop after this many steps in this run (the schedule is unchanged)")
    run.set_defaults(func=_run)
    b = bench.add_parser("train", help="seconds per training step of the tiny-synthetic preset")
    b.add_argument("--data", required=True, help="a dataset folder (freeview synth make)")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--stage", default="image", choices=["image", "temporal"])
    b.add_argument("--json")
    b.set_defaults(func=_bench)


def _run(args) -> int:
    from .config import load_config
    from .loop import train

    config = load_config(args.config)
    result = train(config, resume=args.resume, max_steps=args.max_steps)
    print(f"freeview: trained to step {result['step']} (loss {result['loss']:.4f}, {result['seconds_per_step']:.2f} s/step) in {config.output_dir}")
    return 0


def _bench(args) -> int:
    import tempfile

    from engine.device import peak_memory_mb
    from engine.files import write_text_atomic

    from .config import make_config
    from .loop import train

    with tempfile.TemporaryDirectory() as tmp:
        frames = 1 if args.stage == "image" else 8
        config = make_config("tiny-synthetic", data=args.data, output_dir=tmp, stage=args.stage, frames=frames,
                             steps=args.steps + 2, checkpoint_every=10**9, warmup_steps=0)
        train(config, max_steps=2)  # warm-up
        result = train(config, resume=None, max_steps=args.steps)
    out = {
        "stage": args.stage, "batch_size": config.batch_size, "frames": frames,
        "seconds_per_step": result["seconds_per_step"],
        "samples_per_second": config.batch_size / result["seconds_per_step"],
        "peak_memory_mb": peak_memory_mb(__import__("torch").device("cpu")),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        write_text_atomic(Path(args.json), text + "\n")
    return 0
