"""Anomaly scores → a threshold, flags and metrics.

    fit_threshold(val_scores, contamination)   the (1 − contamination) quantile of the VALIDATION
                                               rows' scores (numpy's linear quantile): about that
                                               share of normal-looking rows is flagged
    anomaly_metrics(scores, labels, threshold) with 0/1 labels: AUROC and average precision of the
                                               scores, precision@k (k = the number of true
                                               anomalies), and the confusion at the threshold,
                                               all from sklearn.metrics
    anomaly_evaluation(...)                    the same as an evaluation.full_metrics.Evaluation

A score is an autoencoder's per-row reconstruction error (models/autoencoder.py), or any score
where larger means more anomalous (compare's IsolationForest: minus its `score_samples`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepfit.core.notes import Notes
from deepfit.errors import SettingsError
from deepfit.evaluation.full_metrics import Evaluation


def fit_threshold(val_scores: Any, contamination: float) -> float:
    """The (1 − `contamination`) quantile of the validation scores [N]. Raises SettingsError for
    a contamination outside (0, 0.5) or no finite score."""
    scores = np.asarray(val_scores, dtype=np.float64).reshape(-1)
    if not 0 < contamination < 0.5:
        raise SettingsError(f"contamination must be a share in (0, 0.5), not {contamination!r}")
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        raise SettingsError("no finite validation score to set the anomaly threshold from")
    return float(np.quantile(scores, 1.0 - contamination))


def anomaly_threshold(val_scores: Any, contamination: float, notes: Notes) -> dict:
    """{"threshold", "contamination"}: the (1 − contamination) quantile of the validation rows'
    reconstruction errors (anomaly/scores.py), noted."""
    scores = val_scores.double().cpu().numpy() if hasattr(val_scores, "cpu") else val_scores
    value = fit_threshold(scores, contamination)
    notes.decide(f"anomaly threshold {value:.4g}: the {1 - contamination:.3g} quantile of the "
                 f"{len(val_scores):,} validation rows' reconstruction errors (--contamination "
                 f"{contamination:g}); trained on every training row, labels unused")
    return {"threshold": value, "contamination": float(contamination)}


def precision_at_k(scores: np.ndarray, labels: np.ndarray, k: int | None = None) -> float:
    """The share of true anomalies among the `k` highest scores (default k: the number of true
    anomalies, where precision@k equals recall@k, the R-precision). Ties broken by row order."""
    k = int(labels.sum()) if k is None else int(k)
    if k < 1:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[:k]
    return float(labels[top].mean())


def anomaly_metrics(scores: Any, labels: Any | None, threshold: float,
                    contamination: float | None = None) -> dict[str, Any]:
    """Metrics of anomaly `scores` [N] (larger: more anomalous), flagged at `threshold`; with
    0/1 `labels` [N] (1: anomaly) also roc_auc and average_precision (sklearn.metrics'
    roc_auc_score and average_precision_score), precision_at_k (k = true anomalies), and
    precision, recall, f1 and the confusion matrix [[TN, FP], [FN, TP]] at the threshold. The
    ranking metrics are None when the labels hold one class only."""
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    flags = scores >= threshold
    metrics: dict[str, Any] = {
        "n": len(scores), "threshold": float(threshold), "flagged": int(flags.sum()),
        "flagged_share": float(flags.mean()) if len(flags) else 0.0,
        "mean_score": float(scores.mean()) if len(scores) else float("nan"),
        "median_score": float(np.median(scores)) if len(scores) else float("nan"),
    }
    if contamination is not None:
        metrics["contamination"] = float(contamination)
    if labels is None:
        metrics["labelled"] = False
        return metrics
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    both = len(np.unique(y)) == 2
    k = int(y.sum())
    metrics |= {
        "labelled": True, "anomalies": k,
        "roc_auc": float(roc_auc_score(y, scores)) if both else None,
        "average_precision": float(average_precision_score(y, scores)) if both else None,
        "precision_at_k": precision_at_k(scores, y) if k else None, "k": k,
        "precision": float(precision_score(y, flags, zero_division=0)),
        "recall": float(recall_score(y, flags, zero_division=0)),
        "f1": float(f1_score(y, flags, zero_division=0)),
        "confusion_matrix": confusion_matrix(y, flags, labels=[0, 1]).tolist(),
    }
    return metrics


def anomaly_evaluation(scores: Any, labels: Any | None, threshold: float,
                       contamination: float | None = None) -> Evaluation:
    """anomaly_metrics as an Evaluation (task "anomaly"): target the labels (zeros without
    them), preds the 0/1 flags, scores the scores."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    target = (np.zeros(len(scores), dtype=np.int64) if labels is None
              else np.asarray(labels).reshape(-1).astype(np.int64))
    flags = (scores >= threshold).astype(np.int64)
    return Evaluation("anomaly", target, flags, None,
                      anomaly_metrics(scores, labels, threshold, contamination), scores=scores)


__all__ = ["anomaly_evaluation", "anomaly_metrics", "anomaly_threshold", "fit_threshold", "precision_at_k"]
