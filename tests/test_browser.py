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
