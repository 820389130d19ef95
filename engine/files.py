"""Atomic file and directory writes: nothing half-written is ever left where the user looks, and no
output ever lands on an input.

* :func:`check_outputs` — before any work, every output path against every input and against each other
  (resolved paths and hard links), and outputs that name a folder.
* :func:`atomic_path` / :func:`atomic_dir` — write a temporary beside the target, check it, rename it into place;
  Ctrl-C while inside leaves the old target and no temporary (``KeyboardInterrupt`` is raised at the end).
* Temporaries carry the writer's process id; :func:`clean_stale_temporaries` removes those of processes that
  are gone (a ``kill -9``), and every atomic write and :func:`check_outputs` calls it on its folder.
* :func:`read_json` / :func:`parse_json` — JSON with a size limit and no ``RecursionError``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError

MAX_JSON_BYTES = 512 * 2**20  # a ten-minute 60 fps pose track with hands, face and world landmarks is ~250 MB
_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)\.[a-z0-9_]{8}\.(tmp|old)(\..*)?$")  # tempfile's 8 random characters


def _process_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()  # read once: setting it is process-wide, so never again while threads run


def _give_usual_mode(tmp: Path, path: Path, base: int) -> None:
    """Temporary files and folders are private (0600/0700); give the result the mode a plain write would have:
    the replaced file's, or ``base`` less the umask."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = base & ~_UMASK
    os.chmod(tmp, mode)


def check_writable_parent(path: Path) -> None:
    """A clear error now, before any work, when ``path`` could not be written."""
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {parent}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"output folder {parent} is not writable")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of atomic writes in ``folder`` whose process is gone (killed mid-write).

    Only names this module makes (``.NAME.PID.RANDOM.tmp…`` / ``….old``) are touched; returns what was removed.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or int(match["pid"]) == os.getpid() or _process_alive(int(match["pid"])):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Hold Ctrl-C (SIGINT) while a result is written and renamed; yields a function saying whether one came.

    Without this a KeyboardInterrupt can land inside a writer's clean-up (ffmpeg's pipe, a generator's
    ``finally``), be printed as "Exception ignored" and the write carry on. Only the main thread can hold it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received = []
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except (ValueError, OSError):
        yield lambda: False
        return
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success ``check(temporary)`` runs (it raises when the
    written file is unusable) and the temporary is renamed onto ``path``.

    On any exception, or Ctrl-C at any moment inside, the temporary file is removed and ``path`` is untouched.
    The temporary name keeps the suffix, so writers that pick a format by extension (ffmpeg, PIL) still work.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    check_writable_parent(path)
    clean_stale_temporaries(path.parent)
    with _deferred_interrupt() as interrupted:
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            if interrupted():
                raise KeyboardInterrupt
            if check is not None:
                check(tmp_path)
            _give_usual_mode(tmp_path, path, 0o666)
            if interrupted():
                raise KeyboardInterrupt
            os.replace(tmp_path, path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise


def check_output_folder(path: str | os.PathLike, *, ours: Callable[[Path], bool], what: str,
                        overwrite: bool = False) -> Path:
    """Before any work: ``path`` must be new, empty, or a folder this tool made (``ours(path)``); a folder
    of anything else is refused unless ``overwrite``. A file is always refused."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder; give a new or empty folder for the {what}")
    if path.is_dir() and any(path.iterdir()) and not ours(path) and not overwrite:
        raise UserError(f"{path} is not empty and is not a {what}; give a new or empty folder "
                        "(or --overwrite, which replaces only the parts it writes)")
    check_writable_parent(path)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, replaces: Collection[str] | None = None) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``.

    ``replaces=None``: the whole of ``path`` is replaced (folders only this tool writes into, e.g. checkpoints).
    ``replaces=NAMES``: an existing ``path`` keeps every entry not in ``NAMES`` (files of the user's); each
    entry in ``NAMES`` is replaced by the new one, or removed when the new folder has none.
    """
    path = Path(path)
    check_writable_parent(path)
    clean_stale_temporaries(path.parent)
    with _deferred_interrupt() as interrupted:
        tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent))
        try:
            yield tmp
            if interrupted():
                raise KeyboardInterrupt
            _give_usual_mode(tmp, path, 0o777)
            if not path.exists():
                os.replace(tmp, path)
            elif replaces is None or not any(path.iterdir()):
                old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path), suffix=".old", dir=path.parent))
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                _merge_into(tmp, path, replaces)
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _merge_into(new: Path, target: Path, replaces: Collection[str]) -> None:
    """Move ``new``'s entries into ``target``, replacing (or, when absent from ``new``, removing) only the
    entries named in ``replaces``; everything else in ``target`` stays."""
    old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".old", dir=target.parent))
    replaces = set(replaces) | {entry.name for entry in new.iterdir()}  # what the writer makes now is its own
    try:
        for name in replaces:
            if (target / name).exists() or (target / name).is_symlink():
                os.replace(target / name, old / name)
        for entry in new.iterdir():
            os.replace(entry, target / entry.name)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    resolved = path.resolve()
    try:
        st = resolved.stat()
        return resolved, (st.st_dev, st.st_ino)
    except OSError:
        return resolved, None


