"""Hostile input (issue 21): every command, given a bad file, setting or output path, fails with one clear line
naming the problem, exits non-zero, prints no traceback, and leaves every file it was given (and every earlier
output) exactly as it was. Run through the real entry point (``engine.cli.main``), in-process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "demo"
MOTION = {"version": 1, "fps": 25.0, "width": 64, "height": 64, "frames": [{"people": [], "detected": False}]}


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` (the pixel data is one short row: never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _pose_file(**changes) -> str:
    import json

    data = {**MOTION, **changes}
    return json.dumps(data)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Real inputs and hostile ones, side by side, in one folder that no failing command may change."""
    import json

    from engine.video import write_video

    root = tmp_path_factory.mktemp("hostile")
    for name in ("mara_close-up", "mara_wide"):
        shutil.copy(ASSETS / "references" / f"{name}.png", root / f"{name}.png")
        shutil.copy(ASSETS / "references" / f"{name}.pose.json", root / f"{name}.pose.json")
    shutil.copy(ASSETS / "motions" / "presenter.json", root / "motion.json")
    shutil.copy(ASSETS / "camera" / "zoom-and-cut.json", root / "camera.json")
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    frames[:, 8:24, 8:24] = 200
    write_video(root / "drive.mp4", frames, 25)
    os.link(root / "drive.mp4", root / "drive-hardlink.mp4")
    os.symlink(root / "drive.mp4", root / "drive-symlink.mp4")
    (root / "earlier.mp4").write_bytes((root / "drive.mp4").read_bytes())  # an earlier result
    (root / "folder.mp4").mkdir()
    (root / "folder.mp4" / "keep.txt").write_text("mine")
    (root / "notes.txt").write_text("not an image")
    (root / "empty.png").write_bytes(b"")
    (root / "garbage.mp4").write_bytes(os.urandom(4096))
    (root / "bomb.png").write_bytes(_png_header(20000, 20000))
    from PIL import Image

    Image.new("RGB", (96, 96), (240, 240, 240)).save(root / "blank.png")
    (root / "nested.json").write_text("[" * 100_000)
    (root / "nested-object.json").write_text('{"a":' * 50_000 + "1" + "}" * 50_000)
    (root / "list.json").write_text("[]")
    (root / "binary.json").write_bytes(b"\xff\xfe\x00\x01" * 16)
    (root / "not-json.json").write_text("{frames: oops")
    (root / "pose-width0.json").write_text(_pose_file(width=0))
    (root / "pose-huge.json").write_text(_pose_file(width=20000, height=20000))
    (root / "pose-fps.json").write_text(_pose_file(fps=-5))
    (root / "pose-frames.json").write_text(_pose_file(frames="all of them"))
    (root / "pose-noframes.json").write_text(_pose_file(frames=[]))
    (root / "pose-version.json").write_text(_pose_file(version="one"))
    (root / "pose-future.json").write_text(_pose_file(version=99))
    (root / "pose-frame-type.json").write_text(_pose_file(frames=[1, 2, 3]))
    (root / "pose-count.json").write_text(_pose_file(frames=[{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}]))
    (root / "pose-nan.json").write_text(_pose_file(frames=[{"people": [{"pose_keypoints_2d": [float("nan")] * 54}]}]))
    (root / "pose-missing.json").write_text(json.dumps({"version": 1, "frames": []}))
    (root / "openpose-nosize.json").write_text(json.dumps({"people": []}))
    camera = json.loads((root / "camera.json").read_text())
    (root / "camera-zoom0.json").write_text(json.dumps({**camera, "keyframes": [{"frame": 0, "zoom": 0}]}))
    (root / "camera-width.json").write_text(json.dumps({**camera, "width": 20000, "height": 20000}))
    (root / "camera-unknown.json").write_text(json.dumps({**camera, "fov": 3}))
    (root / "camera-version.json").write_text(json.dumps({**camera, "version": 99}))
    (root / "camera-list.json").write_text("[1, 2]")
    (root / "camera-frame.json").write_text(json.dumps({"keyframes": [{"frame": "first"}]}))
    (root / "camera-order.json").write_text(json.dumps({"keyframes": [{"frame": 5}, {"frame": 2}]}))
    (root / "camera-inf.json").write_text('{"keyframes": [{"frame": 0, "zoom": Infinity}]}')
    (root / "incomplete-model").mkdir()
    (root / "incomplete-model" / "model_index.json").write_text("{}")
    for name, text in {
        "steps-text": "steps: four\n", "batch-list": "batch_size: [1, 2]\n", "batch-bool": "batch_size: true\n",
        "resolution": "resolution: 33\n", "lr-text": "learning_rate: fast\n", "lr-inf": "learning_rate: .inf\n",
        "seed": "seed: 99999999999999999999999999\n", "unknown": "stepz: 4\n", "stage": "stage: everything\n",
        "preset": "preset: huge\n", "list": "- 1\n- 2\n", "nested": "[" * 20_000 + "\n", "broken": "steps: [1\n",
        "dropout": "reference_dropout: 1.5\n", "precision": "mixed_precision: fp8\n", "frames0": "frames: 0\n",
        "warmup": "warmup_steps: -1\n", "guidance": "sampling_guidance: .nan\n", "init": "init_from: 7\n",
        "bool-text": "gradient_checkpointing: maybe\n", "schedule": "lr_schedule: linear\n",
    }.items():
        (root / f"config-{name}.yaml").write_text(text)
    (root / "config-ok.yaml").write_text("steps: 2\nbatch_size: 1\noutput_dir: run\ndata: data\n")
    (root / "user-folder").mkdir()
    (root / "user-folder" / "thesis.txt").write_text("months of work")
    return root


