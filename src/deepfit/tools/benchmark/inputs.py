"""What `deepfit.benchmark` measures on: the model and a pool of encoded rows with targets.

    a registered model, synthetic    dense random samples of the model's natural shape
                                     (its Modality's natural_shape, or the shape asked for),
                                     targets for `classes` classes or a regression value
    a registered model, a SOURCE     the source's rows (seeded sample), through a preprocessor
                                     fitted on all of them (a benchmark, not an evaluation),
                                     and their targets
    a trained run                    its model, and raw rows (the SOURCE's, or synthetic ones
                                     drawn from what its preprocessor learned) through its own
                                     preprocessing
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepfit.core.io import read_json
from deepfit.core.notes import Notes
from deepfit.data.dataset import source_name
from deepfit.data.targets import TargetEncoder
from deepfit.errors import SettingsError
from deepfit.lifecycle.predictor import Predictor
from deepfit.modalities import get_modality, load_source
from deepfit.models import InputSpec, OutputSpec, create, modalities, resolve_settings
from deepfit.models.registry import ALIASES

TASKS = ("classification", "regression")


@dataclass
class Workload:
    name: str
    settings: dict[str, Any]
    model: nn.Module
    input_spec: InputSpec
    output_spec: OutputSpec
    X: torch.Tensor  # [n, ...] encoded samples, as the model takes them
    y: torch.Tensor  # [n] class codes, or [n] / [n, H] standardised values
    data: str  # "synthetic", or the source
    predictor: Predictor | None = None  # a run's model with its preprocessing
    raw: Any = None  # a run's raw rows (DataFrame or array) before preprocessing
    trace: Any = field(default=None, repr=False)  # the torch.profiler of --profile-memory

    def take_raw(self, n: int) -> Any:
        """`n` raw rows (repeated when there are fewer)."""
        return _take(self.raw, np.arange(n) % len(self.raw))


def model_workload(name: str, settings: dict[str, Any], source: Any, target: str | None,
                   input_shape: tuple[int, ...] | None, task: str, classes: int, n_rows: int,
                   quick: bool, seed: int) -> Workload:
    name = ALIASES.get(name, name)
    settings = resolve_settings(name, settings)  # an unknown setting fails before any work
    modality = modalities(name)[0]
    if source is not None:
        if input_shape is not None:
            raise SettingsError("--input-shape is for synthetic input; a SOURCE has its own shape")
        return _source_workload(name, settings, source, target, n_rows, seed)
    if task not in TASKS:
        raise SettingsError(f"task must be classification or regression, not {task!r}")
    if task == "classification" and classes < 2:
        raise SettingsError(f"classification needs at least 2 classes, not {classes}")
    kind = get_modality(modality)
    spec = kind.example_input(input_shape or (kind.quick_shape if quick else None))
    out = OutputSpec(task, classes if task == "classification" else 1)
    generator = torch.Generator().manual_seed(seed)
    X = kind.synthetic_input(spec, n_rows, generator)
    return Workload(name, settings, create(name, spec, out, **settings), spec, out, X,
                    synthetic_targets(out, n_rows, generator), "synthetic")


def _source_workload(name: str, settings: dict[str, Any], source: Any, target: str | None,
                     n_rows: int, seed: int) -> Workload:
    """The source's rows, shuffled (seeded) and repeated to `n_rows`, through a preprocessor
    fitted on all of them."""
    kinds = modalities(name)
    data = load_source(source, target=target, notes=Notes(live=False),
                       modality=kinds[0] if len(kinds) == 1 else None)
    if data.modality not in kinds:
        raise SettingsError(f"model {name!r} takes {' or '.join(kinds)} data; "
                            f"{source_name(source)} is {data.modality} data")
    pre = get_modality(data.modality).create_preprocessor(data).fit(data.X, Notes(live=False))
    encoder = TargetEncoder(data.task).fit(data.y)
    rows = np.random.default_rng(seed).permutation(len(data))[np.arange(n_rows) % len(data)]
    X_raw, y_raw = _take(data.X, rows), data.y.iloc[rows]
    spec = InputSpec(**pre.input_spec())
    out = OutputSpec(data.task, encoder.n_outputs)
    X = torch.from_numpy(pre.transform(X_raw, Notes(live=False)))
    y = torch.from_numpy(encoder.transform(y_raw))
    return Workload(name, settings, create(name, spec, out, **settings), spec, out, X, y,
                    source_name(source))


def run_workload(run_dir: Path, source: Any, n_rows: int, seed: int) -> Workload:
    predictor = Predictor.load(run_dir)
    arch = predictor.architecture
    spec, out = InputSpec.from_dict(arch["input_spec"]), OutputSpec(**arch["output_spec"])
    generator = torch.Generator().manual_seed(seed)
    if source is not None:
        config = read_json(run_dir / "config.json")
        data = load_source(source, target=config["data"].get("target"), notes=Notes(live=False),
                           modality=spec.modality, held_out=True,
                           **predictor.modality.held_out_reading(predictor.preprocessor))
        raw, label = _take(data.X, np.arange(min(n_rows, len(data)))), source_name(source)
    else:
        raw = predictor.modality.synthetic_rows(predictor.preprocessor, n_rows,
                                                np.random.default_rng(seed))
        label = "synthetic rows through the run's preprocessing"
    X = predictor.features(raw, Notes(live=False))
    X = X[torch.arange(n_rows) % len(X)]
    return Workload(arch["name"], arch["settings"], predictor.model, spec, out, X,
                    synthetic_targets(out, n_rows, generator), label, predictor, raw)


def synthetic_targets(out: OutputSpec, n: int, generator: torch.Generator) -> torch.Tensor:
    if out.task == "classification":
        return torch.randint(out.n_outputs, (n,), generator=generator)
    shape = (n,) if out.n_outputs == 1 else (n, out.n_outputs)
    return torch.randn(shape, generator=generator)


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[rows]
