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
from importlib.metadata import entry_points

from .errors import UserError

ENGINE_COMMAND_MODULES = (
    "engine.animate",
    "engine.poses.cli",
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("freeview: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, OSError) as exc:
        if os.environ.get("FREEVIEW_DEBUG"):
            raise
        message = str(exc) or exc.__class__.__name__
        print(f"freeview: error: {message.splitlines()[0] if isinstance(exc, OSError) else message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
