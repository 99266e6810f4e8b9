"""The Python API: `train`, and (from runs.py) `load`, `evaluate`, `predict`, `report`. The CLI
calls these and nothing else.

train: source ─► Dataset ─► splits ─► Preprocessor.fit(train) ─► batches ─► model ─► Trainer.fit
       ─► test metrics ─► run directory (config, weights, preprocessing, history, metrics)
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

from deepfit.checks.audit import audit_data
from deepfit.checks.before_training import (
    check_batch_size,
    drop_note,
    has_batchnorm,
    held_out_findings,
    raise_errors,
)
from deepfit.checks.sanity import model_sanity, sanity_batch
from deepfit.checks.useless import run_checklist
from deepfit.config import RunConfig, split_settings
from deepfit.data.batches import choose_loader, make_batches
from deepfit.data.image_files import ImageFiles
from deepfit.data.preprocess import TargetEncoder
from deepfit.data.preprocessors import create_preprocessor
from deepfit.data.sequences import split_by_time
from deepfit.data.sources import Dataset, load_source, written_numbers
from deepfit.data.split import Splits, fixed_splits, split_indices
from deepfit.errors import CheckFailed, PredictInputError, SettingsError, TrainingFailed
from deepfit.evaluate.metrics import metric_fn, mode_of, monitor_names
from deepfit.evaluate.threshold import decision_threshold
from deepfit.io import (
    default_run_dir,
    load_foreign_weights,
    new_run_dir,
    write_json,
)
from deepfit.models import (
    InputSpec,
    OutputSpec,
    default_model,
    modalities,
    resolve_settings,
)
from deepfit.models.transfer import build_model, check_weights
from deepfit.notes import Notes
from deepfit.predict import Predictor
from deepfit.resume import CHECKPOINTS, resume_checkpoint, resume_settings
from deepfit.runs import config_record, evaluate, load, predict, report, save_run
from deepfit.train import imbalance as imb
from deepfit.train.callbacks import (
    Checkpoint,
    DeadReLU,
    EarlyStopping,
    GradientHealth,
    LossNotDecreasing,
    NonFiniteGuard,
    OverfittingGap,
    ProgressBar,
    RestoreBestWeights,
    TimeBudget,
)
from deepfit.train.finetune import training_extras, transfer_record
from deepfit.train.optim import create_optimizer, create_scheduler
from deepfit.train.signals import stop_on_signals
from deepfit.train.state import Monitor, TrainState, seed_everything
from deepfit.train.trainer import Trainer, TrainingInterrupted


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


@dataclass
class Prepared:
    """The splits, encoded: preprocessing and target encoding fitted on the training rows only."""

    data: Dataset
    preprocessor: Any  # one of data.preprocessors.PREPROCESSORS
    target: TargetEncoder
    # split name → (X, y); X: encoded features, or ImageFiles (a streamed folder: decoded and
    # standardised batch by batch, data/image_files.py)
    tensors: dict[str, tuple[Any, torch.Tensor]]
    test_frame: tuple[pd.DataFrame, pd.Series]
    sizes: dict[str, int]
    fingerprint: str  # of the data, so a resume can tell they are the same
    imbalance: imb.Imbalance | None = None  # classification: counts, ratio, method chosen

    def specs(self) -> tuple[InputSpec, OutputSpec]:
        """What the model receives and what it must output, from the fitted encoders."""
        return (InputSpec(**self.preprocessor.input_spec()),
                OutputSpec(self.data.task, self.target.n_outputs))


def train(source: Any = None, y: Any = None, *, out: str | Path | None = None,
          resume: str | Path | None = None, **settings: Any) -> Run:
    """Train, validate, evaluate and save a model. `source` is a bundled dataset name, a file
    path, a DataFrame (with `target=`), or a feature array with `y=`. With `resume=RUN_DIR`,
    continue that run from its last checkpoint (the source may then be left out)."""
    if resume is not None:
        source, settings = resume_settings(Path(resume), source, settings)
    cfg = split_settings(settings)
    if cfg.model.name is not None:  # bad model settings stop the run before the data are read
        resolve_settings(cfg.model.name, cfg.model.settings)
    check_weights(cfg.model.name, cfg.train.weights)  # so do weights that are not there
    notes = Notes(live=False)  # printed once the inputs are known to be good
    prepared = _prepare(source, y, cfg, notes)
    cfg = _choose_model(cfg, prepared.data, notes)
    model_settings = resolve_settings(cfg.model.name, cfg.model.settings)
    if cfg.train.check:
        _act_on_findings(_model_findings(cfg, model_settings, prepared), cfg.train.force, notes,
                         "the model sanity check")
    device = resolve_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    checkpoint = resume_checkpoint(Path(resume), prepared.fingerprint) if resume else None
    initial = load_foreign_weights(cfg.train.init_weights) if cfg.train.init_weights else None
    run_dir = Path(resume) if resume else Path(out) if out else default_run_dir(prepared.data.name)
    with new_run_dir(run_dir, resuming=resume is not None, keep_on=(TrainingInterrupted,)):
        notes.go_live()
        record = config_record(cfg, model_settings, source, prepared, device, notes)
        if checkpoint is None:
            write_json(run_dir / "config.json", record | {"status": "running"})
        try:
            predictor, state = _fit(cfg, model_settings, prepared, device, notes, run_dir,
                                    checkpoint, initial)
        except TrainingInterrupted as exc:
            if not cfg.train.checkpoint:
                raise KeyboardInterrupt from None  # nothing to resume from: the run is dropped
            raise TrainingInterrupted(exc.args[0], run_dir) from None
        evaluation = predictor.evaluation(*prepared.test_frame)
        metrics = evaluation.metrics
        metrics["checklist"] = run_checklist(prepared, state, metrics, evaluation, notes)
        record |= notes.to_dict()
        record["train"].update(epochs_run=state.epoch, best_epoch=state.best_epoch,
                               stop_reason=state.stop_reason)
        if cfg.train.weights:  # the architecture built, layer groups, their LRs, the stages
            record["model"].update(transfer_record(predictor.model, predictor.architecture, cfg.train))
        save_run(run_dir, predictor, record | {"status": "finished"}, state, metrics,
                  evaluation if cfg.train.report else None)
    return Run(run_dir, record, metrics, state.history, predictor, notes)


def _prepare(source: Any, y: Any, cfg: RunConfig, notes: Notes,
             models: dict[str, dict] | None = None) -> Prepared:
    """Load, split, and fit the preprocessing on the training rows alone; then check what can be
    known before training (checks/before_training.py): the --test file against the training
    data, and the batch size against the `models` to be trained (name → settings; default: the
    run's model, or the data's default one). Every entry (train, compare, advise) passes here."""
    data = load_source(source, target=cfg.data.target, task=cfg.data.task, y=y, notes=notes,
                       **_reading(cfg))
    _check_monitor(cfg.train.monitor, data.task)
    test_data = None
    if cfg.data.test is not None:
        test_notes = Notes(live=False)  # its reading's decisions are training's; warnings kept
        test_data = load_source(cfg.data.test, target=data.target, task=data.task, notes=test_notes,
                                held_out=True, written=written_numbers(data), **_reading(cfg))
        for warning in test_notes.warnings:
            notes.warn(f"--test {cfg.data.test}: {warning}")
        if cfg.data.test_size:
            notes.decide(f"test split: the rows of {cfg.data.test} (--test-size not used)")
    elif data.test is not None:  # an official test set (torchvision's named sets)
        test_data = data.test
        notes.decide(f"test split: the {len(test_data)} rows of {data.name}'s own test set "
                     "(--test-size not used); validation carved from its training rows")
    test_size = 0.0 if test_data is not None else cfg.data.test_size
    if data.split_gap is not None:  # windows of one time series: split by time (data/sequences.py)
        splits = split_by_time(len(data), cfg.data.val_size, test_size, data.split_gap, notes)
    elif data.reading and data.reading.get("splits"):  # a folder's own train/ val/ test/
        splits = fixed_splits(data.reading["splits"], data.y, data.task, cfg.data.val_size, test_size,
                              cfg.train.seed, notes, test_given=test_data is not None)
    else:
        splits = split_indices(data.y, data.task, cfg.data.val_size, test_size, cfg.train.seed)
    _act_on_findings(audit_data(data, splits, test_data, seed=cfg.train.seed), cfg.train.force,
                     notes, "the data audit")
    prepared = _encode(data, splits, test_data, notes)
    if data.task == "classification":
        prepared.imbalance = _imbalance(prepared, cfg.train, notes)
    if test_data is not None and cfg.data.test is not None:
        raise_errors(held_out_findings(data, test_data, prepared.preprocessor, prepared.target,
                                       str(cfg.data.test)), PredictInputError)
    check_batch_size(prepared, cfg, models)
    return prepared


def _reading(cfg: RunConfig) -> dict[str, Any]:
    """How to read the source beyond its target: a time series' windows, and the modality asked
    for (--modality, or the one kind of data the named model takes); see data/sequences.py."""
    modality = cfg.data.modality
    if modality is None and cfg.model.name is not None and len(modalities(cfg.model.name)) == 1:
        modality = modalities(cfg.model.name)[0]
    return {"window": cfg.data.window, "horizon": cfg.data.horizon, "modality": modality,
            "image_size": cfg.data.image_size, "data_root": cfg.data.data_root,
            "download": cfg.data.download, "loader": cfg.train.loader,
            "cache_limit_mb": cfg.data.cache_limit_mb}


def _choose_model(cfg: RunConfig, data: Dataset, notes: Notes) -> RunConfig:
    """The model named, or the default for the data's modality (models.registry.DEFAULT_MODELS)."""
    if cfg.model.name is not None:
        return cfg
    name = default_model(data.modality)
    notes.decide(f"model: {name}, the default for {data.modality} data (--model to choose another)")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name))


