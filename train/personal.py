"""``freeview train personal FOOTAGE... --name NAME -o MODEL_DIR``: a folder of videos of one person -> a model
that looks more like that person, in one go.

1. **prepare** the footage (:mod:`train.prepare`) at the starting model's resolution, all of it one identity;
2. **hold out** part of it (:func:`hold_out`): the last footage file when there are three or more, else the
   last ``holdout_share`` of every clip; it is never trained on;
3. **fine-tune** stage 1 from the starting model (the embedded default unless ``model``): every setting that
   defines the model (architecture, resolution, scheduler and objective, sampling) comes from it
   (:func:`train.config.inherit_from_model`);
4. **export** the result with the starting model's sampling (``sampling.json``);
5. **report** before/after on the held-out footage (:func:`before_after`): L1 / PSNR / SSIM and part-colour ΔE
   (CIEDE2000, :func:`engine.metrics.part_colour_error`) of the starting and the fine-tuned model on the same
   cases, references and seeds, and a side-by-side PNG.

Work files (dataset, held-out split, training run, report) live in ``MODEL_DIR.work`` beside the model (or
``work``); a re-run with the same arguments continues where an interrupted one stopped (prepared files are
skipped, training resumes from its last checkpoint). ``MODEL_DIR`` itself is written once, when everything
else is done, and an existing one is never replaced.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.files import atomic_dir, atomic_path, write_text_atomic

logger = logging.getLogger(__name__)

RECIPES = ("full", "lora")
HOLDOUTS = ("auto", "file", "tail")


@dataclass(frozen=True)
class PersonalSettings:
    """What `freeview train personal` does; the defaults are the recipe measured in train/README.md."""

    name: str
    model: str | None = None        # starting model directory (None: the embedded default)
    recipe: str = "full"            # "full": stage 1 (both UNets, pose guider, PCM); "lora": adapters on the attention
    steps: int = 800                # measured on real footage (train/README.md): +1.5 dB, part ΔE -45% at 800
    learning_rate: float = 3e-4
    batch_size: int = 2
    lora_rank: int = 8
    holdout: str = "auto"           # "file": the last footage file; "tail": the end of every clip; "auto": file if 3+
    holdout_share: float = 0.2      # "tail": the share of each clip's frames kept back
    cases: int = 8                  # held-out cases in the before/after report
    refs: int = 2                   # reference photos per case (frames of the training footage)
    frames: int = 8                 # frames per case
    seed: int = 0

    def check(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise UserError(f"--name {self.name!r} is not valid: use letters, digits, '-' or '_'")
        if self.recipe not in RECIPES:
            raise UserError(f"--recipe {self.recipe!r} is not valid: use {' or '.join(RECIPES)}")
        if self.holdout not in HOLDOUTS:
            raise UserError(f"--holdout {self.holdout!r} is not valid: use {', '.join(HOLDOUTS)}")
        if not 0 < self.holdout_share < 1:
            raise UserError(f"--holdout-share {self.holdout_share} is not valid: use a share between 0 and 1")
        for name in ("steps", "batch_size", "lora_rank", "cases", "refs", "frames"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)} is not valid: use at least 1")
        if not self.learning_rate > 0:
            raise UserError(f"--learning-rate {self.learning_rate} is not valid: use a positive number")


# -- the held-out split -----------------------------------------------------------------------------
def _unit(clip: dict) -> str:
    """What the ``file`` hold-out keeps back whole: the footage file a clip came from (or the clip itself)."""
    return clip.get("source", clip["file"])


def hold_out(prepared: str | Path, out: str | Path, name: str, mode: str = "auto", share: float = 0.2,
             min_frames: int = 1) -> dict:
    """A copy of the prepared dataset ``prepared`` in ``out`` with part of it in the ``eval`` split (never trained
    on): ``file`` — every clip of the last footage file; ``tail`` — the last ``share`` of each clip's frames
    (the rest stays in ``train``); ``auto`` — ``file`` with three or more footage files, else ``tail``.
    All clips become identity ``name``. Returns the new index (``holdout`` says which mode was used)."""
    from .synth.dataset import load_clip, load_index

    prepared, out = Path(prepared), Path(out)
    index = load_index(prepared)
    clips = [c for c in index["clips"] if c["split"] == "train"]
    if not clips:
        raise UserError(f"{prepared} has no training clips")
    units = list(dict.fromkeys(_unit(c) for c in clips))
    if mode == "auto":
        mode = "file" if len(units) >= 3 else "tail"
    if mode == "file" and len(units) < 2:
        raise UserError("--holdout file needs two or more footage files (one is kept back); use --holdout tail")
    new_clips = []
    with atomic_dir(out) as tmp:
        (tmp / "clips").mkdir()
        for clip in clips:
            base = {**clip, "identity": name}
            if mode == "file":
                shutil.copyfile(prepared / clip["file"], tmp / clip["file"])
                new_clips.append({**base, "split": "eval" if _unit(clip) == units[-1] else "train"})
                continue
            data = load_clip(prepared / clip["file"])
            n = len(data["frames"])
            kept = max(1, int(round(n * share)))
            if n - kept < min_frames or kept < min_frames:
                logger.info("%s: %d frames, too short to split; kept for training", clip["file"], n)
                shutil.copyfile(prepared / clip["file"], tmp / clip["file"])
                new_clips.append({**base, "split": "train"})
                continue
            stem = Path(clip["file"]).stem
            for split, part in (("train", slice(0, n - kept)), ("eval", slice(n - kept, n))):
                file = f"clips/{stem}_{split}.npz"
                arrays = {k: (v[part] if np.ndim(v) and len(v) == n else v) for k, v in data.items()}
                with open(tmp / file, "wb") as fh:
                    np.savez_compressed(fh, **arrays)
                new_clips.append({**base, "file": file, "split": split, "frames": len(arrays["frames"]),
                                  **({"start": clip["start"] + part.start} if "start" in clip else {})})
        if not any(c["split"] == "eval" for c in new_clips):
            raise UserError(f"no clip is long enough to keep a held-out part of it (each needs at least "
                            f"{2 * min_frames} frames); give longer footage or --holdout file")
        train_clips = [c for c in new_clips if c["split"] == "train"]
        if len(train_clips) < 2:
            raise UserError("the footage gives a single training shot: training takes references from another shot "
                            "of the person, so give two or more videos (or shots)")
        result = {**{k: v for k, v in index.items() if k not in ("clips", "identities")},
                  "identities": [{"id": name, "split": "train"}, {"id": name, "split": "eval"}],
                  "clips": new_clips, "holdout": {"mode": mode, "share": share if mode == "tail" else None,
                                                  "held_out": sorted({_unit(c) for c in new_clips if c["split"] == "eval"})}}
        (tmp / "index.json").write_text(json.dumps(result, indent=1))
    return result


# -- the before/after report ------------------------------------------------------------------------
@dataclass
class HeldOutCase:
    """A window of held-out footage: frames ``(F, S, S, 3)``, keypoints ``(F, 128, 3)``, and references taken
    from the training footage (images ``(S, S, 3)``, keypoints ``(128, 3)``, their clip files)."""

    clip: str
    start: int
    frames: np.ndarray
    keypoints: np.ndarray
    ref_images: list
    ref_keypoints: list
    ref_clips: list


def held_out_cases(data: str | Path, count: int, refs: int, frames: int, size: int, seed: int = 0) -> list[HeldOutCase]:
    """Deterministic cases: targets cycle through the held-out clips; references are frames of training clips,
    each from another clip where there are enough (a person's other cameras or shots). Frames resized to ``size``."""
    import cv2

    from .synth.dataset import load_clip, load_index

    root = Path(data)
    index = load_index(root)
    targets = [c for c in index["clips"] if c["split"] == "eval"]
    pool = [c for c in index["clips"] if c["split"] == "train"]
    if not targets or not pool:
        raise UserError(f"{root} needs clips in both the train and the held-out (eval) split")
    cache: dict[str, dict] = {}

    def clip_data(clip):
        if clip["file"] not in cache:
            cache[clip["file"]] = load_clip(root / clip["file"])
        return cache[clip["file"]]

    resize = lambda img: img if img.shape[0] == size else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    cases = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        target = targets[i % len(targets)]
        data = clip_data(target)
        n = min(frames, len(data["frames"]))
        start = int(rng.integers(len(data["frames"]) - n + 1))
        chosen = [pool[j] for j in rng.permutation(len(pool))]
        chosen = (chosen * refs)[:refs]  # fewer training clips than references: some give two frames
        images, poses = [], []
        for ref in chosen:
            ref_data = clip_data(ref)
            f = int(rng.integers(len(ref_data["frames"])))
            images.append(resize(ref_data["frames"][f]))
            poses.append(ref_data["keypoints"][f].astype(np.float32))
        cases.append(HeldOutCase(target["file"], start, np.stack([resize(f) for f in data["frames"][start:start + n]]),
                                 data["keypoints"][start:start + n].astype(np.float32), images, poses,
                                 [c["file"] for c in chosen]))
    return cases


def _part_errors():
    """:func:`engine.metrics.part_colour_error` and its part names, or (None, reason) where this engine lacks it."""
    import engine.metrics as metrics

    fn = getattr(metrics, "part_colour_error", None)
    return (fn, tuple(metrics.PARTS)) if fn is not None else (None, "this engine has no part-colour metric")


def score_model(pipe, cases: list[HeldOutCase], sampling: dict, seed: int = 0, progress=None) -> tuple[dict, list[np.ndarray]]:
    """Animate every case with ``pipe`` (sampling ``{"steps", "guidance", "top_k"}``) and score it against the
    held-out frames: ``{"L1", "PSNR", "SSIM", "delta_e": {part: ΔE}, "per_case": ...}`` and the predictions."""
    import torch

    from engine.metrics import BASIC_METRICS, basic_metrics

    part_error, parts = _part_errors()
    per_case = {m: [] for m in BASIC_METRICS}
    part_values: list[np.ndarray] = []
    predictions = []
    for case in cases:
        size = case.frames.shape[1]
        out = pipe(case.ref_images, case.ref_keypoints, case.keypoints, height=size, width=size,
                   num_inference_steps=sampling["steps"], guidance_scale=sampling["guidance"], top_k=sampling.get("top_k"),
                   generator=torch.Generator().manual_seed(seed), output_type="np")
        predicted = np.asarray(out.frames)
        predictions.append(predicted)
        for metric, value in basic_metrics(predicted, case.frames).items():
            per_case[metric].append(float(value))
        if part_error is not None:
            part_values.append(np.asarray(part_error(predicted, case.frames, case.keypoints), float))
        if progress is not None:
            progress()
    result = {m: float(np.mean(v)) for m, v in per_case.items()}
    if part_error is not None:
        stacked = np.concatenate(part_values)  # (all frames, parts)
        with warnings.catch_warnings():  # a part seen in no frame (no face in view): NaN, said as None below
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(stacked, axis=0)
        result["delta_e"] = {p: (None if not np.isfinite(v) else float(v)) for p, v in zip(parts, means)}
    else:
        result["delta_e"] = {}
        result["delta_e_skipped"] = parts
    result["per_case"] = per_case
    return result, predictions


def side_by_side(cases: list[HeldOutCase], before: list[np.ndarray], after: list[np.ndarray], rows: int = 4,
                 frames: int = 3) -> np.ndarray:
    """A picture, one row per case: references | held-out frames | starting model | fine-tuned model."""
    import cv2

    lines = []
    for case, b, a in list(zip(cases, before, after))[:rows]:
        picks = np.linspace(0, len(case.frames) - 1, min(frames, len(case.frames))).round().astype(int)
        size = case.frames.shape[1]
        gap = np.full((size, 6, 3), 255, np.uint8)
        lines.append(np.concatenate([*case.ref_images, gap, *case.frames[picks], gap, *b[picks], gap, *a[picks]], axis=1))
    width = max(line.shape[1] for line in lines)
    size = cases[0].frames.shape[1]
    header = np.full((18, width, 3), 255, np.uint8)
    refs = len(cases[0].ref_images)
    n = min(frames, len(cases[0].frames))
    x = 2
    for label, span in (("references", refs), ("held out", n), ("before", n), ("after", n)):
        cv2.putText(header, label, (x, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += span * size + 6
    body = [np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    return np.concatenate([header, *body], axis=0)


def before_after(start_model: str | Path, tuned_model: str | Path, data: str | Path, settings: PersonalSettings,
                 sampling: dict, picture: str | Path | None = None) -> dict:
    """Both models on the same held-out cases, references and seeds; the differences, and the PNG."""
    from PIL import Image
    from tqdm import tqdm

    from engine.model import load_pipeline

    before_pipe = load_pipeline(start_model)
    size = before_pipe.default_resolution[0]
    cases = held_out_cases(data, settings.cases, settings.refs, settings.frames, size, settings.seed)
    bar = tqdm(total=2 * len(cases), desc="held-out report", unit="case")
    before, before_frames = score_model(before_pipe, cases, sampling, settings.seed, progress=lambda: bar.update(1))
    del before_pipe
    after, after_frames = score_model(load_pipeline(tuned_model), cases, sampling, settings.seed,
                                      progress=lambda: bar.update(1))
    bar.close()
    change = {"L1": after["L1"] - before["L1"], "PSNR": after["PSNR"] - before["PSNR"], "SSIM": after["SSIM"] - before["SSIM"],
              "delta_e_relative": {p: (None if before["delta_e"][p] in (None, 0) or after["delta_e"].get(p) is None
                                       else after["delta_e"][p] / before["delta_e"][p] - 1) for p in before["delta_e"]}}
    if picture is not None:
        with atomic_path(picture) as tmp:
            Image.fromarray(side_by_side(cases, before_frames, after_frames)).save(tmp, format="PNG")
    return {"cases": len(cases), "frames": int(cases[0].frames.shape[0]), "refs": settings.refs, "size": size,
            "sampling": sampling, "targets": sorted({c.clip for c in cases}),
            "before": before, "after": after, "change": change}


def report_lines(report: dict) -> list[str]:
    """The report as a few readable lines (the console's and the model card's)."""
    b, a, c = report["before"], report["after"], report["change"]
    lines = [f"held-out footage, {report['cases']} cases of {report['frames']} frames, {report['refs']} references each:",
             f"  PSNR {b['PSNR']:.2f} -> {a['PSNR']:.2f} dB ({c['PSNR']:+.2f}); L1 {b['L1']:.2f} -> {a['L1']:.2f}; "
             f"SSIM {b['SSIM']:.3f} -> {a['SSIM']:.3f}"]
    parts = [f"{p} {b['delta_e'][p]:.1f} -> {a['delta_e'][p]:.1f} ({100 * c['delta_e_relative'][p]:+.0f}%)"
             for p in b["delta_e"] if b["delta_e"][p] is not None and a["delta_e"].get(p) is not None
             and c["delta_e_relative"][p] is not None]
    if parts:
        lines.append("  part colour ΔE: " + ", ".join(parts))
    elif b.get("delta_e_skipped"):
        lines.append(f"  part colour ΔE: skipped ({b['delta_e_skipped']})")
    return lines


# -- the whole job -----------------------------------------------------------------------------------
def train_personal(footage: list[str], out: str | Path, settings: PersonalSettings, *, work: str | Path | None = None,
                   dataset: str | Path | None = None) -> dict:
    """Prepare, hold out, fine-tune, export and report (module docstring). ``dataset``: an already prepared
    dataset (``freeview train prepare`` or ``synth make``) instead of ``footage``. Returns the report."""
    from engine.model import check_model_dir, default_model_dir

    from .config import model_settings, make_config
    from .export import export_model_dir, starting_sampling
    from .loop import train
    from .prepare import PrepareSettings, footage_files, prepare_dataset

    started = time.perf_counter()
    settings.check()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists; give a new folder for the model (nothing is overwritten)")
    if not footage and dataset is None:
        raise UserError("give footage (videos or folders of videos) or --dataset")
    start = check_model_dir(settings.model or default_model_dir())
    known = model_settings(start)
    if known is None or known["architecture"] is None:
        raise UserError(f"{start} is not a model whose architecture the trainer knows (engine.models.configs)")
    work = Path(work) if work is not None else out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(work / "personal.json", json.dumps({**asdict(settings), "model": str(start)}, indent=2) + "\n")

    # 1. prepare
    if dataset is None:
        from tqdm import tqdm

        prep = PrepareSettings(size=known["resolution"])
        prep.check()
        files = footage_files(footage)
        bar = tqdm(total=len(files), unit="file", desc="prepare")
        try:
            index = prepare_dataset(footage, work / "footage", prep, identity=settings.name,
                                    progress=lambda name: bar.update(1) if bar.n < bar.total else None)
        finally:
            bar.close()
        for s in index["skipped"]:
            print(f"skipped {s['source']}: {s['reason']}")
        dataset = work / "footage"
    # 2. hold out
    split = hold_out(dataset, work / "data", settings.name, settings.holdout, settings.holdout_share,
                     min_frames=settings.frames)
    train_clips = [c for c in split["clips"] if c["split"] == "train"]
    shots = sorted({c["shot"] for c in train_clips})
    held = split["holdout"]
    print(f"freeview: {len(train_clips)} training clips ({', '.join(shots)}), held out: "
          + (f"{', '.join(Path(h).name for h in held['held_out'])}" if held["mode"] == "file"
             else f"the last {held['share']:.0%} of every clip"))
    # 3. fine-tune: what defines the model comes from it (init_from); only the recipe is set here
    recipe = dict(stage="image", init_from=str(start), data=str(work / "data"), output_dir=str(work / "run"),
                  steps=settings.steps, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                  warmup_steps=min(20, settings.steps // 10), max_refs=min(3, len(train_clips) - 1) or 1,
                  reference_shots="other" if len(shots) > 1 else "any", reference_dropout=0.1, seed=settings.seed,
                  checkpoint_every=max(50, settings.steps // 4), keep_checkpoints=1, sample_every=0,
                  lora_rank=settings.lora_rank if settings.recipe == "lora" else None)
    config = make_config("sd15" if known["architecture"] == "sd15" else "tiny-synthetic", **recipe)
    result = train(config, resume="latest")
    # 4. export, with the starting model's sampling
    sampling_file = starting_sampling(start)
    export_model_dir(work / "run" / "model", out, steps=sampling_file.get("steps"), guidance=sampling_file.get("guidance"),
                     top_k=sampling_file.get("top_k"))
    # 5. report
    from engine.model import sampling_defaults

    sampling = sampling_defaults(start)
    report = before_after(start, out, work / "data", settings, sampling, picture=work / "before-after.png")
    report.update({"name": settings.name, "model": str(start), "recipe": settings.recipe, "steps": result["step"],
                   "seconds_per_step": result["seconds_per_step"], "holdout": held,
                   "training_clips": len(train_clips), "training_frames": sum(c["frames"] for c in train_clips),
                   "wall_seconds": time.perf_counter() - started, "picture": str(work / "before-after.png")})
    write_text_atomic(work / "report.json", json.dumps(report, indent=2) + "\n")
    card = [f"# {settings.name}: fine-tuned with `freeview train personal`", "",
            f"From `{start}`, recipe `{settings.recipe}`, {result['step']} steps at learning rate {settings.learning_rate:g} "
            f"on {report['training_frames']} frames of {len(train_clips)} clips.", "", *report_lines(report), "",
            "The report, with every figure, is `report.json` in the work folder; the picture `before-after.png`."]
    write_text_atomic(out / "README.md", "\n".join(card) + "\n")
    return report
