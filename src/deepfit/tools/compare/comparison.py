"""`deepfit compare`: several models on one split, one seed, one Trainer, one leaderboard.

    COMPARE_DIR/
      <model>/            a full deepfit run per model (reloadable with deepfit.load)
      compare.csv         the leaderboard, best test score first
      compare.json        the same rows, with the metric, task, source and settings
      plots/score_vs_time.png
      compare.html        the leaderboard, the plot, each run's notes

Every model is trained by `deepfit.train` with its own defaults and the same data and training
settings, so the seed gives every model the same train / validation / test rows and the same
preprocessing rules. For tabular data (or with `baselines=True`) scikit-learn's gradient boosting
and a linear model are added on exactly those rows (tools/compare/baselines.py), as the guide's
matrix says to try both; for text, TF-IDF + logistic regression (ridge for regression) on the raw
texts of those rows (the modality's baseline_kinds); for anomaly detection scikit-learn's IsolationForest (anomaly/baseline.py)
instead, scored by AUROC. The score is accuracy for classification and r2 for regression (`metric`);
balanced accuracy when the training split's classes are imbalanced (above the imbalance rule's
3:1), with accuracy beside it, or the --monitor score asked for (baselines.ranking_metric).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from deepfit.anomaly.baseline import NOTE as IF_NOTE
from deepfit.anomaly.baseline import isolation_forest_row, validation_score
from deepfit.config import UNSUPERVISED, DataConfig, TrainConfig, field_names, split_settings
from deepfit.core.io import default_run_dir, new_run_dir, write_json, write_text
from deepfit.core.notes import Notes, logger
from deepfit.core.words import plural
from deepfit.data.dataset import source_name
from deepfit.errors import SettingsError, TrainingInterrupted
from deepfit.lifecycle.prepare import Prepared, prepare_config
from deepfit.lifecycle.train import Run, train_prepared
from deepfit.modalities import get_modality
from deepfit.models import modalities, resolve_settings
from deepfit.models.registry import canonical
from deepfit.tools.compare.baselines import describe, encode, fit_baseline, ranking_metric

COLUMNS = ["model", "metric", "test_score", "val_score", "train_seconds", "best_epoch", "params",
           "latency_ms", "size_mb"]
# Settings handed to deepfit.train as they are: the torchvision datasets' (modalities/image/named_sets.py)
PASS_THROUGH = ("data_root", "download")
ACCURACY = "test_accuracy"  # beside the score when the score is not accuracy (columns())


@dataclass
class Comparison:
    """A finished comparison: the leaderboard (COLUMNS, best first) and where it was written."""

    path: Path
    table: pd.DataFrame
    task: str
    metric: str
    runs: dict[str, Path] = field(default_factory=dict)  # deepfit models → their run directory
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "task": self.task, "metric": self.metric,
                "rows": records(self.table),
                "runs": {k: str(v) for k, v in self.runs.items()}, "notes": list(self.notes)}


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as plain dicts, a missing value (a baseline's best_epoch) as None."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def model_names(models: str | list[str] | tuple[str, ...]) -> list[str]:
    """'mlp,cnn,resnet' or a list → registered names (aliases resolved), in order, once each."""
    items = models.split(",") if isinstance(models, str) else list(models)
    names = list(dict.fromkeys(canonical(m.strip()) for m in items if m and m.strip()))
    if not names:
        raise SettingsError("compare needs at least one model, e.g. --models mlp,resmlp")
    for name in names:
        resolve_settings(name, {})  # an unknown model stops the comparison before any training
    return names


def compare(source: Any = None, y: Any = None, *, models: str | list[str] | None = None,
            out: str | Path | None = None, budget_seconds: float | None = None,
            baselines: bool | None = None, **settings: Any) -> Comparison:
    """Train each model on the same split and seed; return and write the leaderboard.
    `models` default: mlp, or with task="anomaly" the data's autoencoder (dense_ae for a table).
    `budget_seconds` is each model's wall-clock training budget; `settings` are data and training
    settings shared by every model (model settings are not taken: each model keeps its defaults)."""
    # --task anomaly without --models: the autoencoder of whatever modality the data turn out to be
    auto = models is None and settings.get("task") in UNSUPERVISED
    names = [] if auto else model_names("mlp" if models is None else models)
    settings = _shared_settings(settings, budget_seconds)
    # the data are read as every run will read them: as the one modality all the models take, if
    # there is one, else as the data say (runs/prepare.py: reading_settings)
    one = bool(names) and len({modalities(n) for n in names}) == 1 and len(modalities(names[0])) == 1
    cfg = split_settings(readable(settings) | ({"model": names[0]} if one else {}))
    path = Path(out) if out else default_run_dir(f"compare-{source_name(source)}")
    # a signal mid-run keeps that run's checkpoint (deepfit train --resume COMPARE_DIR/<model>)
    with new_run_dir(path, keep_on=(TrainingInterrupted,)):
        # bad data, or a batch size a model cannot take, stop it here, before any training
        if auto:  # the data's modality decides its autoencoder; the batch size checked against it
            prepared = prepare_config(source, y, cfg, Notes(live=False))
            names = [get_modality(prepared.data.modality).model_for("anomaly")]
        else:
            prepared = prepare_config(source, y, cfg, Notes(live=False), models={n: {} for n in names})
        _check_modalities(names, prepared.data.modality)
        task = prepared.data.task
        if task in UNSUPERVISED and prepared.data.target is None:
            raise SettingsError("compare ranks anomaly detectors by AUROC against labels: give the "
                                "0/1 labels with --target (they are never trained on), or train one "
                                "model with deepfit train --task anomaly")
        metric, why = ranking_metric(task, _ratio(prepared), cfg.train.monitor)
        if baselines is None:  # the modality says: on tables, gradient boosting is the one to beat
            baselines = get_modality(prepared.data.modality).baselines
        baselines = baselines and task not in UNSUPERVISED  # anomaly: IsolationForest instead
        kinds = get_modality(prepared.data.modality).baseline_kinds if baselines else ()
        say_plan(names, baselines, budget_seconds, cfg.train,
                 [describe(k, task) for k in kinds])
        rows, runs, notes = [], {}, [why] if why else []
        for i, name in enumerate(names):
            started = time.perf_counter()
            run = train_prepared(prepared, out=path / name, model=name, **settings)
            _say_pace(name, time.perf_counter() - started, len(names) - i - 1, budget_seconds)
            runs[name] = run.path
            rows.append(run_row(name, run, prepared.test_frame[0], metric))
            if task in UNSUPERVISED:  # no per-epoch AUROC (labels are not looked at in training)
                rows[-1]["val_score"] = validation_score(run.predictor, prepared, metric)
            if (cut := budget_cut(name, run.config["train"].get("stop_reason"), len(run.history))):
                notes.append(cut)
        if task in UNSUPERVISED:  # the baseline of anomaly detection, not the supervised ones
            row = isolation_forest_row(encode(prepared), contamination=cfg.train.contamination,
                                       metric=metric, seed=cfg.train.seed,
                                       labelled=prepared.data.target is not None)
            rows.append({c: row[c] for c in COLUMNS})
            notes.append(IF_NOTE)
        elif baselines:
            enc = encode(prepared)
            for kind in kinds:
                result = fit_baseline(kind, enc, max_seconds=budget_seconds, seed=cfg.train.seed,
                                      metric=metric)
                rows.append({c: getattr(result, c, None) for c in COLUMNS}
                            | {ACCURACY: result.test_metrics.get("accuracy")})
            notes.append(baseline_note(kinds, task))
        table = pd.DataFrame(rows, columns=columns(task, metric)).sort_values(
            "test_score", ascending=False, kind="stable", ignore_index=True)
        result = Comparison(path, table, task, metric, runs, notes)
        _write(result, source, settings)
    return result


def baseline_note(kinds: tuple[str, ...], task: str) -> str:
    """What the baseline rows are, for the leaderboard's notes."""
    if "tfidf_linear" in kinds:
        return (f"tfidf_linear: {describe('tfidf_linear', task)} (scikit-learn: TfidfVectorizer of "
                "word 1- and 2-grams of at least 2 texts, sublinear tf, fitted on the training split's raw "
                "texts, C by the validation score; any "
                "other columns encoded beside it), on the same rows; params = coefficients, size = "
                "the pickled estimator")
    return (f"{' and '.join(kinds)}: scikit-learn on the same rows and encoded features; params = "
            "tree nodes or coefficients, size = the pickled estimator")


