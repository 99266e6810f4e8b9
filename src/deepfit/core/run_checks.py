"""A run directory is checked before anything is built from it: run directories travel between
machines and people, so loading one is as careful as reading a CSV.

    meta = read_model_json(run_dir)                  # model.json: keys, types, ranges
    path, sha256 = weights_file(run_dir, meta, verify=True)
    shapes = weights_header(path)                     # {name: shape}, the header only
    check_architecture(model_on_meta, shapes, path)   # names and shapes, before any allocation

Every failure is a RunDirError (an IntegrityError for the checksum) naming the file and the key:
a missing or mistyped key, a size out of range (LIMITS), an unknown model or task, a threshold
outside (0, 1), a checksum missing, null or malformed (unless verification is turned off, with
a warning), a weights path that is not a regular file inside the run directory, an architecture
that does not fit the weights' tensor names and shapes, or a model too large for the memory.
The weights' header is read with safetensors' `safe_open` (no tensor data is read).
"""

from __future__ import annotations

import math
import re
import stat
from pathlib import Path
from typing import Any

import torch

from deepfit.config import TASKS
from deepfit.core.io import read_json
from deepfit.core.memory import available_memory
from deepfit.core.words import noun_for, plural
from deepfit.errors import DeepfitError, IntegrityError, RunDirError

# The largest sizes a saved architecture may ask for: far above any model deepfit trains, far
# below what would exhaust a machine before the weights are compared.
LIMITS = {"features": 10_000_000, "outputs": 1_000_000, "cardinality": 100_000_000,
          "shape_dim": 100_000, "setting": 100_000, "depth": 1_000, "list": 1_000}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_model_json(run_dir: Path, name: str = "model.json") -> dict[str, Any]:
    """model.json of `run_dir`, checked (RunDirError naming the key and the problem)."""
    path = run_dir / name
    meta = read_json(path)
    check = _Checker(path)
    check.kind(meta, "", dict)
    if meta.get("format") != 1 or isinstance(meta.get("format"), bool):
        check.fail(f"its format is {meta.get('format')!r}; this deepfit reads format 1")
    arch = check.key(meta, "architecture", dict)
    check.key(arch, "name", str, "architecture.")
    check.key(arch, "settings", dict, "architecture.")
    spec = check.key(arch, "input_spec", dict, "architecture.")
    n = check.size(spec, "n_features", LIMITS["features"], "architecture.input_spec.", low=1)
    check.size(spec, "n_dense", n, "architecture.input_spec.")
    cards = check.key(spec, "cardinalities", list, "architecture.input_spec.", optional=True) or []
    check.length(cards, "architecture.input_spec.cardinalities", n)
    for i, card in enumerate(cards):
        check.number(card, f"architecture.input_spec.cardinalities[{i}]", 1, LIMITS["cardinality"])
    check.key(spec, "modality", str, "architecture.input_spec.")
    shape = check.key(spec, "shape", list, "architecture.input_spec.", optional=True) or []
    check.length(shape, "architecture.input_spec.shape", 4)
    for i, dim in enumerate(shape):
        check.number(dim, f"architecture.input_spec.shape[{i}]", 1, LIMITS["shape_dim"])
    out = check.key(arch, "output_spec", dict, "architecture.")
    task = check.key(out, "task", str, "architecture.output_spec.")
    if task not in TASKS:
        check.fail(f"'architecture.output_spec.task' is {task!r}, not one of {', '.join(TASKS)}")
    n_outputs = check.size(out, "n_outputs", LIMITS["outputs"], "architecture.output_spec.", low=1)
    classes = meta.get("target", {}).get("classes") if isinstance(meta.get("target"), dict) else None
    if task == "classification" and isinstance(classes, list) and len(classes) != n_outputs:
        check.fail(f"the target has {len(classes)} classes but the model {n_outputs} outputs")
    _check_settings(check, arch["settings"])
    check.key(meta, "preprocessor", dict)
    check.key(meta, "target", dict)
    threshold = meta.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not 0 < threshold < 1):
        check.fail(f"'threshold' is {threshold!r}: a decision threshold lies in (0, 1), or is null")
    check.key(meta, "series", dict, optional=True)
    anomaly = check.key(meta, "anomaly", dict, optional=True)
    if task == "anomaly" or anomaly is not None:
        if anomaly is None:
            check.fail("an anomaly model lacks its 'anomaly' threshold")
        value = anomaly.get("threshold")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            check.fail(f"'anomaly.threshold' is {value!r}: an anomaly threshold is a finite score")
    weights = check.key(meta, "weights", dict)
    check.key(weights, "file", str, "weights.")
    return meta


