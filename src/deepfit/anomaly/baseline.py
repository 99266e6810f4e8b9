"""compare's baseline for anomaly detection: scikit-learn's IsolationForest (Liu, Ting & Zhou
2008) fitted on exactly the preprocessed training rows the autoencoders see (tools/compare's
`encode`: the same split, the preprocessing fitted on the training rows, one row per sample,
a table's category columns as their index numbers), scored as the autoencoders are: its score
is minus `score_samples` (larger: more anomalous), its threshold the (1 − contamination)
quantile of the validation scores, its metrics anomaly/scores.py's."""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np

from deepfit.anomaly.scores import anomaly_metrics, fit_threshold

NAME = "isolation_forest"


def isolation_forest_row(enc: Any, *, contamination: float, metric: str, seed: int = 0,
                         labelled: bool = True) -> dict[str, Any]:
    """A leaderboard row (tools/compare COLUMNS) for an IsolationForest (100 trees, scikit-learn's
    defaults, `random_state=seed`) on `enc` (tools/compare/baselines.Encoded). The validation
    and test scores are `metric` (roc_auc or average_precision) against the 0/1 labels, None
    when the data are unlabelled (`labelled` False)."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(random_state=seed)
    start = time.perf_counter()
    forest.fit(enc.X["train"])
    seconds = time.perf_counter() - start
    val = -forest.score_samples(enc.X["val"])
    start = time.perf_counter()
    test = -forest.score_samples(enc.X["test"])
    latency = (time.perf_counter() - start) * 1000 / max(len(test), 1) + enc.transform_ms
    threshold = fit_threshold(val, contamination)
    val_metrics = anomaly_metrics(val, enc.y["val"] if labelled else None, threshold)
    test_metrics = anomaly_metrics(test, enc.y["test"] if labelled else None, threshold, contamination)
    return {"model": NAME, "metric": metric, "test_score": test_metrics.get(metric),
            "val_score": val_metrics.get(metric), "train_seconds": seconds, "best_epoch": None,
            "params": int(sum(t.tree_.node_count for t in forest.estimators_)),
            "latency_ms": latency, "size_mb": len(pickle.dumps(forest)) / 1e6,
            "test_metrics": test_metrics, "test_scores": np.asarray(test)}


def validation_score(predictor: Any, prepared: Any, metric: str) -> float | None:
    """An anomaly run's `metric` on the validation rows of `prepared` (lifecycle.prepare.Prepared),
    for compare's val_score column: the autoencoder's scores against the 0/1 labels. None for
    unlabelled data or rows not in memory."""
    import torch

    X, y = prepared.tensors["val"]
    if prepared.data.target is None or not isinstance(X, torch.Tensor):
        return None
    with torch.no_grad():
        scores = torch.cat([predictor.model(X[i : i + 4096].to(predictor.device)).cpu()
                            for i in range(0, len(X), 4096)]).double().numpy()
    return anomaly_metrics(scores, y.numpy(), predictor.anomaly["threshold"]).get(metric)


NOTE = ("isolation_forest: scikit-learn's IsolationForest on the same preprocessed training rows "
        "(score: minus score_samples; threshold: the same validation quantile); params = tree nodes, "
        "size = the pickled estimator")

__all__ = ["NAME", "NOTE", "isolation_forest_row", "validation_score"]
