"""The optional integrations, each behind a named extra of pyproject.toml: importing one that
is not installed is a `MissingExtraError` naming the extra, never a bare ImportError."""

from __future__ import annotations

import importlib
from types import ModuleType

from deepfit.errors import MissingExtraError


def import_extra(module: str, extra: str, purpose: str = "") -> ModuleType:
    """`importlib.import_module(module)`, or a MissingExtraError that says
    `pip install 'deepfit[<extra>]'` when the package is missing. `purpose` names what needed
    it (e.g. "deepfit tune"), for the message."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f"{purpose} needs" if purpose else "this needs"
        raise MissingExtraError(f"{what} the package {module.partition('.')[0]!r}, which is not "
                                f"installed: pip install 'deepfit[{extra}]' ({exc})") from exc
