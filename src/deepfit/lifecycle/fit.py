"""The training of a prepared run, without its run directory's report: the model built, its
thread count chosen, early stopping on the validation split, the best weights restored
(`fit_prepared`), and `resolve_device`. lifecycle/train.py writes the run around it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from deepfit.anomaly.scores import anomaly_threshold
from deepfit.checks.before_training import (
    check_model_memory,
    has_batchnorm,
)
from deepfit.checks.sanity import model_sanity, sanity_batch
from deepfit.config import UNSUPERVISED, RunConfig
from deepfit.core import timings
from deepfit.core.io import (
    read_json,
)
from deepfit.core.notes import Notes
from deepfit.data.dataset import Streamed
from deepfit.errors import SettingsError, TrainingFailed
from deepfit.evaluation.metrics import metric_fn, mode_of
from deepfit.evaluation.threshold import decision_threshold
from deepfit.lifecycle import ddp
from deepfit.lifecycle.batches import run_batches
from deepfit.lifecycle.predictor import Predictor
from deepfit.lifecycle.prepare import (
    Prepared,
)
from deepfit.lifecycle.resume import CHECKPOINTS
from deepfit.modalities import get_modality
from deepfit.models.transfer import build_model
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
from deepfit.training.distributed import (
    Distributed,
    weights_digest,
)
from deepfit.training.finetune import finetuning_callbacks
from deepfit.training.optim import create_optimizer, create_scheduler
from deepfit.training.signals import stop_on_signals
from deepfit.training.state import Monitor, TrainState, seed_everything
from deepfit.training.threads import ThreadChoice, choose_threads
from deepfit.training.trainer import Trainer


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
                        Notes(), cfg.train.from_scratch)[0]  # with --weights: the pretrained model, its new head
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
                                              output_spec, t.weights, notes, t.from_scratch)
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
    threshold, anomaly = None, None
    if task in UNSUPERVISED:  # the anomaly threshold: a quantile of the validation rows' scores
        anomaly = anomaly_threshold(trainer.predict(val)[0], t.contamination, notes)
    elif t.threshold is not None and prepared.target.n_outputs == 2:  # binary: on P(classes[1])
        outputs, target = trainer.predict(val)
        threshold = decision_threshold(t.threshold, outputs, target, prepared.target.classes, notes)
    return Predictor(model, prepared.preprocessor, prepared.target, architecture, threshold,
                     prepared.data.series, anomaly), state


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


__all__ = ["fit_prepared", "resolve_device"]
