"""Prepare the data once: source ─► Dataset ─► splits ─► the data audit ─► preprocessing and
target encoding fitted on the training rows ─► the checks that need no training.

    prepared = prepare("data.csv", target="price", seed=1)      # deepfit.lifecycle.prepare
    run_a = train_prepared(prepared, model="mlp")               # runs/train.py: the same split,
    run_b = train_prepared(prepared, model="resmlp")            # the same encoded rows

`train` is `prepare` then `train_prepared`; compare, advise (and the later tune and scikit-learn
estimators) prepare once and train several models on the result.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit.anomaly.checks import skipped_note
from deepfit.checks.audit import audit_data
from deepfit.checks.before_training import check_batch_size, held_out_findings, raise_errors
from deepfit.config import UNSUPERVISED, RunConfig, split_settings
from deepfit.core.notes import Notes
from deepfit.core.timings import stage
from deepfit.data.dataset import Dataset, Streamed, written_numbers
from deepfit.data.split import Splits, split_data
from deepfit.data.targets import TargetEncoder
from deepfit.errors import CheckFailed, PredictInputError, SettingsError
from deepfit.evaluation.metrics import monitor_names
from deepfit.modalities import get_modality, load_source
from deepfit.models import InputSpec, OutputSpec, modalities
from deepfit.training import imbalance as imb


@dataclass
class Prepared:
    """The splits, encoded: preprocessing and target encoding fitted on the training rows only."""

    data: Dataset
    preprocessor: Any  # a registered modality's preprocessor (modalities/)
    target: TargetEncoder
    # split name → (X, y); X: encoded features, or Streamed samples (a folder of images: decoded and
    # standardised batch by batch, modalities/image/files.py)
    tensors: dict[str, tuple[Any, torch.Tensor]]
    test_frame: tuple[pd.DataFrame, pd.Series]
    sizes: dict[str, int]
    fingerprint: str  # of the data, so a resume can tell they are the same
    imbalance: imb.Imbalance | None = None  # classification: counts, ratio, method chosen
    config: RunConfig | None = None  # the settings it was prepared with
    source: Any = None  # what was read (a path, a name, a DataFrame or an array)
    y: Any = None  # the separate target given with arrays, if any
    notes: Notes = field(default_factory=Notes)  # the decisions and warnings of preparing
    splits: Splits | None = None  # the rows of `data` in each split (raw baselines: TF-IDF)

    def specs(self) -> tuple[InputSpec, OutputSpec]:
        """What the model receives and what it must output, from the fitted encoders."""
        return (InputSpec(**self.preprocessor.input_spec()),
                OutputSpec(self.data.task, self.target.n_outputs))



def prepare_config(source: Any, y: Any, cfg: RunConfig, notes: Notes,
                   models: dict[str, dict] | None = None) -> Prepared:
    """Load, split, and fit the preprocessing on the training rows alone; then check what can be
    known before training (checks/before_training.py): the --test file against the training
    data, and the batch size against the `models` to be trained (name → settings; default: the
    run's model, or the data's default one). Every entry (train, compare, advise) passes here."""
    with stage("read"):
        data = load_source(source, target=cfg.data.target, task=cfg.data.task, y=y, notes=notes,
                           **reading_settings(cfg))
    check_monitor(cfg.train.monitor, data.task)
    test_data = None
    if cfg.data.test is not None:
        test_notes = Notes(live=False)  # its reading's decisions are training's; warnings kept
        with stage("read"):
            test_data = load_source(cfg.data.test, target=data.target, task=data.task,
                                    notes=test_notes, held_out=True, written=written_numbers(data),
                                    **reading_settings(cfg))
        for warning in test_notes.warnings:
            notes.warn(f"--test {cfg.data.test}: {warning}")
        if cfg.data.test_size:
            notes.decide(f"test split: the rows of {cfg.data.test} (--test-size not used)")
    elif data.test is not None:  # an official test set (torchvision's named sets)
        test_data = data.test
        notes.decide(f"test split: the {len(test_data)} rows of {data.name}'s own test set "
                     "(--test-size not used); validation carved from its training rows")
    splits = split_data(data, cfg.data.val_size, cfg.data.test_size, cfg.train.seed, notes,
                        test_given=test_data is not None)
    with stage("audit"):
        findings = audit_data(data, splits, test_data, seed=cfg.train.seed)
    act_on_findings(findings, cfg.train.force, notes, "the data audit")
    with stage("preprocess"):
        prepared = _encode(data, splits, test_data, notes)
        # the audit items that need the fitted preprocessor (text: unknown tokens); recorded,
        # not said again: transforming the held-out rows warned already where it matters
        notes.findings.extend(f.to_dict() for f in get_modality(data.modality).audit_fitted(
            prepared.preprocessor, data, splits, test_data))
    if data.task == "classification":
        prepared.imbalance = imbalance_of(prepared, cfg.train, notes)
    elif data.task in UNSUPERVISED:
        skipped_note(cfg.train, notes)
    if test_data is not None and cfg.data.test is not None:
        raise_errors(held_out_findings(data, test_data, prepared.preprocessor, prepared.target,
                                       str(cfg.data.test)), PredictInputError)
    check_batch_size(prepared, cfg, models or {cfg.model.name or get_modality(data.modality).model_for(data.task):
                                               cfg.model.settings})
    prepared.config, prepared.source, prepared.y, prepared.notes = cfg, source, y, notes
    return prepared



def reading_settings(cfg: RunConfig) -> dict[str, Any]:
    """How to read the source beyond its target: a time series' windows, and the modality asked
    for (--modality, or the one kind of data the named model takes); the modality asked for is checked against the registry here."""
    modality = cfg.data.modality
    if modality is None and cfg.model.name is not None and len(modalities(cfg.model.name)) == 1:
        modality = modalities(cfg.model.name)[0]
    if modality is not None:
        get_modality(modality)  # a SettingsError before anything is read
    return {"window": cfg.data.window, "horizon": cfg.data.horizon, "modality": modality,
            "image_size": cfg.data.image_size, "data_root": cfg.data.data_root,
            "download": cfg.data.download, "loader": cfg.train.loader,
            "cache_limit_mb": cfg.data.cache_limit_mb, "options": {"text": text_options(cfg)}}


def text_options(cfg: RunConfig) -> dict[str, Any]:
    """The text reader's settings (modalities/text/reader.py): the columns named or detection
    off, the tokenizer's, and the checkpoint of a `transfer:PATH` model, whose own tokenizer
    the text is read with."""
    name = cfg.model.name or ""
    pretrained = name.partition(":")[2] if name.startswith("transfer:") else ""
    return {"columns": cfg.data.text_columns, "detect": cfg.data.text,
            "vocab_size": cfg.data.vocab_size, "max_length": cfg.data.max_length,
            "tokenizer": cfg.data.tokenizer,
            "pretrained": pretrained if pretrained and Path(pretrained).is_dir() else None}



def check_monitor(monitor: str, task: str) -> None:
    valid = monitor_names(task)
    if monitor not in valid:
        raise SettingsError(f"cannot monitor {monitor!r} for {task}; choose one of {', '.join(valid)}")



def act_on_findings(findings: list, force: bool, notes: Notes, where: str) -> None:
    """Record every finding; warnings are said; an error stops the run unless --force."""
    notes.findings.extend(f.to_dict() for f in findings)
    errors = [f for f in findings if f.severity == "error"]
    for f in findings:
        if f.severity == "warning" or (f.severity == "error" and force):
            notes.warn(f"{f.check}: {f.message}")
    if errors and not force:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CheckFailed(f"{where} found an error{more}: {first.message}; {first.fix}. "
                          "Run `deepfit check` for every finding, or add --force to train anyway")



def imbalance_of(prepared: Prepared, t: Any, notes: Notes) -> imb.Imbalance:
    """Measure the class imbalance of the training split and choose how to handle it."""
    found, why = imb.resolve(t.imbalance, prepared.tensors["train"][1], prepared.target.n_outputs)
    notes.decide(why)
    if found.ratio > imb.AUTO_RATIO and t.monitor in ("val_loss", "val_accuracy"):
        notes.warn(f"imbalanced classes ({found.ratio:.1f}:1): accuracy hides a poor minority class; "
                   "--monitor val_f1_macro or val_balanced_accuracy follows it")
    if t.threshold is not None and prepared.target.n_outputs != 2:
        notes.warn("--threshold applies to binary classification only; ignored")
    return found



def _encode(data: Dataset, splits: Splits, test_data: Dataset | None, notes: Notes) -> Prepared:
    X_train, y_train = take(data.X, splits.train), data.y.iloc[splits.train]
    pre = get_modality(data.modality).create_preprocessor(data).fit(X_train, notes)
    target = TargetEncoder(data.task).fit(y_train)
    if data.task == "classification":
        counts = y_train.value_counts()
        notes.decide(f"{len(target.classes)} classes; training split counts: "
                     + ", ".join(f"{k}={v}" for k, v in counts.sort_index().items()))
    tensors = {
        name: (_features(pre, take(data.X, idx), notes),
               torch.from_numpy(target.transform(data.y.iloc[idx])))
        for name, idx in (("train", splits.train), ("val", splits.val))
    }
    if test_data is not None:
        test_frame = (test_data.X, test_data.y)
    else:
        test_frame = (take(data.X, splits.test), data.y.iloc[splits.test])
    sizes = {"train": len(splits.train), "val": len(splits.val), "test": len(test_frame[0])}
    notes.decide(f"splits: {sizes['train']} train, {sizes['val']} validation, {sizes['test']} test rows")
    return Prepared(data, pre, target, tensors, test_frame, sizes, _fingerprint(data), splits=splits)



def _features(pre: Any, X: Any, notes: Notes) -> Any:
    """The model's inputs: encoded now, or, for a streamed folder, as it is (its batches are
    decoded in the DataLoader's workers and standardised on the device)."""
    if isinstance(X, Streamed):
        return X
    return torch.from_numpy(pre.transform(X, notes))



