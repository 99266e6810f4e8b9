"""Train: a prepared split (runs/prepare.py) ─► batches ─► model ─► Trainer.fit ─► test metrics
─► run directory (config, weights, preprocessing, history, metrics, report; runs/directory.py).

    train(source, **settings)              prepare, then train_prepared: the whole run
    train_prepared(prepared, **settings)   one model on an already prepared split (compare, advise)
    fit_prepared(prepared, cfg, …)         the training alone → (Predictor, TrainState), no report
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.checks.before_training import (
    check_batch_size,
    check_model_memory,
    has_batchnorm,
)
from deepfit.checks.sanity import model_sanity, sanity_batch
from deepfit.checks.useless import run_checklist
from deepfit.config import DataConfig, RunConfig, field_names, split_settings
from deepfit.core import timings
from deepfit.core.io import (
    default_run_dir,
    load_foreign_weights,
    new_run_dir,
    read_json,
    write_json,
)
from deepfit.core.notes import Notes
from deepfit.data.dataset import Streamed
from deepfit.errors import SettingsError, StorageError, TrainingFailed
from deepfit.evaluation.metrics import metric_fn, mode_of
from deepfit.evaluation.threshold import decision_threshold
from deepfit.lifecycle import ddp
from deepfit.lifecycle.batches import run_batches
from deepfit.lifecycle.directory import config_record, save_run
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
from deepfit.models import resolve_settings
from deepfit.models.transfer import build_model, check_weights
from deepfit.training import imbalance as imb
from deepfit.training.callbacks import (
    Callback,
    Checkpoint,
    DeadReLU,
    EarlyStopping,
    GradientHealth,
    HistoryFile,
    LossNotDecreasing,
    NonFiniteGuard,
    OverfittingGap,
    ProgressBar,
    RestoreBestWeights,
    TimeBudget,
)
from deepfit.training.callbacks.loggers import LoggerCallback
from deepfit.training.checkpoint import complete_checkpoints
from deepfit.training.distributed import (
    Distributed,
    check_world_size,
    init_from_env,
    weights_digest,
)
from deepfit.training.finetune import finetuning_callbacks, transfer_record
from deepfit.training.loggers import check_loggers
from deepfit.training.optim import create_optimizer, create_scheduler
from deepfit.training.signals import interrupt_on_signals, stop_on_signals
from deepfit.training.state import Monitor, TrainState, seed_everything
from deepfit.training.threads import ThreadChoice, apply_threads, choose_threads
from deepfit.training.trainer import Trainer, TrainingInterrupted


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
    check_batch_size(run_prepared, cfg, {cfg.model.name or get_modality(prepared.data.modality).default_model:
                                         cfg.model.settings})
    with (timings.current() or timings.Timings()).active():
        return _train_run(run_prepared, cfg, notes, out=out, resume=None, extra=callbacks)


def _train_run(prepared: Prepared, cfg: RunConfig, notes: Notes, *, out: str | Path | None,
               resume: str | Path | None, extra: Sequence[Callback] = (),
               dist: Distributed | None = None) -> Run:
    """The model chosen, checked and trained on `prepared`; the run directory written."""
    cfg = choose_model(cfg, prepared.data, notes)
    model_settings = resolve_settings(cfg.model.name, cfg.model.settings)
    if cfg.train.check:
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
            evaluation = predictor.evaluation(*prepared.test_frame)
            metrics = evaluation.metrics
            metrics["checklist"] = run_checklist(prepared, state, metrics, evaluation, notes,
                                                 get_modality(prepared.data.modality))
    else:  # a tuning trial: the best epoch's validation scores, the test split unseen
        evaluation, metrics = None, dict(state.history[state.best_epoch - 1])
        notes.decide("the test split was not evaluated (evaluate_test=False)")
    record |= notes.to_dict()
    record["train"].update(epochs_run=state.epoch, best_epoch=state.best_epoch,
                           stop_reason=state.stop_reason)
    if cfg.train.weights:  # the architecture built, layer groups, their LRs, the stages
        record["model"].update(transfer_record(predictor.model, predictor.architecture, cfg.train))
    record["status"] = "finished"  # save_run adds the timings, and writes config.json last
    save_seen_rows(run_dir, prepared.tensors)  # so that evaluating on them is said
    save_run(run_dir, predictor, record, state, metrics,
             evaluation if cfg.train.report and evaluation is not None else None)
    trackers and trackers.finish(run_dir, metrics)  # test metrics, plots, the directory as artifacts
    return Run(run_dir, record, metrics, state.history, predictor, notes)


def _threads(cfg: RunConfig, model_settings: dict, prepared: Prepared, device: torch.device,
             resume: str | Path | None) -> ThreadChoice:
    """The run's CPU threads (training/threads.py): --threads when given; a resumed run keeps
    the count it was started with (another count would change the sums' rounding); else chosen
    from the size of the model's operations, measured on the meta device."""
    if cfg.train.threads is None and resume is not None:
        saved = read_json(Path(resume) / "config.json")["train"]
        if saved.get("threads"):
            return ThreadChoice(int(saved["threads"]), "as the run was started with")
    input_spec, output_spec = prepared.specs()
    try:
        with torch.device("meta"):  # the architecture only: no weights read, no memory
            model = build_model(cfg.model.name, model_settings, input_spec, output_spec, None,
                                Notes())[0]
    except Exception:  # one only --weights defines (`transfer` from a run): not sized
        return choose_threads(None, None, device, cfg.train.threads)  # torch's default, said so
    example = torch.empty((cfg.train.batch_size, *(input_spec.shape or (input_spec.n_features,))),
                          device="meta")
    check_model_memory(model, example, device)  # before any allocation: shapes only
    return choose_threads(model, example, device, cfg.train.threads)


def _model_findings(cfg: RunConfig, model_settings: dict, prepared: Prepared) -> list:
    """The guide's model tests on the model these settings build, before any training."""
    seed_everything(cfg.train.seed)
    input_spec, output_spec = prepared.specs()
    model = build_model(cfg.model.name, model_settings, input_spec, output_spec, cfg.train.weights,
                        Notes())[0]  # with --weights: the pretrained model, its new head
    X, y = prepared.tensors["train"]
    if isinstance(X, Streamed):  # a streamed folder: decode the rows the batch takes
        rows = sanity_batch(torch.arange(len(y)), y, seed=cfg.train.seed)[0].numpy()
        batch = (torch.from_numpy(prepared.preprocessor.transform(X[rows])), y[rows])
    else:
        batch = sanity_batch(X, y, seed=cfg.train.seed)
    return model_sanity(model, input_spec, output_spec, batch, name=cfg.model.name)


def fit_prepared(cfg: RunConfig, model_settings: dict, prepared: Prepared, device: torch.device,
         notes: Notes, run_dir: Path, checkpoint: dict | None,
         initial: dict | None = None, extra: Sequence[Callback] = (), trackers: Any = None,
         dist: Distributed | None = None) -> tuple[Predictor, TrainState]:
    """Train the model `cfg` names on `prepared`'s training split, with early stopping on its
    validation split and the best weights restored; checkpoints go to `run_dir`/checkpoints;
    `trackers` (callbacks/loggers.py) get the settings and each epoch's history row.
    → the Predictor (model + the prepared preprocessing) and the final TrainState."""
    t, task = cfg.train, prepared.data.task
    seed_everything(t.seed)
    input_spec, output_spec = prepared.specs()
    # with --weights: pretrained, a new head (models/transfer.py); the name and settings rebuild it
    model, name, model_settings = build_model(cfg.model.name, model_settings, input_spec,
                                              output_spec, t.weights, notes)
    if initial is not None and checkpoint is None:
        _load_initial_weights(model, initial, t.init_weights)
        notes.decide(f"initial weights from {t.init_weights}")
    if t.from_scratch:
        notes.decide(f"{name} starts from random weights, as asked (--weights none)"
                     if name.startswith("transfer:") else f"--weights none changes nothing: {name} "
                     "starts from random weights anyway (only transfer:<name> models are pretrained)")
    if dist is not None:  # --sync-bn; each process's own dropout stream from here
        model = ddp.prepare_model(model, dist, t.sync_bn, t.seed, notes)
    train, val = run_batches(prepared, t, device, notes, drop_single=has_batchnorm(model))
    if dist is not None:
        ddp.shard(train, val, dist, t.batch_size, notes)
    if t.precision == "fp16" and device.type == "cpu":
        notes.warn("fp16 on the CPU works (autocast with a GradScaler) but is slow there and "
                   "meant for GPUs; the CPU's reduced precision is bf16")
    monitor = Monitor(t.monitor, mode_of(t.monitor), t.min_delta)
    if get_modality(input_spec.modality).channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(model.to(device), t, device)
    scheduler, interval = create_scheduler(optimizer, t, len(train), monitor.mode)
    augment = get_modality(input_spec.modality).augment(cfg.data, prepared.preprocessor, notes)
    finetuning = finetuning_callbacks(cfg, model, notes)
    if dist is not None and finetuning:  # DDP fixes its parameters when it wraps the model
        raise SettingsError("transfer learning's staged unfreezing (--weights) does not run under "
                            "torchrun yet: train it in one process")
    # order matters at the end: the best weights are back before DeadReLU looks at the units;
    # GradientHealth first: its columns are in the logs before anything saves them
    callbacks = [GradientHealth(), *finetuning, EarlyStopping(t.patience), RestoreBestWeights(), NonFiniteGuard(),
                 LossNotDecreasing(), OverfittingGap(), DeadReLU()]
    callbacks += list(extra)  # before the checkpoint, which saves their state
    if t.max_seconds is not None:  # before the checkpoint, which saves the seconds spent
        callbacks.append(TimeBudget(t.max_seconds))
    writer = dist is None or dist.is_writer
    if t.checkpoint:  # under torchrun by steps only: a clock would differ between the processes
        callbacks.append(Checkpoint(run_dir / CHECKPOINTS, every_steps=t.checkpoint_every_steps,
                                    every_seconds=t.checkpoint_every_seconds if dist is None else None,
                                    writer=writer))
    loss = imb.loss_for(task, prepared.imbalance, t.focal_gamma)  # class weights or focal, as chosen
    trainer = Trainer(
        model, loss, optimizer, epochs=t.epochs, device=device,
        scheduler=scheduler, scheduler_interval=interval, clip_norm=t.clip_norm,
        precision=t.precision, compile=t.compile, monitor=monitor,
        metrics=metric_fn(task, prepared.target.mean, prepared.target.std),
        # last: the history row and the progress line hold the columns the others add to the logs
        callbacks=[*callbacks, *([trackers] if trackers else []),
                   *([HistoryFile(run_dir / "history.csv"), ProgressBar(t.progress, t.log_every)]
                     if writer else [])],
        augment=augment, distributed=dist,
    )
    if checkpoint is not None:
        trainer.load_checkpoint_state(checkpoint)
        notes.decide(f"resumed at epoch {trainer.state.epoch + 1}, batch "
                     f"{trainer.state.batch_in_epoch} (step {trainer.state.step} in all)")
    if dist is not None:
        dist.probe(pid=os.getpid())
    with stop_on_signals(trainer), timings.stage("steps"):
        state = trainer.fit(train, val)
    if dist is not None:  # tests: DEEPFIT_DDP_PROBE; the best weights, restored
        dist.probe(weights=weights_digest(model), step=state.step)
    if state.stop_reason not in state.warnings:  # a guard's stop is said once, as its warning
        notes.decide(state.stop_reason or (f"trained for all {t.epochs:,} epochs" if t.epochs != 1
                                           else "trained for the one epoch asked"))
    for warning in state.warnings:
        notes.warnings.append(warning)  # logged already, when the guard raised it
    if state.best_score is None:
        raise TrainingFailed(f"training produced no usable epoch: {state.stop_reason}")
    notes.decide(f"restored the weights of epoch {state.best_epoch} (best {t.monitor} = {state.best_score:.4g})")
    architecture = {"name": name, "settings": model_settings,
                    "input_spec": input_spec.to_dict(), "output_spec": output_spec.to_dict()}
    threshold = None
    if t.threshold is not None and prepared.target.n_outputs == 2:  # binary: on P(classes[1])
        outputs, target = trainer.predict(val)
        threshold = decision_threshold(t.threshold, outputs, target, prepared.target.classes, notes)
    return Predictor(model, prepared.preprocessor, prepared.target, architecture, threshold,
                     prepared.data.series), state


def _load_initial_weights(model: torch.nn.Module, weights: dict, path: str) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise SettingsError(f"{path} does not fit the model: {first}") from None


def resolve_device(name: str) -> torch.device:
    mps = getattr(torch.backends, "mps", None)
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))
    if not available[name]:
        raise SettingsError(f"device {name!r} is not available on this machine")
    return torch.device(name)


__all__ = ["Run", "fit_prepared", "resolve_device", "train", "train_prepared"]
