"""`deepfit advise`: the guide's checklist and matrix, evaluated on the user's data and machine.

    1. read and split the data once (runs/prepare.py: the seed's train / validation / test rows)
    2. bake-off on that split, time-boxed: deepfit's default network for the modality and the
       modality's baselines (Modality.baseline_kinds, tools/compare/baselines.py: gradient
       boosting and a linear model; for text TF-IDF + logistic regression), each on 25, 50 and
       100 % of the training rows (a short learning curve), scored on the same test rows
    3. the checklist, each item ticked or not with its evidence; the matrix row that applies;
       the verdict (advise_rules.py: the rule of thumb, overridden by clear evidence); the
       command to run next
    4. advise.json, advise.html and plots/learning_curve.png in the output directory

Nothing of the bake-off is kept but its numbers: the models are small, quick and thrown away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.config import UNSUPERVISED, split_settings
from deepfit.core.io import default_run_dir, new_run_dir
from deepfit.core.notes import Notes, logger
from deepfit.data.dataset import source_name
from deepfit.errors import DeepfitError, SettingsError, TrainingInterrupted
from deepfit.lifecycle.prepare import Prepared, prepare_config
from deepfit.lifecycle.train import fit_prepared, resolve_device
from deepfit.modalities import get_modality
from deepfit.models import resolve_settings
from deepfit.tools.advise.interpret import interpretability_evidence
from deepfit.tools.advise.report import write_advice
from deepfit.tools.advise.result import Advice, Item
from deepfit.tools.advise.rules import Evidence, baseline_for, decide, gap, matrix_row, row_band
from deepfit.tools.compare.baselines import describe, encode, fit_baseline, ranking_metric
from deepfit.tools.compare.comparison import budget_cut, latency_ms, readable

FRACTIONS = (0.25, 0.5, 1.0)
DEFAULT_BUDGET = 120.0  # seconds for the whole bake-off when --budget-seconds is not given
NET_SHARE = 0.6  # of the budget, for the network's three fits (each in proportion to its rows)
MAX_BAKEOFF_ROWS = 20_000  # training rows the bake-off uses at most (the curve runs below it)
BUDGET_SETTINGS = ("max_seconds", "epochs", "patience")


def advise(source: Any = None, y: Any = None, *, out: str | Path | None = None,
           need_interpretability: bool = False, latency_ms: float | None = None,
           budget_seconds: float | None = None, **settings: Any) -> Advice:
    """Evaluate the guide's checklist on this data and machine; write advise.json/.html."""
    settings = {k: v for k, v in settings.items() if v is not None}
    for name, value in (("budget_seconds", budget_seconds), ("latency_ms", latency_ms)):
        if value is not None and not value > 0:
            raise SettingsError(f"{name} must be a positive number of {name.split('_')[1]}, not {value}")
    budget = float(budget_seconds or DEFAULT_BUDGET)
    cfg = split_settings(readable(settings))
    if cfg.data.task in UNSUPERVISED:  # its matrix weighs supervised models against each other
        raise SettingsError("advise weighs networks, gradient boosting and linear models on a "
                            "target; for anomaly detection compare an autoencoder with IsolationForest: "
                            "deepfit compare DATA --task anomaly --models dense_ae")
    path = Path(out) if out else default_run_dir(f"advise-{source_name(source)}")
    with new_run_dir(path):
        prepared = prepare_config(source, y, cfg, Notes(live=False))
        data = prepared.data
        net = cfg.model.name or get_modality(data.modality).default_model
        nets = {net: prepared}
        if cfg.model.name is None:  # a table that is a signal: a sequence model too, say
            nets.update(_alternatives(source, y, cfg, prepared))
        ratio = prepared.imbalance.ratio if prepared.imbalance is not None else None
        metric, why = ranking_metric(data.task, ratio, cfg.train.monitor)
        kinds = get_modality(data.modality).baseline_kinds
        _say_plan(list(nets), min(prepared.sizes["train"], MAX_BAKEOFF_ROWS), budget,
                  [describe(k, data.task) for k in kinds])
        rows = _bakeoff(prepared, cfg, nets, budget, metric)
        net, chosen = _choose_network(rows, net)
        evidence, full = _evidence(prepared, rows, net, cfg.train.seed, metric)
        rule, row_text = matrix_row(data.modality, len(data), need_interpretability)
        verdict, reasons = decide(rule, evidence, need_interpretability, latency_ms)
        reasons[1:1] = chosen
        device = str(resolve_device(cfg.train.device))
        estimate = _estimate(verdict, full, net, cfg, prepared.sizes["train"])
        curves = {m: _rising(rows, m, data.task, full[net]["target"], cfg.train.seed, metric)
                  for m in (net, kinds[0])}
        interpretable = (interpretability_evidence(prepared, full, evidence, cfg.train.seed)
                         if need_interpretability else None)
        checklist = _checklist(data, evidence, curves, device, estimate, verdict,
                               interpretable, latency_ms)
        advice = Advice(verdict, rule, row_text, reasons, checklist, _plain_rows(rows),
                        evidence.metric, data.task, data.modality, len(data), device, estimate,
                        next_command(verdict, source, settings, net, evidence.best_baseline), path,
                        _evidence_dict(evidence, rows, net) | (
                            {"interpretability": interpretable} if interpretable else {}),
                        [why] if why else [])
        advice.notes.extend(cut for r in rows if "epochs_run" in r and (cut := budget_cut(
            f"{r['model']} on {r['train_rows']:,} rows", r["stop_reason"], r["epochs_run"])))
        write_advice(advice)
    return advice


