"""Synthetic multi-shot datasets: ``make_dataset`` writes them, ``SynthDataset`` serves training samples.

Layout of a dataset folder::

    settings.json          the make settings (a re-run with other settings is refused)
    clips/<identity>_<k>_<shot>.npz
    index.json             written last: identities (with split) and clips

Each clip ``.npz`` holds ``frames`` (F, H, W, 3) uint8 RGB, ``keypoints``
(F, 128, 3) float32 normalised x, y and visibility, ``world`` (F, 128, 3)
metres, ``in_frame`` (F, 128) bool, ``shots`` (F,) str, ``cut`` (F,) bool and the
cameras ``camera_K`` (F, 3, 3) pixels, ``camera_R`` (F, 3, 3), ``camera_t`` (F, 3).
Clips are written to a temporary file and renamed, so an interrupted make
leaves only whole clips and a re-run completes the rest.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from engine.errors import UserError
from engine.files import atomic_path, load_npz, write_text_atomic
from engine.poses import render_pose

from .camera import SHOTS
from .motion import FPS
from .world import ClipSpec, render_clip

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SPLITS = ("train", "eval")
MIN_SIZE, MAX_SIZE = 128, 512
# Where each clip is filmed: "identity" — one place per person, every shot of them there (the multi-shot talks
# the paper trains on: references and target share the stage); "clip" — a new place for every clip.
BACKDROPS = ("identity", "clip")


@dataclass(frozen=True)
class MakeSettings:
    """What ``freeview synth make`` was asked for (stored in settings.json)."""

    identities: int = 32
    eval_identities: int = 4
    size: int = 128
    seed: int = 0
    clips_per_identity: int = 6
    frames: int = 32
    supersample: int = 2
    backdrop: str = "identity"

    def check(self) -> None:
        if not (MIN_SIZE <= self.size <= MAX_SIZE) or self.size % 8:
            raise UserError(f"--size {self.size} is not valid: use a multiple of 8 from {MIN_SIZE} to {MAX_SIZE}")
        if self.identities < 1:
            raise UserError(f"--identities {self.identities} is not valid: make at least 1 identity")
        if self.eval_identities < 0:
            raise UserError(f"--eval-identities {self.eval_identities} is not valid: use 0 or more")
        if self.seed < 0:
            raise UserError(f"--seed {self.seed} is not valid: use a seed of 0 or more")
        if self.clips_per_identity < 2:
            raise UserError(f"--clips-per-identity {self.clips_per_identity} is not valid: references come from "
                            "other shots, so each identity needs at least 2 clips")
        if self.frames < 1:
            raise UserError(f"--frames {self.frames} is not valid: use at least 1 frame per clip")
        if self.backdrop not in BACKDROPS:
            raise UserError(f"--backdrop {self.backdrop!r} is not valid: use {' or '.join(BACKDROPS)}")
        if self.supersample not in (1, 2, 3, 4):
            raise UserError(f"supersample {self.supersample} is not valid: use 1 to 4")


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def plan_clips(settings: MakeSettings) -> tuple[list[dict], list[dict]]:
    """Identities and clip plans (with their :class:`ClipSpec`) for ``settings``, deterministic."""
    identities, clips = [], []
    for split_code, (split, count) in enumerate((("train", settings.identities), ("eval", settings.eval_identities))):
        for i in range(count):
            name = f"{split}{i:04d}"
            identity_seed = _seed(settings.seed, split_code, i, 1)
            identities.append({"id": name, "split": split, "seed": identity_seed})
            first_shot = int(np.random.default_rng(identity_seed).integers(3))
            for k in range(settings.clips_per_identity):
                rng = np.random.default_rng(_seed(settings.seed, split_code, i, k, 2))
                shot = SHOTS[(first_shot + k) % len(SHOTS)]
                zoom = 1.0
                if rng.random() < 0.4:
                    zoom = float(rng.uniform(1.12, 1.35))
                    zoom = zoom if rng.random() < 0.6 else 1.0 / zoom
                cut_at = None
                if settings.frames >= 6 and rng.random() < 0.3:
                    cut_at = int(rng.integers(settings.frames // 3, max(settings.frames * 2 // 3, settings.frames // 3 + 1)))
                spec = ClipSpec(
                    identity_seed=identity_seed,
                    # held-out identities also get motions from their own seed stream
                    motion_seed=_seed(settings.seed, split_code, i, k, 3),
                    camera_seed=_seed(settings.seed, split_code, i, k, 4),
                    shot=shot, num_frames=settings.frames, size=settings.size, zoom=round(zoom, 4),
                    cut_at=cut_at, supersample=settings.supersample,
                    backdrop_seed=identity_seed if settings.backdrop == "identity" else None,
                )
                clips.append({
                    "file": f"clips/{name}_{k:02d}_{shot}.npz", "identity": name, "split": split, "shot": shot,
                    "frames": settings.frames, "zoom": spec.zoom, "cut_at": cut_at, "spec": spec,
                })
    return identities, clips


def save_clip(path: Path, clip) -> None:
    """Write one rendered clip atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, frames=clip.frames, keypoints=clip.keypoints, world=clip.world, in_frame=clip.in_frame,
                shots=np.array([clip.spec.shot] * len(clip.frames)), cut=clip.cut,
                camera_K=clip.K, camera_R=clip.R, camera_t=clip.t, fps=np.float32(FPS),
            )


