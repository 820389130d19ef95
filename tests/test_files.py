"""Atomic writes: all or nothing, and the result has the mode a plain write would give it."""

from __future__ import annotations

import os
import stat

import pytest

from engine.files import atomic_dir, atomic_path, write_text_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_new_file_and_folder_follow_the_umask_not_the_private_temporary_mode(tmp_path):
    write_text_atomic(tmp_path / "a.json", "{}")
    assert (tmp_path / "a.json").read_text() == "{}"
    assert _mode(tmp_path / "a.json") == 0o666 & ~_umask()
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "x").write_text("1")
    assert _mode(tmp_path / "model") == 0o777 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "model"]


def test_replacing_a_file_keeps_its_mode(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder died")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
