"""`freeview animate` and the high-level animate API, on a tiny model and the demo assets."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.animate import AnimateSettings, animate, fit_keypoints, fit_to_frame, load_motion, load_reference, shot_scale
from engine.model import load_pipeline

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo"
REFS = sorted(str(p) for p in (DEMO / "references").glob("mara_*.png"))
MOTION = DEMO / "motions" / "presenter.json"
CAMERA = DEMO / "camera" / "zoom-and-cut.json"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from engine.models.configs import build_components
    from engine.pipeline import FreeViewPipeline

    path = tmp_path_factory.mktemp("model") / "tiny"
    FreeViewPipeline(**build_components("tiny")).save_pretrained(path)
    return path


def freeview(*args, env=None):
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)


def test_demo_references_carry_their_pose_and_shot():
    shots = {Path(p).stem.split("_")[1]: load_reference(p).shot for p in REFS}
    assert shots == {"close-up": "close-up", "medium": "medium", "wide": "wide"}


def test_letterboxing_keeps_keypoints_on_the_same_pixels():
    image = np.zeros((60, 30, 3), np.uint8)
    image[45, 10] = 255
    kp = np.zeros((128, 3), np.float32)
    kp[0] = [10.5 / 30, 45.5 / 60, 1]
    fitted, moved = fit_to_frame(image, kp, 64, 64)
    assert fitted.shape == (64, 64, 3)
    y, x = np.unravel_index(fitted[..., 0].argmax(), fitted.shape[:2])
    assert abs(moved[0, 0] * 64 - (x + 0.5)) <= 1.5 and abs(moved[0, 1] * 64 - (y + 0.5)) <= 1.5
    np.testing.assert_allclose(fit_keypoints(kp, 64, 64, 64, 64), kp)


def test_shot_scale_from_visible_joints():
    kp = np.zeros((128, 3), np.float32)
    kp[[0, 1, 2, 5], 2] = 1
    assert shot_scale(kp) == "close-up"
    kp[[8, 11], 2] = 1
    assert shot_scale(kp) == "medium"
    kp[[10, 13], 2] = 1
    assert shot_scale(kp) == "wide"


def test_animate_follows_the_camera_plan(tiny_model):
    from engine.camera import CameraTimeline

    pipe = load_pipeline(tiny_model)
    refs = [load_reference(p) for p in REFS]
    settings = AnimateSettings(steps=1, frames=6, height=32, width=32)
    result = animate(pipe, refs, load_motion(MOTION), CameraTimeline.load(CAMERA), settings)
    assert result.frames.shape == (6, 32, 32, 3)
    assert result.correlation.shape[:2] == (6, 3)
    assert result.fps == 25


def test_cli_writes_a_playable_mp4_with_the_right_frames_and_fps(tmp_path, tiny_model):
    from engine.video import probe_video, read_video

    out = tmp_path / "out.mp4"
    preview = tmp_path / "preview.mp4"
    corr = tmp_path / "corr.png"
    r = freeview("animate", "--refs", *REFS[:2], "--motion", MOTION, "--camera", CAMERA, "--model", tiny_model,
                 "--steps", "1", "--frames", "9", "--out", out, "--preview", preview, "--correlation", corr)
    assert r.returncode == 0, r.stderr
    info = probe_video(out)
    frames, fps, size = read_video(out)
    assert sum(1 for _ in frames) == 9
    assert abs(fps - 25) < 0.01 and info.fps == pytest.approx(25, abs=0.01)
    assert probe_video(preview).width == 2 * info.width
    assert corr.stat().st_size > 0
    assert "kept per photo: 1 " in r.stdout and " · 2 " in r.stdout, r.stdout  # which photos the selection drew on
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    assert "Loading" not in r.stderr, r.stderr  # no library loading bars, only FreeView's own lines


@pytest.mark.parametrize(
    "args,message",
    [
        (["--refs", "missing.png"], "missing.png"),
        (["--refs", str(MOTION)], "image"),
        (["--steps", "0"], "steps"),
        (["--guidance", "0.5"], "guidance"),
        (["--out", "/proc/forbidden/out.mp4"], "/proc/forbidden"),
        (["--model", "/nonexistent/model"], "/nonexistent/model"),
        (["--motion", "nowhere.json"], "nowhere.json"),
    ],
)
def test_bad_input_gives_one_line_and_no_file(tmp_path, tiny_model, args, message):
    out = tmp_path / "out.mp4"
    base = {"--refs": REFS[:1], "--motion": [str(MOTION)], "--model": [str(tiny_model)], "--steps": ["1"],
            "--frames": ["2"], "--out": [str(out)]}
    base[args[0]] = args[1:]
    r = freeview("animate", *[x for k, v in base.items() for x in (k, *v)])
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("freeview: error:"), r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_model_directory_with_a_missing_component(tmp_path, tiny_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    shutil.rmtree(broken / "pcm")
    r = freeview("animate", "--refs", REFS[0], "--motion", MOTION, "--model", broken, "--out", tmp_path / "o.mp4")
    assert r.returncode != 0 and "pcm" in r.stderr and "Traceback" not in r.stderr


def test_corrupted_weights_say_how_to_restore(tmp_path, tiny_model):
    import shutil

    broken = tmp_path / "corrupt"
    shutil.copytree(tiny_model, broken)
    weights = next((broken / "pcm").glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file")
    r = freeview("animate", "--refs", REFS[0], "--motion", MOTION, "--model", broken, "--out", tmp_path / "o.mp4")
    assert r.returncode != 0 and "cannot load the model" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_broken_default_model_says_how_to_restore_it(tmp_path, tiny_model, monkeypatch, damage):
    import shutil

    import engine.model as model
    from engine.errors import UserError

    default = tmp_path / "default_model"
    shutil.copytree(tiny_model, default)
    weights = next((default / "denoising_unet").glob("*.safetensors"))
    if damage == "delete":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:1000])
    monkeypatch.setattr(model, "DEFAULT_MODEL_DIR", default)
    monkeypatch.delenv("FREEVIEW_MODEL", raising=False)
    with pytest.raises(UserError, match="git checkout -- assets/default_model") as info:
        load_pipeline(None)
    assert "\n" not in str(info.value)


def test_export_ships_half_precision_weights_and_sampling_advice(tmp_path, tiny_model):
    import torch

    from engine.model import sampling_defaults
    from engine.errors import UserError
    from train.export import export_model_dir, model_size_mb

    card = tmp_path / "card.md"
    card.write_text("# tiny\n")
    out = export_model_dir(tiny_model, tmp_path / "shipped", steps=3, guidance=1.5, top_k=2.0, noise_correlation=0.9,
                           card=card)
    windows = {"clip_frames": 12, "overlap": 4, "noise_correlation": 0.0}  # the engine's, where the model recommends none
    assert sampling_defaults(out) == {"steps": 3, "guidance": 1.5, "top_k": 2.0, **windows, "noise_correlation": 0.9}
    assert sampling_defaults(tiny_model) == {"steps": 20, "guidance": 2.0, "top_k": None, **windows}  # no sampling.json
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "sampling.json").write_text('{"steps": 2, "top_k": -1, "clip_frames": 8, "overlap": 8, '
                                                    '"noise_correlation": 1.5}')
    # an unusable top-K or window is ignored
    assert sampling_defaults(tmp_path / "odd") == {"steps": 2, "guidance": 2.0, "top_k": None, **windows}
    (tmp_path / "odd" / "sampling.json").write_text('{"clip_frames": 24, "overlap": 4}')
    assert sampling_defaults(tmp_path / "odd") == {"steps": 20, "guidance": 2.0, "top_k": None, **windows,
                                                   "clip_frames": 24, "overlap": 4}
    assert (out / "README.md").read_text() == "# tiny\n"
    assert model_size_mb(out) < 0.6 * model_size_mb(tiny_model)
    with pytest.raises(UserError, match="--top-k: top_k must be positive"):
        export_model_dir(tiny_model, tmp_path / "bad", top_k=-1.0)
    with pytest.raises(UserError, match="--noise-correlation must be in"):
        export_model_dir(tiny_model, tmp_path / "bad", noise_correlation=2.0)
    assert not (tmp_path / "bad").exists()
    pipe = load_pipeline(out)  # loads in float32 on the CPU
    assert pipe.denoising_unet.dtype == torch.float32 and pipe.sampling_defaults["steps"] == 3
    used = []  # the top-K every clip's selection ran with
    select = pipe.network.select_references
    pipe.network.select_references = lambda *a, **kw: used.append(kw["top_k"]) or select(*a, **kw)
    refs = [load_reference(p) for p in REFS[:1]]
    result = animate(pipe, refs, load_motion(MOTION), None, AnimateSettings(frames=2, height=32, width=32))
    assert result.frames.shape == (2, 32, 32, 3)
    assert result.top_k == 2.0 and set(used) == {2.0}  # the model's recommendation
    used.clear()
    result = animate(pipe, refs, load_motion(MOTION), None, AnimateSettings(frames=2, height=32, width=32, top_k="all"))
    assert result.top_k == "all" and set(used) == {"all"}  # the user's choice wins
