"""`deepfit check`: audit the data and sanity-check the model a run would build, before training.

    findings = deepfit.check("data.csv", target="price")      # list[Finding]
    [f for f in findings if f.severity == "error"]

The same pieces as training are used (load_source, split_indices, Preprocessor, TargetEncoder,
models.create), so the checks see the very splits and model a `deepfit train` with these settings
would use. `audit_data` and `model_sanity` can be called on their own.
"""

from __future__ import annotations

from typing import Any

import torch

from deepfit.checks.audit import audit_data
from deepfit.checks.findings import SEVERITIES, Finding, by_severity, has_errors
from deepfit.checks.sanity import model_sanity, sanity_batch
from deepfit.config import split_settings
from deepfit.data.preprocess import Preprocessor, TargetEncoder
from deepfit.data.sources import load_source
from deepfit.data.split import split_indices
from deepfit.errors import SettingsError, SplitError
from deepfit.models import InputSpec, OutputSpec, create, resolve_settings
from deepfit.notes import Notes


def check(source: Any = None, y: Any = None, *, target: str | None = None, model: str = "mlp",
          models: list[str] | str | None = None, **settings: Any) -> list[Finding]:
    """Findings about the data and the model(s) these settings would train, errors first.
    `models` (a list, or names separated by commas) checks several models; settings that are
    the training run's (val_size, seed, hidden, …) are taken as `train` takes them."""
    model_names = _model_names(model, models)
    cfg = split_settings({**settings, "target": target, "model": model_names[0]})
    per_model = _model_settings(model_names, cfg.model.settings)
    notes = Notes(live=False)  # the decisions of loading are not printed by a check
    data = load_source(source, target=cfg.data.target, task=cfg.data.task, y=y, notes=notes,
                       data_root=cfg.data.data_root, download=cfg.data.download)
    if data.modality != "tabular":
        raise SettingsError(f"deepfit check covers tables so far; {data.modality} data are checked "
                            "by `deepfit train` itself (the audit's row and class checks, --check)")
    test_data = None
    if cfg.data.test is not None:
        test_data = load_source(cfg.data.test, target=data.target, task=data.task, notes=notes,
                                held_out=True)
    findings: list[Finding] = []
    try:
        splits = split_indices(data.y, data.task, cfg.data.val_size,
                               0.0 if test_data is not None else cfg.data.test_size, cfg.train.seed)
        train_rows = splits.train
    except SplitError as exc:
        splits, train_rows = None, slice(None)
        findings.append(Finding("split", "error", str(exc), "", float(len(data)),
                                "collect more rows, or lower --val-size / --test-size"))
    findings += audit_data(data, splits, test_data, seed=cfg.train.seed)
    X_train, y_train = data.X.iloc[train_rows], data.y.iloc[train_rows]
    pre = Preprocessor().fit(X_train, notes)
    encoder = TargetEncoder(data.task).fit(y_train)
    batch = sanity_batch(torch.from_numpy(pre.transform(X_train, notes)),
                         torch.from_numpy(encoder.transform(y_train)), seed=cfg.train.seed)
    input_spec = InputSpec(**pre.input_spec())
    output_spec = OutputSpec(data.task, encoder.n_outputs)
    for name, model_settings in per_model.items():
        with torch.random.fork_rng(devices=[]):  # the initial weights training would start from
            torch.manual_seed(cfg.train.seed)
            built = create(name, input_spec, output_spec, **model_settings)
        findings += model_sanity(built, input_spec, output_spec, batch, name=name,
                                 seed=cfg.train.seed)
    return by_severity(findings)


def _model_names(model: str, models: list[str] | str | None) -> list[str]:
    given = models if models is not None else model
    if isinstance(given, str):
        given = [given]
    out = [n.strip() for item in given for n in str(item).split(",") if n.strip()]
    if not out:
        raise SettingsError("name at least one model to check")
    return list(dict.fromkeys(out))


def _model_settings(model_names: list[str], settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each model's resolved settings. With several models, each takes the settings it knows;
    a setting no model knows is rejected (by the first model's registry entry)."""
    if len(model_names) == 1:
        return {model_names[0]: resolve_settings(model_names[0], settings)}
    known = {name: set(resolve_settings(name, {})) for name in model_names}
    unknown = {k: v for k, v in settings.items() if not any(k in keys for keys in known.values())}
    if unknown:
        resolve_settings(model_names[0], unknown)  # raises SettingsError naming them
    return {name: resolve_settings(name, {k: v for k, v in settings.items() if k in known[name]})
            for name in model_names}


__all__ = ["SEVERITIES", "Finding", "audit_data", "by_severity", "check", "has_errors", "model_sanity",
           "sanity_batch"]
