"""The guide's two non-deep baselines, on exactly the rows and features a deepfit run sees.

    gradient_boosting   scikit-learn's HistGradientBoostingClassifier / Regressor (defaults;
                        embedded category columns declared categorical)
    linear              LogisticRegression / Ridge, category columns one-hot encoded
    tfidf_linear        text: scikit-learn's TfidfVectorizer (word 1- and 2-grams in ≥ 2 texts,
                        sublinear tf)
                        of each raw text column of the training split, the other columns as the
                        linear baseline takes them (one-hot / standardised) beside it, and
                        LogisticRegression / Ridge (C or alpha of TFIDF_STRENGTHS chosen by the
                        validation score): what a careful practitioner tries first on text
                        (Joachims 1998; Wang & Manning 2012, "Baselines and Bigrams")

Which ones a run gets is its modality's (Modality.baseline_kinds; tables: the first two, text:
the third); `describe` names them in plain words.

Both take a run's `Prepared` splits (runs/prepare.py: the same seed, the same train / validation /
test rows, the preprocessing fitted on the training rows) flattened to one row per sample, and
are scored by the functions deepfit scores its own models with: the validation score by the
per-epoch metrics (evaluation/metrics.py), the test metrics by evaluate_outputs
(evaluation/full_metrics.py) on the same test rows. `main_metric` is accuracy for classification
and r2 for regression; higher is better for both. `ranking_metric` is what compare and advise
rank by: balanced accuracy under class imbalance, or the run's --monitor when it is a score.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit.evaluation.full_metrics import evaluate_outputs
from deepfit.evaluation.metrics import metric_fn
from deepfit.modalities import get_modality

KINDS = ("gradient_boosting", "linear", "tfidf_linear")
GB_STEP, GB_MAX_ITER = 25, 100  # boosting rounds added per step while the time budget lasts
# tfidf_linear's inverse regularisation strengths tried (LogisticRegression's C; Ridge's 1/alpha),
# the one with the best validation score kept, as the networks keep their best epoch by it
TFIDF_STRENGTHS = (1.0, 10.0, 100.0)
# … and the n-grams kept: those of at least TFIDF_MIN_DF training texts (one-text n-grams are
# mostly noise that swamps the l2 norm on a few hundred texts), from TFIDF_MIN_ROWS rows up
TFIDF_MIN_DF, TFIDF_MIN_ROWS = 2, 50
HIST_MAX_CATEGORIES = 255  # HistGradientBoosting's limit on a categorical feature's values


@dataclass
class Encoded:
    """The splits as 2-D float arrays (one row per sample) and encoded targets."""

    X: dict[str, np.ndarray]  # split → [N, F]
    y: dict[str, np.ndarray]  # split → class codes [N], or standardised values
    task: str
    n_dense: int  # the columns after n_dense are category indices (0 = unknown)
    cardinalities: tuple[int, ...]
    n_classes: int
    target_mean: float = 0.0
    target_std: float = 1.0
    transform_ms: float = 0.0  # per test sample: the preprocessing, part of a baseline's latency
    # the raw text columns of each split (str), beside the encoded other columns; None: no text
    texts: dict[str, pd.DataFrame] | None = None
    n_other: int = 0  # the encoded columns that are not text (late fusion's tabular block)
    kinds: tuple[str, ...] = ("gradient_boosting", "linear")  # the baselines the data get


@dataclass
class BaselineResult:
    model: str
    metric: str
    test_score: float
    val_score: float
    train_seconds: float
    params: int
    latency_ms: float  # per sample: the preprocessing and the prediction, on the test split
    size_mb: float  # the fitted estimator, pickled (its size only: nothing is saved or loaded)
    test_metrics: dict[str, Any] = field(default_factory=dict)
    test_pred: np.ndarray | None = None  # predicted codes or values of the test rows
    estimator: Any = None
    train_rows: int = 0


SCORES = {"classification": ("accuracy", "balanced_accuracy", "f1_macro"), "regression": ("r2",),
          "anomaly": ("roc_auc", "average_precision")}  # anomaly: the scores against the labels


def describe(kind: str, task: str) -> str:
    """A baseline in plain words: "TF-IDF + logistic regression", "gradient boosting" …"""
    linear = "logistic regression" if task == "classification" else "ridge regression"
    return {"gradient_boosting": "gradient boosting", "linear": f"a linear model ({linear})",
            "tfidf_linear": f"TF-IDF + {linear}"}.get(kind, kind)


def main_metric(task: str) -> str:
    return SCORES[task][0] if task in SCORES else "r2"


def ranking_metric(task: str, ratio: float | None = None,
                   monitor: str | None = None) -> tuple[str, str | None]:
    """The score compare and advise rank by, and a note saying why when it is not the task's
    main metric: the run's --monitor when it is a score (higher is better), else balanced
    accuracy when the training split's majority:minority `ratio` exceeds the imbalance rule's
    threshold (training/imbalance.AUTO_RATIO: always answering the majority class would score a
    high accuracy), else `main_metric`."""
    from deepfit.training.imbalance import AUTO_RATIO

    asked = (monitor or "").removeprefix("val_")
    if asked in SCORES[task] and asked != main_metric(task):
        return asked, f"ranked by {asked}, the --monitor asked for ({main_metric(task)} beside it)"
    if task == "classification" and ratio is not None and ratio > AUTO_RATIO:
        shown = f"{ratio:.1f}:1" if np.isfinite(ratio) else "a class absent"
        return "balanced_accuracy", (
            f"ranked by balanced accuracy: the training split's classes are imbalanced ({shown}, "
            f"above {AUTO_RATIO:g}:1), so accuracy rewards answering the majority class; "
            "accuracy is in the table beside it")
    return main_metric(task), None


def encode(prepared: Any) -> Encoded:
    """The prepared splits (lifecycle.prepare.Prepared) flattened, with the test split encoded too;
    for data with text columns (Modality.baseline_text_columns) also each split's raw texts, the
    same rows in the same order (Prepared.splits; missing texts as ""), for tfidf_linear."""
    X = {name: t[0].numpy().reshape(len(t[0]), -1) for name, t in prepared.tensors.items()}
    y = {name: t[1].numpy() for name, t in prepared.tensors.items()}
    X_test, y_test = prepared.test_frame
    start = time.perf_counter()
    features = prepared.preprocessor.transform(X_test)
    transform_ms = (time.perf_counter() - start) * 1000 / max(len(features), 1)
    X["test"], y["test"] = features.reshape(len(features), -1), prepared.target.transform(y_test)
    spec, (task, n_out) = prepared.preprocessor.input_spec(), (prepared.data.task, prepared.target.n_outputs)
    modality = get_modality(prepared.data.modality)
    columns = modality.baseline_text_columns(prepared.preprocessor)
    texts, n_other = None, 0
    if columns and prepared.splits is not None:
        frames = {"train": prepared.data.X.iloc[prepared.splits.train],
                  "val": prepared.data.X.iloc[prepared.splits.val], "test": X_test}
        texts = {k: f[columns].fillna("").astype(str).reset_index(drop=True) for k, f in frames.items()}
        n_other = int(spec["n_features"]) - int(np.prod(spec["shape"]))
    return Encoded(X, y, task, spec["n_dense"], tuple(spec.get("cardinalities", ())), n_out,
                   prepared.target.mean, prepared.target.std, transform_ms, texts, n_other,
                   tuple(modality.baseline_kinds))


def _inputs(kind: str, enc: Encoded, split: str) -> Any:
    """What a baseline takes of one split: the encoded array, or for tfidf_linear a frame of the
    raw text columns and the encoded other columns (o0, o1 …)."""
    if kind != "tfidf_linear":
        return enc.X[split]
    if enc.texts is None:
        raise ValueError("tfidf_linear needs the raw text columns: these data have none")
    other = pd.DataFrame(enc.X[split][:, :enc.n_other], columns=[f"o{i}" for i in range(enc.n_other)])
    return pd.concat([enc.texts[split].add_prefix("text:"), other], axis=1)


def fit_baseline(kind: str, enc: Encoded, *, rows: np.ndarray | None = None,
                 max_seconds: float | None = None, seed: int = 0,
                 metric: str | None = None) -> BaselineResult:
    """Fit one baseline on the training split (or the training `rows` given) and score it by
    `metric` (default: main_metric; see ranking_metric)."""
    metric = metric or main_metric(enc.task)
    X, y = _inputs(kind, enc, "train"), enc.y["train"]
    if rows is not None:
        X, y = (X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]), y[rows]
    score = metric_fn(enc.task, enc.target_mean, enc.target_std)
    X_val, y_val = _inputs(kind, enc, "val"), torch.from_numpy(enc.y["val"])
    start, fitted = time.perf_counter(), []
    for strength in TFIDF_STRENGTHS if kind == "tfidf_linear" else (None,):
        estimator = _estimator(kind, enc, seed, len(y))
        if strength is not None:  # the regularisation, chosen by the validation score
            last = estimator.steps[-1][0]
            key = "C" if enc.task == "classification" else "alpha"
            estimator.set_params(**{f"{last}__{key}": strength if key == "C" else 1 / strength})
        if kind == "gradient_boosting":
            _boost(estimator, X, y, max_seconds)
        else:
            estimator.fit(X, y)
        fitted.append((float(score(_outputs(estimator, enc, X_val), y_val)[metric]), estimator))
    seconds = time.perf_counter() - start
    val_score, estimator = max(fitted, key=lambda f: f[0])  # the first of equals: the strongest
    start = time.perf_counter()
    out = _outputs(estimator, enc, _inputs(kind, enc, "test"))  # tfidf_linear: its own vectoriser
    own = 0.0 if kind == "tfidf_linear" else enc.transform_ms  # … in place of the tokenizer
    latency = (time.perf_counter() - start) * 1000 / max(len(out), 1) + own
    ev = evaluate_outputs(enc.task, out, torch.from_numpy(enc.y["test"]),
                          target_mean=enc.target_mean, target_std=enc.target_std)
    return BaselineResult(kind, metric, float(ev.metrics[metric]),
                          val_score, seconds, _n_params(estimator), latency,
                          len(pickle.dumps(estimator)) / 1e6, ev.metrics, ev.preds, estimator, len(y))


def _estimator(kind: str, enc: Encoded, seed: int, n_rows: int = 0) -> Any:
    from sklearn import ensemble, linear_model
    from sklearn.compose import ColumnTransformer
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    classify = enc.task == "classification"
    index_columns = list(range(enc.n_dense, enc.n_dense + len(enc.cardinalities)))
    if kind == "gradient_boosting":
        categorical = [c for c, k in zip(index_columns, enc.cardinalities) if k <= HIST_MAX_CATEGORIES]
        cls = ensemble.HistGradientBoostingClassifier if classify else ensemble.HistGradientBoostingRegressor
        model = cls(categorical_features=categorical or None, random_state=seed, warm_start=True)
        multi = not classify and enc.y["train"].ndim == 2
        return MultiOutputRegressor(model.set_params(warm_start=False)) if multi else model
    if kind not in ("linear", "tfidf_linear"):
        raise ValueError(f"unknown baseline {kind!r}; known: {', '.join(KINDS)}")
    model = linear_model.LogisticRegression(max_iter=1000) if classify else linear_model.Ridge()
    if kind == "tfidf_linear":
        return make_pipeline(_tfidf_columns(enc, TFIDF_MIN_DF if n_rows >= TFIDF_MIN_ROWS else 1), model)
    if not index_columns:
        return model
    onehot = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore"), index_columns)],
                               remainder="passthrough")
    return make_pipeline(onehot, model)


def _tfidf_columns(enc: Encoded, min_df: int = 1) -> Any:
    """scikit-learn's TfidfVectorizer (word 1- and 2-grams of at least `min_df` training texts,
    sublinear tf, its default lower-casing and l2 norm) per text column, fitted on the training
    rows; the other columns' category indices one-hot, their standardised numbers as they are."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import OneHotEncoder

    columns = list(enc.texts["train"].columns) if enc.texts is not None else []
    parts: list[tuple[str, Any, Any]] = [
        (f"tfidf_{i}", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df),
         f"text:{c}")
        for i, c in enumerate(columns)]
    index = [f"o{i}" for i in range(enc.n_dense, min(enc.n_dense + len(enc.cardinalities), enc.n_other))]
    if index:
        parts.append(("categories", OneHotEncoder(handle_unknown="ignore"), index))
    dense = [f"o{i}" for i in range(min(enc.n_dense, enc.n_other))]
    if dense:
        parts.append(("numbers", "passthrough", dense))
    return ColumnTransformer(parts)


