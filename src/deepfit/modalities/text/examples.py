"""The text run report's examples: the test texts the model got most confidently wrong
(classification: wrong predictions by the probability given to the predicted class) or furthest
off (regression: by the absolute error), shortened to one line each. The report
(evaluation/report.py) escapes them as it shows them."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepfit.modalities.text.audit import shorten
from deepfit.modalities.text.tokens import as_texts

CONFUSED = 10  # examples shown
REPORT_CHARS = 200  # characters of each text shown


def confused_examples(pre: Any, X: Any, evaluation: Any, classes: list[Any],
                      k: int = CONFUSED) -> list[dict[str, Any]]:
    """Up to `k` rows {text column: shortened text, …, "true", "predicted", "probability"}
    (classification) or {…, "true", "predicted", "error"} (regression), the worst first.
    `X`: the raw test rows (a DataFrame) in the order of `evaluation`'s arrays."""
    columns = [c for c in pre.text_columns if c in getattr(X, "columns", [])]
    if (not columns or evaluation is None or evaluation.task not in ("classification", "regression")
            or evaluation.target is None or not len(evaluation.target)):
        return []
    target, preds = np.asarray(evaluation.target), np.asarray(evaluation.preds)
    if target.ndim != 1 or len(target) != len(X):
        return []
    names = [str(c) for c in classes]

    def label(code: Any) -> str:
        return names[int(code)] if 0 <= int(code) < len(names) else str(code)

    if evaluation.proba is not None:
        wrong = np.flatnonzero(preds != target)
        confidence = np.asarray(evaluation.proba)[wrong, preds[wrong]]
        order = wrong[np.argsort(-confidence, kind="stable")][:k]
        rows = [{"true": label(target[i]), "predicted": label(preds[i]),
                 "probability": float(evaluation.proba[i, preds[i]])} for i in order]
    else:
        error = np.abs(preds.astype(np.float64) - target.astype(np.float64))
        order = np.argsort(-error, kind="stable")[:k]
        rows = [{"true": float(target[i]), "predicted": float(preds[i]), "error": float(error[i])}
                for i in order]
    texts = {c: as_texts(X[c]) for c in columns}
    return [{**{c: shorten(texts[c][int(i)], REPORT_CHARS) for c in columns}, **row}
            for i, row in zip(order, rows)]
