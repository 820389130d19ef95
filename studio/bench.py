"""``freeview bench studio`` / ``python -m studio.bench``: how fast the studio follows an edit, and how smoothly
it plays a camera plan, on a 10-second (250-frame) track.

Two figures, each measured where the user meets it:

* ``edit_to_preview_ms``: the server's side of an edit (the inspector's "Set", recorded in the history,
  then every camera view — strip payload with the player's data, preview, curves, shots); median of 10.
* ``browser``: in headless Chromium (when Debian's Chromium and Playwright are installed), the time from a
  click on the timeline to the updated camera preview, and the player's frame rate while it plays the plan.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.files import write_text_atomic
from engine.poses import BODY, PoseTrack, save_pose_file

from . import state

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def synthetic_track(frames: int = 250, size: int = 512) -> PoseTrack:
    """A standing figure swaying for ``frames`` frames (no files needed)."""
    body = np.array([[.5, .2], [.5, .3], [.42, .3], [.38, .42], [.36, .54], [.58, .3], [.62, .42], [.64, .54],
                     [.45, .55], [.45, .72], [.45, .9], [.55, .55], [.55, .72], [.55, .9], [.48, .18], [.52, .18],
                     [.46, .2], [.54, .2]], np.float32)
    keypoints = np.zeros((frames, 128, 3), np.float32)
    sway = 0.05 * np.sin(np.linspace(0, 4 * np.pi, frames))[:, None]
    keypoints[:, BODY, 0] = body[:, 0] + sway
    keypoints[:, BODY, 1] = body[:, 1]
    keypoints[:, BODY, 2] = 1.0
    return PoseTrack(keypoints, size, size, 25.0)


def bench_project() -> state.Project:
    """The 10-second track with two keyframes and two preset cuts."""
    project = state.set_motion(state.Project(), synthetic_track(), "bench")
    project = state.put_point(project, "keyframe", 0, {"zoom": 1.0})
    project = state.put_point(project, "keyframe", 100, {"zoom": 2.0, "easing": "ease-in-out"})
    project = state.add_preset(replace(project, frame=150), "close-up", "cut")
    return state.add_preset(replace(project, frame=210), "wide", "cut")


def with_demo_photos(project: state.Project) -> state.Project:
    """The project with the demo character's three photos (close-up, medium, wide), as after adding them."""
    from engine.animate import load_reference
    from engine.model import ASSETS

    for shot in ("close-up", "medium", "wide"):
        project = state.add_reference(project, load_reference(ASSETS / "demo" / "references" / f"mara_{shot}.png"))
    return project


def bench_edit_to_preview(repeats: int = 10, photos: bool = False) -> dict:
    """``photos``: the project holds the demo's three photos, so every preview also warps them into the pose (and
    the player's warped photos are made once, before the timed edits, as after adding the photos)."""
    from .app import camera_views

    project = replace(bench_project(), selected=("keyframe", 100), frame=100)
    if photos:
        project = with_demo_photos(project)
    camera_views(project)  # the skeleton strip (and the player's photos) are computed once per motion
    timings = []
    for i in range(repeats):
        form = {**state.inspector_values(project), "zoom": 2.0 + (i + 1) / 10}
        start = time.perf_counter()
        edited = state.record(project, state.edit_point(project, "keyframe", form), "set keyframe")
        camera_views(edited)
        timings.append((time.perf_counter() - start) * 1000)
    return {"median": round(statistics.median(timings), 1), "best": round(min(timings), 1),
            "worst": round(max(timings), 1), "repeats": repeats}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_browser(play_seconds: float = 3.0, clicks: int = 5) -> dict | str:
    """Edit-to-preview and playback in headless Chromium; a sentence saying why not when it cannot run."""
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        return "no Chromium (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright (python) is not installed"
    from .app import create_app, launch_kwargs

    with tempfile.TemporaryDirectory() as folder:
        save_pose_file(synthetic_track(), Path(folder) / "bench.json")
        old = {k: os.environ.get(k) for k in ("FREEVIEW_DEMO_MOTIONS", "FREEVIEW_STUDIO_OUTPUTS")}
        os.environ["FREEVIEW_DEMO_MOTIONS"] = folder
        os.environ["FREEVIEW_STUDIO_OUTPUTS"] = str(Path(folder) / "outputs")
        demo = create_app()
        demo.queue()
        port = _free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_role("tab", name="Motion").click(timeout=60_000)
                page.locator("#fv-demo-motion input").click()
                page.get_by_role("option", name="bench").click()
                page.get_by_text("250 frames at 25 fps").wait_for(timeout=60_000)
                page.get_by_role("tab", name="Camera").click()
                track = page.locator("#fv-timeline .fv-track")
                track.wait_for(timeout=30_000)
                timings = []
                for i in range(clicks):
                    track.scroll_into_view_if_needed()
                    box = track.bounding_box()
                    before = page.locator("#fv-camera-preview img").get_attribute("src")
                    start = time.perf_counter()
                    page.mouse.click(box["x"] + box["width"] * (0.1 + 0.15 * i), box["y"] + box["height"] / 2)
                    page.wait_for_function(
                        "src => { const img = document.querySelector('#fv-camera-preview img');"
                        " return img && img.getAttribute('src') !== src && img.complete; }", arg=before, timeout=30_000)
                    timings.append((time.perf_counter() - start) * 1000)
                page.locator("#fv-timeline .fv-play").click()
                page.wait_for_timeout(int(play_seconds * 1000))
                # the player writes its rate on the component's own element, inside #fv-timeline
                fps, draw_ms = page.evaluate(
                    "() => { const e = document.querySelector('#fv-timeline[data-fps], #fv-timeline [data-fps]');"
                    " return e ? [Number(e.dataset.fps), Number(e.dataset.drawMs || 0)] : [0, 0]; }")
                page.locator("#fv-timeline .fv-play").click()
                browser.close()
        finally:
            demo.close()
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return {"edit_to_preview_ms": {"median": round(statistics.median(timings), 1), "best": round(min(timings), 1),
                                   "clicks": clicks},
            "playback_fps": round(fps, 1), "track_fps": 25.0, "draw_ms_per_frame": round(draw_ms, 2)}


def run(browser: bool = True) -> dict:
    from .app import camera_views

    camera_views(bench_project())  # the skeleton strip, made once per motion, is not what is timed here
    first = time.perf_counter()
    camera_views(with_demo_photos(bench_project()))  # the first view after adding photos: warps for the player too
    first_ms = round((time.perf_counter() - first) * 1000, 1)
    return {"frames": 250, "edit_to_preview_ms": bench_edit_to_preview(),
            "edit_to_preview_ms_with_photos": bench_edit_to_preview(photos=True),
            "first_view_after_adding_photos_ms": first_ms,
            "browser": bench_browser() if browser else "skipped (--no-browser)"}


def register(bench) -> None:
    p = bench.add_parser("studio", help="edit-to-preview time and playback frame rate on a 10-second track")
    p.add_argument("--no-browser", action="store_true", help="only the server's side (no Chromium)")
    p.add_argument("--json")
    p.set_defaults(func=_run)


def _run(args) -> int:
    result = run(browser=not args.no_browser)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        write_text_atomic(Path(args.json), text + "\n")
    return 0


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m studio.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--json")
    return _run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