def _boost(estimator: Any, X: np.ndarray, y: np.ndarray, max_seconds: float | None) -> None:
    """Boosting rounds GB_STEP at a time (warm start) up to the default GB_MAX_ITER, stopping
    early when the time budget is spent or the estimator's own early stopping ends it."""
    if not getattr(estimator, "warm_start", False) or max_seconds is None:
        estimator.fit(X, y)
        return
    start, estimator.max_iter = time.perf_counter(), GB_STEP
    estimator.fit(X, y)
    while (estimator.n_iter_ == estimator.max_iter < GB_MAX_ITER
           and time.perf_counter() - start < max_seconds):
        estimator.max_iter += GB_STEP
        estimator.fit(X, y)


def _outputs(estimator: Any, enc: Encoded, X: np.ndarray) -> torch.Tensor:
    """What a network would output: log-probabilities over every class (a class missing from
    a subsample's training rows gets ~0), or standardised values."""
    if enc.task == "classification":
        proba = np.full((len(X), enc.n_classes), 1e-12)
        proba[:, _classes(estimator)] = estimator.predict_proba(X)
        return torch.from_numpy(np.log(np.clip(proba, 1e-12, 1.0)))
    return torch.from_numpy(np.asarray(estimator.predict(X), dtype=np.float64))


def _classes(estimator: Any) -> np.ndarray:
    return np.asarray(estimator.classes_, dtype=np.int64)


def _n_params(estimator: Any) -> int:
    """Fitted numbers: a linear model's coefficients; a boosted model's tree nodes."""
    model = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(model, "coef_"):
        return int(np.size(model.coef_) + np.size(getattr(model, "intercept_", 0)))
    models = getattr(model, "estimators_", [model])
    return int(sum(len(p.nodes) for m in models for trees in m._predictors for p in trees))


__all__ = ["KINDS", "BaselineResult", "Encoded", "encode", "fit_baseline", "main_metric",
           "ranking_metric"]
