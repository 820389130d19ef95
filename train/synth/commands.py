"""``freeview synth make`` and ``freeview bench synth``."""

from __future__ import annotations

import json
import time

from engine.errors import UserError
from engine.files import write_text_atomic

from .dataset import BACKDROPS, MakeSettings, make_dataset


def register(subparsers, bench) -> None:
    synth = subparsers.add_parser("synth", help="the synthetic multi-shot world (training data and fidelity benchmark)")
    synth_sub = synth.add_subparsers(dest="synth", metavar="ACTION")
    synth_sub.required = True
    make = synth_sub.add_parser(
        "make", help="render a multi-shot dataset (train and held-out eval identities)",
        description="Render procedural characters in close-up, medium and wide clips. An interrupted run "
                    "can be run again: finished clips are kept and index.json is written last.",
    )
    defaults = MakeSettings()
    make.add_argument("-o", "--output", required=True, metavar="DIR", help="dataset folder")
    make.add_argument("--identities", type=int, default=defaults.identities, help="training identities (default %(default)s)")
    make.add_argument("--eval-identities", type=int, default=defaults.eval_identities,
                      help="held-out identities for evaluation, with their own motions (default %(default)s)")
    make.add_argument("--size", type=int, default=defaults.size, help="frame side in pixels, 128..512, a multiple of 8 (default %(default)s)")
    make.add_argument("--seed", type=int, default=defaults.seed, help="world seed (default %(default)s)")
    make.add_argument("--clips-per-identity", type=int, default=defaults.clips_per_identity,
                      help="clips per identity, cycling close-up/medium/wide (default %(default)s)")
    make.add_argument("--frames", type=int, default=defaults.frames, help="frames per clip (default %(default)s)")
    make.add_argument("--supersample", type=int, default=defaults.supersample, help="anti-aliasing canvas factor 1..4 (default %(default)s)")
    make.add_argument("--backdrop", choices=BACKDROPS, default=defaults.backdrop,
                      help="where clips are filmed: one place per identity (all its shots share it) or a new "
                           "place per clip (default %(default)s)")
    make.set_defaults(func=run_make)
    demo = synth_sub.add_parser("demo", help="re-create the demo references, motions and camera plan (assets/demo)")
    demo.add_argument("-o", "--output", default="assets/demo", metavar="DIR", help="folder (default %(default)s)")
    demo.set_defaults(func=run_demo)

    bench_synth = bench.add_parser("synth", help="synthetic-world rendering speed on one core (frames per second)")
    bench_synth.add_argument("--size", type=int, default=128, help="frame side in pixels (default %(default)s)")
    bench_synth.add_argument("--frames", type=int, default=150, help="frames to render (default %(default)s)")
    bench_synth.add_argument("--json", metavar="OUT.json", help="also write the figures here")
    bench_synth.set_defaults(func=run_bench)


def run_make(args) -> int:
    from tqdm import tqdm

    settings = MakeSettings(
        identities=args.identities, eval_identities=args.eval_identities, size=args.size, seed=args.seed,
        clips_per_identity=args.clips_per_identity, frames=args.frames, supersample=args.supersample,
        backdrop=args.backdrop,
    )
    settings.check()
    bar = tqdm(total=(settings.identities + settings.eval_identities) * settings.clips_per_identity, unit="clip", desc="synth make")

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        index = make_dataset(args.output, settings, progress)
    finally:
        bar.close()
    print(f"wrote {len(index['clips'])} clips of {len(index['identities'])} identities to {args.output}")
    return 0


def bench_synth(size: int = 128, frames: int = 150) -> dict:
    """Frames per second of motion + camera + rendering on one core, over the three shot types."""
    import cv2
    import torch

    from .dataset import MIN_SIZE, MAX_SIZE
    from .world import ClipSpec, render_clip

    if not (MIN_SIZE <= size <= MAX_SIZE) or size % 8:
        raise UserError(f"--size {size} is not valid: use a multiple of 8 from {MIN_SIZE} to {MAX_SIZE}")
    if frames < 3:
        raise UserError(f"--frames {frames} is not valid: use at least 3")
    threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        render_clip(ClipSpec(1, 1, 1, "medium", 2, size))  # warm-up
        per_shot = frames // 3
        start = time.perf_counter()
        for k, shot in enumerate(("close-up", "medium", "wide")):
            render_clip(ClipSpec(7 + k, 11 + k, 13 + k, shot, per_shot, size))
        elapsed = time.perf_counter() - start
    finally:
        cv2.setNumThreads(threads[0])
        torch.set_num_threads(threads[1])
    return {"fps": 3 * per_shot / elapsed, "size": size, "frames": 3 * per_shot, "seconds": elapsed, "threads": 1}


def run_bench(args) -> int:
    figures = bench_synth(args.size, args.frames)
    text = json.dumps(figures)
    print(text)
    if args.json:
        write_text_atomic(args.json, text + "\n")
    return 0


def run_demo(args) -> int:
    from .demo import make_demo

    written = make_demo(args.output)
    print(f"wrote {len(written)} demo files to {args.output}")
    return 0
