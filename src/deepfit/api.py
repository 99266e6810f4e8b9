"""The Python API: `train`, `load`, `evaluate`, `predict`. The CLI calls these and nothing else.

train: source ─► Dataset ─► splits ─► Preprocessor.fit(train) ─► batches ─► model ─► Trainer.fit
       ─► test metrics ─► run directory (config, weights, preprocessing, history, metrics)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit import __version__
from deepfit.config import RunConfig, split_settings
from deepfit.data.batches import InMemoryBatches
from deepfit.data.preprocess import Preprocessor, TargetEncoder
from deepfit.data.sources import Dataset, load_source, read_npz_features, read_table
from deepfit.data.split import Splits, split_indices
from deepfit.errors import SettingsError
from deepfit.evaluate.metrics import TASK_METRICS, metric_fn, mode_of, monitor_names
from deepfit.io import default_run_dir, new_run_dir, read_json, write_json, write_text
from deepfit.models import InputSpec, OutputSpec, create, resolve_settings
from deepfit.notes import Notes
from deepfit.predict import Predictor
from deepfit.train.callbacks import EarlyStopping, ProgressBar, RestoreBestWeights
from deepfit.train.losses import DEFAULT_LOSS, create_loss
from deepfit.train.optim import create_optimizer, create_scheduler
from deepfit.train.state import Monitor, TrainState, seed_everything
from deepfit.train.trainer import Trainer

logger = logging.getLogger("deepfit")


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

    preprocessor: Preprocessor
    target: TargetEncoder
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]  # split name → (X, y)
    test_frame: tuple[pd.DataFrame, pd.Series]
    sizes: dict[str, int]


def train(source: Any = None, y: Any = None, *, out: str | Path | None = None, **settings: Any) -> Run:
    """Train, validate, evaluate and save a model. `source` is a bundled dataset name, a file
    path, a DataFrame (with `target=`), or a feature array with `y=`. Returns the `Run`."""
    cfg = split_settings(settings)
    model_settings = resolve_settings(cfg.model.name, cfg.model.settings)
    notes = Notes(live=False)  # printed once the inputs are known to be good
    data = load_source(source, target=cfg.data.target, task=cfg.data.task, y=y, notes=notes)
    _check_monitor(cfg.train.monitor, data.task)
    test_data = None
    if cfg.data.test is not None:
        test_data = load_source(cfg.data.test, target=data.target, task=data.task, notes=Notes(),
                                held_out=True)
        if cfg.data.test_size:
            notes.decide(f"test split: the rows of {cfg.data.test} (--test_size not used)")
    test_size = 0.0 if test_data is not None else cfg.data.test_size
    splits = split_indices(data.y, data.task, cfg.data.val_size, test_size, cfg.train.seed)
    prepared = _prepare(data, splits, test_data, notes)
    notes.decide(f"splits: {prepared.sizes['train']} train, {prepared.sizes['val']} validation, "
                 f"{prepared.sizes['test']} test rows (seed {cfg.train.seed})")
    device = resolve_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    with new_run_dir(Path(out) if out else default_run_dir(data.name)) as run_dir:
        notes.go_live()
        predictor, state = _fit(cfg, model_settings, data, prepared, device, notes)
        X_test, y_test = prepared.test_frame
        metrics = predictor.evaluate(X_test, y_test)
        config = _config_record(cfg, model_settings, data, prepared, device, state, notes)
        _save_run(run_dir, predictor, config, state, metrics)
    return Run(run_dir, config, metrics, state.history, predictor, notes)


def _prepare(data: Dataset, splits: Splits, test_data: Dataset | None, notes: Notes) -> Prepared:
    X_train, y_train = data.X.iloc[splits.train], data.y.iloc[splits.train]
    pre = Preprocessor().fit(X_train, notes)
    target = TargetEncoder(data.task).fit(y_train)
    if data.task == "classification":
        counts = y_train.value_counts()
        notes.decide(f"{len(target.classes)} classes; training split counts: "
                     + ", ".join(f"{k}={v}" for k, v in counts.sort_index().items()))
    parts = {"train": splits.train, "val": splits.val}
    tensors = {
        name: (torch.from_numpy(pre.transform(data.X.iloc[idx], notes)),
               torch.from_numpy(target.transform(data.y.iloc[idx])))
        for name, idx in parts.items()
    }
    if test_data is not None:
        test_frame = (test_data.X, test_data.y)
    else:
        test_frame = (data.X.iloc[splits.test], data.y.iloc[splits.test])
    sizes = {"train": len(splits.train), "val": len(splits.val), "test": len(test_frame[0])}
    return Prepared(pre, target, tensors, test_frame, sizes)


def _fit(cfg: RunConfig, model_settings: dict, data: Dataset, prepared: Prepared,
         device: torch.device, notes: Notes) -> tuple[Predictor, TrainState]:
    t = cfg.train
    seed_everything(t.seed)
    input_spec = InputSpec(**prepared.preprocessor.input_spec())
    output_spec = OutputSpec(data.task, prepared.target.n_outputs)
    model = create(cfg.model.name, input_spec, output_spec, **model_settings)
    train = InMemoryBatches(*prepared.tensors["train"], t.batch_size, seed=t.seed, device=device)
    val = InMemoryBatches(*prepared.tensors["val"], t.batch_size, shuffle=False, device=device)
    monitor = Monitor(t.monitor, mode_of(t.monitor), t.min_delta)
    optimizer = create_optimizer(model.to(device), t, device)
    scheduler, interval = create_scheduler(optimizer, t, len(train), monitor.mode)
    trainer = Trainer(
        model, create_loss(DEFAULT_LOSS[data.task]), optimizer,
        epochs=t.epochs, device=device, scheduler=scheduler, scheduler_interval=interval,
        clip_norm=t.clip_norm, metrics=metric_fn(data.task, prepared.target.mean, prepared.target.std),
        monitor=monitor,
        callbacks=[EarlyStopping(t.patience), RestoreBestWeights(), ProgressBar(t.progress)],
    )
    state = trainer.fit(train, val)
    notes.decide(state.stop_reason or f"trained for all {t.epochs} epochs")
    notes.decide(f"restored the weights of epoch {state.best_epoch} "
                 f"(best {t.monitor} = {state.best_score:.4g})")
    architecture = {"name": cfg.model.name, "settings": model_settings,
                    "input_spec": input_spec.to_dict(), "output_spec": output_spec.to_dict()}
    return Predictor(model, prepared.preprocessor, prepared.target, architecture), state


def _check_monitor(monitor: str, task: str) -> None:
    valid = monitor_names(task)
    if monitor not in valid:
        raise SettingsError(f"cannot monitor {monitor!r} for {task}; choose one of {', '.join(valid)}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()}
    if not available[name]:
        raise SettingsError(f"device {name!r} is not available on this machine")
    return torch.device(name)


def _config_record(cfg: RunConfig, model_settings: dict, data: Dataset, prepared: Prepared,
                   device: torch.device, state: TrainState, notes: Notes) -> dict[str, Any]:
    record = cfg.to_dict()
    record["model"]["settings"] = model_settings
    record["data"].update(source=data.name, target=data.target, task=data.task,
                          rows=len(data), columns=list(data.X.columns), split_sizes=prepared.sizes)
    record["train"].update(device=str(device), epochs_run=state.epoch, best_epoch=state.best_epoch,
                           stop_reason=state.stop_reason)
    record["versions"] = {"deepfit": __version__, "torch": torch.__version__}
    record.update(notes.to_dict())
    return record


def _save_run(run_dir: Path, predictor: Predictor, config: dict, state: TrainState,
              metrics: dict[str, float]) -> None:
    predictor.save(run_dir)
    write_json(run_dir / "config.json", config)
    write_text(run_dir / "history.csv", pd.DataFrame(state.history).to_csv(index=False))
    write_json(run_dir / "metrics.json", metrics)


def load(run_dir: str | Path, device: str = "cpu") -> Predictor:
    """The predictor saved in a run directory (safetensors and JSON only; nothing unpickled)."""
    return Predictor.load(run_dir, device=device)


def evaluate(run_dir: str | Path, source: Any, y: Any = None) -> dict[str, float]:
    """Metrics of a saved run on labelled data (a file, a DataFrame with the target, or X and y)."""
    predictor = load(run_dir)
    target = _run_target(run_dir)
    data = load_source(source, target=target, task=predictor.task, y=y, notes=Notes(), held_out=True)
    return predictor.evaluate(data.X, data.y)


def predict(run_dir: str | Path, source: Any) -> pd.DataFrame:
    """Predictions of a saved run for a file, DataFrame or array (a target column is ignored)."""
    predictor = load(run_dir)
    if isinstance(source, (str, Path)):
        path = Path(source)
        source = read_npz_features(path) if path.suffix.lower() == ".npz" else read_table(path)
    return predictor.predict_frame(source)


def _run_target(run_dir: str | Path) -> str:
    return read_json(Path(run_dir) / "config.json")["data"]["target"]


__all__ = ["TASK_METRICS", "Run", "evaluate", "load", "predict", "train"]
