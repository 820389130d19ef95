"""``freeview eval``: fidelity of a model on the held-out identities of a synthetic dataset.

For each case (a window of a held-out clip) and each *variant* (a named set of
reference shots plus pipeline options, e.g. "R=2 PCM off"), the model animates
the target poses from references taken from other clips of the same identity;
frames are scored against the ground truth with L1, PSNR and SSIM, and on appearance
(:data:`APPEARANCE_METRICS`): part colours against the ground truth's, sharpness and flicker against
the ground truth's, and an identity swap (another held-out person's references driven by the case's
motion: are the part colours that person's?). Three non-learned baselines run on the same references:

* ``nearest-pose reference``: per target frame, the reference whose body pose is
  nearest (after normalising position and scale), scaled and translated so the
  keypoints it shares with the target match their centre and spread;
* ``mean frame``: the mean of the references;
* ``warp composite``: the references warped into each target pose part by part and composed
  (:func:`engine.warps.compose_references`).

With a model, one more row is a ceiling rather than a baseline: ``autoencoder round trip``, the ground truth
itself encoded and decoded by the model's VAE (:func:`autoencoder_round_trip`). No sampler can give better
latents than the ground truth's own, so this row bounds what any model on that latent space can score (its
sharpness especially).

For the model variants where the PCM chooses between references (R > 1, PCM on,
top-K), the report also says which reference the kept tokens come from, by the
target's shot (:func:`selection_summary`).

Variants are data: :data:`DEFAULT_VARIANTS`, or a JSON list passed with
``--variants`` (``[{"name": ..., "shots": ["close-up", "wide"], "options": {"top_k": "all"}}]``;
a shot ``"any"`` takes any clip other than the target's).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.errors import UserError
from engine.files import atomic_path, write_text_atomic
from engine.metrics import (
    BASIC_METRICS, PARTS, SWAP_MIN_DE, basic_metrics, flicker_ratio, identity_swap_scores, part_colour_error, part_colour_track,
    part_colours, sharpness_ratios, summary_colours, unavailable_metrics,
)
from engine.models.selection import keeps_every_token
from engine.poses.track import BODY

from .synth.camera import SHOTS
from .synth.dataset import load_clip, load_index

logger = logging.getLogger(__name__)

ANY_SHOT = "any"
PIPELINE_OPTIONS = ("top_k", "disable_pcm")
BASELINES = ("nearest-pose reference", "mean frame", "warp composite")
CEILING = "autoencoder round trip"
# Per-case appearance figures beside BASIC_METRICS (NaN where a case cannot say: a part never seen, one person):
# part_dE: CIEDE2000 between the parts' colours and the ground truth's (mean over parts and frames);
# laplacian_ratio / hf_energy_ratio: sharpness over the ground truth's (engine.metrics.sharpness_ratios);
# flicker_ratio: frame-to-frame difference over the ground truth's, cuts left out;
# identity swap, person A's references driving person B's motion: swap_closer_to_A, the share of the parts whose
# colour is nearer A's than B's (swap_torso_closer_to_A: the torso alone), and swap_dE_to_A, ΔE from A's colours.
APPEARANCE_METRICS = ("part_dE", "laplacian_ratio", "hf_energy_ratio", "flicker_ratio",
                      "swap_closer_to_A", "swap_torso_closer_to_A", "swap_dE_to_A")
SWAP_METRICS = APPEARANCE_METRICS[4:]
# The ablation's claims, each a (row, row) pair compared case by case; pairs whose rows were not run are left out.
COMPARISONS = (
    (("R=2 close-up+wide", 2), ("R=1 close-up", 1)),
    (("R=2 close-up+wide", 2), ("R=1 wide", 1)),
    (("R=2 close-up+wide", 2), ("R=2 PCM off", 2)),
    (("R=2 close-up+wide", 2), ("R=2 all tokens", 2)),
    (("R=4", 4), ("R=4 all tokens", 4)),
    (("R=4", 4), ("R=2 close-up+wide", 2)),
    (("R=2 close-up+wide", 2), ("nearest-pose reference", 2)),
    (("R=2 close-up+wide", 2), ("mean frame", 2)),
    (("R=2 close-up+wide", 2), ("warp composite", 2)),
)


@dataclass(frozen=True)
class Variant:
    """A named reference set: one shot per reference, and pipeline options (``top_k``, ``disable_pcm``)."""

    name: str
    shots: tuple[str, ...]
    options: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not self.shots:
            raise ValueError(f"variant {self.name!r} has no references")
        for shot in self.shots:
            if shot not in SHOTS + (ANY_SHOT,):
                raise ValueError(f"variant {self.name!r}: unknown shot {shot!r}; expected one of {', '.join(SHOTS + (ANY_SHOT,))}")
        for key in self.options:
            if key not in PIPELINE_OPTIONS:
                raise ValueError(f"variant {self.name!r}: unknown option {key!r}; expected one of {', '.join(PIPELINE_OPTIONS)}")

    @property
    def refs(self) -> int:
        return len(self.shots)

    @classmethod
    def from_dict(cls, data: dict) -> "Variant":
        unknown = set(data) - {"name", "shots", "options"}
        if unknown:
            raise ValueError(f"unknown variant keys: {', '.join(sorted(unknown))}")
        return cls(str(data["name"]), tuple(data["shots"]), dict(data.get("options", {})))


DEFAULT_VARIANTS = (
    Variant("R=1 close-up", ("close-up",)),
    Variant("R=1 medium", ("medium",)),
    Variant("R=1 wide", ("wide",)),
    Variant("R=2 close-up+wide", ("close-up", "wide")),
    Variant("R=2 PCM off", ("close-up", "wide"), {"disable_pcm": True}),
    Variant("R=2 all tokens", ("close-up", "wide"), {"top_k": "all"}),
    Variant("R=4", ("close-up", "medium", "wide", ANY_SHOT)),
    Variant("R=4 all tokens", ("close-up", "medium", "wide", ANY_SHOT), {"top_k": "all"}),
)


def load_variants(path: str | Path) -> tuple[Variant, ...]:
    try:
        data = json.loads(Path(path).read_text())
        return tuple(Variant.from_dict(v) for v in data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read variants from {path}: {exc}") from None


# --------------------------------------------------------------------------- cases and references


@dataclass
class Case:
    """One evaluation target: frames ``(F, H, W, 3)`` uint8 and keypoints ``(F, 128, 3)``, plus a reference pool per shot."""

    identity: str
    clip: str
    shot: str
    start: int
    frames: np.ndarray
    keypoints: np.ndarray
    pool: dict  # shot -> (image (H, W, 3) uint8, keypoints (128, 3), clip file)
    cut: np.ndarray | None = None  # (F,) bool: frame i starts a new camera angle
    donor: str | None = None  # identity swap: whose references the pool holds (not the person in ``frames``)


def build_cases(data_dir: str | Path, num_cases: int, num_frames: int, seed: int = 0) -> list[Case]:
    """Deterministic cases from the eval split: targets cycle through the held-out clips, one identity after
    another (a few cases already span every held-out person)."""
    root = Path(data_dir)
    index = load_index(root)
    clips = [c for c in index["clips"] if c["split"] == "eval"]
    by_identity: dict[str, list[dict]] = {}
    for clip in clips:
        by_identity.setdefault(clip["identity"], []).append(clip)
    clips = [c for round_ in itertools.zip_longest(*by_identity.values()) for c in round_ if c is not None]
    if not clips:
        raise UserError(f"{root} has no eval split; make one with `freeview synth make --eval-identities N`")
    cache: dict[str, dict] = {}

    def clip_data(clip):
        if clip["file"] not in cache:
            cache[clip["file"]] = load_clip(root / clip["file"])
        return cache[clip["file"]]

    cases = []
    for i in range(num_cases):
        rng = np.random.default_rng([seed, i])
        target = clips[i % len(clips)]
        frames_available = target["frames"]
        if frames_available < num_frames:
            raise UserError(f"--frames {num_frames} is longer than the clips ({frames_available} frames)")
        start = int(rng.integers(frames_available - num_frames + 1))
        data = clip_data(target)
        others = [c for c in clips if c["identity"] == target["identity"] and c["file"] != target["file"]]
        if not others:
            raise UserError(f"identity {target['identity']} has a single clip; references need other clips")
        pool = {}
        for shot in SHOTS + (ANY_SHOT,):
            same = [c for c in others if c["shot"] == shot]
            if shot == ANY_SHOT or not same:
                # "any", or no other clip of this shot: any other clip (recorded in the pool entry)
                same = others
            ref = same[int(rng.integers(len(same)))]
            ref_data = clip_data(ref)
            f = int(rng.integers(len(ref_data["frames"])))
            pool[shot] = (ref_data["frames"][f], ref_data["keypoints"][f], ref["file"])
        stop = start + num_frames
        cases.append(Case(target["identity"], target["file"], target["shot"], start,
                          data["frames"][start:stop], data["keypoints"][start:stop], pool, data["cut"][start:stop]))
    return cases


def swap_cases(cases: list[Case]) -> list[Case]:
    """The identity-swap twin of every case: the same target (person B's frames and motion) with the reference
    pool of the next case of another person A; empty when every case is one person."""
    twins = []
    for i, case in enumerate(cases):
        donor = next((cases[(i + k) % len(cases)] for k in range(1, len(cases))
                      if cases[(i + k) % len(cases)].identity != case.identity), None)
        if donor is None:
            return []
        twins.append(Case(case.identity, case.clip, case.shot, case.start, case.frames, case.keypoints, donor.pool,
                          case.cut, donor=donor.identity))
    return twins


def pool_colours(case: Case) -> np.ndarray:
    """The part colours ``(parts, 3)`` CIELAB of the person whose photos ``case.pool`` holds, read from all of them
    (each part from the photos that show it: the face from the close-up, the shoes from the wide shot)."""
    return summary_colours(np.stack([part_colours(image, keypoints) for image, keypoints, _ in case.pool.values()]))


def references(case: Case, variant: Variant) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Reference images and keypoints of ``variant`` for ``case`` (shots in the variant's order)."""
    images, poses = [], []
    for shot in variant.shots:
        image, keypoints, _ = case.pool[shot]
        images.append(image)
        poses.append(keypoints)
    return images, poses


# --------------------------------------------------------------------------- baselines


def _normalised_body(keypoints: np.ndarray, common: np.ndarray) -> np.ndarray:
    pts = keypoints[BODY][common, :2]
    centred = pts - pts.mean(0)
    return centred / max(np.sqrt((centred ** 2).sum(1).mean()), 1e-6)


def pose_distance(reference: np.ndarray, target: np.ndarray, threshold: float = 0.3) -> float:
    """Distance between two poses ``(128, 3)`` on their shared body keypoints, after removing position and scale."""
    common = (reference[BODY, 2] > threshold) & (target[BODY, 2] > threshold)
    if common.sum() < 3:
        return np.inf
    a, b = _normalised_body(reference, common), _normalised_body(target, common)
    # poses sharing few joints are less trustworthy: penalise the missing ones
    return float(np.sqrt(((a - b) ** 2).sum(1).mean()) + 0.05 * (18 - common.sum()))


def align_reference(image: np.ndarray, reference: np.ndarray, target: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """``image`` scaled and translated so the keypoints it shares with ``target`` match their centre and spread."""
    h, w = image.shape[:2]
    common = (reference[:, 2] > threshold) & (target[:, 2] > threshold)
    if common.sum() < 2:
        return image.copy()
    scale_xy = np.array([w, h], np.float64)
    r = reference[common, :2] * scale_xy
    t = target[common, :2] * scale_xy
    rc, tc = r.mean(0), t.mean(0)
    spread_r = np.sqrt(((r - rc) ** 2).sum(1).mean())
    spread_t = np.sqrt(((t - tc) ** 2).sum(1).mean())
    s = spread_t / spread_r if spread_r > 1e-6 else 1.0
    s = float(np.clip(s, 0.1, 10.0))
    # keypoints are continuous coordinates (pixel centres at +0.5); cv2 maps pixel centres at integers
    offset = tc - s * rc + 0.5 * (s - 1)
    matrix = np.array([[s, 0, offset[0]], [0, s, offset[1]]], np.float64)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def nearest_pose_baseline(ref_images: list[np.ndarray], ref_poses: list[np.ndarray], target_poses: np.ndarray) -> np.ndarray:
    """Frames ``(F, H, W, 3)``: per target pose, the nearest-pose reference aligned to its framing."""
    out = []
    for target in target_poses:
        distances = [pose_distance(p, target) for p in ref_poses]
        best = int(np.argmin(distances)) if np.isfinite(min(distances)) else 0
        out.append(align_reference(ref_images[best], ref_poses[best], target))
    return np.stack(out)


def mean_frame_baseline(ref_images: list[np.ndarray], num_frames: int) -> np.ndarray:
    """Frames ``(F, H, W, 3)``: the mean of the references, repeated."""
    mean = np.mean(np.stack(ref_images).astype(np.float64), 0).round().astype(np.uint8)
    return np.repeat(mean[None], num_frames, 0)


def warp_composite_baseline(ref_images: list[np.ndarray], ref_poses: list[np.ndarray], target_poses: np.ndarray) -> np.ndarray:
    """Frames ``(F, H, W, 3)``: per target pose, the references warped into it part by part and composed
    (:func:`engine.warps.compose_references`), at the references' size."""
    from engine.warps import compose_references

    h, w = ref_images[0].shape[:2]
    return np.stack([np.asarray(compose_references(ref_images, ref_poses, target, h, w).image) for target in target_poses])


def _warps_missing() -> str | None:
    try:
        from engine.warps import compose_references  # noqa: F401
    except ImportError as exc:
        return f"the warp-composite baseline needs engine.warps.compose_references ({exc})"
    return None


# --------------------------------------------------------------------------- the harness


def evaluate(cases: list[Case], refs: list[int], generate: Callable | None = None,
             variants: tuple[Variant, ...] = DEFAULT_VARIANTS, steps: int = 20, guidance: float = 2.0,
             seed: int = 0, progress: Callable[[str], None] | None = None,
             on_prediction: Callable[[str, int, np.ndarray], None] | None = None, top_k: float | str | None = None,
             reconstruct: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """Score the baselines and (when ``generate`` is given) the model variants with a reference count in ``refs``;
    ``reconstruct`` (frames -> frames, the model's autoencoder) adds the :data:`CEILING` row.

    ``generate`` has the :class:`~engine.pipeline.FreeViewPipeline` call interface and returns an
    object with ``.frames`` ``(F, H, W, 3)`` uint8. ``on_prediction(name, case_index, frames)`` sees
    every prediction (for contact sheets).
    """
    chosen = [v for v in variants if v.refs in refs]
    missing = sorted(set(refs) - {v.refs for v in chosen})
    if missing:
        raise UserError(f"no variant uses {', '.join(map(str, missing))} reference(s); "
                        f"available counts: {', '.join(map(str, sorted({v.refs for v in variants})))}")
    warps_missing = _warps_missing()
    rows = []
    twins = swap_cases(cases)
    truth = [part_colour_track(case.frames, case.keypoints) for case in cases]  # the ground truth's part colours
    driver_colours = [summary_colours(colours) for colours in truth]  # person B, in each case's own frames
    donor_colours = [pool_colours(twin) for twin in twins]  # person A, from their photos

    def score(name, n, frames_for_case, extra, warm_up=False, swap=True):
        totals = {m: [] for m in BASIC_METRICS + APPEARANCE_METRICS}
        by_part = {"part_dE": [], "swap_closer_to_A": []}  # (cases, parts)
        seconds = 0.0
        if warm_up and cases:  # untimed: the first call with new shapes pays one-off costs the others do not
            frames_for_case(cases[0])
        for i, case in enumerate(cases):
            start = time.perf_counter()
            predicted = frames_for_case(case)
            seconds += time.perf_counter() - start
            if on_prediction is not None:
                on_prediction(name, i, predicted)
            if predicted.shape != case.frames.shape:
                raise ValueError(f"{name}: produced frames {predicted.shape}, expected {case.frames.shape}")
            for metric, value in basic_metrics(predicted, case.frames).items():
                totals[metric].append(value)
            errors = part_colour_error(predicted, case.frames, case.keypoints)  # (frames, parts)
            by_part["part_dE"].append(_nanmean(errors, axis=0))
            totals["part_dE"].append(_nanmean(errors))
            sharpness = sharpness_ratios(predicted, case.frames)
            totals["laplacian_ratio"].append(sharpness["laplacian"])
            totals["hf_energy_ratio"].append(sharpness["high_frequency"])
            totals["flicker_ratio"].append(flicker_ratio(predicted, case.frames, case.cut))
            if twins and swap:
                swapped = frames_for_case(twins[i])
                colours = summary_colours(part_colour_track(swapped, case.keypoints))
                swap = identity_swap_scores(colours, donor_colours[i], driver_colours[i])
                by_part["swap_closer_to_A"].append(swap["closer_to_donor"])
                totals["swap_closer_to_A"].append(_nanmean(swap["closer_to_donor"]))
                totals["swap_torso_closer_to_A"].append(float(swap["closer_to_donor"][PARTS.index("torso")]))
                totals["swap_dE_to_A"].append(_nanmean(swap["delta_e_to_donor"]))
            else:
                for metric in SWAP_METRICS:
                    totals[metric].append(float("nan"))
        row = {"name": name, "refs": n, **{m: _finite(_nanmean(v)) for m, v in totals.items()},
               "seconds_per_case": seconds / max(1, len(cases)), **extra,
               "by_part": {metric: dict(zip(PARTS, (_finite(x) for x in _nanmean(np.array(v).reshape(-1, len(PARTS)), axis=0))))
                           for metric, v in by_part.items() if v},
               "per_case": {m: [_finite(x) for x in v] for m, v in totals.items()}}
        rows.append(row)
        if progress is not None:
            progress(f"{name} (R={n}): " + ", ".join(f"{m} {_text(row[m])}" for m in BASIC_METRICS + APPEARANCE_METRICS))

    for n in sorted(set(refs)):
        base = next(v for v in chosen if v.refs == n)
        extra = {"references": "+".join(base.shots), "kind": "baseline"}
        score(BASELINES[0], n, lambda c, v=base: nearest_pose_baseline(*references(c, v), c.keypoints), extra)
        score(BASELINES[1], n, lambda c, v=base: mean_frame_baseline(references(c, v)[0], len(c.frames)), extra)
        if warps_missing is None:
            score(BASELINES[2], n, lambda c, v=base: warp_composite_baseline(*references(c, v), c.keypoints), extra)

    if reconstruct is not None:  # the swap has no meaning here: the round trip shows the ground truth's person
        score(CEILING, 0, lambda c: reconstruct(c.frames), {"references": "ground truth", "kind": "ceiling"}, swap=False)

    if generate is not None:
        import torch

        for variant in chosen:
            options = {"top_k": top_k, "disable_pcm": False, **variant.options}  # top_k: the model's recommendation
            # Which reference the selection draws on: only where the PCM makes a choice.
            analyse = variant.refs > 1 and not options["disable_pcm"] and not keeps_every_token(options["top_k"], variant.refs)
            kept: dict[int, dict] = {}  # id(case) -> selection summary (the warm-up case is overwritten)

            def run(case, variant=variant, options=options, analyse=analyse, kept=kept):
                images, poses = references(case, variant)
                h, w = case.frames.shape[1:3]
                out = generate(
                    reference_images=images, reference_poses=poses, target_poses=case.keypoints,
                    height=h, width=w, num_inference_steps=steps, guidance_scale=guidance,
                    generator=torch.Generator().manual_seed(seed), output_type="np", **options,
                    **({"return_correlation": True} if analyse else {}),
                )
                if analyse and out.correlation is not None:
                    kept[id(case)] = selection_summary(out.correlation, options["top_k"])
                return np.asarray(out.frames)

            score(variant.name, variant.refs, run, {"references": "+".join(variant.shots), "kind": "model",
                                                    "options": {k: v for k, v in variant.options.items()}},
                  warm_up=True)
            if kept:
                per_case = [kept[id(c)] for c in cases]
                rows[-1]["selection"] = {"reference_shots": list(variant.shots),
                                         **{key: [s[key] for s in per_case] for key in ("share", "mean_correlation")}}
    return {
        "rows": rows,
        "comparisons": compare(rows, groups=[case.identity for case in cases], seed=seed),
        "identities": len({case.identity for case in cases}),
        "skipped": {**unavailable_metrics(), **({"warp composite": warps_missing} if warps_missing else {}),
                    **({} if twins else {"identity swap": "every case shows the same person"})},
        "parts": list(PARTS),
        "cases": len(cases),
        "target_shots": [case.shot for case in cases],
        "frames": int(cases[0].frames.shape[0]) if cases else 0,
        "size": int(cases[0].frames.shape[1]) if cases else 0,
        "steps": steps,
        "guidance": guidance,
        "seed": seed,
    }


def autoencoder_round_trip(vae, frames: np.ndarray, batch: int = 16) -> np.ndarray:
    """``frames (F, H, W, 3)`` uint8 encoded (the posterior's mode) and decoded by ``vae``, as uint8."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(frames), batch):
            x = torch.from_numpy(np.ascontiguousarray(frames[start:start + batch])).permute(0, 3, 1, 2)
            x = x.to(vae.device, vae.dtype) / 127.5 - 1
            y = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
            out.append(((y.float() + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def _nanmean(values, axis=None):
    """Mean ignoring NaN (NaN where nothing is left), without numpy's empty-slice warning."""
    values = np.asarray(values, float)
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan) if axis is not None else (
        float(total / count) if count else float("nan"))


def _finite(value) -> float | None:
    """A float for JSON: None where the figure does not exist (NaN)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _text(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def selection_summary(correlation: np.ndarray, top_k: float | str | None) -> dict:
    """What the selection keeps of each reference, from the PCM's maps ``(frames, refs, h, w)``:
    ``share`` (:func:`engine.animate.kept_shares`) and ``mean_correlation``, each reference's mean R
    (its tokens are weighted by 1 + R)."""
    from engine.animate import kept_shares

    return {"share": kept_shares(correlation, top_k), "mean_correlation": [float(x) for x in correlation.mean(axis=(0, 2, 3))]}


def paired_difference(a, b, groups=None, samples: int = 2000, seed: int = 0) -> dict:
    """Mean of ``a - b`` over cases with a 95% bootstrap interval.

    Without ``groups`` cases are resampled with replacement. With ``groups`` (one label per case, e.g. the
    held-out person) whole groups are: cases of one person are not independent (same clothes, same place),
    so the interval must reflect how many people were seen, not only how many cases.
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size == 0:
        raise ValueError("no cases to compare")
    rng = np.random.default_rng(seed)
    if groups is None:
        resampled = d[rng.integers(0, d.size, (samples, d.size))].mean(axis=1)
    else:
        labels, index = np.unique(np.asarray(groups), return_inverse=True)
        if index.size != d.size:
            raise ValueError(f"{index.size} group labels for {d.size} cases")
        sums, counts = np.bincount(index, d, len(labels)), np.bincount(index, minlength=len(labels))
        draws = rng.integers(0, len(labels), (samples, len(labels)))
        resampled = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"mean": float(d.mean()), "low": float(low), "high": float(high)}


def compare(rows: list[dict], pairs=COMPARISONS, groups=None, seed: int = 0) -> list[dict]:
    """Paired per-case differences for ``pairs`` of ``(name, refs)`` rows (first minus second); ``groups``
    labels the cases for a bootstrap over groups (see :func:`paired_difference`)."""
    by_key = {(r["name"], r["refs"]): r for r in rows}
    found = []
    for first, second in pairs:
        if first in by_key and second in by_key:
            a, b = by_key[first]["per_case"], by_key[second]["per_case"]
            found.append({"first": list(first), "second": list(second), **{
                m: paired_difference(a[m], b[m], groups, seed=seed) for m in BASIC_METRICS}})
            for m in APPEARANCE_METRICS:  # only the cases where both rows have the figure
                if m not in a or m not in b:
                    continue
                keep = [x is not None and y is not None for x, y in zip(a[m], b[m])]
                if any(keep):
                    pick = lambda values: [v for v, k in zip(values, keep) if k]  # noqa: E731
                    found[-1][m] = {**paired_difference(pick(a[m]), pick(b[m]), None if groups is None else pick(groups),
                                                        seed=seed), "cases": int(sum(keep))}
    return found


def contact_sheet(cases: list[Case], variant: Variant, predictions: dict[int, np.ndarray], frames: int = 3) -> np.ndarray:
    """One row per case: the variant's references | ground-truth frames | generated frames."""
    rows = []
    for i, predicted in sorted(predictions.items()):
        case = cases[i]
        picks = np.linspace(0, len(case.frames) - 1, frames).round().astype(int)
        size = case.frames.shape[1]
        refs = [cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) for img in references(case, variant)[0]]
        gap = np.full((size, 6, 3), 255, np.uint8)
        row = [*refs, gap, *case.frames[picks], gap, *predicted[picks]]
        rows.append(np.concatenate(row, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)


def markdown_table(report: dict) -> str:
    lines = ["| name | refs | references | L1 ↓ | PSNR ↑ | SSIM ↑ | part ΔE ↓ | Laplacian ratio | HF ratio "
             "| flicker ratio | swap: parts → A | swap: torso → A | swap: ΔE to A ↓ | s / case |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in report["rows"]:
        cells = [_cell(row.get(m), p) for m, p in zip(APPEARANCE_METRICS, (1, 2, 2, 2, 2, 2, 1))]
        lines.append(f"| {row['name']} | {row['refs']} | {row.get('references', '')} | "
                     f"{row['L1']:.2f} | {row['PSNR']:.2f} | {row['SSIM']:.4f} | " + " | ".join(cells)
                     + f" | {row.get('seconds_per_case', 0):.2f} |")
    lines.append("")
    lines.append(f"{report['cases']} cases of {report['frames']} frames at {report['size']} px, "
                 f"{report['steps']} step{'s' if report['steps'] != 1 else ''}, guidance {report['guidance']}.")
    if any("part_dE" in row for row in report["rows"]):
        lines += ["", "Appearance, read from the keypoints (CIEDE2000 on the dominant CIELAB colour of each part: torso, "
                      "upper arms, thighs, hair, skin, shoes, where the target shows it): part ΔE against the ground truth; "
                      "sharpness (Laplacian variance, spectral energy above 0.25 cycles/pixel) and flicker (mean "
                      "frame-to-frame difference, cuts left out) as ratios to the ground truth's (1 = alike); identity "
                      f"swap: another held-out person A's photos driven by the case's motion, the share of cases whose "
                      f"torso (of parts) is nearer A's colour than the driving person's (parts whose colours differ by "
                      f"less than ΔE {SWAP_MIN_DE:g} between the two are not counted), and the mean ΔE to A's colours."]
    for name, reason in report.get("skipped", {}).items():
        lines.append(f"- {name} skipped: {reason}")
    swapped = [row for row in report["rows"] if row.get("by_part", {}).get("swap_closer_to_A")]
    if swapped:
        parts = report.get("parts", list(PARTS))
        lines += ["", "Identity swap by part (share of cases nearer A) and part ΔE against the ground truth by part:", "",
                  "| name | refs | " + " | ".join(f"{p} → A" for p in parts) + " | " + " | ".join(f"{p} ΔE" for p in parts) + " |",
                  "|---|---:|" + "---:|" * (2 * len(parts))]
        for row in swapped:
            near, error = row["by_part"]["swap_closer_to_A"], row["by_part"].get("part_dE", {})
            lines.append(f"| {row['name']} | {row['refs']} | " + " | ".join(_cell(near.get(p), 2) for p in parts) + " | "
                         + " | ".join(_cell(error.get(p), 1) for p in parts) + " |")
    shots = report.get("target_shots")
    if shots:
        present = [s for s in SHOTS if s in shots]
        lines += ["", "PSNR by the target's shot (mean over the cases of that shot):", "",
                  "| name | refs | " + " | ".join(f"{s} ({shots.count(s)})" for s in present) + " |",
                  "|---|---:|" + "---:|" * len(present)]
        for row in report["rows"]:
            values = np.asarray(row["per_case"]["PSNR"])
            means = [values[[t == s for t in shots]].mean() for s in present]
            lines.append(f"| {row['name']} | {row['refs']} | " + " | ".join(f"{m:.2f}" for m in means) + " |")
    selected = [row for row in report["rows"] if row.get("selection")]
    if selected and shots:
        lines += ["", "What the selection keeps, by the target's shot: each reference's share of the top-K correlation "
                      "cells (at the PCM's resolution) and, in brackets, its mean correlation R (tokens are weighted by 1 + R):",
                  "", "| name | target shot | kept from each reference |", "|---|---|---|"]
        for row in selected:
            sel = row["selection"]
            share, corr = np.asarray(sel["share"]), np.asarray(sel["mean_correlation"])
            for s in [s for s in SHOTS if s in shots]:
                mask = np.asarray([t == s for t in shots])
                cells = ", ".join(f"{ref} {100 * a:.0f}% ({c:+.3f})"
                                  for ref, a, c in zip(sel["reference_shots"], share[mask].mean(0), corr[mask].mean(0)))
                lines.append(f"| {row['name']} | {s} ({int(mask.sum())}) | {cells} |")
    if report.get("comparisons"):
        people = f"the {report['identities']} held-out people" if report.get("identities") else "held-out people"
        lines += ["", f"Paired differences, case by case (first minus second; 95% bootstrap interval over {people}: "
                      "people resampled with replacement, each with all their cases):", "",
                  "| first | second | ΔL1 (lower is better) | ΔPSNR | ΔSSIM |", "|---|---|---:|---:|---:|"]
        for c in report["comparisons"]:
            cells = [f"{c[m]['mean']:+.{p}f} [{c[m]['low']:+.{p}f}, {c[m]['high']:+.{p}f}]"
                     for m, p in (("L1", 2), ("PSNR", 2), ("SSIM", 4))]
            lines.append(f"| {c['first'][0]} | {c['second'][0]} (R={c['second'][1]}) | " + " | ".join(cells) + " |")
        shown = [m for m in APPEARANCE_METRICS if any(m in c for c in report["comparisons"])]
        if shown:
            names = {"part_dE": "Δ part ΔE", "laplacian_ratio": "Δ Laplacian ratio", "hf_energy_ratio": "Δ HF ratio",
                     "flicker_ratio": "Δ flicker ratio", "swap_closer_to_A": "Δ swap parts → A",
                     "swap_torso_closer_to_A": "Δ swap torso → A", "swap_dE_to_A": "Δ swap ΔE to A"}
            lines += ["", "The same pairs on appearance (cases where both rows have the figure):", "",
                      "| first | second | " + " | ".join(names[m] for m in shown) + " |", "|---|---|" + "---:|" * len(shown)]
            for c in report["comparisons"]:
                cells = [f"{c[m]['mean']:+.2f} [{c[m]['low']:+.2f}, {c[m]['high']:+.2f}]" if m in c else "n/a" for m in shown]
                lines.append(f"| {c['first'][0]} | {c['second'][0]} (R={c['second'][1]}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- command line


def _parse_refs(text: str) -> list[int]:
    try:
        refs = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--refs {text!r} is not valid: use reference counts like 1,2") from None
    if not refs or min(refs) < 1:
        raise UserError(f"--refs {text!r} is not valid: use reference counts of at least 1")
    return refs


def register(subparsers, bench) -> None:
    p = subparsers.add_parser(
        "eval", help="fidelity (L1, PSNR, SSIM) on the held-out identities of a synthetic dataset",
        description="Animate held-out synthetic identities with named reference sets and score against ground truth, "
                    "beside two non-learned baselines (nearest-pose reference, mean frame).",
    )
    p.add_argument("--model", metavar="DIR", help="model directory (default: the embedded default)")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset made by `freeview synth make`")
    p.add_argument("--refs", default="1,2", help="reference counts to evaluate, comma separated (default %(default)s)")
    p.add_argument("--json", required=True, metavar="OUT.json", help="write the table here")
    p.add_argument("--markdown", metavar="OUT.md", help="also write the table as Markdown")
    p.add_argument("--cases", type=int, default=8, help="evaluation cases (default %(default)s)")
    p.add_argument("--frames", type=int, default=12, help="frames per case (default %(default)s)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's recommendation)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the model's recommendation)")
    p.add_argument("--seed", type=int, default=0, help="seed for cases and sampling (default %(default)s)")
    p.add_argument("--variants", metavar="VARIANTS.json", help="reference-set variants (default: the built-in ablation)")
    p.add_argument("--baselines-only", action="store_true", help="score only the non-learned baselines")
    p.add_argument("--contact-sheet", metavar="OUT.png", help="also save references | ground truth | generated for a few cases")
    p.add_argument("--sheet-variant", default="R=2 close-up+wide", help="variant shown on the contact sheet (default %(default)s)")
    p.add_argument("--sheet-cases", type=int, default=4, help="cases on the contact sheet (default %(default)s)")
    p.set_defaults(func=run_eval)


def run_eval(args) -> int:
    refs = _parse_refs(args.refs)
    if args.cases < 1:
        raise UserError(f"--cases {args.cases} is not valid: use at least 1")
    if args.frames < 1:
        raise UserError(f"--frames {args.frames} is not valid: use at least 1")
    from engine.model import sampling_defaults

    recommended = sampling_defaults(args.model)
    args.steps = recommended["steps"] if args.steps is None else args.steps
    args.guidance = recommended["guidance"] if args.guidance is None else args.guidance
    if args.steps < 1:
        raise UserError(f"--steps {args.steps} is not valid: use at least 1")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} is not valid: use 0 or more")
    variants = load_variants(args.variants) if args.variants else DEFAULT_VARIANTS
    cases = build_cases(args.data, args.cases, args.frames, args.seed)
    generate = None
    if not args.baselines_only:
        from engine.model import load_pipeline

        generate = load_pipeline(args.model)
    sheet: dict[int, np.ndarray] = {}

    def keep(name: str, index: int, frames: np.ndarray) -> None:
        if name == args.sheet_variant and index < args.sheet_cases:
            sheet[index] = frames

    reconstruct = None if generate is None else (lambda frames: autoencoder_round_trip(generate.vae, frames))
    report = evaluate(cases, refs, generate, variants, args.steps, args.guidance, args.seed, progress=print,
                      on_prediction=keep if args.contact_sheet else None, top_k=recommended["top_k"],
                      reconstruct=reconstruct)
    if args.contact_sheet and sheet:
        from PIL import Image

        variant = next(v for v in variants if v.name == args.sheet_variant)
        with atomic_path(args.contact_sheet) as tmp:
            Image.fromarray(contact_sheet(cases, variant, sheet)).save(tmp, format="PNG")
    report["model"] = None if args.baselines_only else str(args.model or "default")
    report["data"] = str(args.data)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        write_text_atomic(args.markdown, markdown_table(report))
    print(markdown_table(report), end="")
    return 0