def load_clip(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of one clip file; a truncated or damaged one is one error naming it."""
    return load_npz(path)


def claim_folder(settings_path: Path, wanted: dict, what: str) -> None:
    """Make ``settings_path`` record ``wanted``, or refuse a folder that holds work made with other settings.

    A re-run with the same settings continues where an interrupted one stopped.
    """
    if settings_path.exists():
        try:
            previous = json.loads(settings_path.read_text())
        except (OSError, ValueError):
            previous = None
        if previous != wanted:
            raise UserError(f"{settings_path.parent} holds {what} made with other settings ({settings_path}); "
                            "use an empty folder or the same settings")
    else:
        write_text_atomic(settings_path, json.dumps(wanted, indent=2))


def make_dataset(out: str | Path, settings: MakeSettings, progress: Callable[[int, int], None] | None = None) -> dict:
    """Render the dataset of ``settings`` into ``out``; finished clips of an earlier run are kept. Returns the index."""
    settings.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {"version": FORMAT_VERSION, **settings.__dict__}
    claim_folder(out / "settings.json", wanted, "a synthetic dataset")
    identities, clips = plan_clips(settings)
    for n, clip in enumerate(clips):
        path = out / clip["file"]
        if not path.exists():
            save_clip(path, render_clip(clip["spec"]))
        if progress is not None:
            progress(n + 1, len(clips))
    from .character import make_character

    index = {
        "version": FORMAT_VERSION, "size": settings.size, "fps": FPS, "settings": wanted, "shots": list(SHOTS),
        "identities": [{**ident, "character": make_character(ident["seed"]).describe()} for ident in identities],
        "clips": [{k: v for k, v in clip.items() if k != "spec"} for clip in clips],
    }
    write_text_atomic(out / "index.json", json.dumps(index, indent=1))
    return index


def load_index(root: str | Path) -> dict:
    path = Path(root) / "index.json"
    if not path.exists():
        raise UserError(f"{root} is not a synthetic dataset (no index.json); make one with `freeview synth make -o {root}`")
    index = json.loads(path.read_text())
    if index.get("version") != FORMAT_VERSION:
        raise UserError(f"{path} has format version {index.get('version')}, expected {FORMAT_VERSION}")
    return index


REFERENCE_SHOTS = ("other", "any")


def reference_candidates(clips: list[dict], target: dict, shots: str = "other") -> list[dict]:
    """Clips of the target's identity that references come from: of another shot type than the
    target's (``shots="other"``), or any clip but the target's own (``"any"``: its shot type included)."""
    if shots not in REFERENCE_SHOTS:
        raise ValueError(f"reference shots must be one of {', '.join(REFERENCE_SHOTS)}, got {shots!r}")
    same_person = [c for c in clips if c["identity"] == target["identity"] and c["file"] != target["file"]]
    return same_person if shots == "any" else [c for c in same_person if c["shot"] != target["shot"]]


class SynthDataset(Dataset):
    """Training samples from a synthetic dataset.

    Each item is a window of ``num_frames`` consecutive frames of one clip (the
    target) and ``num_refs`` reference frames drawn from *other shots* of the
    same identity (``reference_shots="any"``: from any other clip of it), in random order. Returns torch tensors::

        ref_images       (M, 3, H, W) float in [-1, 1]
        ref_poses        (M, 3, H, W) float in [0, 1]   (DWPose-style pose images)
        target_images    (F, 3, H, W) float in [-1, 1]
        target_poses     (F, 3, H, W) float in [0, 1]
        ref_keypoints    (M, 128, 3)  normalised x, y, visibility
        target_keypoints (F, 128, 3)

    plus strings ``identity``, ``target_clip``, ``target_shot``, ``ref_clips`` and
    ``ref_shots`` (comma separated) and the int ``start``. ``size`` resizes
    frames (default: the dataset's size). References are random per call in the
    train split (seeded from torch, so DataLoader workers differ) and fixed per
    index in the eval split or when ``seed`` is given.
    """

    def __init__(self, root: str | Path, split: str = "train", num_refs: int = 4, num_frames: int = 1,
                 size: int | None = None, seed: int | None = None, cache_clips: int = 8, reference_shots: str = "other"):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if num_refs < 1 or num_frames < 1:
            raise ValueError(f"num_refs and num_frames must be at least 1, got {num_refs} and {num_frames}")
        self.root = Path(root)
        self.index = load_index(self.root)
        self.split = split
        self.num_refs = num_refs
        self.reference_shots = reference_shots
        self.num_frames = num_frames
        self.size = int(size or self.index["size"])
        self.seed = seed
        self.clips = [c for c in self.index["clips"] if c["split"] == split]
        if not self.clips:
            raise UserError(f"{root} has no clips in the {split!r} split")
        self.windows: list[tuple[int, int]] = []
        for ci, clip in enumerate(self.clips):
            if clip["frames"] < num_frames:
                raise ValueError(f"clip {clip['file']} has {clip['frames']} frames, fewer than num_frames={num_frames}")
            if not reference_candidates(self.clips, clip, reference_shots):
                where = "other clip" if reference_shots == "any" else f"clip of a shot other than {clip['shot']}"
                raise UserError(f"identity {clip['identity']} has no {where} to take references from")
            self.windows += [(ci, s) for s in range(clip["frames"] - num_frames + 1)]
        self._cache: OrderedDict[str, dict] = OrderedDict()
        self._cache_size = cache_clips

    def __len__(self) -> int:
        return len(self.windows)

    def _clip(self, clip: dict) -> dict:
        key = clip["file"]
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        data = load_clip(self.root / key)
        self._cache[key] = data
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return data

    def _rng(self, index: int) -> np.random.Generator:
        if self.split == "train" and self.seed is None:
            return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        return np.random.default_rng([self.seed or 0, index])

    def _image(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape[0] != self.size or frame.shape[1] != self.size:
            frame = cv2.resize(frame, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return frame

    def _tensors(self, frames: list[np.ndarray], keypoints: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images = np.stack([self._image(f) for f in frames]).astype(np.float32) / 127.5 - 1.0
        poses = np.stack([render_pose(k, self.size, self.size) for k in keypoints]).astype(np.float32) / 255.0
        return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                torch.from_numpy(poses).permute(0, 3, 1, 2).contiguous())

    def __getitem__(self, index: int) -> dict:
        clip_index, start = self.windows[index]
        target = self.clips[clip_index]
        rng = self._rng(index)
        data = self._clip(target)
        stop = start + self.num_frames
        target_kp = data["keypoints"][start:stop]
        target_images, target_poses = self._tensors(list(data["frames"][start:stop]), target_kp)

        candidates = reference_candidates(self.clips, target, self.reference_shots)
        ref_frames, ref_kp, ref_clips, ref_shots = [], [], [], []
        for _ in range(self.num_refs):
            ref = candidates[int(rng.integers(len(candidates)))]
            ref_data = self._clip(ref)
            f = int(rng.integers(len(ref_data["frames"])))
            ref_frames.append(ref_data["frames"][f])
            ref_kp.append(ref_data["keypoints"][f])
            ref_clips.append(ref["file"])
            ref_shots.append(ref["shot"])
        ref_kp = np.stack(ref_kp)
        ref_images, ref_poses = self._tensors(ref_frames, ref_kp)
        return {
            "ref_images": ref_images,
            "ref_poses": ref_poses,
            "target_images": target_images,
            "target_poses": target_poses,
            "ref_keypoints": torch.from_numpy(ref_kp.astype(np.float32)),
            "target_keypoints": torch.from_numpy(np.ascontiguousarray(target_kp, dtype=np.float32)),
            "identity": target["identity"],
            "target_clip": target["file"],
            "target_shot": target["shot"],
            "ref_clips": ",".join(ref_clips),
            "ref_shots": ",".join(ref_shots),
            "start": start,
        }
