"""Real people as references (issue 17): how close the animated person's part colours come to the photos'.

References are frames of real footage shipped by a public PyPI package (Pose2Sim's single-person demo: one athlete
filmed by four cameras; fetched by ``benchmarks/real_footage.py``'s ``fetch`` into a temporary folder, never stored
here) and scikit-image's astronaut photo. The person is animated along a held-out camera's pose track with a model
(the embedded default unless ``--model``), and the dominant CIELAB colour of each part (``engine.metrics.part_colours``:
torso, upper arms, thighs, hair, skin, shoes) of the output is compared with the same parts in the photos (CIEDE2000).
The warped composite (``engine.warps``, no network) is measured the same way.

    nice -n 19 .venv/bin/python benchmarks/real_photos.py [--cache /tmp/real] [--model DIR] [--frames 24] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE_FRAMES = [("Pose2Sim/Demo_SinglePerson/videos/cam01.mp4", 20), ("Pose2Sim/Demo_SinglePerson/videos/cam03.mp4", 60)]
MOTION = "Pose2Sim/Demo_SinglePerson/videos/cam04.mp4"


def part_table(references, frames: np.ndarray, keypoints: np.ndarray) -> dict:
    """ΔE per part between the photos' colours and the frames' (both read at their own keypoints)."""
    from engine.metrics import PARTS, delta_e, part_colour_track, part_colours, summary_colours

    photos = summary_colours(np.stack([part_colours(r.image, r.keypoints) for r in references]))
    output = summary_colours(part_colour_track(frames, keypoints))
    errors = delta_e(output, photos)
    return {part: (None if not np.isfinite(e) else round(float(e), 1)) for part, e in zip(PARTS, errors)}


def measure(name: str, references, motion, pipe, frames: int) -> dict:
    from engine.animate import AnimateSettings, animate
    from engine.warps.cli import warp_motion

    result = animate(pipe, references, motion, None, AnimateSettings(frames=frames), return_correlation=False)
    height, width = result.frames.shape[1:3]
    warped, _, _, track = warp_motion(references, motion, None, width=width, height=height, frames=frames)
    return {"case": name, "model": part_table(references, result.frames, result.target.keypoints),
            "warp composite": part_table(references, warped, track.keypoints), "frames": result.frames,
            "warped": warped}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="folder for the downloaded footage (default: a temporary one)")
    parser.add_argument("--model", help="model directory (default: the embedded default)")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--sheet", help="write a contact sheet PNG here (references | model | warp composite)")
    args = parser.parse_args()

    import cv2
    from skimage import data

    from benchmarks.real_footage import fetch
    from engine.animate import load_motion, load_reference
    from engine.model import load_pipeline
    from engine.video import read_frame

    with tempfile.TemporaryDirectory() as tmp:
        folder = fetch(Path(args.cache) if args.cache else Path(tmp))
        photos = Path(tmp) / "photos"
        photos.mkdir()
        paths = []
        for video, index in REFERENCE_FRAMES:
            path = photos / f"{Path(video).parent.parent.name}_{Path(video).stem}_{index}.png"
            cv2.imwrite(str(path), cv2.cvtColor(read_frame(folder / video, index), cv2.COLOR_RGB2BGR))
            paths.append(path)
        astronaut = photos / "astronaut.png"
        cv2.imwrite(str(astronaut), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
        pipe = load_pipeline(args.model)
        athlete = [load_reference(p) for p in paths]
        motion = load_motion(folder / MOTION)
        cases = [measure("athlete (Pose2Sim cam01 + cam03 -> cam04)", athlete, motion, pipe, args.frames),
                 measure("astronaut (scikit-image) -> athlete's motion", [load_reference(astronaut)], motion, pipe, args.frames)]
        refs_of = {cases[0]["case"]: athlete, cases[1]["case"]: [load_reference(astronaut)]}
    for case in cases:
        print(case["case"])
        for what in ("model", "warp composite"):
            values = case[what]
            seen = [v for v in values.values() if v is not None]
            print(f"  {what:15s} " + "  ".join(f"{k} {v if v is not None else '-'}" for k, v in values.items())
                  + (f"  | max {max(seen):.1f}" if seen else ""))
    if args.sheet:
        rows = []
        for case in cases:
            size = case["frames"].shape[1]
            refs = [cv2.resize(r.image, (round(r.image.shape[1] * size / r.image.shape[0]), size)) for r in refs_of[case["case"]]]
            picks = [0, len(case["frames"]) // 2, len(case["frames"]) - 1]
            row = np.concatenate(refs + [case["frames"][i] for i in picks] + [case["warped"][i] for i in picks], 1)
            rows.append(row)
        width = max(r.shape[1] for r in rows)
        sheet = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows], 0)
        cv2.imwrite(args.sheet, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if args.json:
        Path(args.json).write_text(json.dumps([{k: v for k, v in c.items() if k not in ("frames", "warped")} for c in cases], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
