"""A registry of model builders by name (after timm's `create_model`).

A builder is `fn(input_spec, output_spec, *, setting=default, ...) -> nn.Module`. Its keyword
parameters are the model's settings: `create` fills in the defaults, coerces values given as text
(from the CLI), and rejects an unknown setting with the list of valid ones. Beside the defaults,
`register(..., space={setting: range})` declares the ranges `deepfit tune` searches for the
model's own settings (core/space.py: Float, Int, Choice); `search_space(name)` returns them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from deepfit.core.space import Range
from deepfit.errors import SettingsError

Builder = Callable[..., nn.Module]
SUPERVISED = ("classification", "regression")  # the tasks of a model with a prediction head


@dataclass(frozen=True)
class InputSpec:
    """What the model receives, as the data's modality's preprocessor makes it. Tabular: one
    float matrix whose last columns after `n_dense` are category indices to embed
    (modalities/tabular/preprocess.py). Sequence: [N, T, C] floats, with n_features = n_dense = C
    and shape = (T, C). Image: [N, C, H, W], n_features = C and shape = (C, H, W). Text: [N,
    n_features], the tabular block of the other columns (n_dense, cardinalities) then, for each
    of shape[0] text columns, shape[1] token ids (modalities/text/preprocess.py). A model of
    other modalities declares them (`register(name, modalities=...)`); the default model of each
    is its Modality's `default_model`."""

    n_features: int
    n_dense: int
    cardinalities: tuple[int, ...] = ()
    modality: str = "tabular"
    shape: tuple[int, ...] = ()  # one sample's shape beyond the batch, where it is not [n_features]
    vocab_size: int = 0  # text: token ids run 1 … vocab_size - 1, 0 is padding

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cardinalities": list(self.cardinalities), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        return cls(**{**d, "cardinalities": tuple(d.get("cardinalities", ())),
                      "shape": tuple(d.get("shape", ()))})


@dataclass(frozen=True)
class OutputSpec:
    task: str  # "classification", "regression" or "anomaly" (config.TASKS)
    n_outputs: int  # classes, or 1 for a single value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Entry:
    builder: Builder
    modalities: tuple[str, ...] = ("tabular",)
    defaults: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Range] = field(default_factory=dict)  # tuning ranges of some of the settings
    tasks: tuple[str, ...] = SUPERVISED  # the tasks it is built for (an autoencoder: anomaly)


_REGISTRY: dict[str, Entry] = {}
_FAMILIES: dict[str, Callable[[str], Entry]] = {}  # see register_family
# Other names for registered models (`--model resnet`); create and the rest accept them.
ALIASES = {"resnet": "resnet18"}


def register(name: str, *, modalities: tuple[str, ...] = ("tabular",),
             space: dict[str, Range] | None = None,
             tasks: tuple[str, ...] = SUPERVISED) -> Callable[[Builder], Builder]:
    def decorate(builder: Builder) -> Builder:
        params = list(inspect.signature(builder).parameters.values())[2:]
        defaults = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
        unknown = sorted(set(space or {}) - set(defaults))
        if unknown:  # a range for a setting the builder does not take: the registry's own mistake
            raise TypeError(f"model {name!r}: ranges for unknown settings {unknown}")
        _REGISTRY[name] = Entry(builder, modalities, defaults, dict(space or {}), tasks)
        return builder

    return decorate


def available(task: str | None = None) -> list[str]:
    """The registered models' names; with `task`, those built for it."""
    return sorted(n for n, e in _REGISTRY.items() if task is None or task in e.tasks)


def modalities(name: str) -> tuple[str, ...]:
    """The kinds of data model `name` takes."""
    return _entry(name).modalities


def tasks(name: str) -> tuple[str, ...]:
    """The tasks model `name` is built for."""
    return _entry(name).tasks


def check_task(name: str, task: str) -> None:
    """Raises SettingsError when model `name` is not built for `task`, naming those that are."""
    entry = _entry(name)
    if task not in entry.tasks:
        fit = available(task)
        raise SettingsError(f"model {name!r} is for {' or '.join(entry.tasks)}, not {task}; "
                            f"for {task}: {', '.join(fit) or 'none registered'}")


def search_space(name: str) -> dict[str, Range]:
    """The tuning ranges model `name` declares for its own settings (core/space.py)."""
    return dict(_entry(name).space)


def register_family(prefix: str, make_entry: Callable[[str], Entry]) -> None:
    """Names `prefix:<variant>` (and `prefix` alone) resolve to `make_entry(variant)`, e.g.
    `transfer:resnet18` (models/transfer.py); such names are not listed by `available()`."""
    _FAMILIES[prefix] = make_entry


def canonical(name: str) -> str:
    """The registered name of a model named by an alias (`resnet` → `resnet18`), else `name`."""
    return ALIASES.get(name, name)


def _entry(name: str) -> Entry:
    name = canonical(name)
    family, _, variant = name.partition(":")
    if family in _FAMILIES:
        return _FAMILIES[family](variant)
    if name not in _REGISTRY:
        families = "".join(f", {f}:<name>" for f in sorted(_FAMILIES))
        raise SettingsError(f"unknown model {name!r}; available: {', '.join(available())}{families}")
    return _REGISTRY[name]


def resolve_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Every setting of model `name`: the defaults updated with `settings`, checked by name."""
    entry = _entry(name)
    unknown = sorted(set(settings) - set(entry.defaults))
    if unknown:
        valid = ", ".join(sorted(entry.defaults)) or "none"
        raise SettingsError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for model "
            f"{name!r}; its settings are: {valid} (plus the data and training settings)"
        )
    return {k: _coerce(k, settings.get(k, default), default) for k, default in entry.defaults.items()}


def create(name: str, input_spec: InputSpec, output_spec: OutputSpec, **settings: Any) -> nn.Module:
    entry = _entry(name)
    if input_spec.modality not in entry.modalities:
        raise SettingsError(
            f"model {name!r} takes {' or '.join(entry.modalities)} data, not {input_spec.modality}"
        )
    check_task(name, output_spec.task)
    return entry.builder(input_spec, output_spec, **resolve_settings(name, settings))


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Values from the command line arrive as text; give them the default's type."""
    try:
        if isinstance(default, tuple):
            if isinstance(value, str):
                parts = value.replace(" ", "").split(",")
                if len(parts) > 1 and "" in parts:
                    raise SettingsError(f"setting {key}={value!r} has an empty entry; write the "
                                        "sizes with one comma between each, e.g. 128,64")
                value = [v for v in parts if v]
            kind = type(default[0]) if default else int
            return tuple(kind(v) for v in value)
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(default, (int, float)) and not isinstance(value, bool):
            coerced = type(default)(float(value) if isinstance(default, float) else value)
            return coerced
    except (TypeError, ValueError):
        raise SettingsError(f"setting {key}={value!r} is not of the expected kind ({default!r})") from None
    return value
