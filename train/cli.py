"""Subcommands of the train package, plugged into ``freeview`` through an entry point."""

from __future__ import annotations

import importlib

COMMAND_MODULES = (
    "train.synth.commands",   # freeview synth make, bench synth
    "train.evaluate",         # freeview eval
    "train.commands",         # freeview train prepare|run, bench train
)


def register(subparsers, bench) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("train"):
                continue
            raise
        module.register(subparsers, bench)
