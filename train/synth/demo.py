"""The demo assets shipped in ``assets/demo``: references, motions and a camera plan.

Made from the synthetic world with seeds no training run uses, so the demo shows
people the default model has never seen. ``freeview synth demo -o assets/demo``
re-creates them exactly.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from engine.camera import CameraTimeline, Cut, Keyframe
from engine.files import atomic_path
from engine.poses import PoseTrack, save_pose_file

from .motion import FPS
from .world import ClipSpec, render_clip

DEMO_SEED = 777_000  # far from the seed streams of `synth make`
CHARACTERS = {"mara": DEMO_SEED + 1, "theo": DEMO_SEED + 2}
MOTIONS = {"presenter": DEMO_SEED + 11, "gestures": DEMO_SEED + 12}
MOTION_FRAMES = 96
REFERENCE_SIZE = 256


def make_demo(out: str | Path, size: int = REFERENCE_SIZE) -> list[Path]:
    """Write references (PNG + ``.pose.json``), motions (pose files) and ``camera/zoom-and-cut.json``."""
    out = Path(out)
    written = []
    for name, seed in CHARACTERS.items():
        for k, shot in enumerate(("close-up", "medium", "wide")):
            clip = render_clip(ClipSpec(seed, seed + 100 + k, seed + 200 + k, shot, num_frames=8, size=size,
                                        backdrop_seed=seed))  # every shot of a person in one place
            frame = 5
            image_path = out / "references" / f"{name}_{shot}.png"
            image_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(image_path) as tmp:
                Image.fromarray(clip.frames[frame]).save(tmp, format="PNG")
            track = PoseTrack(clip.keypoints[frame:frame + 1], size, size, FPS, world=clip.world[frame:frame + 1])
            written += [image_path, save_pose_file(track, image_path.with_suffix(".pose.json"))]
    for name, seed in MOTIONS.items():
        clip = render_clip(ClipSpec(seed, seed, seed + 1, "wide", num_frames=MOTION_FRAMES, size=512, supersample=1))
        track = PoseTrack(clip.keypoints, 512, 512, FPS, world=clip.world)
        path = out / "motions" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(save_pose_file(track, path))
    timeline = CameraTimeline(
        keyframes=(
            Keyframe(0, shot="wide", easing="ease-in-out", label="wide"),
            Keyframe(40, shot="close-up", easing="hold", label="zoom in"),
        ),
        cuts=(Cut(64, shot="medium", label="cut to medium"),),
    )
    camera_path = out / "camera" / "zoom-and-cut.json"
    camera_path.parent.mkdir(parents=True, exist_ok=True)
    written.append(timeline.save(camera_path))
    return written
