"""Search ranges of settings, as data: what a model (models/registry.py) and the trainer
(training/optim.py: TRAIN_SPACE) declare beside their defaults, and what `deepfit tune` samples
(tools/tune/space.py turns them into Optuna distributions).

    Float(1e-5, 1e-1, log=True)    a real number, uniform or log-uniform in [low, high]
    Int(1, 4)                      a whole number in [low, high] (log: log-uniform; step)
    Choice(32, 64, 128)            one of the values (numbers, text or booleans)

A space is {setting name: range}. `parse_range` reads one entry of a `--space space.json`:
a list is a Choice, {"low", "high"[, "log", "step", "type"]} a Float or Int, any other value fixes
the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepfit.errors import SettingsError


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise SettingsError(f"a range needs low < high (and low > 0 on a log scale), not "
                                f"{self.low} to {self.high}")

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0) or self.step < 1:
            raise SettingsError(f"a whole-number range needs low < high (and low > 0 on a log "
                                f"scale) and a step >= 1, not {self.low} to {self.high} by {self.step}")

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]

    def __init__(self, *choices: Any) -> None:
        if not choices or any(not isinstance(c, (str, int, float, bool)) for c in choices):
            raise SettingsError(f"a choice needs one or more numbers, texts or booleans, not {list(choices)}")
        object.__setattr__(self, "choices", tuple(choices))

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "choices": list(self.choices)}


Range = Float | Int | Choice


@dataclass(frozen=True)
class Fixed:
    """A setting taken out of the search: every trial gets `value`."""

    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {"type": "fixed", "value": self.value}


def parse_range(name: str, spec: Any, default: Any = None) -> Range | Fixed:
    """One entry of a space file: a list → Choice; {"low", "high", ...} → Float, or Int when
    both ends are whole numbers and the default is not a float ("type": "int"/"float" decides);
    anything else fixes the setting. Raises SettingsError for a malformed entry."""
    if isinstance(spec, list):
        return Choice(*spec)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"low", "high", "log", "step", "type"})
        if unknown or "low" not in spec or "high" not in spec:
            raise SettingsError(f"space entry {name!r}: a range is {{\"low\": …, \"high\": …}} with "
                                f"optional log, step and type, not {spec}")
        kind = spec.get("type") or ("int" if all(isinstance(spec[k], int) for k in ("low", "high"))
                                    and not isinstance(default, float) else "float")
        if kind not in ("int", "float"):
            raise SettingsError(f"space entry {name!r}: type must be int or float, not {kind!r}")
        log = bool(spec.get("log", False))
        if kind == "int":
            return Int(int(spec["low"]), int(spec["high"]), log, int(spec.get("step", 1)))
        return Float(float(spec["low"]), float(spec["high"]), log)
    return Fixed(spec)
