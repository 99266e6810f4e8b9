"""`deepfit explain RUN [SOURCE]`: what a trained model relies on, measured on rows it never saw
(the run's own test split, rebuilt from its directory: lifecycle/held_out.py), as plain data.

    1. permutation importance of each original column (importance.py), where the data have
       columns (Modality.explain_parts().columns: tables)
    2. integrated gradients (attributions.py, Captum) for a sample of held-out samples, summed
       into the units the data are explained in (a table's columns, an image's pixels, a
       sequence's time steps and channels: modalities/*/explain.py), with the completeness
       check and the model-randomisation test (Adebayo et al. 2018)
    3. explain.json and PNGs (OUT/explain.json, OUT/explain/*.png; OUT is the run directory by
       default, whose report.html then gets an Explanations section)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.config import UNSUPERVISED
from deepfit.core.io import write_json
from deepfit.core.notes import Notes
from deepfit.errors import SettingsError
from deepfit.evaluation.explain_section import EXPLAIN_JSON
from deepfit.evaluation.explain_section import EXPLAIN_PLOTS as PLOTS_DIR
from deepfit.evaluation.full_metrics import predict_codes
from deepfit.lifecycle.held_out import held_out_rows
from deepfit.lifecycle.predictor import Predictor
from deepfit.lifecycle.prepare import take
from deepfit.lifecycle.resume import run_record
from deepfit.tools.compare.baselines import ranking_metric
from deepfit.tools.explain.attributions import (
    BASELINE_WORDS,
    N_STEPS,
    completeness,
    integrated_gradients,
    rank_similarity,
    reinitialised,
)
from deepfit.tools.explain.importance import permutation_importance
from deepfit.tools.explain.plots import importance_plot

LOOSE = 0.05  # a sample whose attributions miss F(x) − F(baseline) by more than this share: a warning


def explain(run: str | Path, source: Any = None, *, rows: int | None = None, repeats: int = 5,
            out: str | Path | None = None, seed: int = 0, n_steps: int = N_STEPS,
            verify: bool = True) -> dict[str, Any]:
    """Explain the model of the run directory `run` on its test split (or the labelled
    `source`): permutation importance of each original column over `repeats` shuffles, and
    integrated gradients of `rows` held-out samples (default: the modality's), both checked.
    Writes OUT/explain.json and OUT/explain/*.png (OUT: `out`, default the run directory, whose
    report.html is then rewritten with the section) and returns what it wrote, as plain data.
    Raises SettingsError (bad numbers, no held-out rows), RunDirError, MissingExtraError
    (captum not installed: pip install 'deepfit[explain]')."""
    for name, value in (("rows", rows), ("repeats", repeats), ("n_steps", n_steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SettingsError(f"{name} must be a whole number of at least 1, not {value!r}")
    run_dir = Path(run)
    predictor = Predictor.load(run_dir, verify=verify)
    if predictor.task in UNSUPERVISED:  # no prediction to attribute: a reconstruction error
        raise SettingsError("explain covers classification and regression runs; an anomaly run's "
                            "report shows its worst-reconstructed samples and the score histogram")
    record = run_record(run_dir)
    held = held_out_rows(run_dir, predictor, source)
    parts = predictor.modality.explain_parts()
    pre, task = predictor.preprocessor, predictor.task
    metric, _ = ranking_metric(task, record["data"].get("imbalance_ratio"), record["train"].get("monitor"))
    result: dict[str, Any] = {"run": str(run_dir), "held_out": held.where, "rows": len(held.X),
                              "task": task, "modality": predictor.modality.name, "metric": metric,
                              "warnings": []}
    columns = parts.columns(pre)
    if columns:
        result["permutation_importance"] = permutation_importance(
            predictor, held.X[columns], held.y, metric, repeats=repeats, seed=seed)
    result["integrated_gradients"] = _attributions(predictor, parts, held, rows or parts.default_rows,
                                                   seed, n_steps, result["warnings"])
    out_dir = Path(out) if out is not None else run_dir
    result["plots"] = _plots(parts, pre, result, out_dir / PLOTS_DIR)
    result["sanity"] = result["integrated_gradients"].pop("sanity")
    if not result["sanity"]["passed"]:
        result["warnings"].append(result["sanity"]["text"])
    for warning in result["warnings"]:
        Notes().warn(warning)
    write_json(out_dir / EXPLAIN_JSON, result)
    if out_dir.resolve() == run_dir.resolve() and (run_dir / "report.html").exists():
        from deepfit.evaluation.report import write_report

        write_report(run_dir)
    return result


def _attributions(predictor: Predictor, parts: Any, held: Any, n: int, seed: int, n_steps: int,
                  warnings: list[str]) -> dict[str, Any]:
    """Integrated gradients of the samples the modality picks, their completeness, and the
    randomisation test on the same samples; the inputs and units are kept for the plots."""
    pre = predictor.preprocessor
    outputs = predictor.outputs(held.X)  # [N, K]: every held-out sample, for the picking
    classify = predictor.task == "classification"
    proba = torch.softmax(outputs.double(), dim=1).numpy() if classify else None
    codes = predictor.target.transform(held.y) if classify else None
    picked, reasons = parts.pick_rows(codes, proba, n, np.random.default_rng(seed))
    sample = take(held.X, picked)
    inputs = predictor.features(sample, Notes(live=False))
    # the class the model predicts (its decision threshold, for a binary run with one)
    predicted = predict_codes(torch.from_numpy(proba), predictor.threshold).numpy() if classify else None
    target: torch.Tensor | int = torch.from_numpy(predicted[picked]).long() if classify else 0
    found = integrated_gradients(predictor.model, inputs, target, parts.attributable(pre), n_steps)
    units, names = parts.units(pre, found.values)
    shuffled = integrated_gradients(reinitialised(predictor.architecture, seed + 1), inputs, target,
                                    parts.attributable(pre), n_steps)
    random_units, _ = parts.units(pre, shuffled.values)
    checked = completeness(found)
    if checked["max_relative_delta"] > LOOSE:
        warnings.append(f"integrated gradients miss completeness by up to {checked['max_relative_delta']:.0%} "
                        f"of F(x) − F(baseline) with {n_steps} steps: give more steps")
    described = parts.describe(units, names, _rows(predictor, held, picked, reasons, proba, predicted, outputs))
    return {"method": "integrated gradients (Sundararajan et al. 2017; Captum's IntegratedGradients)",
            "baseline": BASELINE_WORDS,
            "output": ("the logit of the class the model predicts" if classify
                       else "the first output, in standardised target units"),
            "n_steps": n_steps, "samples": len(picked), "completeness": checked,
            "sanity": rank_similarity(units, random_units), **described,
            "_inputs": inputs.numpy(), "_units": units}


def _rows(predictor: Predictor, held: Any, picked: np.ndarray, reasons: list[str],
          proba: np.ndarray | None, predicted: np.ndarray | None,
          outputs: torch.Tensor) -> list[dict[str, Any]]:
    """Each explained sample: its position in the held-out rows, why it was picked, its true
    and predicted label (with the probability) or value."""
    y = np.asarray(held.y)
    if proba is not None and predicted is not None:
        labels = predictor.target.inverse(predicted[picked])
        return [{"row": int(i), "reason": r, "true": _plain(y[i]), "predicted": _plain(p),
                 "probability": float(proba[i, predicted[i]])}
                for i, r, p in zip(picked, reasons, labels)]
    out = outputs[picked].double().numpy()
    values = np.asarray(predictor.target.inverse(out if predictor.target.n_targets > 1 else out.reshape(-1)))
    values = values.reshape(len(picked), -1)[:, 0]  # several steps ahead: the first
    return [{"row": int(i), "reason": r, "true": _plain(np.ravel(y[i])[0]), "predicted": float(v)}
            for i, r, v in zip(picked, reasons, values)]


def _plots(parts: Any, pre: Any, result: dict[str, Any], directory: Path) -> list[str]:
    """The PNGs: the permutation importance (where measured) and the modality's own."""
    directory.mkdir(parents=True, exist_ok=True)
    ig = result["integrated_gradients"]
    inputs, units = ig.pop("_inputs"), ig.pop("_units")
    drawn = {}
    if "permutation_importance" in result:
        drawn["importance"] = importance_plot(result["permutation_importance"], directory)
    drawn |= parts.plots(pre, inputs, units, ig, directory)
    return [str(p) for p in drawn.values()]


def _plain(value: Any) -> Any:
    """A label or value as JSON holds it."""
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
