"""Train: a prepared split (runs/prepare.py) ─► batches ─► model ─► Trainer.fit ─► test metrics
─► run directory (config, weights, preprocessing, history, metrics, report; runs/directory.py).

    train(source, **settings)              prepare, then train_prepared: the whole run
    train_prepared(prepared, **settings)   one model on an already prepared split (compare, advise)
    fit_prepared(prepared, cfg, …)         the training alone → (Predictor, TrainState), no report
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.anomaly.checks import anomaly_extras
from deepfit.checks.before_training import (
    check_batch_size,
)
from deepfit.checks.useless import run_checklist
from deepfit.config import UNSUPERVISED, DataConfig, RunConfig, field_names, split_settings
from deepfit.core import timings
from deepfit.core.io import (
    default_run_dir,
    load_foreign_weights,
    new_run_dir,
    write_json,
)
from deepfit.core.notes import Notes
from deepfit.errors import SettingsError, StorageError, TrainingFailed
from deepfit.lifecycle import ddp
from deepfit.lifecycle.directory import config_record, save_run
from deepfit.lifecycle.fit import _model_findings, _threads, fit_prepared, resolve_device
from deepfit.lifecycle.lr_auto import auto_lr
from deepfit.lifecycle.predictor import Predictor
from deepfit.lifecycle.prepare import (
    Prepared,
    act_on_findings,
    check_monitor,
    choose_model,
    imbalance_of,
    prepare_config,
)
from deepfit.lifecycle.resume import CHECKPOINTS, resume_checkpoint, resume_settings
from deepfit.lifecycle.seen_rows import save_seen_rows
from deepfit.modalities import get_modality
from deepfit.modalities.base import check_model_settings
from deepfit.models import check_task, resolve_settings
from deepfit.models.transfer import check_weights
from deepfit.training.callbacks import (
    Callback,
)
from deepfit.training.callbacks.loggers import LoggerCallback
from deepfit.training.checkpoint import complete_checkpoints
from deepfit.training.distributed import (
    Distributed,
    check_world_size,
    init_from_env,
)
from deepfit.training.finetune import transfer_record
from deepfit.training.loggers import check_loggers
from deepfit.training.optim import fine_tuning
from deepfit.training.signals import interrupt_on_signals
from deepfit.training.threads import ThreadChoice, apply_threads
from deepfit.training.trainer import TrainingInterrupted


@dataclass
class Run:
    """A finished run: where it was saved, what it measured, and its predictor."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, float]]
    predictor: Predictor
    notes: Notes = field(default_factory=Notes)

    def predict(self, X: Any) -> np.ndarray:
        return self.predictor.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.predictor.predict_proba(X)


def train(source: Any = None, y: Any = None, *, out: str | Path | None = None,
          resume: str | Path | None = None, **settings: Any) -> Run:
    """Train, validate, evaluate and save a model. `source` is a bundled dataset name, a file
    path, a DataFrame (with `target=`), or a feature array with `y=`. With `resume=RUN_DIR`,
    continue that run from its last checkpoint (the source may then be left out).
    Raises DeepfitError subclasses for bad data or settings, before anything is written."""
    if resume is not None:
        source, settings = resume_settings(Path(resume), source, settings)
    cfg = split_settings(settings)
    if cfg.model.name is not None:  # bad model settings stop the run before the data are read
        if cfg.data.task is not None:  # an autoencoder for anomaly detection, a head for the rest
            check_task(cfg.model.name, cfg.data.task)
        resolved = resolve_settings(cfg.model.name, cfg.model.settings)
        if not (cfg.train.weights and Path(cfg.train.weights).is_dir()):  # a run's: its own
            check_model_settings(cfg.model.name, resolved)
    # so do weights that are not there, and a transfer:<name> model without any
    check_weights(cfg.model.name, cfg.train.weights, cfg.train.from_scratch)
    check_loggers(cfg.train.log)  # a tracker's missing package: named before any work
    notes = Notes(live=False)  # printed once the inputs are known to be good
    dist = init_from_env(cfg.train.device)  # under torchrun: this process's place; else None
    try:
        with (timings.current() or timings.Timings()).active():  # stage by stage: config.json "timings"
            prepared = prepare_config(source, y, cfg, notes)
            return _train_run(prepared, cfg, notes, out=out, resume=resume, dist=dist)
    finally:
        if dist is not None:
            dist.close()