def columns(task: str, metric: str) -> list[str]:
    """The leaderboard's columns: COLUMNS, and test accuracy beside the score when the score
    is another classification metric (balanced accuracy under imbalance, say)."""
    if task != "classification" or metric == "accuracy":
        return list(COLUMNS)
    at = COLUMNS.index("test_score") + 1
    return [*COLUMNS[:at], ACCURACY, *COLUMNS[at:]]


def _ratio(prepared: Prepared) -> float | None:
    return prepared.imbalance.ratio if prepared.imbalance is not None else None


def say_plan(names: list[str], baselines: bool, budget: float | None, train: TrainConfig,
             described: list[str] | None = None) -> None:
    """Say up front how long the comparison will take: bounded by the budget when there is one
    (each model's training, and gradient boosting's), else its epochs and early stopping, and
    the pace after each model (_say_pace)."""
    described = ["gradient boosting", "a linear model"] if described is None else described
    n, extra = len(names), (" + " + " and ".join(described)) if baselines and described else ""
    if budget is not None:
        total = budget * (n + baselines)  # a linear model takes a moment
        logger.info(f"compare: {n} model{'s' * (n != 1)}{extra} × at most {budget:g} s of training "
                    f"each: at most ~{total:.0f} s of training in all, plus evaluation")
    else:
        logger.info(f"compare: {n} model{'s' * (n != 1)}{extra}, each up to {train.epochs} epochs "
                    f"(early stopping, patience {train.patience}); no time budget "
                    f"(--budget-seconds bounds each model): the first model's time says the rest")


