"""The search space of a study: the model's own ranges (models/registry.py: search_space), the
trainer's shared ones once (training/optim.py: TRAIN_SPACE), less the settings the user fixed
(train flags given to tune), then `--space space.json` on top (core/space.py: parse_range), and
its sampling by an Optuna trial."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepfit.config import TrainConfig
from deepfit.core.space import Choice, Fixed, Float, Int, Range, parse_range
from deepfit.errors import SettingsError
from deepfit.models import resolve_settings
from deepfit.models.registry import search_space
from deepfit.training.optim import TRAIN_SPACE

TRAIN_DEFAULTS = {k: getattr(TrainConfig(), k) for k in TRAIN_SPACE}


def build_space(model: str, fixed: dict[str, Any], overrides: dict[str, Any] | str | Path | None
                ) -> tuple[dict[str, Range], dict[str, Any]]:
    """(ranges, fixed settings) of a study of `model`. `fixed`: settings given by the user (out of
    the search); `overrides`: {name: range or value} or a JSON file of it. A name that is neither
    a setting of the model nor one of TRAIN_SPACE's is a SettingsError (before any trial)."""
    defaults = {**TRAIN_DEFAULTS, **resolve_settings(model, {})}
    space: dict[str, Range] = {**TRAIN_SPACE, **search_space(model)}
    space = {k: v for k, v in space.items() if k not in fixed}
    fixed = dict(fixed)
    if isinstance(overrides, (str, Path)):
        try:
            overrides = json.loads(Path(overrides).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SettingsError(f"cannot read the search space {overrides}: {exc}") from None
        if not isinstance(overrides, dict):
            raise SettingsError("a space file holds one JSON object: {setting: range or value}")
    unknown = sorted(set(overrides or {}) - set(defaults))
    if unknown:
        raise SettingsError(f"unknown setting{'s' * (len(unknown) > 1)} in the search space: "
                            f"{', '.join(unknown)}; {model}'s are {', '.join(sorted(defaults))}")
    for name, spec in (overrides or {}).items():
        found = parse_range(name, spec, defaults[name])
        if isinstance(found, Fixed):
            space.pop(name, None)
            fixed[name] = found.value
        else:
            space[name] = found
            fixed.pop(name, None)
    return space, fixed


def suggest(trial: Any, space: dict[str, Range]) -> dict[str, Any]:
    """Sample each range with the trial's suggest_* (Optuna's define-by-run API)."""
    params = {}
    for name, r in space.items():
        if isinstance(r, Float):
            params[name] = trial.suggest_float(name, r.low, r.high, log=r.log)
        elif isinstance(r, Int):
            params[name] = trial.suggest_int(name, r.low, r.high, step=r.step, log=r.log)
        elif isinstance(r, Choice):
            params[name] = trial.suggest_categorical(name, list(r.choices))
    return params


def space_to_dict(space: dict[str, Range]) -> dict[str, dict[str, Any]]:
    return {k: v.to_dict() for k, v in space.items()}


def space_from_dict(d: dict[str, dict[str, Any]]) -> dict[str, Range]:
    """The inverse of space_to_dict (for the worker processes)."""
    out: dict[str, Range] = {}
    for name, spec in d.items():
        kind = spec["type"]
        if kind == "choice":
            out[name] = Choice(*spec["choices"])
        elif kind == "int":
            out[name] = Int(spec["low"], spec["high"], spec["log"], spec["step"])
        else:
            out[name] = Float(spec["low"], spec["high"], spec["log"])
    return out