def _model_findings(cfg: RunConfig, model_settings: dict, prepared: Prepared) -> list:
    """The guide's model tests on the model these settings build, before any training."""
    seed_everything(cfg.train.seed)
    input_spec, output_spec = prepared.specs()
    model = build_model(cfg.model.name, model_settings, input_spec, output_spec, cfg.train.weights,
                        Notes())[0]  # with --weights: the pretrained model, its new head
    X, y = prepared.tensors["train"]
    if isinstance(X, ImageFiles):  # a streamed folder: decode the rows the batch takes
        rows = sanity_batch(torch.arange(len(y)), y, seed=cfg.train.seed)[0].numpy()
        batch = (torch.from_numpy(prepared.preprocessor.transform(X[rows])), y[rows])
    else:
        batch = sanity_batch(X, y, seed=cfg.train.seed)
    return model_sanity(model, input_spec, output_spec, batch, name=cfg.model.name)


def _act_on_findings(findings: list, force: bool, notes: Notes, where: str) -> None:
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


def _imbalance(prepared: Prepared, t: Any, notes: Notes) -> imb.Imbalance:
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
    pre = create_preprocessor(data.modality).fit(X_train, notes)
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
    return Prepared(data, pre, target, tensors, test_frame, sizes, _fingerprint(data))


