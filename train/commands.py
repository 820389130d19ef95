"""``freeview train run|prepare|personal|export`` and ``freeview bench train``."""

from __future__ import annotations

import json
from pathlib import Path

from .personal import HOLDOUTS, RECIPES, PersonalSettings


def register(subparsers, bench) -> None:
    train = subparsers.add_parser("train", help="fine-tune or train a model")
    sub = train.add_subparsers(dest="train_command", metavar="WHAT")
    sub.required = True
    run = sub.add_parser("run", help="run (or resume) a training stage from a YAML config")
    run.add_argument("--config", required=True, help="YAML overrides of a preset (preset: tiny-synthetic | sd15)")
    run.add_argument("--resume", help="'latest' or a checkpoint folder")
    run.add_argument("--max-steps", type=int, help="stop after this many steps in this run (the schedule is unchanged)")
    run.set_defaults(func=_run)
    prep = sub.add_parser(
        "prepare", help="footage -> training dataset (shots with one person, poses, crops)",
        description="Cut videos into shots, keep shots with exactly one person, extract poses and crop them to "
                    "the training resolution. Writes index.json + clips/*.npz (the synthetic world's format). "
                    "Re-running skips finished files; unreadable files are skipped and listed.",
    )
    prep.add_argument("footage", nargs="+", metavar="FOOTAGE", help="video files or folders of videos")
    prep.add_argument("-o", "--output", required=True, metavar="DATASET", help="dataset folder")
    prep.add_argument("--size", type=int, default=128, help="training resolution in pixels (default %(default)s)")
    prep.add_argument("--min-frames", type=int, default=12, help="shortest shot kept, in frames (default %(default)s)")
    prep.add_argument("--cuts", default="auto", choices=["auto", "color", "dinov2"],
                      help="shot-cut detector: DINOv2 when its weights are on this machine, else colour/structure (default %(default)s)")
    prep.add_argument("--identity", help="one identity name for all files (default: one identity per file)")
    prep.set_defaults(func=_prepare)
    personal = sub.add_parser(
        "personal", help="footage of one person -> a fine-tuned model, in one go (prepare, fine-tune, export, report)",
        description="Prepare the footage, keep part of it back, fine-tune the starting model on the rest (stage 1; "
                    "architecture, resolution, objective and sampling stay the model's), export it with the model's "
                    "sampling and report before/after on the held-out part (PSNR, L1, SSIM, part-colour ΔE, a "
                    "side-by-side PNG). Work files go to MODEL_DIR.work; a re-run continues an interrupted one.",
    )
    personal.add_argument("footage", nargs="*", metavar="FOOTAGE", help="videos of the person, or folders of them")
    personal.add_argument("--name", required=True, help="the person's name (the dataset identity and the model card)")
    personal.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", help="where the fine-tuned model goes (a new folder)")
    personal.add_argument("--model", help="model to start from (default: the embedded default)")
    personal.add_argument("--recipe", default=PersonalSettings.recipe, choices=RECIPES,
                          help="full: stage 1 (both UNets, pose guider, PCM); lora: adapters only (default %(default)s)")
    personal.add_argument("--steps", type=int, default=PersonalSettings.steps, help="training steps (default %(default)s)")
    personal.add_argument("--learning-rate", type=float, default=PersonalSettings.learning_rate, help="(default %(default)s)")
    personal.add_argument("--batch-size", type=int, default=PersonalSettings.batch_size, help="(default %(default)s)")
    personal.add_argument("--lora-rank", type=int, default=PersonalSettings.lora_rank, help="with --recipe lora (default %(default)s)")
    personal.add_argument("--holdout", default=PersonalSettings.holdout, choices=HOLDOUTS,
                          help="what is kept back for the report: the last file, the end of every clip, or "
                               "auto (the last file when there are 3 or more; default)")
    personal.add_argument("--holdout-share", type=float, default=PersonalSettings.holdout_share, help="with --holdout tail (default %(default)s)")
    personal.add_argument("--cases", type=int, default=PersonalSettings.cases, help="held-out cases in the report (default %(default)s)")
    personal.add_argument("--dataset", help="an already prepared dataset (freeview train prepare) instead of FOOTAGE")
    personal.add_argument("--work", help="folder for the work files (default: MODEL_DIR.work)")
    personal.add_argument("--seed", type=int, default=0)
    personal.set_defaults(func=_personal)
    export = sub.add_parser("export", help="copy a trained model for shipping (float16 weights, recommended sampling)")
    export.add_argument("model", help="a trained model directory (e.g. runs/NAME/model)")
    export.add_argument("-o", "--output", required=True, help="where to write it")
    export.add_argument("--full-precision", action="store_true", help="keep float32 weights")
    export.add_argument("--steps", type=int, help="recommended denoising steps (sampling.json)")
    export.add_argument("--guidance", type=float, help="recommended guidance (sampling.json)")
    export.add_argument("--top-k", help="recommended reference tokens kept per layer, in references' worth, or 'all' (sampling.json)")
    export.add_argument("--noise-correlation", type=float,
                        help="recommended correlation of the frames' starting noise, 0..1 (sampling.json)")
    export.add_argument("--card", help="a model card (Markdown) to include as README.md")
    export.set_defaults(func=_export)
    b = bench.add_parser("train", help="seconds per training step of the tiny-synthetic preset")
    b.add_argument("--data", required=True, help="a dataset folder (freeview synth make)")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--stage", default="image", choices=["image", "temporal"])
    b.add_argument("--json")
    b.set_defaults(func=_bench)
    cuts = bench.add_parser("cuts", help="precision and recall of shot-cut detection on synthetic videos: camera cuts, "
                                         "jump cuts, and shots with a digital zoom, a flash or a lens flare")
    cuts.add_argument("--videos", type=int, default=6, help="synthetic videos of each kind (default %(default)s)")
    cuts.add_argument("--seed", type=int, default=0)
    cuts.add_argument("--method", default="color", choices=["auto", "color", "dinov2"])
    cuts.add_argument("--json")
    cuts.set_defaults(func=_bench_cuts)