def train_prepared(prepared: Prepared, *, out: str | Path | None = None,
                   callbacks: Sequence[Callback] = (), **settings: Any) -> Run:
    """Train one model on a split prepared once (runs/prepare.py: `prepare`), and save its run
    directory as `train` does. `settings` are the model (`model=` and its settings) and the
    training settings of this run; the data settings are the prepared ones (giving another
    value is a SettingsError: prepare again). The same prepared split may be trained on any
    number of times, each run getting the decisions of preparing in its own notes. `callbacks`
    are added to the Trainer's own (deepfit tune's pruning, training/callbacks/pruning.py)."""
    base = prepared.config if prepared.config is not None else split_settings({})
    data_keys = set(field_names(DataConfig))
    clash = sorted(k for k, v in settings.items()
                   if k in data_keys and v is not None and getattr(base.data, k) != v)
    if clash:
        raise SettingsError(f"the data were prepared with other {', '.join(clash)}; call "
                            "prepare again with the settings to change")
    trained = dataclasses.asdict(base.train)
    given = {k: v for k, v in settings.items() if k not in data_keys}
    model_given = "model" in given or any(k not in trained for k in given)
    model = {} if model_given else {"model": base.model.name, **base.model.settings}
    cfg = split_settings({**dataclasses.asdict(base.data), **trained, **model, **given})
    if cfg.model.name is not None:
        resolve_settings(cfg.model.name, cfg.model.settings)
    check_weights(cfg.model.name, cfg.train.weights, cfg.train.from_scratch)
    notes = prepared.notes.copy()
    check_monitor(cfg.train.monitor, prepared.data.task)
    run_prepared = prepared
    shaping = ("imbalance", "monitor", "threshold")  # what imbalance_of decided for the prepared split
    if prepared.data.task == "classification" and any(
            getattr(cfg.train, k) != getattr(base.train, k) for k in shaping):
        run_prepared = dataclasses.replace(prepared, imbalance=imbalance_of(prepared, cfg.train, notes))
    check_batch_size(run_prepared, cfg, {cfg.model.name or get_modality(prepared.data.modality).model_for(prepared.data.task):
                                         cfg.model.settings})
    with (timings.current() or timings.Timings()).active():
        return _train_run(run_prepared, cfg, notes, out=out, resume=None, extra=callbacks)


def _train_run(prepared: Prepared, cfg: RunConfig, notes: Notes, *, out: str | Path | None,
               resume: str | Path | None, extra: Sequence[Callback] = (),
               dist: Distributed | None = None) -> Run:
    """The model chosen, checked and trained on `prepared`; the run directory written."""
    cfg = choose_model(cfg, prepared.data, notes)
    model_settings = resolve_settings(cfg.model.name, cfg.model.settings)
    if cfg.train.check and prepared.data.task in UNSUPERVISED:
        notes.decide("--check: the model sanity checks test a prediction head (loss at init, "
                     "overfitting one batch of labels); an autoencoder has none: skipped")
    elif cfg.train.check:
        with timings.stage("model checks"):
            findings = _model_findings(cfg, model_settings, prepared)
        act_on_findings(findings, cfg.train.force, notes, "the model sanity check")
    device = resolve_device(cfg.train.device) if dist is None else dist.device
    checkpoint = (resume_checkpoint(Path(resume), prepared.fingerprint, device, notes)
                  if resume else None)
    check_world_size(checkpoint, dist)  # the processes it was written by, now too
    with timings.stage("threads"):
        threads = _threads(cfg, model_settings, prepared, device, resume)
    apply_threads(threads)
    notes.decide(threads.note())
    if cfg.train.lr == "auto":  # the LR range test first; config.json records the LR found
        with timings.stage("lr range test"):
            cfg = auto_lr(prepared, cfg, model_settings, device, notes)
    initial = load_foreign_weights(cfg.train.init_weights) if cfg.train.init_weights else None
    run_dir = Path(resume) if resume else Path(out) if out else default_run_dir(prepared.data.name)
    if dist is not None:  # rank 0's name (a timestamp); the same split, settings and checkpoint
        run_dir = Path(dist.broadcast(str(run_dir)))
        dist.check_same(ddp.fingerprint_parts(prepared, cfg, threads.threads, checkpoint))
    # From here a signal or a failed write keeps the run directory once it holds a complete
    # checkpoint, and removes it before (a resumed one is never removed). Rank 0 alone writes.
    directory = (new_run_dir(run_dir, resuming=resume is not None, keep_on=(TrainingInterrupted,),
                             drop_on=(TrainingFailed,), resumable=_resumable)
                 if dist is None or dist.is_writer else contextlib.nullcontext(run_dir))
    with interrupt_on_signals(), directory:
        try:
            return _fit_and_save(prepared, cfg, model_settings, notes, device, run_dir, checkpoint,
                                 initial, threads, extra, dist)
        except TrainingInterrupted as exc:
            if not cfg.train.checkpoint:
                raise KeyboardInterrupt from None  # nothing to resume from: the run is dropped
            raise TrainingInterrupted(f"{exc.args[0]}; checkpoint written", run_dir) from None
        except KeyboardInterrupt:
            if _resumable(run_dir):
                raise TrainingInterrupted("interrupted; the run's last complete checkpoint is kept",
                                          run_dir) from None
            raise
        except StorageError as exc:
            kept = (f"{run_dir} and its complete checkpoints are kept: free some space, then "
                    f"resume with deepfit train --resume {run_dir}") if _resumable(run_dir) else (
                    f"nothing resumable had been written, so {run_dir} is removed"
                    if resume is None else f"{run_dir} is left as it was")
            raise StorageError(f"{exc}; {kept}") from None


