"""Sub-commands that live in a module of their own: each module in this package defines
`NAMES` (the sub-command names it adds), `add_parser(sub)` (adds them to the sub-parsers
action, as argparse's `add_parser` does) and `run(args, console) -> int` (the exit code).
They are found by listing the package, so a new command is one new file and no edit
elsewhere. As in app.py, a command module imports only argparse-level code at the top; the API
(and torch) is imported inside `run` (tests/test_cli_startup.py)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from functools import cache
from types import ModuleType
from typing import Any

from rich.console import Console


@cache
def command_modules() -> tuple[ModuleType, ...]:
    """The command modules of this package, in name order."""
    return tuple(importlib.import_module(f"{__name__}.{info.name}")
                 for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)
                 if not info.name.startswith("_"))


def add_commands(sub: Any) -> None:
    """Add every command module's sub-commands to `sub` (argparse's sub-parsers action)."""
    for module in command_modules():
        module.add_parser(sub)


def find_command(name: str) -> ModuleType | None:
    """The module that adds the sub-command `name`, or None."""
    return next((m for m in command_modules() if name in m.NAMES), None)


def run_command(args: argparse.Namespace, console: Console) -> int | None:
    """Run `args.command` if a command module adds it; None when none does."""
    module = find_command(args.command)
    return None if module is None else module.run(args, console)