def _snapshot(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


REFS = ["--refs", "mara_close-up.png", "mara_wide.png"]
ANIMATE = ["animate", *REFS, "--motion", "motion.json"]

# (id, argv, words the one error line must contain (lower case))
CASES = [
    # -- animate: outputs that are inputs, or each other, or folders
    ("out-is-motion-video", ["animate", *REFS, "--motion", "drive.mp4", "--out", "drive.mp4"], ["--out", "overwrite", "--motion"]),
    ("out-is-motion-hardlink", ["animate", *REFS, "--motion", "drive.mp4", "--out", "drive-hardlink.mp4"], ["overwrite"]),
    ("out-is-motion-symlink", ["animate", *REFS, "--motion", "drive.mp4", "--out", "drive-symlink.mp4"], ["overwrite"]),
    ("out-is-motion-dotted", ["animate", *REFS, "--motion", "drive.mp4", "--out", "./drive.mp4"], ["overwrite"]),
    ("correlation-is-a-ref", [*ANIMATE, "--out", "new.mp4", "--correlation", "mara_wide.png"], ["--correlation", "--refs"]),
    ("preview-is-out", [*ANIMATE, "--out", "new.mp4", "--preview", "new.mp4"], ["same file"]),
    ("preview-is-motion", ["animate", *REFS, "--motion", "drive.mp4", "--out", "new.mp4", "--preview", "drive.mp4"], ["--preview", "overwrite"]),
    ("out-is-folder", [*ANIMATE, "--out", "folder.mp4"], ["folder"]),
    ("out-not-mp4", [*ANIMATE, "--out", "result.avi"], [".mp4"]),
    ("out-is-ref-png", [*ANIMATE, "--out", "mara_wide.png"], [".mp4"]),
    ("preview-not-mp4", [*ANIMATE, "--out", "new.mp4", "--preview", "p.gif"], ["--preview", ".mp4"]),
    ("correlation-not-png", [*ANIMATE, "--out", "new.mp4", "--correlation", "c.jpg"], ["--correlation", ".png"]),
    ("correlation-is-pose-sidecar", [*ANIMATE, "--out", "new.mp4", "--correlation", "mara_wide.pose.json"], ["--correlation"]),
    ("frames-dir-is-file", [*ANIMATE, "--out", "new.mp4", "--frames-dir", "notes.txt"], ["--frames-dir", "file"]),
    ("out-folder-missing-parent-is-file", [*ANIMATE, "--out", "notes.txt/x.mp4"], ["notes.txt"]),
    # -- animate: numbers
    ("guidance-inf", [*ANIMATE, "--out", "new.mp4", "--guidance", "inf"], ["--guidance", "finite"]),
    ("guidance-nan", [*ANIMATE, "--out", "new.mp4", "--guidance", "nan"], ["--guidance", "finite"]),
    ("guidance-below-1", [*ANIMATE, "--out", "new.mp4", "--guidance", "0.5"], ["--guidance", ">= 1"]),
    ("guidance-negative", [*ANIMATE, "--out", "new.mp4", "--guidance", "-3"], ["--guidance"]),
    ("guidance-huge", [*ANIMATE, "--out", "new.mp4", "--guidance", "1e9"], ["--guidance"]),
    ("steps-zero", [*ANIMATE, "--out", "new.mp4", "--steps", "0"], ["--steps"]),
    ("steps-negative", [*ANIMATE, "--out", "new.mp4", "--steps", "-5"], ["--steps"]),
    ("steps-huge", [*ANIMATE, "--out", "new.mp4", "--steps", "100000000"], ["--steps"]),
    ("seed-negative", [*ANIMATE, "--out", "new.mp4", "--seed", "-1"], ["--seed"]),
    ("seed-2-64", [*ANIMATE, "--out", "new.mp4", "--seed", str(2**64)], ["--seed", "18446744073709551615"]),
    ("seed-huge", [*ANIMATE, "--out", "new.mp4", "--seed", "99999999999999999999999999"], ["--seed"]),
    ("frames-zero", [*ANIMATE, "--out", "new.mp4", "--frames", "0"], ["--frames"]),
    ("frames-negative", [*ANIMATE, "--out", "new.mp4", "--frames", "-3"], ["--frames"]),
    ("clip-frames-zero", [*ANIMATE, "--out", "new.mp4", "--clip-frames", "0"], ["--clip-frames"]),
    ("overlap-negative", [*ANIMATE, "--out", "new.mp4", "--overlap", "-1"], ["--overlap"]),
    ("overlap-not-below-clip", [*ANIMATE, "--out", "new.mp4", "--clip-frames", "4", "--overlap", "4"], ["--overlap"]),
    ("top-k-text", [*ANIMATE, "--out", "new.mp4", "--top-k", "many"], ["--top-k"]),
    # -- animate: bad reference photos
    ("ref-missing", ["animate", "--refs", "nobody.png", "--motion", "motion.json", "--out", "new.mp4"], ["nobody.png", "not found"]),
    ("ref-text", ["animate", "--refs", "notes.txt", "--motion", "motion.json", "--out", "new.mp4"], ["notes.txt"]),
    ("ref-empty", ["animate", "--refs", "empty.png", "--motion", "motion.json", "--out", "new.mp4"], ["empty.png"]),
    ("ref-bomb", ["animate", "--refs", "bomb.png", "--motion", "motion.json", "--out", "new.mp4"], ["bomb.png", "400 megapixels"]),
    ("ref-folder", ["animate", "--refs", "folder.mp4", "--motion", "motion.json", "--out", "new.mp4"], ["folder.mp4"]),
    # -- animate: bad motions
    ("motion-missing", [*REFS, "--motion", "gone.json"], ["gone.json"]),
    ("motion-nested", [*REFS, "--motion", "nested.json"], ["nested.json", "deeply"]),
    ("motion-nested-object", [*REFS, "--motion", "nested-object.json"], ["deeply"]),
    ("motion-list", [*REFS, "--motion", "list.json"], ["list.json"]),
    ("motion-binary", [*REFS, "--motion", "binary.json"], ["binary.json"]),
    ("motion-not-json", [*REFS, "--motion", "not-json.json"], ["not-json.json", "json"]),
    ("motion-width-0", [*REFS, "--motion", "pose-width0.json"], ["width"]),
    ("motion-huge-frame", [*REFS, "--motion", "pose-huge.json"], ["width", "8192"]),
    ("motion-fps", [*REFS, "--motion", "pose-fps.json"], ["fps"]),
    ("motion-frames-text", [*REFS, "--motion", "pose-frames.json"], ["frames"]),
    ("motion-no-frames", [*REFS, "--motion", "pose-noframes.json"], ["no frames"]),
    ("motion-version-text", [*REFS, "--motion", "pose-version.json"], ["version"]),
    ("motion-version-future", [*REFS, "--motion", "pose-future.json"], ["version", "newer"]),
    ("motion-frame-not-object", [*REFS, "--motion", "pose-frame-type.json"], ["pose-frame-type.json"]),
    ("motion-keypoint-count", [*REFS, "--motion", "pose-count.json"], ["pose_keypoints_2d"]),
    ("motion-nan", [*REFS, "--motion", "pose-nan.json"], ["nan"]),
    ("motion-missing-field", [*REFS, "--motion", "pose-missing.json"], ["missing field"]),
    ("motion-openpose-no-size", [*REFS, "--motion", "openpose-nosize.json"], ["size"]),
    ("motion-image", [*REFS, "--motion", "blank.png"], ["single image"]),
    ("motion-garbage-video", [*REFS, "--motion", "garbage.mp4"], ["garbage.mp4"]),
    # -- animate: bad camera timelines and models
    ("camera-missing", [*ANIMATE, "--camera", "nope.json"], ["nope.json"]),
    ("camera-nested", [*ANIMATE, "--camera", "nested.json"], ["deeply"]),
    ("camera-zoom-0", [*ANIMATE, "--camera", "camera-zoom0.json"], ["zoom"]),
    ("camera-huge", [*ANIMATE, "--camera", "camera-width.json"], ["width"]),
    ("camera-unknown-field", [*ANIMATE, "--camera", "camera-unknown.json"], ["fov"]),
    ("camera-version", [*ANIMATE, "--camera", "camera-version.json"], ["version"]),
    ("camera-list", [*ANIMATE, "--camera", "camera-list.json"], ["object"]),
    ("camera-frame-text", [*ANIMATE, "--camera", "camera-frame.json"], ["frame"]),
    ("camera-unsorted", [*ANIMATE, "--camera", "camera-order.json"], ["sorted"]),
    ("camera-inf-zoom", [*ANIMATE, "--camera", "camera-inf.json"], ["zoom", "finite"]),
    ("camera-is-out", [*ANIMATE, "--out", "camera.json"], [".mp4"]),
    ("model-missing", [*ANIMATE, "--model", "no-model"], ["no-model"]),
    ("model-file", [*ANIMATE, "--model", "notes.txt"], ["notes.txt"]),
    ("model-incomplete", [*ANIMATE, "--model", "incomplete-model"], ["incomplete"]),
    # -- pose extract
    ("extract-out-is-input", ["pose", "extract", "blank.png", "-o", "blank.png"], ["-o", ".json"]),
    ("extract-out-is-folder", ["pose", "extract", "blank.png", "-o", "folder.mp4"], ["-o"]),
    ("extract-out-is-existing-json-input", ["pose", "extract", "motion.json", "-o", "motion.json"], ["overwrite"]),
    ("extract-no-person", ["pose", "extract", "blank.png", "-o", "pose.json", "--no-progress"], ["no person", "--allow-empty"]),
    ("extract-max-gap-negative", ["pose", "extract", "blank.png", "-o", "pose.json", "--max-gap", "-3"], ["--max-gap"]),
    ("extract-num-poses-zero", ["pose", "extract", "blank.png", "-o", "pose.json", "--num-poses", "0"], ["--num-poses"]),
    ("extract-missing", ["pose", "extract", "nothing.mp4", "-o", "pose.json"], ["nothing.mp4"]),
    ("extract-garbage", ["pose", "extract", "garbage.mp4", "-o", "pose.json"], ["garbage.mp4"]),
    ("extract-bomb", ["pose", "extract", "bomb.png", "-o", "pose.json"], ["bomb.png"]),
    ("extract-openpose-dir-file", ["pose", "extract", "blank.png", "-o", "pose.json", "--openpose-dir", "notes.txt"], ["--openpose-dir"]),
    # -- pose render
    ("render-txt", ["pose", "render", "motion.json", "-o", "prev.txt"], ["-o", ".mp4"]),
    ("render-out-is-folder", ["pose", "render", "motion.json", "-o", "folder.mp4"], ["folder"]),
    ("render-out-is-earlier-via-link", ["pose", "render", "motion.json", "-o", "drive-symlink.mp4", "--camera", "drive.mp4"], ["overwrite"]),
    ("render-width-0", ["pose", "render", "openpose-nosize.json", "-o", "prev.mp4", "--width", "0", "--height", "64"], ["--width"]),
    ("render-height-negative", ["pose", "render", "openpose-nosize.json", "-o", "prev.mp4", "--width", "64", "--height", "-1"], ["--height"]),
    ("render-width-huge", ["pose", "render", "openpose-nosize.json", "-o", "prev.mp4", "--width", "100000", "--height", "64"], ["--width"]),
    ("render-nested", ["pose", "render", "nested.json", "-o", "prev.mp4"], ["deeply"]),
    ("render-camera-nested", ["pose", "render", "motion.json", "--camera", "nested.json", "-o", "prev.mp4"], ["deeply"]),
    ("render-huge-frame", ["pose", "render", "pose-huge.json", "-o", "prev.mp4"], ["8192"]),
    ("render-no-size", ["pose", "render", "openpose-nosize.json", "-o", "prev.mp4"], ["size"]),
    # -- weights convert
    ("convert-into-user-folder", ["weights", "convert", "--moore", "moore", "--sd-image-variations", "sdiv", "--vae", "vae",
                                  "-o", "user-folder"], ["user-folder", "not empty", "--overwrite"]),
    ("convert-onto-file", ["weights", "convert", "--moore", "moore", "--sd-image-variations", "sdiv", "--vae", "vae",
                           "-o", "notes.txt"], ["notes.txt", "file"]),
    ("convert-missing-moore", ["weights", "convert", "--moore", "moore", "--sd-image-variations", "sdiv", "--vae", "vae",
                               "-o", "model-out"], ["moore"]),
    ("fetch-into-user-folder", ["weights", "fetch", "animate-anyone", "-o", "user-folder"], ["not empty"]),
    # -- train run
    *[(f"train-{name}", ["train", "run", "--config", f"config-{name}.yaml"], words) for name, words in {
        "steps-text": ["steps", "whole number"], "batch-list": ["batch_size"], "batch-bool": ["batch_size"],
        "resolution": ["resolution", "multiple"], "lr-text": ["learning_rate"], "lr-inf": ["learning_rate"],
        "seed": ["seed"], "unknown": ["stepz"], "stage": ["stage"], "preset": ["preset"], "list": ["mapping"],
        "nested": ["deeply"], "broken": ["yaml"], "dropout": ["reference_dropout"], "precision": ["mixed_precision"],
        "frames0": ["frames"], "warmup": ["warmup_steps"], "guidance": ["sampling_guidance"], "init": ["init_from"],
        "bool-text": ["gradient_checkpointing"], "schedule": ["lr_schedule"],
    }.items()],
    ("train-missing-config", ["train", "run", "--config", "none.yaml"], ["none.yaml"]),
    ("train-max-steps-negative", ["train", "run", "--config", "config-ok.yaml", "--max-steps", "-5"], ["--max-steps"]),
    ("train-max-steps-zero", ["train", "run", "--config", "config-ok.yaml", "--max-steps", "0"], ["--max-steps"]),
    ("train-resume-not-checkpoint", ["train", "run", "--config", "config-ok.yaml", "--resume", "user-folder"], ["user-folder"]),
]
# the motion cases share the animate tail
CASES = [(i, (["animate", *a, "--out", "new.mp4"] if a[:1] == ["--refs"] else
              [*a, "--out", "new.mp4"] if a[:1] == ["animate"] and "--out" not in a else a), w) for i, a, w in CASES]


@pytest.mark.parametrize("argv,words", [pytest.param(a, w, id=i) for i, a, w in CASES])
def test_hostile_command_fails_with_one_line_and_changes_nothing(workspace, argv, words, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = _snapshot(workspace)
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, (out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1 and lines[0].startswith("freeview: error: "), err
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    assert _snapshot(workspace) == before, "a failing command changed, added or removed a file"


# -- the studio: the functions its handlers call, then its API through gradio_client ---------------------------------
def _project_with(tmp_path: Path, name: str, members: dict[str, bytes | str]) -> Path:
    import zipfile

    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def _manifest(**changes) -> str:
    import json

    return json.dumps({"format": "freeview-project", "version": 1, "references": [], "motion": None,
                       "timeline": {}, "settings": {}, "frame": 0, **changes})


STUDIO_CASES = [
    ("project-not-zip", lambda w, t: ("open", w / "notes.txt"), ["not a zip"]),
    ("project-no-manifest", lambda w, t: ("open", _project_with(t, "a.freeview", {"x.txt": "1"})), ["no manifest"]),
    ("project-nested-manifest", lambda w, t: ("open", _project_with(t, "b.freeview", {"manifest.json": "[" * 100_000})), ["deeply"]),
    ("project-newer", lambda w, t: ("open", _project_with(t, "c.freeview", {"manifest.json": _manifest(version=99)})), ["newer"]),
    ("project-bomb-image", lambda w, t: ("open", _project_with(t, "d.freeview", {
        "manifest.json": _manifest(references=[{"image": "r.png", "pose": "r.json"}]), "r.png": _png_header(20000, 20000),
        "r.json": _pose_file()})), ["400 megapixels"]),
    ("project-nested-pose", lambda w, t: ("open", _project_with(t, "e.freeview", {
        "manifest.json": _manifest(motion={"pose": "m.json"}), "m.json": "[" * 100_000})), ["deeply"]),
    ("project-pose-huge", lambda w, t: ("open", _project_with(t, "f.freeview", {
        "manifest.json": _manifest(motion={"pose": "m.json"}), "m.json": _pose_file(width=20000)})), ["8192"]),
    ("project-references-not-list", lambda w, t: ("open", _project_with(t, "g.freeview", {
        "manifest.json": _manifest(references=[3])})), ["damaged"]),
    ("timeline-payload-nested", lambda w, t: ("payload", "[" * 100_000), ["deeply"]),
    ("settings-seed-huge", lambda w, t: ("settings", {"seed": 2**70}), ["seed"]),
    ("settings-guidance-inf", lambda w, t: ("settings", {"guidance": float("inf")}), ["guidance"]),
    ("settings-width-huge", lambda w, t: ("settings", {"width": 20000}), ["width"]),
    ("settings-steps-zero", lambda w, t: ("settings", {"steps": 0}), ["steps"]),
    ("settings-overlap", lambda w, t: ("settings", {"clip_frames": 4, "overlap": 4}), ["overlap"]),
    ("motion-upload-nested", lambda w, t: ("motion", w / "nested.json"), ["deeply"]),
    ("motion-upload-garbage", lambda w, t: ("motion", w / "garbage.mp4"), ["garbage.mp4"]),
]


@pytest.mark.parametrize("make,words", [pytest.param(m, w, id=i) for i, m, w in STUDIO_CASES])
def test_hostile_studio_input_is_one_clear_user_error(workspace, tmp_path, make, words):
    from engine.animate import load_motion
    from engine.errors import UserError
    from studio import state

    kind, value = make(workspace, tmp_path)
    before = _snapshot(workspace)
    with pytest.raises(UserError) as caught:
        if kind == "open":
            state.load_project(value)
        elif kind == "payload":
            state.apply_timeline_payload(state.Project(), value)
        elif kind == "settings":
            state.animate_settings({"steps": 1, "guidance": 1.0, "seed": 0, "clip_frames": 12, "overlap": 4, **value}, 16)
        else:
            load_motion(value)
    message = str(caught.value)
    assert "\n" not in message and all(word.lower() in message.lower() for word in words), message
    assert _snapshot(workspace) == before


@pytest.fixture()
def studio_url(tmp_path, monkeypatch):
    import socket

    from studio.app import create_app, launch_kwargs

    monkeypatch.setenv("FREEVIEW_STUDIO_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setattr("studio.app.MAX_UPLOAD", "256kb")  # the real limit is 512 MB; the same check, smaller
    demo = create_app()
    demo.queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_hostile_input_through_the_studio_api_is_a_message_in_a_text_output(studio_url, workspace, tmp_path):
    """Through gradio_client, as a browser would: each problem comes back as a '**Problem:**' line in a text
    output (never in a video or picture output), and the app keeps serving."""
    from gradio_client import Client, handle_file

    client = Client(studio_url, verbose=False)
    bomb = _project_with(tmp_path, "bomb.freeview", {
        "manifest.json": _manifest(references=[{"image": "r.png", "pose": "r.json"}]), "r.png": _png_header(20000, 20000),
        "r.json": _pose_file()})
    calls = [
        (lambda: client.predict(handle_file(str(workspace / "nested.json")), api_name="/load_motion"), "deeply"),
        (lambda: client.predict(handle_file(str(workspace / "pose-huge.json")), api_name="/load_motion"), "8192"),
        (lambda: client.predict(handle_file(str(bomb)), api_name="/open_project"), "megapixels"),
        (lambda: client.predict("[" * 100_000, api_name="/timeline_edit"), "deeply"),
        # generate checks the project first: with no photo that is the one problem told
        (lambda: client.predict("embedded default", "", 1, 1.0, 2**70, "default", 4, 1, 0, 0, api_name="/generate"), "reference"),
    ]
    big = tmp_path / "big.json"
    big.write_text(" " * 300_000 + "{}")
    with pytest.raises(Exception, match="(?i)size|large|413"):  # refused before it is stored
        client.predict(handle_file(str(big)), api_name="/load_motion")
    for call, word in calls:
        result = call()
        result = result if isinstance(result, (list, tuple)) else [result]
        problems = [r for r in result if isinstance(r, str) and "**Problem:**" in r]
        assert len(problems) == 1 and word in problems[0].lower(), result
        assert all(not (isinstance(r, dict) and "Problem" in str(r)) for r in result), result


def test_the_table_covers_every_command():
    commands = {argv[0] for _, argv, _ in CASES}
    assert commands >= {"animate", "pose", "weights", "train"}
    assert len(CASES) + len(STUDIO_CASES) + 6 >= 120, len(CASES) + len(STUDIO_CASES)


# -- interrupts, kills and full disks while the output is written ---------------------------------------------------
def _render_command(out: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "engine.cli", "pose", "render", str(ASSETS / "motions" / "presenter.json"), "-o", str(out)]


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".tmp" in p.name or p.name.endswith(".old")]


def _wait_for_temporary(proc, folder: Path, timeout: float = 240.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if _temporaries(folder):
            return True
        time.sleep(0.005)
    return False


def test_ctrl_c_inside_an_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    import signal

    from engine.files import atomic_path

    path = tmp_path / "result.mp4"
    path.write_bytes(b"earlier result")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGINT)  # held until the write ends, then raised before the rename
            tmp.write_bytes(b"new result, complete")
    assert path.read_bytes() == b"earlier result" and _temporaries(tmp_path) == []


def test_sigint_while_the_video_is_written_exits_130_and_keeps_the_earlier_output(tmp_path):
    import signal
    import subprocess

    out = tmp_path / "preview.mp4"
    out.write_bytes(b"an earlier preview")
    proc = subprocess.Popen(_render_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for_temporary(proc, tmp_path), proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert out.read_bytes() == b"an earlier preview" and _temporaries(tmp_path) == []


def test_temporaries_of_a_killed_run_are_cleaned_by_the_next_run(tmp_path):
    import signal
    import subprocess

    out = tmp_path / "preview.mp4"
    proc = subprocess.Popen(_render_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert _wait_for_temporary(proc, tmp_path), proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    left = _temporaries(tmp_path)
    assert left and not out.exists()  # kill -9 cannot clean up: the next run must
    done = subprocess.run(_render_command(out), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _temporaries(tmp_path) == [] and out.is_file()
    from engine.video import probe_video

    assert probe_video(out).frames == 96


@pytest.fixture()
def small_disk(tmp_path):
    """A 48 KB tmpfs (root only): room for a few small files, not for a 96-frame 512 px video."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_an_error_and_the_earlier_output_stays(small_disk, capsys):
    out = small_disk / "preview.mp4"
    out.write_bytes(b"an earlier preview")
    code = main(["pose", "render", str(ASSETS / "motions" / "presenter.json"), "-o", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "preview.mp4" in lines[0] and "failed" in lines[0], err
    assert out.read_bytes() == b"an earlier preview" and _temporaries(small_disk) == []


def test_a_written_video_that_cannot_be_read_back_is_not_a_success(tmp_path, monkeypatch):
    """What a full disk does to ffmpeg's trailer, simulated: the file is cut short after the encoder exits."""
    import engine.video as video
    from engine.errors import UserError

    real_check = video.check_video_file

    def truncate_then_check(path, *args, **kwargs):
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        return real_check(path, *args, **kwargs)

    monkeypatch.setattr(video, "check_video_file", truncate_then_check)
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"earlier")
    with pytest.raises(UserError, match="clip.mp4 failed"):
        video.write_video(out, np.zeros((30, 64, 64, 3), np.uint8), 25)
    assert out.read_bytes() == b"earlier" and _temporaries(tmp_path) == []


# -- folders the user made ------------------------------------------------------------------------------------------
def test_saving_a_model_into_a_model_folder_keeps_the_users_files(tmp_path, tiny_components):
    from engine.errors import UserError
    from engine.model import save_model_dir

    folder = tmp_path / "model"
    save_model_dir(tiny_components, folder)
    (folder / "my-notes.txt").write_text("keep me")
    (folder / "samples").mkdir()
    save_model_dir(tiny_components, folder)  # a model folder: its components are replaced, nothing else
    assert (folder / "my-notes.txt").read_text() == "keep me" and (folder / "samples").is_dir()
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.txt").write_text("months of work")
    with pytest.raises(UserError, match="not empty and is not a FreeView model"):
        save_model_dir(tiny_components, other)
    save_model_dir(tiny_components, other, overwrite=True)
    assert (other / "chapter1.txt").read_text() == "months of work" and (other / "model_index.json").is_file()


def test_npz_problems_name_the_file(tmp_path):
    from engine.errors import UserError
    from engine.files import load_npz

    good = tmp_path / "clip.npz"
    np.savez(good, frames=np.zeros((2, 4, 4, 3), np.uint8))
    assert load_npz(good)["frames"].shape == (2, 4, 4, 3)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(UserError, match="truncated.npz is damaged or truncated"):
        load_npz(truncated)
    objects = tmp_path / "objects.npz"
    np.savez(objects, frames=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="objects.npz holds Python objects"):
        load_npz(objects)


def test_log_csv_has_one_row_per_step_after_any_start(tmp_path):
    from train.loop import append_log, trim_log

    log = tmp_path / "log.csv"
    for step in range(1, 11):
        append_log(log, step, 0.5, 1e-4)
    with log.open("a") as f:
        f.write("11,0.4")  # a row cut short by kill -9
    trim_log(log, 6)  # resumed from the step-6 checkpoint
    for step in range(7, 13):
        append_log(log, step, 0.5, 1e-4)
    steps = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps == list(range(1, 13))
    trim_log(log, 0)  # started again from scratch (no checkpoint)
    assert log.read_text().splitlines() == ["step,loss,lr,time"]