def take(X: Any, rows: np.ndarray) -> Any:
    """Rows of a DataFrame (tabular) or of an array (images, sequences)."""
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]



def _fingerprint(data: Dataset) -> str:
    digest = hashlib.sha256()
    if isinstance(data.X, pd.DataFrame):
        digest.update(pd.util.hash_pandas_object(data.X, index=False).to_numpy().tobytes())
    elif isinstance(data.X, Streamed):  # streamed: the files' names and sizes
        digest.update(data.X.fingerprint())
    else:
        digest.update(np.ascontiguousarray(data.X).tobytes())
    digest.update(pd.util.hash_pandas_object(data.y.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()



def choose_model(cfg: RunConfig, data: Dataset, notes: Notes) -> RunConfig:
    """The model named, or the default for the data's modality (its Modality's default_model)."""
    if cfg.model.name is not None:
        return cfg
    name = get_modality(data.modality).model_for(data.task)
    task = " anomaly detection on" if data.task in UNSUPERVISED else ""
    notes.decide(f"model: {name}, the default for{task} {data.modality} data (--model to choose another)")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name))


def prepare(source: Any = None, y: Any = None, *, models: dict[str, dict] | list[str] | None = None,
            **settings: Any) -> Prepared:
    """Read `source` (a bundled name, a file or folder, a DataFrame with `target=`, or arrays with
    `y=`), split it, audit it and fit the preprocessing on its training rows, with the settings
    `deepfit.train` takes (data settings, and the training settings that shape the data: seed,
    imbalance, monitor, batch size). `models`: the models that will be trained on it (names, or
    name → settings), so a batch size one of them cannot take fails here, before any training.

    Returns a `Prepared`; pass it to `train_prepared` (runs/train.py) once per model.
    Raises DeepfitError subclasses for bad data or settings (nothing is written)."""
    if isinstance(models, (list, tuple)):
        models = {name: {} for name in models}
    cfg = split_settings(settings)
    notes = Notes(live=False)
    return prepare_config(source, y, cfg, notes, models)


__all__ = ["Prepared", "act_on_findings", "check_monitor", "choose_model", "imbalance_of", "prepare",
           "prepare_config", "reading_settings", "take"]
