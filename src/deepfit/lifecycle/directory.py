"""A run directory: how `train` writes one (config.json's record, the weights, history, metrics
and report) and what a user does with one (`load`, `evaluate`, `predict`, `report`).

    RUN_DIR/config.json        every resolved setting, decision and warning; status running|finished
            model.safetensors  + model.json (architecture, preprocessing, SHA-256)
            history.csv        one row per epoch; gradients.csv: per layer group
            metrics.json       test metrics and the success checklist
            report.html        + plots/*.png
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from deepfit._version import __version__
from deepfit.config import RunConfig
from deepfit.core.io import write_json, write_text
from deepfit.core.notes import Notes
from deepfit.core.timings import current as current_timings
from deepfit.core.timings import stage
from deepfit.data.dataset import Streamed
from deepfit.errors import SettingsError
from deepfit.evaluation.full_metrics import Evaluation
from deepfit.lifecycle.predictor import Predictor
from deepfit.lifecycle.resume import run_record
from deepfit.lifecycle.seen_rows import seen_counts, warn_if_seen
from deepfit.modalities import get_modality, load_source
from deepfit.training.state import TrainState

if TYPE_CHECKING:
    from deepfit.lifecycle.prepare import Prepared


def recorded_source(source: Any) -> str | None:
    """How config.json names a run's source so that export, explain, compress, resume and
    evaluate read it again from any working directory: a path that exists made absolute, a
    bundled or named dataset's name as given, in-memory data None."""
    if not isinstance(source, (str, Path)):
        return None
    path = Path(source)
    return str(path.resolve()) if path.exists() else str(source)


def config_record(cfg: RunConfig, model_settings: dict, source: Any, prepared: Prepared,
                   device: torch.device, notes: Notes) -> dict[str, Any]:
    data = prepared.data
    record = cfg.to_dict()
    record["model"]["settings"] = model_settings
    record["data"].update(source=recorded_source(source),
                          name=data.name, target=data.target, task=data.task, rows=len(data),
                          columns=[str(c) for c in getattr(data.X, "columns", [])],
                          shape=list(getattr(data.X, "shape", None) or np.shape(data.X)),
                          modality=data.modality,
                          split_sizes=prepared.sizes,
                          fingerprint=prepared.fingerprint,
                          input={k: list(v) if isinstance(v, tuple) else v
                                 for k, v in prepared.preprocessor.input_spec().items()})
    if data.series is not None:  # a time series: what forecasting from a new one needs
        record["data"]["series"] = data.series
    if data.skipped_files is not None:  # a folder of image files: each unreadable one, named
        record["data"].update(skipped_files=data.skipped_files, skipped_count=len(data.skipped_files),
                              streamed=isinstance(data.X, Streamed))
    # the modality's own lines of the report's data table (Modality.report_facts)
    record["data"]["facts"] = get_modality(data.modality).report_facts(record["data"])
    if prepared.imbalance is not None:
        found = prepared.imbalance
        record["data"].update(
            class_counts={str(c): int(n) for c, n in zip(prepared.target.classes, found.counts)},
            imbalance_ratio=found.ratio if np.isfinite(found.ratio) else None)
        record["train"]["imbalance_method"] = found.method
    record["train"]["device"] = str(device)
    # the task as asked (None: inferred, and inferred again from the same data on resume, so
    # that its note stays true); the one found is data.task
    record["settings"] = {**cfg.flat(), **model_settings, "target": data.target}
    record["versions"] = {"deepfit": __version__, "torch": torch.__version__}
    return record | notes.to_dict()


def save_run(run_dir: Path, predictor: Predictor, config: dict, state: TrainState,
              metrics: dict[str, float], evaluation: Evaluation | None = None) -> None:
    with stage("save"):
        predictor.save(run_dir)
        # the modality's files beside model.json, for other tools (text: tokenizer.json)
        for name, text in get_modality(config["data"].get("modality")).run_files(predictor.preprocessor).items():
            write_text(run_dir / name, text)
        write_text(run_dir / "history.csv", pd.DataFrame(state.history).to_csv(index=False))
        if state.grad_norms:  # per epoch, each layer group's gradient norm (callbacks/gradient_health.py)
            write_text(run_dir / "gradients.csv", pd.DataFrame(state.grad_norms).to_csv(index=False))
        write_json(run_dir / "metrics.json", metrics)
    if evaluation is not None:  # plots/*.png and report.html
        from deepfit.evaluation.report import write_run_report

        try:
            with stage("report"):
                write_run_report(run_dir, config, metrics, state.history, evaluation)
        except Exception as exc:  # a failed plot must not cost the trained model
            config.setdefault("warnings", []).append(f"report not written: {type(exc).__name__}: {exc}")
            logging.getLogger("deepfit").warning(config["warnings"][-1])
    _record_timings(config)
    write_json(run_dir / "config.json", config)  # last: a run with status finished is complete


