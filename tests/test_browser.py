"""The studio in a real browser (Debian's Chromium, headless, driven by Playwright).

Uploads two references, loads a demo motion, places a zoom keyframe and a cut on the
timeline strip with the mouse, generates with a tiny model and finds the result video.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_studio import running_app, studio_assets, tiny_model_dir  # noqa: F401 - fixtures

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture()
def page():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("no Chromium: install it with `apt-get install -y chromium`")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"studio-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_studio_in_browser(page, running_app, studio_assets):  # noqa: F811
    _, url = running_app
    page.goto(url)
    page.get_by_text("FreeView studio").first.wait_for(timeout=60_000)

    # References: two photos, each with its pose sidecar
    refs = studio_assets / "references"
    page.locator("#fv-ref-upload input[type=file]").set_input_files(
        [str(refs / n) for n in ("close-up.png", "close-up.pose.json", "wide.png", "wide.pose.json")])
    page.locator("#fv-gallery img").nth(1).wait_for(timeout=60_000)
    assert page.locator("#fv-gallery img").count() == 2
    _shot(page, "references")

    # Motion: the demo
    page.get_by_role("tab", name="Motion").click()
    page.locator("#fv-demo-motion input").click()
    page.get_by_role("option", name="walk").click()
    page.get_by_text("10 frames at 25 fps").wait_for(timeout=60_000)

    # Camera: a keyframe by clicking the strip, zoom it with the form, then a cut with the cut tool
    page.get_by_role("tab", name="Camera").click()
    track = page.locator("#fv-timeline .fv-track")
    track.wait_for(timeout=30_000)
    box = track.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.5)
    page.locator("#fv-timeline .fv-key").first.wait_for(timeout=30_000)
    page.locator("#fv-point-zoom input").fill("1.8")
    page.locator("#fv-point-apply").click()
    page.locator("#fv-timeline .fv-key span", has_text="1.8x").wait_for(timeout=30_000)
    page.locator("#fv-timeline [data-tool=cut]").click()
    page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.5)
    page.locator("#fv-timeline .fv-cut").first.wait_for(timeout=30_000)
    assert page.locator("#fv-timeline .fv-key").count() == 1 and page.locator("#fv-timeline .fv-cut").count() == 1
    _shot(page, "camera")

    # Generate: one step with the tiny model
    page.get_by_role("tab", name="Generate").click()
    steps = page.locator("#fv-steps input[type=number]")
    steps.fill("1")
    steps.press("Enter")
    page.locator("#fv-generate").click()
    page.locator("#fv-result video").wait_for(timeout=300_000)
    page.get_by_text("frames in").first.wait_for(timeout=60_000)
    src = page.locator("#fv-result video").get_attribute("src")
    assert src and ".mp4" in src, src
    _shot(page, "generate")

    # One click: the shipped demo replaces the project (which is saved first)
    page.locator("#fv-load-demo").click()
    page.get_by_text("Loaded the demo").first.wait_for(timeout=120_000)
    page.get_by_role("tab", name="References").click()
    page.locator("#fv-gallery img").nth(2).wait_for(timeout=60_000)
    assert page.locator("#fv-gallery img").count() == 3
    _shot(page, "demo")


# -- the editor: history, inspector, delete, playback, bad input, autosave --------------------------------------
def _markers(page) -> list[tuple[str, str, str]]:
    """(kind, frame, label) of every marker on the timeline strip, as the user sees them."""
    return [tuple(m) for m in page.eval_on_selector_all(
        "#fv-timeline .fv-mark",
        "els => els.map(e => [e.dataset.kind, e.dataset.frame, (e.querySelector('span') || {}).textContent || ''])")]


def _wait_markers(page, expected, timeout_s: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while _markers(page) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"timeline shows {_markers(page)}, expected {expected}")
        page.wait_for_timeout(100)


def _wait_changed(page, before, timeout_s: float = 30):
    import time

    deadline = time.monotonic() + timeout_s
    while (now := _markers(page)) == before:
        if time.monotonic() > deadline:
            raise AssertionError(f"timeline did not change from {before}")
        page.wait_for_timeout(100)
    return now


def _wait_added(page, before, timeout_s: float = 30):
    """The markers once the timeline holds one more than ``before`` and has stayed so for half a second.

    The strip is drawn on the client first and then again from the server's answer, so a change alone may be the
    client's draft of the edit; waiting for the count to settle waits for the server's answer."""
    import time

    deadline = time.monotonic() + timeout_s
    settled, since = None, time.monotonic()
    while True:
        now = _markers(page)
        if now != settled:
            settled, since = now, time.monotonic()
        elif len(now) == len(before) + 1 and time.monotonic() - since >= 0.5:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"timeline shows {now}, expected one marker more than {before}")
        page.wait_for_timeout(100)


def _image_src(page, elem_id: str) -> str:
    locator = page.locator(f"#{elem_id} img").first
    locator.wait_for(timeout=30_000)
    return locator.get_attribute("src")


def _wait_src_change(page, elem_id: str, before: str, timeout_s: float = 30) -> str:
    import time

    deadline = time.monotonic() + timeout_s
    while (now := _image_src(page, elem_id)) == before:
        if time.monotonic() > deadline:
            raise AssertionError(f"#{elem_id} did not change")
        page.wait_for_timeout(100)
    return now


def _load_demo(page, url: str) -> None:
    page.goto(url)
    page.locator("#fv-load-demo").wait_for(timeout=60_000)
    page.locator("#fv-load-demo").click()
    page.get_by_text("Loaded the demo").first.wait_for(timeout=120_000)


def _click_strip(page, fraction: float) -> None:
    """A click on the timeline strip at ``fraction`` of its width (scrolled into view first)."""
    track = page.locator("#fv-timeline .fv-track")
    track.scroll_into_view_if_needed()
    box = track.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] * 0.5)


def _status(page) -> str:
    return page.locator("#fv-status").inner_text()


@pytest.mark.browser
def test_inspector_undo_redo_and_double_click_delete(page, running_app, monkeypatch):  # noqa: F811
    from studio.app import ASSETS

    monkeypatch.setenv("FREEVIEW_DEMO_MOTIONS", str(ASSETS / "demo" / "motions"))
    _, url = running_app
    _load_demo(page, url)
    page.get_by_role("tab", name="Motion").click()
    assert page.locator("#fv-demo-motion input").input_value() == "presenter"  # the demo motion shown as selected

    page.get_by_role("tab", name="Camera").click()
    demo = [("cut", "64", "cut to medium"), ("keyframe", "0", "wide"), ("keyframe", "40", "zoom in")]
    _wait_markers(page, demo)
    curves_demo = _image_src(page, "fv-curves")
    _shot(page, "editor-demo-plan")

    # the inspector shows every field of the demo's "wide" keyframe
    page.locator('#fv-timeline .fv-key[data-frame="0"]').click()
    page.get_by_text("Editing the keyframe at frame 0").first.wait_for(timeout=30_000)
    assert page.locator("#fv-point-easing input").input_value() == "ease-in-out"
    assert page.locator("#fv-point-label textarea, #fv-point-label input").first.input_value() == "wide"
    assert page.locator("#fv-point-shot input").input_value() == "wide"
    pan_y = page.locator("#fv-point-pan-y input").input_value()

    # edit 1: only the zoom -> easing, label and the framing's pan stay
    page.locator("#fv-point-zoom input").fill("1.2")
    page.locator("#fv-point-apply").click()
    page.locator("#fv-point-shot input[value=none]").or_(page.locator("#fv-point-shot input")).first.wait_for()
    page.wait_for_function("() => document.querySelector('#fv-point-shot input').value === 'none'", timeout=30_000)
    assert page.locator("#fv-point-easing input").input_value() == "ease-in-out"
    assert page.locator("#fv-point-label textarea, #fv-point-label input").first.input_value() == "wide"
    assert page.locator("#fv-point-pan-y input").input_value() == pan_y
    assert page.locator("#fv-point-zoom input").input_value() == "1.2"
    after_edit1 = _markers(page)
    assert after_edit1 == demo  # same points, same labels ("wide" was not renamed to "1.2x")
    curves_edit1 = _wait_src_change(page, "fv-curves", curves_demo)
    _shot(page, "editor-inspector-kept")

    # edits 2 and 3: keyframes placed with the mouse
    # each click waits for the server's answer (the curves picture it draws) before the next one: the studio takes
    # one edit at a time, so a click made while the previous edit is still running would be dropped
    _click_strip(page, 0.25)
    after_edit2 = _wait_added(page, after_edit1)
    curves_edit2 = _wait_src_change(page, "fv-curves", curves_edit1)
    _click_strip(page, 0.5)
    after_edit3 = _wait_added(page, after_edit2)
    _wait_src_change(page, "fv-curves", curves_edit2)
    assert len(after_edit3) == len(demo) + 2

    # Ctrl+Z three times: the demo plan exactly (the curves picture, every frame's zoom/pan/yaw, is the same file)
    page.locator("h1").first.click()  # focus outside any text field
    page.keyboard.press("Control+z")
    _wait_markers(page, after_edit2)
    page.keyboard.press("Control+z")
    _wait_markers(page, after_edit1)
    page.keyboard.press("Control+z")
    _wait_markers(page, demo)
    page.get_by_text("Undid: set keyframe at frame 0").first.wait_for(timeout=30_000)  # the status line and the camera note
    assert _image_src(page, "fv-curves") == curves_demo or _wait_src_change(page, "fv-curves", curves_edit1) == curves_demo
    # redo re-applies: Ctrl+Shift+Z, then the button
    page.keyboard.press("Control+Shift+z")
    _wait_markers(page, after_edit1)
    assert _wait_src_change(page, "fv-curves", curves_demo) == curves_edit1
    page.locator("#fv-redo").click()
    _wait_markers(page, after_edit2)
    _shot(page, "editor-after-redo")

    # double-click deletes a marker
    added = next(m for m in after_edit2 if m not in demo)
    page.locator(f'#fv-timeline .fv-mark[data-kind="{added[0]}"][data-frame="{added[1]}"]').dblclick()
    _wait_markers(page, after_edit1)

    # the cut tool stays chosen: two clicks, two cuts
    page.locator("#fv-timeline [data-tool=cut]").click()
    for x in (0.15, 0.85):
        before = _markers(page)
        _click_strip(page, x)
        _wait_added(page, before)
    assert sum(m[0] == "cut" for m in _markers(page)) == 3
    assert page.locator("#fv-timeline .fv-tool.on").inner_text().strip().endswith("cut")

    # playback: the plan plays over the pose track, the playhead moving along the strip
    head = page.locator("#fv-timeline .fv-head b")
    start_frame = head.inner_text()
    page.locator("#fv-timeline .fv-play").click()
    page.wait_for_timeout(2000)
    _shot(page, "editor-playing")
    # the player writes its rate on the component's own element, inside #fv-timeline
    rate = page.evaluate("() => { const e = document.querySelector('#fv-timeline[data-fps], #fv-timeline [data-fps]');"
                         " return e ? [Number(e.dataset.fps), e.dataset.drawMs || ''] : [0, '']; }")
    fps = float(rate[0])
    tiles = page.evaluate("() => { const e = document.querySelector('#fv-timeline[data-photo-tiles], #fv-timeline "
                          "[data-photo-tiles]'); return e ? Number(e.dataset.photoTiles) : 0; }")
    page.locator("#fv-timeline .fv-play").click()
    assert tiles > 0  # the demo's photos, warped into each frame's pose, play under the skeleton
    print(f"[studio bench] playback in the browser: {fps:.1f} fps (track at 25 fps; drawing {rate[1]} ms a frame)")
    assert fps > 0 and head.inner_text() != start_frame


@pytest.mark.browser
def test_bad_input_gives_one_message_and_changes_nothing(page, running_app, tmp_path):  # noqa: F811
    _, url = running_app
    page.goto(url)
    page.locator("#fv-load-demo").wait_for(timeout=60_000)
    # a driving video that is not a video, before the Camera tab was ever opened
    broken = tmp_path / "holiday.mp4"
    broken.write_text("not a video")
    page.get_by_role("tab", name="Motion").click()
    page.locator("#fv-motion-video input[type=file]").set_input_files(str(broken))
    page.locator("#fv-motion-info", has_text="Problem").wait_for(timeout=120_000)  # told on the Motion tab
    message = page.locator("#fv-motion-info").inner_text()
    assert "holiday.mp4" in message and "/tmp" not in message and "gradio" not in message, message
    _shot(page, "bad-upload")
    page.get_by_role("tab", name="Camera").click()
    assert page.get_by_text("Error rendering").count() == 0
    page.locator("#fv-load-demo").click()
    page.get_by_text("Loaded the demo").first.wait_for(timeout=120_000)
    demo = [("cut", "64", "cut to medium"), ("keyframe", "0", "wide"), ("keyframe", "40", "zoom in")]
    _wait_markers(page, demo)
    _click_strip(page, 0.3)  # the timeline still works
    plan = _wait_changed(page, demo)
    assert page.get_by_text("Error rendering").count() == 0

    # zoom 1e9: one message naming the field, the plan unchanged
    curves = _image_src(page, "fv-curves")
    page.locator("#fv-point-zoom input").fill("1e9")
    page.locator("#fv-point-apply").click()
    page.locator("#fv-camera-note", has_text="Zoom must be between 0.1 and 20").wait_for(timeout=60_000)
    assert _markers(page) == plan and _image_src(page, "fv-curves") == curves
    page.locator("#fv-point-zoom input").fill("1e9")
    page.locator("#fv-point-apply").click()  # twice: still one message, no pile of toasts
    page.wait_for_timeout(1500)
    assert page.locator("#fv-camera-note").inner_text().count("Zoom must be") == 1
    assert page.locator("[data-testid=toast-body]").count() == 0
    _shot(page, "bad-zoom")

    # width -16: one message naming the field; Generate refuses with the same line and makes nothing
    page.get_by_role("tab", name="Generate").click()
    page.get_by_label("embedded default", exact=True).check()
    page.locator("#fv-model-dir").wait_for(state="hidden", timeout=30_000)  # the embedded model needs no directory
    page.locator("#fv-advanced").get_by_text("Advanced").click()
    width = page.locator("#fv-width input")
    width.fill("-16")
    width.press("Enter")
    page.locator("#fv-gen-status", has_text="Width must be positive").wait_for(timeout=30_000)
    page.locator("#fv-generate").click()
    page.wait_for_timeout(1500)
    assert page.locator("#fv-gen-status").inner_text().count("Width must be positive") == 1
    assert page.locator("#fv-result video").count() == 0
    _shot(page, "bad-width")
    page.get_by_label("model directory", exact=True).check()
    page.locator("#fv-model-dir").wait_for(state="visible", timeout=30_000)


@pytest.mark.browser
def test_reload_offers_the_autosaved_project(page, running_app):  # noqa: F811
    _, url = running_app
    _load_demo(page, url)
    page.get_by_role("tab", name="Camera").click()
    demo = [("cut", "64", "cut to medium"), ("keyframe", "0", "wide"), ("keyframe", "40", "zoom in")]
    _wait_markers(page, demo)
    _click_strip(page, 0.6)
    plan = _wait_changed(page, demo)
    curves = _image_src(page, "fv-curves")
    from studio.app import AUTOSAVER

    AUTOSAVER.flush()
    page.reload()
    page.get_by_text("Restore the project from").wait_for(timeout=60_000)
    _shot(page, "restore-offer")
    page.locator("#fv-restore-yes").click()
    page.get_by_text("Restored the autosaved project").first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Camera").click()
    _wait_markers(page, plan)
    assert _image_src(page, "fv-curves") == curves
    page.get_by_role("tab", name="References").click()
    assert page.locator("#fv-gallery img").count() == 3


@pytest.mark.browser
def test_clicking_a_person_in_a_video_with_several_follows_them(page, running_app, tmp_path, monkeypatch):  # noqa: F811
    """A driving video with two people shows them numbered; clicking the right one extracts the poses again
    following person 2 (the landmarker is replaced by a stand-in that reports two people and who it followed)."""
    import numpy as np

    import studio.app as app
    from engine.poses import PoseTrack
    from engine.poses.follow import FollowReport
    from engine.poses.track import BODY
    from engine.video import write_video

    video = tmp_path / "two people.mp4"
    write_video(video, np.full((6, 96, 128, 3), 90, np.uint8), 25.0)
    calls = []

    def fake_load_motion(path, progress=None, person=None, report=None):
        calls.append(person)
        followed = person or 1
        report["follow"] = FollowReport(people_at_start=2, person=followed, start_frame=0,
                                        start_boxes=[[10.0, 10.0, 50.0, 90.0], [78.0, 10.0, 118.0, 90.0]])
        keypoints = np.zeros((6, 128, 3), np.float32)
        keypoints[:, BODY, 0] = 0.25 if followed == 1 else 0.75
        keypoints[:, BODY, 1] = np.linspace(0.15, 0.9, 18)
        keypoints[:, BODY, 2] = 1.0
        return PoseTrack(keypoints, 128, 96, 25.0)

    monkeypatch.setattr(app, "load_motion", fake_load_motion)
    _, url = running_app
    page.goto(url)
    page.locator("#fv-load-demo").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Motion").click()
    page.locator("#fv-motion-video input[type=file]").set_input_files(str(video))
    page.locator("#fv-motion-info", has_text="following person 1").wait_for(timeout=120_000)
    picture = page.locator("#fv-people img")
    picture.wait_for(timeout=30_000)
    _shot(page, "people")
    box = picture.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.76, box["y"] + box["height"] * 0.5)  # inside person 2's box
    page.locator("#fv-motion-info", has_text="following person 2").wait_for(timeout=120_000)
    assert calls == [None, 2]
    page.wait_for_timeout(1000)  # the picture is redrawn with person 2 marked
    box = picture.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.76, box["y"] + box["height"] * 0.5)  # the one already followed
    page.locator("#fv-motion-info", has_text="already the one followed").wait_for(timeout=60_000)
    assert calls == [None, 2]