def check_outputs(inputs: Mapping[str, Any], outputs: Mapping[str, Any], *, folders: Collection[str] = ()) -> None:
    """Before any work: no output is an input or another output, and file outputs do not name folders.

    ``inputs`` / ``outputs`` map what the user typed (``--out``, ``--refs``) to a path or a list of paths
    (None is skipped). Paths are compared resolved (symbolic links followed) and by inode (hard links).
    ``folders`` lists the outputs that are folders. Also removes temporaries killed runs left beside them.
    """
    def flatten(named: Mapping[str, Any]) -> list[tuple[str, Path]]:
        flat = []
        for name, value in named.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            flat += [(name, Path(v)) for v in values if v is not None and str(v) != ""]
        return flat

    ins, outs = flatten(inputs), flatten(outputs)
    seen: list[tuple[str, Path, Path, tuple[int, int] | None]] = []
    for name, path in outs:
        if name not in folders and path.is_dir():
            raise UserError(f"{name} {path} is a folder; give a file name")
        resolved, inode = _identity(path)
        for in_name, in_path in ins:
            in_resolved, in_inode = _identity(in_path)
            if resolved == in_resolved or (inode is not None and inode == in_inode) or (
                    name in folders and in_resolved.is_relative_to(resolved)):
                raise UserError(f"{name} {path} would overwrite the input {in_name} {in_path}; write it elsewhere")
        for other_name, other, other_resolved, other_inode in seen:
            if resolved == other_resolved or (inode is not None and inode == other_inode):
                raise UserError(f"{name} and {other_name} are the same file ({path}); give them different names")
        seen.append((name, path, resolved, inode))
    for name, path in outs:
        check_writable_parent(path)
        clean_stale_temporaries(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def parse_json(text: str | bytes, where: str) -> Any:
    """``json.loads`` with one clear error for text that is not JSON, too large or nested too deeply."""
    if len(text) > MAX_JSON_BYTES:
        raise UserError(f"{where} is too large ({len(text) / 2**20:.0f} MB; at most {MAX_JSON_BYTES // 2**20} MB)")
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(f"{where} nests too deeply to be a FreeView file") from None
    except UnicodeDecodeError:
        raise UserError(f"{where} is not text (not valid UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{where} is not valid JSON ({exc})") from None


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file with :func:`parse_json`'s limits; a missing or unreadable file is one clear error."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder")
    if size > MAX_JSON_BYTES:
        raise UserError(f"{path} is too large ({size / 2**20:.0f} MB; at most {MAX_JSON_BYTES // 2**20} MB)")
    return parse_json(path.read_bytes(), str(path))


def load_npz(path: str | os.PathLike) -> dict[str, Any]:
    """Every array of an ``.npz`` file, never unpickling (``allow_pickle=False``); a missing, truncated or
    damaged file, or one holding Python objects, is one :class:`UserError` naming the file."""
    import zipfile

    import numpy as np

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UserError(f"{path} is damaged or truncated (not a readable .npz file: {exc})") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise UserError(f"{path} holds Python objects, not only arrays, and is refused (FreeView never unpickles)") from None
        raise UserError(f"{path} is not a readable .npz file ({exc})") from None