def _record_timings(config: dict) -> None:
    """The run's seconds per stage (core/timings.py) into config.json, and a warning for each
    stage outside the training steps slow enough to notice."""
    clock = current_timings()
    if clock is None:
        return
    config["timings"] = clock.to_dict()
    rows = config.get("data", {}).get("rows")
    for name, seconds in clock.slow_stages():
        config.setdefault("warnings", []).append(
            f"the {name} stage took {seconds:.1f} s (outside the training steps"
            + (f", {rows:,} rows" if rows else "") + "): see config.json's timings")
        logging.getLogger("deepfit").warning(config["warnings"][-1])


def load(run_dir: str | Path, device: str = "cpu", verify: bool = True) -> Predictor:
    """The predictor saved in a run directory (safetensors and JSON only; nothing unpickled),
    checked before anything is built (Predictor.load; `verify=False` skips the checksum)."""
    return Predictor.load(run_dir, device=device, verify=verify)


def evaluate(run_dir: str | Path, source: Any, y: Any = None, *, verify: bool = True) -> dict[str, float]:
    """Metrics of a saved run on labelled data (a file, a DataFrame with the target, or X and y).
    Rows the model was trained or early-stopped on are counted and warned about (seen_rows.py)."""
    predictor = load(run_dir, verify=verify)
    saved = run_record(Path(run_dir))["data"]
    reading = predictor.modality.held_out_reading(predictor.preprocessor)  # the training size…
    data = load_source(source, target=saved["target"], task=predictor.task, y=y, notes=Notes(),
                       held_out=True, window=saved.get("window"), horizon=saved.get("horizon"),
                       modality=saved.get("modality"), data_root=saved.get("data_root"), **reading)
    if not hasattr(data.X, "chunks"):  # rows in memory: say when the model has seen them
        counts = seen_counts(Path(run_dir), predictor.features(data.X, Notes(live=False)))
        warn_if_seen(counts, len(data.X), Notes())
    return predictor.evaluate(data.X, data.y if data.target is not None else None)  # unlabelled: scores only


def report(*run_dirs: str | Path, out: str | Path | None = None) -> Path:
    """Regenerate the report of one run (RUN_DIR/report.html, or `out`), or write a side-by-side
    comparison of several runs (`out`, default comparison.html beside the first run)."""
    from deepfit.evaluation.report import write_comparison, write_report

    if not run_dirs:
        raise SettingsError("report needs at least one run directory")
    paths = [Path(p) for p in run_dirs]
    if len(paths) == 1:
        return write_report(paths[0], out=Path(out) if out else None)
    return write_comparison(paths, Path(out) if out else paths[0].parent / "comparison.html")


def predict(run_dir: str | Path, source: Any, *, all_windows: bool = False,
            verify: bool = True) -> pd.DataFrame:
    """Predictions of a saved run for a file, DataFrame or array (a target column is ignored).
    A run trained on a time series (--window) forecasts from a CSV/Parquet series or DataFrame:
    the H steps after its last W rows, or with `all_windows` every window's (runs/forecast.py)."""
    predictor = load(run_dir, verify=verify)
    path = Path(source) if isinstance(source, (str, Path)) else None
    if predictor.series is not None and (isinstance(source, pd.DataFrame)
                                         or (path is not None and path.suffix.lower() != ".npz")):
        return predictor.forecast(source, all_windows=all_windows)
    if all_windows:
        raise SettingsError("--all-windows forecasts from a CSV/Parquet time series with a run "
                            "trained on one (deepfit train SERIES.csv --window W)")
    if isinstance(source, (str, Path)):  # a file or folder: the run's modality reads it
        path, modality = Path(source), predictor.modality
        predictions = modality.predict_files(predictor, path)  # a folder of images, say
        if predictions is not None:
            return predictions
        source = modality.read_for_predict(predictor.preprocessor, path)
    return predictor.predict_frame(source)