def _features(pre: Any, X: Any, notes: Notes) -> Any:
    """The model's inputs: encoded now, or, for a streamed folder, as it is (its batches are
    decoded in the DataLoader's workers and standardised on the device)."""
    if isinstance(X, ImageFiles):
        return X
    return torch.from_numpy(pre.transform(X, notes))


def take(X: Any, rows: np.ndarray) -> Any:
    """Rows of a DataFrame (tabular) or of an array (images, sequences)."""
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


def _fingerprint(data: Dataset) -> str:
    digest = hashlib.sha256()
    if isinstance(data.X, pd.DataFrame):
        digest.update(pd.util.hash_pandas_object(data.X, index=False).to_numpy().tobytes())
    elif isinstance(data.X, ImageFiles):  # streamed: the files' names and sizes
        digest.update(data.X.fingerprint())
    else:
        digest.update(np.ascontiguousarray(data.X).tobytes())
    digest.update(pd.util.hash_pandas_object(data.y.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _fit(cfg: RunConfig, model_settings: dict, prepared: Prepared, device: torch.device,
         notes: Notes, run_dir: Path, checkpoint: dict | None,
         initial: dict | None = None) -> tuple[Predictor, TrainState]:
    t, task = cfg.train, prepared.data.task
    seed_everything(t.seed)
    input_spec, output_spec = prepared.specs()
    # with --weights: pretrained, a new head (models/transfer.py); the name and settings rebuild it
    model, name, model_settings = build_model(cfg.model.name, model_settings, input_spec,
                                              output_spec, t.weights, notes)
    if initial is not None and checkpoint is None:
        _load_initial_weights(model, initial, t.init_weights)
        notes.decide(f"initial weights from {t.init_weights}")
    train, val = _batches(prepared, t, device, notes, drop_single=has_batchnorm(model))
    if t.precision == "fp16" and device.type == "cpu":
        notes.warn("fp16 on the CPU works (autocast with a GradScaler) but is slow there and "
                   "meant for GPUs; the CPU's reduced precision is bf16")
    monitor = Monitor(t.monitor, mode_of(t.monitor), t.min_delta)
    if input_spec.modality == "image" and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(model.to(device), t, device)
    scheduler, interval = create_scheduler(optimizer, t, len(train), monitor.mode)
    augment, finetuning = training_extras(cfg, model, prepared.preprocessor, notes)
    # order matters at the end: the best weights are back before DeadReLU looks at the units;
    # GradientHealth first: its columns are in the logs before anything saves them
    callbacks = [GradientHealth(), *finetuning, EarlyStopping(t.patience), RestoreBestWeights(), NonFiniteGuard(),
                 LossNotDecreasing(), OverfittingGap(), DeadReLU()]
    if t.max_seconds is not None:  # before the checkpoint, which saves the seconds spent
        callbacks.append(TimeBudget(t.max_seconds))
    if t.checkpoint:
        callbacks.append(Checkpoint(run_dir / CHECKPOINTS))
    loss = imb.loss_for(task, prepared.imbalance, t.focal_gamma)  # class weights or focal, as chosen
    trainer = Trainer(
        model, loss, optimizer, epochs=t.epochs, device=device,
        scheduler=scheduler, scheduler_interval=interval, clip_norm=t.clip_norm,
        precision=t.precision, compile=t.compile, monitor=monitor,
        metrics=metric_fn(task, prepared.target.mean, prepared.target.std),
        callbacks=[*callbacks, ProgressBar(t.progress)], augment=augment,
    )
    if checkpoint is not None:
        trainer.load_checkpoint_state(checkpoint)
        notes.decide(f"resumed at epoch {trainer.state.epoch + 1}, batch {trainer.state.batch_in_epoch}")
    with stop_on_signals(trainer):
        state = trainer.fit(train, val)
    notes.decide(state.stop_reason or f"trained for all {t.epochs} epochs")
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


def _batches(prepared: Prepared, t: Any, device: torch.device, notes: Notes,
             drop_single: bool = True):
    """Training and validation batches. `drop_single` (the model has BatchNorm): a last
    training batch of one row is left out of each epoch, decided here once (noted)."""
    X_train, y_train = prepared.tensors["train"]
    nbytes = sum(a.nbytes for pair in prepared.tensors.values() for a in pair)
    streamed = isinstance(X_train, ImageFiles)  # a folder read from disk batch by batch
    loader = "stream" if streamed else choose_loader(t.loader, nbytes, device)
    notes.decide(f"batches: {'in-memory fast path' if loader == 'memory' else 'streaming DataLoader'} "
                 f"on {device}" + (" (as asked)" if t.loader != "auto" else "")
                 + (f", {t.workers} workers decoding the files, standardised on the device"
                    if streamed else ""))
    kw = {"loader": loader, "seed": t.seed, "device": device, "workers": t.workers,
          "channels_last": device.type == "cuda" and X_train.ndim == 4,  # images on a GPU
          "transform": prepared.preprocessor.standardise if streamed else None}
    weights = None
    if prepared.imbalance is not None and prepared.imbalance.method == "sampler":
        weights = imb.sample_weights(y_train, prepared.imbalance.counts)
        notes.decide("oversampling the training split: each epoch draws its rows with replacement, "
                     "every class equally likely (validation and test keep their distribution)")
    train = make_batches(X_train, y_train, t.batch_size, shuffle=True, weights=weights,
                         drop_single=drop_single, **kw)
    if drop_single and train.n_used < train.n:
        notes.decide(drop_note(train.n, t.batch_size))
    val = make_batches(*prepared.tensors["val"], t.batch_size, shuffle=False, **kw)
    return train, val


def _check_monitor(monitor: str, task: str) -> None:
    valid = monitor_names(task)
    if monitor not in valid:
        raise SettingsError(f"cannot monitor {monitor!r} for {task}; choose one of {', '.join(valid)}")


def resolve_device(name: str) -> torch.device:
    mps = getattr(torch.backends, "mps", None)
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))
    if not available[name]:
        raise SettingsError(f"device {name!r} is not available on this machine")
    return torch.device(name)


__all__ = ["Run", "evaluate", "load", "predict", "report", "resolve_device", "train"]