def _prepare(args) -> int:
    from tqdm import tqdm

    from .prepare import PrepareSettings, footage_files, prepare_dataset

    settings = PrepareSettings(size=args.size, min_frames=args.min_frames, method=args.cuts)
    settings.check()
    bar = tqdm(total=len(footage_files(args.footage)), unit="file", desc="prepare")

    def progress(name: str) -> None:  # called as each file starts
        bar.set_postfix_str(name[-30:])
        if bar.n < bar.total:
            bar.update(1)

    try:
        index = prepare_dataset(args.footage, args.output, settings, identity=args.identity, progress=progress)
    finally:
        bar.close()
    for s in index["skipped"]:
        print(f"skipped {s['source']}: {s['reason']}")
    print(f"wrote {len(index['clips'])} clips of {len(index['identities'])} identities to {args.output} "
          f"({len(index['rejected'])} shots or frame spans left out, listed in index.json)")
    return 0


def _personal(args) -> int:
    from .personal import report_lines, train_personal

    settings = PersonalSettings(name=args.name, model=args.model, recipe=args.recipe, steps=args.steps,
                                learning_rate=args.learning_rate, batch_size=args.batch_size, lora_rank=args.lora_rank,
                                holdout=args.holdout, holdout_share=args.holdout_share, cases=args.cases, seed=args.seed)
    report = train_personal(args.footage, args.output, settings, work=args.work, dataset=args.dataset)
    for line in report_lines(report):
        print(line)
    print(f"freeview: wrote {args.output} in {report['wall_seconds'] / 60:.1f} min; side by side: {report['picture']}")
    return 0


def _bench_cuts(args) -> int:
    from engine.errors import UserError
    from engine.files import write_text_atomic

    from .shots import bench_cuts

    if args.videos < 1:
        raise UserError(f"--videos {args.videos} is not valid: use at least 1")
    figures = bench_cuts(args.videos, args.seed, args.method)
    for kind, row in figures["kinds"].items():
        print(f"{kind:>6}: precision {row['precision']:.2f}, recall {row['recall']:.2f} "
              f"({row['true_cuts']} true cuts, {row['false_positives']} false, {row['false_negatives']} missed)")
    print(f"   all: precision {figures['precision']:.2f}, recall {figures['recall']:.2f} ({figures['true_cuts']} true cuts, "
          f"{figures['frames']} frames, {figures['frames_per_second']:.0f} frames/s)")
    text = json.dumps(figures, indent=2)
    if args.json:
        write_text_atomic(Path(args.json), text + "\n")
    else:
        print(text)
    return 0


def _export(args) -> int:
    from engine.animate import parse_top_k

    from .export import export_model_dir, model_size_mb

    out = export_model_dir(args.model, args.output, half=not args.full_precision, steps=args.steps,
                           guidance=args.guidance, top_k=parse_top_k(args.top_k),
                           noise_correlation=args.noise_correlation, card=args.card)
    print(f"freeview: wrote {out} ({model_size_mb(out):.1f} MB of weights)")
    return 0


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