def _alternatives(source: Any, y: Any, cfg: Any, prepared: Prepared) -> dict[str, Prepared]:
    """{model: the data read as its modality} for the models of another modality the data's
    own suggests (Modality.alternatives: cnn1d for a table that looks like one ordered signal),
    each read with the very same split (the same training, validation and test rows); a
    reading that fails or splits otherwise is left out (logged)."""
    found = {}
    for model, modality in get_modality(prepared.data.modality).alternatives(prepared.data).items():
        other = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, modality=modality))
        try:
            read = prepare_config(source, y, other, Notes(live=False), models={model: {}})
        except DeepfitError as exc:
            logger.info(f"advise: reading the data as {modality} for {model} failed ({exc}); "
                        f"{model} is not tried")
            continue
        same = (all(torch.equal(read.tensors[k][1], prepared.tensors[k][1]) for k in ("train", "val"))
                and np.array_equal(read.test_frame[1].to_numpy(), prepared.test_frame[1].to_numpy()))
        if same:
            found[model] = read
    return found


def _choose_network(rows: list[dict], net: str) -> tuple[str, list[str]]:
    """The network the evidence speaks for: the one with the best validation score on all the
    bake-off's rows (never the test score, which judges it); with the reason when there were two."""
    full = [r for r in rows if r["fraction"] == 1.0 and "epochs_run" in r]
    if len(full) < 2:
        return net, []
    best = max(full, key=lambda r: r["val_score"])
    scores = ", ".join(f"{r['model']} {r['val_score']:.3f}" for r in full)
    others = ", ".join(r["model"] for r in full if r["model"] != net)
    return best["model"], [f"the data suggested {others} beside {net} (for a table that looks "
                           f"like one ordered signal: each row read as a sequence); by validation "
                           f"score ({scores}) the network is {best['model']}"]


def _say_plan(nets: list[str], n_train: int, budget: float, baselines: list[str]) -> None:
    """Say up front how long the bake-off will take: its budget bounds every fit (a network
    may overrun its share by a step and a validation pass)."""
    logger.info(f"advise: {', '.join(nets)}, {' and '.join(baselines)} on 25, 50 and 100 % of "
                f"{n_train:,} training rows, within --budget-seconds {budget:g}: at most "
                f"~{budget:.0f} s of training in all, plus evaluation")


