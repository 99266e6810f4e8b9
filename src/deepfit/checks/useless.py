"""Why a model may be no better than the trivial predictor: the likely causes found in the data
(run_checklist looks when the success checklist's "better than the trivial predictor" item fails).

    id_like       a categorical column with nearly as many categories as training rows: free
                  text or an ID read as categories, each seen about once, nothing to learn
    unseen        a categorical column whose test values are nearly all unknown to training
    independent   none of those: the target may not depend on the features
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.evaluation.checklist import success_checklist, trivial_reference

ID_LIKE_SHARE = 0.5  # categories / training rows at or above this: text or an ID, not a category
ID_LIKE_MIN = 20  # … and at least this many categories
UNSEEN_SHARE = 0.9  # test rows of unknown category at or above this share: nothing carries over


def run_checklist(prepared: Any, state: Any, metrics: dict, evaluation: Any,
                  notes: Notes) -> list[dict]:
    """A finished run's success checklist (`prepared`: lifecycle.prepare.Prepared, `state`: the TrainState,
    `evaluation`: the test split's). A model no better than the trivial predictor is an
    error-level item with a `hint` (likely_causes) and a warning in `notes`."""
    task = prepared.data.task
    counts = prepared.imbalance.counts if prepared.imbalance is not None else None
    codes = evaluation.target.reshape(-1).tolist() if task == "classification" else []
    reference = trivial_reference(task, counts, codes, prepared.target.classes)
    items = success_checklist(state.history, state.best_epoch, metrics, task, state.warnings,
                              reference, n_val=prepared.sizes.get("val"))
    for item in items:
        if item.get("severity") == "error":
            causes = likely_causes(prepared.preprocessor, prepared.sizes["train"],
                                   prepared.test_frame[0])
            item["hint"] = "; ".join(causes)
            notes.warn(f"the model is no better than the trivial predictor ({item['evidence']}); "
                       f"likely cause: {item['hint']}")
    return items


def likely_causes(preprocessor: Any, n_train: int, X_test: Any) -> list[str]:
    """Sentences naming what in the data likely made the model useless: each ID-like or
    all-unseen categorical column of a table (`preprocessor` fitted on `n_train` training rows,
    `X_test` the raw test rows), else the target's independence of the features."""
    causes = []
    categorical = list(getattr(preprocessor, "categorical", []))
    unseen = _unseen_shares(preprocessor, X_test) if categorical else {}
    for col in categorical:
        n_cat = len(col.categories)
        if n_cat >= ID_LIKE_MIN and n_cat >= ID_LIKE_SHARE * n_train:
            causes.append(f"column {col.name!r} was read as {n_cat} categories for {n_train} "
                          "training rows: free text or an ID, each value seen about once, which "
                          "a model cannot learn from; drop it, or turn it into real features")
        elif unseen.get(col.name, 0.0) >= UNSEEN_SHARE:
            causes.append(f"column {col.name!r}: {unseen[col.name]:.0%} of the test rows hold a "
                          "category never seen in training, so what was learnt from it does not apply")
    if not causes:
        causes.append("no column was read oddly: the target may not depend on these features "
                      f"(or too weakly for {n_train} training rows); `deepfit compare` shows "
                      "whether gradient boosting or a linear model finds more")
    return causes


def _unseen_shares(preprocessor: Any, X_test: Any) -> dict[str, float]:
    """Per categorical column, the share of test rows encoded as the unknown category (the
    preprocessor's layout: one-hot blocks, slot 0 unknown, then embedding indices, 0 unknown)."""
    if not isinstance(X_test, pd.DataFrame) or not len(X_test):
        return {}
    try:
        out = preprocessor.transform(X_test, Notes(live=False))
    except Exception:  # a hint is no place to fail a finished run
        return {}
    shares, j = {}, preprocessor.n_dense - sum(c.width for c in preprocessor.categorical
                                               if c.encoding == "onehot")
    for col in preprocessor.categorical:
        if col.encoding == "onehot":
            shares[col.name] = float(np.mean(out[:, j] == 1.0))
            j += col.width
    for col in preprocessor.categorical:
        if col.encoding == "embedding":
            shares[col.name] = float(np.mean(out[:, j] == 0))
            j += 1
    return shares


__all__ = ["likely_causes", "run_checklist"]
