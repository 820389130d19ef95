"""The ``freeview`` command.

Each area of the product adds its own subcommands through a ``register(subparsers,
bench)`` function: the engine's own modules are listed here, and the train and
studio packages plug in through the ``freeview.commands`` entry-point group, so
the engine never imports them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import zipfile
from importlib.metadata import entry_points

from .errors import UserError

ENGINE_COMMAND_MODULES = (
    "engine.animate",
    "engine.poses.cli",
    "engine.warps.cli",
    "engine.weights",
    "engine.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freeview",
        description="Free-viewpoint human animation from several reference photos, a pose track and a camera plan.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    bench = subparsers.add_parser("bench", help="benchmarks that print figures (and write --json)")
    bench_sub = bench.add_subparsers(dest="bench", metavar="WHAT")
    bench_sub.required = True

    registers = []
    for name in ENGINE_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an area not built yet must not break the others
            if exc.name and exc.name.startswith("engine"):
                continue
            raise
        registers.append(module.register)
    for ep in entry_points(group="freeview.commands"):
        try:
            registers.append(ep.load())
        except ModuleNotFoundError:
            continue
    for register in registers:
        register(subparsers, bench_sub)
    return parser


def quiet_third_party() -> None:
    """Third-party notices (diffusers' and transformers' warnings, RuntimeWarnings) only with FREEVIEW_DEBUG=1."""
    if os.environ.get("FREEVIEW_DEBUG"):
        return
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("GLOG_minloglevel", "2")       # mediapipe's C++ start-up lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("diffusers", "transformers", "accelerate", "huggingface_hub", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:  # their own handlers ignore the standard loggers' levels until told
            importlib.import_module(module).set_verbosity_error()
        except ImportError:
            continue


def _close_progress_bars() -> None:
    """An error line must start on its own line, not glued to a progress bar."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is None:
        return
    for bar in list(getattr(tqdm.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error
            pass


def error_line(exc: BaseException) -> str:
    """The one line a user sees for ``exc``."""
    if isinstance(exc, RecursionError):
        return "an input file nests too deeply to be read"
    if isinstance(exc, MemoryError):
        return "out of memory; make the job smaller (size, frames or references)"
    if isinstance(exc, (zipfile.BadZipFile, EOFError)):
        return f"a damaged or truncated file ({exc or type(exc).__name__}); run with FREEVIEW_DEBUG=1 to see which"
    message = str(exc).strip() or exc.__class__.__name__
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if isinstance(exc, OSError) else " ".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_third_party()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _close_progress_bars()
        print("freeview: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, OSError, RecursionError, MemoryError, zipfile.BadZipFile, EOFError) as exc:
        if os.environ.get("FREEVIEW_DEBUG"):
            raise
        _close_progress_bars()
        print(f"freeview: error: {error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