def _check_settings(check: _Checker, settings: dict[str, Any]) -> None:
    """Every number of the model's settings within LIMITS (a setting named depth: LIMITS["depth"])."""
    for key, value in settings.items():
        where = f"architecture.settings.{key}"
        high = LIMITS["depth"] if key == "depth" else LIMITS["setting"]
        if isinstance(value, list):
            check.length(value, where, LIMITS["list"])
            for i, item in enumerate(value):
                check.number(item, f"{where}[{i}]", 0, high)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            check.number(value, where, 0, high if isinstance(value, int) else 1e9)
        elif value is not None and not isinstance(value, (str, bool)):
            check.fail(f"{where!r} is a {type(value).__name__}: a setting is a number, text or a list")


def weights_file(run_dir: Path, meta: dict[str, Any], verify: bool = True) -> tuple[Path, str | None]:
    """The weights file named in model.json and the checksum to check it against (None when
    `verify` is False). The file must be a regular file inside `run_dir`."""
    name = meta["weights"]["file"]
    path = run_dir / name
    inside = run_dir.resolve()
    try:
        resolved = path.resolve()
        mode = path.stat().st_mode if path.exists() else None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a path too long
        raise RunDirError(f"{run_dir / 'model.json'}: its weights path {name!r} cannot be read ({exc})") from None
    if Path(name).is_absolute() or (resolved != inside and inside not in resolved.parents):
        raise RunDirError(f"{run_dir / 'model.json'}: its weights path {name!r} points outside the run "
                          "directory; refused")
    if mode is None:
        raise RunDirError(f"{run_dir} is incomplete: {name} is missing")
    if not stat.S_ISREG(mode):
        raise RunDirError(f"{run_dir / 'model.json'}: its weights path {name!r} is not a regular file")
    sha = meta["weights"].get("sha256")
    if not verify:
        return path, None
    if not isinstance(sha, str) or not _SHA256.match(sha):
        what = "missing" if sha is None else f"malformed ({str(sha)[:80]!r})"
        raise IntegrityError(f"{run_dir / 'model.json'}: the weights' checksum is {what}, so altered "
                             "weights could not be told apart; refusing to load them (--no-verify "
                             "skips the check, at your own risk)")
    return path, sha


def weights_header(path: Path) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} from a safetensors file's header, no tensor data read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # SafetensorError, or an OSError of a file that is not one
        raise IntegrityError(f"{path} is not a readable safetensors file ({str(exc)[:200]})") from None