def _bakeoff(prepared: Prepared, cfg: Any, nets: dict[str, Prepared], budget: float,
             metric: str) -> list[dict[str, Any]]:
    """Each model on 25 / 50 / 100 % of the training rows, on the same validation and test rows,
    scored by `metric` (with test_accuracy beside it when that is another classification score).
    `nets`: each network with the data as it reads them (the same rows in every split); they
    share the networks' part of the budget."""
    enc = encode(prepared)
    n_train = min(len(enc.y["train"]), MAX_BAKEOFF_ROWS)
    order = _order(enc.y["train"], prepared.data.task, cfg.train.seed)[:n_train]
    results = []
    for fraction in FRACTIONS:
        rows = np.sort(order[: max(2, math.ceil(fraction * n_train))])
        share = budget * fraction / sum(FRACTIONS)
        for net, data in nets.items():
            results.append(_network(data, cfg, net, rows, share * NET_SHARE / len(nets), metric)
                           | {"fraction": fraction})
        for kind in enc.kinds:
            r = fit_baseline(kind, enc, rows=rows, max_seconds=share * (1 - NET_SHARE) / len(enc.kinds),
                             seed=cfg.train.seed, metric=metric)
            results.append({"model": kind, "fraction": fraction, "train_rows": len(rows),
                            "test_score": r.test_score, "val_score": r.val_score,
                            "train_seconds": r.train_seconds, "latency_ms": r.latency_ms,
                            "preds": r.test_pred, "test_accuracy": r.test_metrics.get("accuracy")})
    if metric in ("accuracy", "r2"):  # the score is accuracy (or a regression's): no second column
        for r in results:
            r.pop("test_accuracy", None)
    return results


def _order(y: np.ndarray, task: str, seed: int) -> np.ndarray:
    """A seeded order of the training rows in which one row of every class comes first, so that
    each subsample holds every class (a model cannot learn a class it never saw)."""
    order = np.random.default_rng(seed).permutation(len(y))
    if task != "classification":
        return order
    _, first = np.unique(y[order], return_index=True)
    return np.concatenate([order[np.sort(first)], np.delete(order, first)])


def _network(prepared: Prepared, cfg: Any, net: str, rows: np.ndarray, seconds: float,
             metric: str) -> dict[str, Any]:
    """deepfit's network on the given training rows, by the same Trainer, time-boxed; not saved."""
    X, y = prepared.tensors["train"]
    subset = dataclasses.replace(prepared, tensors={**prepared.tensors, "train": (X[rows], y[rows])})
    train = dataclasses.replace(cfg.train, checkpoint=False, progress=False,
                                max_seconds=min(seconds, cfg.train.max_seconds or math.inf))
    run_cfg = dataclasses.replace(cfg, train=train, model=dataclasses.replace(cfg.model, name=net))
    device = resolve_device(train.device)
    if train.threads:
        torch.set_num_threads(train.threads)
    with tempfile.TemporaryDirectory() as tmp, _quiet():  # the bake-off's own warnings: not the user's
        try:
            predictor, state = fit_prepared(run_cfg, resolve_settings(net, cfg.model.settings), subset,
                                           device, Notes(live=False), Path(tmp), None)
        except TrainingInterrupted:  # no checkpoint to resume from: the advice is dropped
            raise KeyboardInterrupt from None
    evaluation = predictor.evaluation(*prepared.test_frame)
    best = state.history[state.best_epoch - 1]
    seconds_run = sum(h.get("epoch_seconds", 0.0) for h in state.history)
    return {"model": net, "train_rows": len(rows), "test_score": float(evaluation.metrics[metric]),
            "val_score": float(best[f"val_{metric}"]), "train_seconds": seconds_run,
            "latency_ms": latency_ms(predictor, prepared.test_frame[0]), "epochs_run": state.epoch,
            "best_epoch": state.best_epoch, "stop_reason": state.stop_reason,
            "test_accuracy": evaluation.metrics.get("accuracy"),
            "epoch_seconds": seconds_run / max(state.epoch, 1), "preds": evaluation.preds,
            "target": evaluation.target, "predictor": predictor}  # the predictor: not kept after advise


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    logger = logging.getLogger("deepfit")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _evidence(prepared: Prepared, rows: list[dict], net: str, seed: int,
              metric: str) -> tuple[Evidence, dict]:
    task = prepared.data.task
    full = {r["model"]: r for r in rows if r["fraction"] == 1.0}
    target = full[net]["target"]
    scores = {k: r["test_score"] for k, r in full.items()}
    kinds = get_modality(prepared.data.modality).baseline_kinds
    best = max(kinds, key=lambda k: scores[k])
    net_gap = gap(task, target, (net, best), (scores[net], scores[best]),
                  (full[net]["preds"], full[best]["preds"]), seed, metric)
    gl = None  # gradient boosting against the linear model, where the data get both
    if {"gradient_boosting", "linear"} <= set(kinds):
        gl = gap(task, target, ("gradient_boosting", "linear"),
                 (scores["gradient_boosting"], scores["linear"]),
                 (full["gradient_boosting"]["preds"], full["linear"]["preds"]), seed, metric)
    lat = {k: r["latency_ms"] for k, r in full.items()}
    labels = {k: describe(k, task) for k in kinds}
    return Evidence(metric, scores, net, net_gap, gl, lat, best, labels), full


