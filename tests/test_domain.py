"""Honesty about the embedded default's domain: `freeview animate` and the studio say it draws synthetic people."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.model import DEFAULT_MODEL_DIR, DOMAIN_NOTE, domain_note

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo"
REFS = sorted(str(p) for p in (DEMO / "references").glob("mara_*.png"))
MOTION = DEMO / "motions" / "presenter.json"


def test_the_note_is_for_the_embedded_default_only(tmp_path, monkeypatch):
    monkeypatch.delenv("FREEVIEW_MODEL", raising=False)
    assert domain_note() == DOMAIN_NOTE and domain_note(DEFAULT_MODEL_DIR) == DOMAIN_NOTE
    assert domain_note(ROOT / "assets" / ".." / "assets" / "default_model") == DOMAIN_NOTE  # the same folder, spelt otherwise
    assert "synthetic characters" in DOMAIN_NOTE and "real weights" in DOMAIN_NOTE
    assert domain_note(tmp_path) is None
    monkeypatch.setenv("FREEVIEW_MODEL", str(tmp_path))  # another model made the default: no note
    assert domain_note() is None


def _animate(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FREEVIEW_MODEL"}  # --model, or the embedded default
    return subprocess.run([sys.executable, "-m", "engine.cli", "animate", "--refs", *REFS[:2], "--motion", str(MOTION),
                           "--frames", "2", "--out", str(out), *extra], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_animate_says_it_once_for_the_embedded_default(tmp_path):
    r = _animate(tmp_path / "out.mp4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(DOMAIN_NOTE) == 1, r.stdout


def test_animate_does_not_say_it_for_another_model(tmp_path):
    from engine.models.configs import build_components
    from engine.pipeline import FreeViewPipeline

    model = tmp_path / "tiny"
    FreeViewPipeline(**build_components("tiny")).save_pretrained(model)
    r = _animate(tmp_path / "out.mp4", "--model", str(model), "--steps", "1")
    assert r.returncode == 0, r.stderr
    assert "synthetic characters" not in r.stdout, r.stdout


def test_the_studio_shows_it_beside_the_model_choice(monkeypatch):
    pytest.importorskip("gradio")
    monkeypatch.delenv("FREEVIEW_MODEL", raising=False)
    from studio.app import DEFAULT_MODEL, MODEL_DIRECTORY, _model_note

    assert DOMAIN_NOTE in _model_note(DEFAULT_MODEL)
    assert _model_note(MODEL_DIRECTORY) == ""