def _resumable(run_dir: Path) -> bool:
    """Whether `run_dir` holds a complete checkpoint to resume from."""
    return bool(complete_checkpoints(Path(run_dir) / CHECKPOINTS, "last"))


def _fit_and_save(prepared: Prepared, cfg: RunConfig, model_settings: dict, notes: Notes,
                  device: torch.device, run_dir: Path, checkpoint: dict | None, initial: dict | None,
                  threads: ThreadChoice, extra: Sequence[Callback] = (),
                  dist: Distributed | None = None) -> Run:
    """Train in `run_dir`, evaluate on the test split, write the run directory. Under torchrun
    the processes other than rank 0 train and return; rank 0 evaluates the restored weights on
    the test split (every row once, as one process) and writes."""
    writer = dist is None or dist.is_writer
    if writer:
        notes.go_live()
    record = config_record(cfg, model_settings, prepared.source, prepared, device, notes)
    record["train"].update(threads=threads.threads, threads_reason=threads.reason)
    if dist is not None:
        record["train"].update(processes=dist.world_size, backend=dist.backend)
    if checkpoint is None and writer:
        write_json(run_dir / "config.json", record | {"status": "running"})
    trackers = LoggerCallback.for_run(cfg.train, run_dir, record["settings"]) if writer else None
    try:  # --log: TensorBoard, MLflow
        predictor, state = fit_prepared(cfg, model_settings, prepared, device, notes, run_dir,
                                        checkpoint, initial, extra, trackers, dist)
    except BaseException:
        trackers and trackers.close()
        raise
    if not writer:
        return Run(run_dir, record, {}, state.history, predictor, notes)
    if cfg.train.evaluate_test:
        with timings.stage("evaluate"):
            X_test, y_test = prepared.test_frame  # unlabelled anomaly data: no labels to evaluate on
            evaluation = predictor.evaluation(X_test, y_test if prepared.data.target is not None else None)
            metrics = evaluation.metrics
            if predictor.anomaly is not None:  # the training-mean baseline, the worst test samples
                anomaly_extras(predictor, prepared.tensors["train"][0], X_test, evaluation)
            # the test samples the modality's report shows (text: the most confidently wrong)
            examples = predictor.modality.report_examples(predictor.preprocessor, X_test, evaluation,
                                                          list(predictor.classes or []))
            if examples:
                metrics["confused_examples"] = examples
            metrics["checklist"] = run_checklist(prepared, state, metrics, evaluation, notes,
                                                 get_modality(prepared.data.modality))
    else:  # a tuning trial: the best epoch's validation scores, the test split unseen
        evaluation, metrics = None, dict(state.history[state.best_epoch - 1])
        notes.decide("the test split was not evaluated (evaluate_test=False)")
    record |= notes.to_dict()
    record["train"].update(epochs_run=state.epoch, best_epoch=state.best_epoch,
                           stop_reason=state.stop_reason)
    if predictor.anomaly is not None:  # the threshold saved with the model, and said here too
        record["train"]["anomaly"] = predictor.anomaly
    # the architecture built, layer groups, their LRs, the stages (a transfer:<folder> model is
    # pretrained without --weights: training/optim.fine_tuning)
    if cfg.train.weights or fine_tuning(cfg.train, predictor.model):
        record["model"].update(transfer_record(predictor.model, predictor.architecture, cfg.train))
    record["status"] = "finished"  # save_run adds the timings, and writes config.json last
    save_seen_rows(run_dir, prepared.tensors)  # so that evaluating on them is said
    save_run(run_dir, predictor, record, state, metrics,
             evaluation if cfg.train.report and evaluation is not None else None)
    trackers and trackers.finish(run_dir, metrics)  # test metrics, plots, the directory as artifacts
    return Run(run_dir, record, metrics, state.history, predictor, notes)

__all__ = ["Run", "fit_prepared", "resolve_device", "train", "train_prepared"]
