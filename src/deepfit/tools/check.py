"""`deepfit check`: audit the data and sanity-check the model a run would build, before training.
Every note that reading the data and fitting the preprocessing make is a finding too ("reading":
decisions as infos, warnings as warnings), so a check shows how training would read the data.

    findings = deepfit.check("data.csv", target="price")      # list[Finding]
    [f for f in findings if f.severity == "error"]

The same pieces as training are used (load_source with training's reading rule, split_indices or
split_by_time, the modality's preprocessor, TargetEncoder, models.create), so the checks see the
very splits and model a `deepfit train` with these settings would use, for tables, images and
sequences alike (the audit items that apply to each: checks/audit.py). `audit_data` and `model_sanity` can be called on their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit.checks.audit import audit_data
from deepfit.checks.before_training import batch_findings, held_out_findings
from deepfit.checks.findings import Finding, by_severity, from_notes
from deepfit.checks.sanity import model_sanity, sanity_batch
from deepfit.config import UNSUPERVISED, split_settings
from deepfit.core.notes import Notes
from deepfit.data.dataset import Dataset, written_numbers
from deepfit.data.split import Splits, split_data
from deepfit.data.targets import TargetEncoder
from deepfit.errors import DataFormatError, ImageDecodeError, SettingsError, SplitError
from deepfit.lifecycle.prepare import reading_settings
from deepfit.modalities import get_modality, load_source
from deepfit.models import InputSpec, OutputSpec, create, resolve_settings
from deepfit.models.transfer import check_weights


def check(source: Any = None, y: Any = None, *, target: str | None = None, model: str | None = None,
          models: list[str] | str | None = None, **settings: Any) -> list[Finding]:
    """Findings about the data and the models these settings would train, errors first.
    `models` (a list, or names separated by commas) checks several models (default: the data's
    default model, mlp for tables, cnn1d for sequences, cnn for images); settings that are the
    training run's (val_size, seed, window, horizon, modality, image_size, hidden, …) are taken as
    `train` takes them, so the data are read and split as training would read and split them."""
    names_given = _model_names(model, models) if (model or models) else None
    cfg = split_settings({**settings, "target": target, "model": names_given[0] if names_given else None})
    for name in names_given or []:  # a transfer model without weights, as train refuses it
        check_weights(name, cfg.train.weights, cfg.train.from_scratch)
    notes = Notes(live=False)  # the decisions of loading are not printed by a check
    data = load_source(source, target=cfg.data.target, task=cfg.data.task, y=y, notes=notes,
                       **reading_settings(cfg))
    per_model = _model_settings(names_given or [get_modality(data.modality).model_for(data.task)], cfg.model.settings)
    test_data = None
    if cfg.data.test is not None:
        test_data = load_source(cfg.data.test, target=data.target, task=data.task, notes=notes,
                                held_out=True, written=written_numbers(data), **reading_settings(cfg))
    findings, splits = _split(data, cfg, test_data)
    findings += audit_data(data, splits, test_data, seed=cfg.train.seed)
    rows = splits.train if splits is not None else np.arange(len(data))
    X_train, y_train = _take(data.X, rows), data.y.iloc[rows]
    try:
        pre = get_modality(data.modality).create_preprocessor(data).fit(X_train, notes)
    except ImageDecodeError as exc:  # a streamed file that fails only when decoded (named above)
        pre = None
        findings.append(Finding("undecodable", "error", f"training would stop: {exc}",
                                "", 1.0, "remove or repair the files unreadable_files names; the "
                                "model checks run once the folder decodes"))
    except DataFormatError as exc:  # data an error finding already names (NaN images, say)
        if not any(f.severity == "error" for f in findings):
            raise
        pre = None
        findings.append(Finding("model_checks", "info", f"the model checks were not run: {exc}",
                                "", 0.0, "fix the error-level findings first"))
    # how the data were read and prepared (decimal commas, names stripped, task, encodings …);
    # a note an audit finding restates with its subject (unreadable files, named) is shown once
    restated = [f.message for f in findings]
    findings = [f for f in from_notes(notes.decisions, notes.warnings)
                if not any(m.startswith(f.message) for m in restated)] + findings
    if pre is None:
        return by_severity(findings)
    findings += get_modality(data.modality).audit_fitted(pre, data, splits, test_data)  # text: unknown tokens
    encoder = TargetEncoder(data.task).fit(y_train)
    # the batch's rows first, then only they are transformed (a large image set stays as it is)
    picked = sanity_batch(torch.arange(len(rows)), torch.arange(len(rows)), seed=cfg.train.seed)[0].numpy()
    batch = (torch.from_numpy(pre.transform(_take(X_train, picked), notes)),
             torch.from_numpy(encoder.transform(y_train.iloc[picked])))
    if test_data is not None:  # what training would refuse before its first step
        findings += held_out_findings(data, test_data, pre, encoder, str(cfg.data.test))
    input_spec = InputSpec(**pre.input_spec())
    output_spec = OutputSpec(data.task, encoder.n_outputs)
    for name, model_settings in per_model.items():
        with torch.random.fork_rng(devices=[]):  # the initial weights training would start from
            torch.manual_seed(cfg.train.seed)
            built = create(name, input_spec, output_spec, **model_settings)
        if data.task not in UNSUPERVISED:  # they test a prediction head, which an autoencoder lacks
            findings += model_sanity(built, input_spec, output_spec, batch, name=name,
                                     seed=cfg.train.seed)
        findings += batch_findings(built, name, model_settings, cfg.train.batch_size, len(rows))
    return by_severity(findings)


def _split(data: Dataset, cfg: Any, test_data: Dataset | None) -> tuple[list[Finding], Splits | None]:
    """The splits training would use (by time for a series' windows), or a finding of why not."""
    try:
        return [], split_data(data, cfg.data.val_size, cfg.data.test_size, cfg.train.seed,
                              test_given=test_data is not None)
    except SplitError as exc:
        return [Finding("split", "error", str(exc), "", float(len(data)),
                        "collect more rows, or lower --val-size / --test-size")], None


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


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


__all__ = ["check"]