def check_architecture(model: torch.nn.Module, shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """The model (built on the meta device: no memory) fits the weights' names and shapes, and
    its parameters fit in the memory available (RunDirError otherwise)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    problems = ([f"{plural(len(missing), 'tensor')} missing from the weights (first: {missing[0]})"] if missing else []) \
        + ([f"{plural(len(unexpected), 'tensor')} the architecture has not (first: {unexpected[0]})"] if unexpected else []) \
        + ([f"{wrong[0]} is {list(expected[wrong[0]])} in the architecture, {list(shapes[wrong[0]])} in "
            f"the weights ({len(wrong)} such)"] if wrong else [])
    if problems:
        raise RunDirError(f"model.json's architecture does not fit {path.name}: {'; '.join(problems)}")
    nbytes = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    free = available_memory()
    if nbytes > free:
        raise RunDirError(f"the model of {path.parent} needs {nbytes / 2**30:.3g} GiB for its weights; "
                          f"{free / 2**30:.3g} GiB of memory are free")


def build_on_meta(builder: Any, where: Path) -> torch.nn.Module:
    """builder() on the meta device (no memory); a failure is a RunDirError naming `where`."""
    try:
        with torch.device("meta"):
            return builder()
    except DeepfitError as exc:
        raise RunDirError(f"{where}: its architecture cannot be built: {exc}") from None
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError, IndexError) as exc:
        raise RunDirError(f"{where}: its architecture cannot be built "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None


class _Checker:
    """Named failures for the keys of one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, problem: str) -> None:
        raise RunDirError(f"{self.path} is damaged: {problem}")

    def kind(self, value: Any, where: str, kind: type) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            what = "missing" if value is None else f"a {type(value).__name__}"
            self.fail(f"{where!r} is {what}, not a {_names[kind]}" if where else
                      f"it holds a {type(value).__name__}, not a JSON object")
        return value

    def key(self, obj: dict, key: str, kind: type, prefix: str = "", optional: bool = False) -> Any:
        value = obj.get(key)
        if value is None and optional:
            return None
        return self.kind(value, prefix + key, kind)

    def number(self, value: Any, where: str, low: float, high: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{where!r} is {value!r}, not a number")
        if not low <= value <= high:
            self.fail(f"{where!r} is {value!r}, outside [{low:g}, {high:g}]")

    def size(self, obj: dict, key: str, high: int, prefix: str = "", low: int = 0) -> int:
        value = self.key(obj, key, int, prefix)
        self.number(value, prefix + key, low, high)
        return value

    def length(self, items: list, where: str, most: int) -> None:
        if len(items) > most:
            self.fail(f"{where!r} has {len(items)} entries, more than {most}")


_names = {dict: "JSON object", list: "list", str: "text", int: "whole number", float: "number"}


def from_record(cls: type, record: Any, where: str) -> Any:
    """`cls(**record)` for a dataclass saved as JSON, once every field is there with a value of
    its annotated type (str, bool, int, float finite, list[str], list[float] finite) and no
    other key is; RunDirError naming `where` and the field otherwise."""
    import dataclasses
    import math
    import typing

    if not isinstance(record, dict):
        raise RunDirError(f"{where} is a {type(record).__name__}, not a JSON object")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(record) - set(fields))
    if unknown:
        raise RunDirError(f"{where} has unknown {noun_for(len(unknown), 'key')}: {', '.join(map(repr, unknown[:5]))}")
    for name, f in fields.items():
        if name not in record:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RunDirError(f"{where} lacks its {name!r}")
            continue
        value, hint = record[name], hints[name]
        kinds = {str: (str,), bool: (bool,), int: (int,), float: (int, float)}
        if hint in kinds:
            ok = isinstance(value, kinds[hint]) and (hint is bool or not isinstance(value, bool))
            ok = ok and (hint is not float or math.isfinite(value))
        elif typing.get_origin(hint) is list:
            (item,) = typing.get_args(hint) or (object,)
            ok = isinstance(value, list) and all(
                item is object or (isinstance(v, kinds.get(item, (item,))) and not isinstance(v, bool)
                and (item is not float or math.isfinite(v))) for v in value)
        else:
            ok = True
        if not ok:
            raise RunDirError(f"{where}'s {name!r} is {str(value)[:60]!r}, not a {getattr(hint, '__name__', hint)}"
                              + (" (finite)" if hint is float else ""))
    return cls(**record)


def finite_numbers(values: Any, where: str, positive: bool = False) -> list[float]:
    """`values` as a list of finite numbers (above 0 with `positive`); RunDirError otherwise."""
    import math

    if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (not positive or v > 0) for v in values):
        raise RunDirError(f"{where} must be a list of finite{' positive' if positive else ''} "
                          f"numbers, not {str(values)[:60]!r}")
    return [float(v) for v in values]