def _rising(rows: list[dict], model: str, task: str, target: np.ndarray, seed: int,
            metric: str) -> tuple[bool, str]:
    """Whether the model's score still rises from 50 % to 100 % of the rows by more than the
    noise (one paired-bootstrap standard error, and at least half a point)."""
    curve = [r for r in rows if r["model"] == model]
    half, whole = curve[-2], curve[-1]
    g = gap(task, target, ("100%", "50%"), (whole["test_score"], half["test_score"]),
            (whole["preds"], half["preds"]), seed, metric)
    points = ", ".join(f"{r['train_rows']:,} rows {r['test_score']:.3f}" for r in curve)
    return g.diff > max(g.se, 0.005), f"{model}: {points} (last gain {g.diff:+.3f} ± {g.se:.3f})"


def _estimate(verdict: str, full: dict, net: str, cfg: Any, n_train: int) -> float | None:
    """Seconds to train the suggested model on all the training rows, from its timed run (scaled
    by the rows, where the bake-off used fewer: MAX_BAKEOFF_ROWS)."""
    if verdict in ("gradient_boosting", "linear_model"):
        r = full[baseline_for(verdict, full)]
        return r["train_seconds"] * n_train / r["train_rows"]
    r = full[net]
    stopped_early = (r["stop_reason"] or "").startswith("early stopping")
    epochs = r["epochs_run"] if stopped_early else cfg.train.epochs
    return r["epoch_seconds"] * epochs * n_train / r["train_rows"]


