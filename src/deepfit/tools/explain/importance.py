"""Permutation importance of each original column (Breiman 2001; scikit-learn's
`sklearn.inspection.permutation_importance`): the drop of the run's score on the held-out rows
when one column's raw values are shuffled across them, repeated with other shuffles for a
spread. The shuffle happens before the preprocessing, so a category's one-hot slots (or a
date's parts) move together: each column is scored as the one column it is in the data."""

from __future__ import annotations

from typing import Any

import torch

from deepfit.evaluation.metrics import metric_fn
from deepfit.modalities.explain import top_share

MAX_ROWS = 10_000  # held-out rows scored per shuffle at most (scikit-learn's max_samples)


class PredictorEstimator:
    """The thinnest scikit-learn estimator around a deepfit Predictor: `fit` does nothing (the
    model is trained), `score(X, y)` is the run's metric on raw rows X with raw targets y."""

    _estimator_type = "explained"

    def __init__(self, predictor: Any, metric: str) -> None:
        self.predictor, self.metric = predictor, metric

    def fit(self, X: Any, y: Any = None) -> PredictorEstimator:
        return self

    def score(self, X: Any, y: Any) -> float:
        p = self.predictor
        target = torch.from_numpy(p.target.transform(y))
        scores = metric_fn(p.task, p.target.mean, p.target.std)(p.outputs(X), target)
        return float(scores[self.metric])


def _scorer(estimator: PredictorEstimator, X: Any, y: Any) -> float:
    return estimator.score(X, y)


def permutation_importance(predictor: Any, X: Any, y: Any, metric: str, *, repeats: int = 5,
                           seed: int = 0) -> dict[str, Any]:
    """{metric, score (unshuffled), repeats, rows, columns: [{column, mean, std, share}], largest
    first, top3_share}: the mean and standard deviation over `repeats` shuffles of the score's
    drop per column of the DataFrame X (raw rows), share: its part of the total of the positive
    means. Uses scikit-learn's permutation_importance with a callable scorer."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    estimator = PredictorEstimator(predictor, metric)
    share = min(1.0, MAX_ROWS / max(len(X), 1))
    found = sk_permutation_importance(estimator, X, y, scoring=_scorer, n_repeats=repeats,
                                      random_state=seed, max_samples=share)
    means = {str(c): float(m) for c, m in zip(X.columns, found.importances_mean)}
    stds = {str(c): float(s) for c, s in zip(X.columns, found.importances_std)}
    total = sum(max(v, 0.0) for v in means.values())
    order = sorted(means, key=means.get, reverse=True)
    return {"metric": metric, "score": estimator.score(X, y), "repeats": repeats,
            "rows": round(share * len(X)),
            "columns": [{"column": c, "mean": means[c], "std": stds[c],
                         "share": max(means[c], 0.0) / total if total > 0 else 0.0} for c in order],
            "top3_share": top_share(means, 3),
            "method": "permutation importance (scikit-learn's permutation_importance): the drop of "
                      f"the test {metric} when one original column's values are shuffled"}


def spread_words(importance: dict[str, Any], k: int = 3) -> str:
    """One line: the k most important columns with their mean ± std, and their share."""
    cols = importance["columns"][:k]
    shown = ", ".join(f"{c['column']} {c['mean']:+.3f} ± {c['std']:.3f}" for c in cols)
    return (f"top {len(cols)} of {len(importance['columns'])} columns by permutation importance "
            f"(drop in test {importance['metric']} over {importance['repeats']} shuffles): {shown}; "
            f"they carry {importance['top3_share']:.0%} of the total importance")


__all__ = ["PredictorEstimator", "permutation_importance", "spread_words"]
