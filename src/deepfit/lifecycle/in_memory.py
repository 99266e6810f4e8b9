"""Training on data held in memory with no test split: what an estimator's `fit(X, y)` does
(deepfit/sklearn). The steps are `train`'s (runs/train.py): read (arrays or a DataFrame, the
table reader cleaning categories and missing values), a seeded stratified validation split, the
data audit, preprocessing fitted on the training rows, imbalance handling, the model sanity
check if asked, `fit_prepared` (early stopping, the best weights restored). No test split is
carved: the caller evaluates (cross-validation, a held-out set of their own). Nothing is written
outside a temporary directory, removed before returning; `save_fitted` writes a run directory.

    fitted = fit_in_memory(X, y, task="classification", epochs=20, seed=0)
    fitted.predictor.predict(X_new)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit.checks.audit import audit_data
from deepfit.config import split_settings
from deepfit.core.io import new_run_dir, write_json, write_text
from deepfit.core.notes import Notes
from deepfit.data.split import Splits, split_indices
from deepfit.errors import SplitError
from deepfit.evaluation.full_metrics import evaluate_outputs
from deepfit.lifecycle.directory import config_record
from deepfit.lifecycle.fit import _model_findings, _threads, fit_prepared, resolve_device
from deepfit.lifecycle.predictor import Predictor
from deepfit.lifecycle.prepare import (
    _encode,
    act_on_findings,
    check_monitor,
    choose_model,
    imbalance_of,
)
from deepfit.modalities import load_source
from deepfit.models import resolve_settings
from deepfit.training.threads import apply_threads


@dataclass
class Fitted:
    """A model trained in memory: its predictor, its config record (as config.json holds it),
    its history (one row per epoch), per-epoch gradient norms, and the metrics of the
    validation split (its rows were used for early stopping: optimistic, said in the record)."""

    predictor: Predictor
    record: dict[str, Any]
    history: list[dict[str, float]]
    grad_norms: list[dict[str, float]]
    metrics: dict[str, Any]
    notes: Notes
    path: Path | None = None  # the run directory once saved (save_fitted); None: in memory


def fit_in_memory(X: Any, y: Any, *, task: str, **settings: Any) -> Fitted:
    """Train on features `X` (an array [N, F] or a DataFrame) and target `y` ([N]), with the
    settings `deepfit.train` takes (`test_size` is not used: no test split). When the rows are
    too few for a stratified validation split (fewer than 2 rows of a class, say), the model
    is validated on its training rows, so early stopping follows the training loss: a warning
    says so. Every audit finding is a warning in `notes` (error-level ones do not stop the fit:
    the caller decides; deepfit/sklearn turns them into Python warnings).
    Raises DeepfitError subclasses for bad data or settings."""
    cfg = split_settings({**settings, "task": task, "force": True, "checkpoint": False,
                          "report": False})
    notes = Notes(live=False)
    data = load_source(X, y=y, task=task, notes=notes)
    check_monitor(cfg.train.monitor, data.task)
    splits = _split(data, cfg.data.val_size, cfg.train.seed, notes)
    act_on_findings(audit_data(data, splits, seed=cfg.train.seed), True, notes, "the data audit")
    prepared = _encode(data, splits, None, notes)
    if not len(splits.val):  # validated on the training rows (see the docstring)
        prepared.tensors["val"] = prepared.tensors["train"]
    if data.task == "classification":
        prepared.imbalance = imbalance_of(prepared, cfg.train, notes)
    prepared.config, prepared.source, prepared.y, prepared.notes = cfg, None, None, notes
    cfg = choose_model(cfg, data, notes)
    model_settings = resolve_settings(cfg.model.name, cfg.model.settings)
    if cfg.train.check:
        act_on_findings(_model_findings(cfg, model_settings, prepared), True, notes,
                        "the model sanity check")
    device = resolve_device(cfg.train.device)
    before = torch.get_num_threads()
    threads = _threads(cfg, model_settings, prepared, device, None)
    apply_threads(threads)  # for this fit only: the caller's count is put back after it
    notes.decide(threads.note())
    try:
        with tempfile.TemporaryDirectory(prefix="deepfit-fit-") as tmp:  # history.csv while training
            predictor, state = fit_prepared(cfg, model_settings, prepared, device, notes, Path(tmp),
                                            None)
    finally:
        torch.set_num_threads(before)
    record = config_record(cfg, model_settings, None, prepared, device, notes)
    record["train"].update(threads=threads.threads, threads_reason=threads.reason,
                           epochs_run=state.epoch, best_epoch=state.best_epoch,
                           stop_reason=state.stop_reason)
    val_X, val_y = prepared.tensors["val"]
    with torch.no_grad():
        outputs = torch.cat([predictor.model.eval()(val_X[i:i + 4096].to(predictor.device)).float().cpu()
                             for i in range(0, len(val_X), 4096)])
    metrics = evaluate_outputs(data.task, outputs, val_y,
                               classes=predictor.classes, threshold=predictor.threshold,
                               target_mean=predictor.target.mean,
                               target_std=predictor.target.std).metrics
    metrics["evaluated_on"] = "validation" if len(splits.val) else "training"
    record |= notes.to_dict()
    record["status"] = "finished"
    return Fitted(predictor, record, list(state.history), list(state.grad_norms), metrics, notes)


def _split(data: Any, val_size: float, seed: int, notes: Notes) -> Splits:
    """A seeded (stratified) validation split, or none when the rows are too few for one."""
    try:
        splits = split_indices(data.y, data.task, val_size, 0.0, seed)
    except SplitError as exc:
        notes.warn(f"no validation split ({exc}); the model is validated on its {len(data)} "
                   "training rows, so early stopping follows the training loss, not overfitting")
        return Splits(np.arange(len(data)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    notes.decide(f"splits: {len(splits.train)} train, {len(splits.val)} validation rows, no test "
                 "split (the data given to fit)")
    return splits


def save_fitted(run_dir: str | Path, fitted: Fitted, extra: dict[str, Any] | None = None) -> Path:
    """Write `fitted` as a run directory (config.json, model.safetensors + model.json,
    history.csv, gradients.csv, metrics.json: those of the validation split), which
    `deepfit.load`, `deepfit predict` and `deepfit report` read. `extra` goes into config.json.
    The directory must not exist yet; a failed write removes it (core/io.py: new_run_dir)."""
    run_dir = Path(run_dir)
    with new_run_dir(run_dir):
        fitted.predictor.save(run_dir)
        write_text(run_dir / "history.csv", pd.DataFrame(fitted.history).to_csv(index=False))
        if fitted.grad_norms:
            write_text(run_dir / "gradients.csv", pd.DataFrame(fitted.grad_norms).to_csv(index=False))
        write_json(run_dir / "metrics.json", fitted.metrics)
        record = fitted.record | (extra or {})
        write_json(run_dir / "config.json", record)  # last: a run with status finished is complete
    fitted.path = run_dir
    return run_dir


__all__ = ["Fitted", "fit_in_memory", "save_fitted"]