def _checklist(data: Any, ev: Evidence, curves: dict[str, tuple[bool, str]], device: str,
               estimate: float | None, verdict: str, interpretability: dict[str, Any] | None,
               bound: float | None) -> list[Item]:
    """The guide's checklist, each item with its evidence; `interpretability`: what
    interpret.py measured when it was asked for (None: not asked)."""
    n, rows_needed = len(data), get_modality(data.modality).enough_rows
    shape = "×".join(str(s) for s in np.shape(data.X)[1:]) or "?"
    first_kind, first = next(iter(ev.names.items()))  # the modality's first baseline's curve
    (net_rises, net_curve), (gb_rises, gb_curve) = curves[ev.net], curves[first_kind]
    baselines = " and ".join(ev.names.values())
    when = ("" if estimate is None else
            f"; the suggested model ({verdict}) trains in about {estimate:.3g} s here (timed)")
    items = [
        Item(f"labelled rows: deep learning usually needs ≥ {rows_needed:,} for {data.modality} data",
             n >= rows_needed, f"{n:,} labelled rows: {row_band(n)} (thresholds 1,000; 10,000; 100,000)"),
        Item("unstructured data (images, sequences) rather than a table",
             get_modality(data.modality).unstructured,
             f"{data.modality} data, each sample {shape}"),
        Item(f"patterns hard to hand-engineer: a network beats {baselines} on the same rows",
             ev.net_vs_best.clear, ev.net_vs_best.text(ev.metric)
             + "; " + ", ".join(f"{k} {v:.3f}" for k, v in ev.scores.items())),
        Item("more data would still help the network (its learning curve still rises)", net_rises,
             f"{net_curve}; {gb_curve} ({first} {'rises' if gb_rises else 'levels off'})"),
        Item("compute: a GPU, or training that fits in an hour here", device.startswith("cuda")
             or (estimate is not None and estimate < 3600), f"device {device}{when}"),
        Item("interpretability not required", interpretability is None,
             f"--need-interpretability given: {interpretability['text']}" if interpretability
             else "not asked for"),
    ]
    lat = ", ".join(f"{k} {v:.3g} ms" for k, v in ev.latency_ms.items())
    meets = bound is None or min(ev.latency_ms.values(), default=0.0) <= bound
    items.append(Item("latency: a model meets the bound", meets,
                      f"no bound given; measured per sample: {lat}" if bound is None
                      else f"bound {bound:g} ms; measured per sample: {lat}"))
    return items


def _plain_rows(rows: list[dict]) -> list[dict[str, Any]]:
    keep = ("model", "fraction", "train_rows", "test_score", "test_accuracy", "val_score",
            "train_seconds", "latency_ms", "epochs_run", "best_epoch", "stop_reason")
    return [{k: r[k] for k in keep if k in r} for r in rows]


def _evidence_dict(ev: Evidence, rows: list[dict], net: str) -> dict[str, Any]:
    return {"metric": ev.metric, "network": net, "scores": ev.scores,
            "network_vs_best_baseline": dataclasses.asdict(ev.net_vs_best) | {"clear": ev.net_vs_best.clear},
            "gradient_boosting_vs_linear": None if ev.gb_vs_linear is None else
            dataclasses.asdict(ev.gb_vs_linear) | {"tie": ev.gb_vs_linear.tie},
            "latency_ms": ev.latency_ms,
            "learning_curves": {m: [[r["train_rows"], r["test_score"]] for r in rows if r["model"] == m]
                                for m in dict.fromkeys(r["model"] for r in rows)}}


def next_command(verdict: str, source: Any, settings: dict[str, Any], net: str,
                 baseline: str | None = None) -> str:
    """The exact command to run next (`baseline`: the best baseline's kind, named when the
    verdict is a linear model and it is not scikit-learn's plain one: tfidf_linear)."""
    src = str(source) if isinstance(source, (str, Path)) else "DATA"
    flags = "".join(f" --{k.replace('_', '-')} {settings[k]}" for k in ("target", "task", "modality", "window", "horizon", "data_root")
                    if k in settings)
    if verdict == "deep_learning":
        return f"deepfit train {src}{flags} --model {net}"
    if verdict == "transfer_learning":
        return f"deepfit train {src}{flags} --model transfer:resnet18 --weights DEFAULT"
    if verdict == "try_both":
        return f"deepfit compare {src}{flags} --models {net} --baselines"
    row = "gradient_boosting" if verdict == "gradient_boosting" else (
        baseline if baseline and baseline != "gradient_boosting" else "linear")
    return f"deepfit compare {src}{flags} --models {net} --baselines   # the {row} row is the one to use"


__all__ = ["Advice", "Item", "advise", "next_command"]