def _say_pace(name: str, seconds: float, left: int, budget: float | None) -> None:
    if left and budget is None:
        logger.info(f"compare: {name} took {seconds:.0f} s; ~{seconds * left:.0f} s more for the "
                    f"other {left} at that pace")


def readable(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings deepfit's own reading of the data takes: PASS_THROUGH ones only once they are
    DataConfig fields (the torchvision datasets' branch adds them)."""
    data_fields = set(field_names(DataConfig))
    return {k: v for k, v in settings.items() if k not in PASS_THROUGH or k in data_fields}


def _check_modalities(names: list[str], modality: str) -> None:
    """Every model must take the data: stop before the first run, not after it."""
    wrong = [n for n in names if modality not in modalities(n)]
    if wrong:
        raise SettingsError(f"these are {modality} data, which {', '.join(wrong)} cannot take "
                            f"({'; '.join(f'{n}: ' + ' or '.join(modalities(n)) for n in wrong)})")


def _shared_settings(settings: dict[str, Any], budget_seconds: float | None) -> dict[str, Any]:
    settings = {k: v for k, v in settings.items() if v is not None}
    if "model" in settings:
        raise SettingsError("compare takes its models from models= (--models), not model=")
    known = set(field_names(DataConfig)) | set(field_names(TrainConfig)) | set(PASS_THROUGH)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SettingsError(f"compare trains every model with its own defaults; model settings "
                            f"({', '.join(unknown)}) are not taken: train one model with them instead")
    if budget_seconds is not None:
        if not budget_seconds > 0:
            raise SettingsError(f"budget_seconds must be a positive number of seconds, not {budget_seconds}")
        settings["max_seconds"] = budget_seconds
    return settings


def run_row(name: str, run: Run, X_test: Any, metric: str) -> dict[str, Any]:
    """A leaderboard row for a deepfit run: scores, time, size and per-sample latency."""
    best_epoch = int(run.config["train"]["best_epoch"])
    val = run.history[best_epoch - 1].get(f"val_{metric}") if best_epoch else None
    weights = run.path / "model.safetensors"
    score = run.metrics.get(metric)  # None: unlabelled anomaly data, nothing to score against
    return {"model": name, "metric": metric, "test_score": None if score is None else float(score),
            ACCURACY: run.metrics.get("accuracy"),
            "val_score": None if val is None else float(val),
            "train_seconds": float(sum(h.get("epoch_seconds", 0.0) for h in run.history)),
            "best_epoch": best_epoch,
            "params": int(sum(p.numel() for p in run.predictor.model.parameters())),
            "latency_ms": latency_ms(run.predictor, X_test),
            "size_mb": weights.stat().st_size / 1e6 if weights.exists() else None}


def budget_cut(name: str, stop_reason: str | None, epochs: int) -> str | None:
    """A note when the time budget, not early stopping or the epochs, ended a model's training:
    its score is what it reached in the time, and may say little about the model."""
    if not (stop_reason or "").startswith("time budget"):
        return None
    return (f"{name} was cut short by the time budget after {plural(epochs, 'epoch')} ({stop_reason}); "
            "its score is what it reached in that time: raise --budget-seconds to judge it")


def latency_ms(predictor: Any, X: Any, repeats: int = 2) -> float:
    """Milliseconds per sample of predictor.predict on X (raw rows, preprocessing included);
    the best of `repeats` passes."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(X)
        best = min(best, time.perf_counter() - start)
    return best * 1000 / max(len(X), 1)


def _write(result: Comparison, source: Any, settings: dict[str, Any]) -> None:
    from deepfit.core.io import atomic_write_bytes
    from deepfit.evaluation.plots import score_vs_time

    path = result.path
    write_text(path / "compare.csv", result.table.to_csv(index=False))
    write_json(path / "compare.json", result.to_dict() | {
        "source": str(source) if isinstance(source, (str, Path)) else None, "settings": settings})
    points = {r["model"]: (r["train_seconds"], r["test_score"]) for r in result.table.to_dict("records")}
    (path / "plots").mkdir(exist_ok=True)
    png = score_vs_time(points, result.metric)
    atomic_write_bytes(path / "plots" / "score_vs_time.png", png)
    write_text(path / "compare.html", render(result, png))


def render(result: Comparison, png: bytes) -> str:
    from deepfit.evaluation.report import _e, _figure, _num, _page, _section, _table

    rows = [[_e(r["model"]) if not (result.runs.get(r["model"]) and
                                     (result.runs[r["model"]] / "report.html").exists())
             else f"<a href='{_e(r['model'])}/report.html'>{_e(r['model'])}</a>",
             *(_num(r[c]) for c in result.table.columns[1:])] for r in records(result.table)]
    parts = [f"<h1>deepfit compare: {len(rows)} models</h1>"
             f"<p class=sub>{_e(result.task)}; score: test {_e(result.metric)}, best first; one split "
             f"and one seed for every model</p>",
             _section("Leaderboard", _table(list(result.table.columns), rows)),
             _section("Score against training time", _figure(png, "test score against training seconds"))]
    if result.notes:
        parts.append(_section("Notes", "<ul class=plain>" + "".join(
            f"<li>{_e(n)}</li>" for n in result.notes) + "</ul>"))
    return _page("deepfit compare", "".join(parts), {})


__all__ = ["COLUMNS", "Comparison", "compare", "model_names", "records"]
