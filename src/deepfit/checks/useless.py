"""Why a model may be no better than the trivial predictor: the likely causes, in the training
and in the data (run_checklist looks when the success checklist's "better than the trivial
predictor" item fails).

    training      a guard found that the training itself failed (`failed_training`, from the
                  run's warnings and its LR): the loss became NaN/Inf, units died (no gradient,
                  dead ReLUs), the LR was far too high or too low, the first layers' gradients
                  vanished. That comes first, and the data are not blamed for it
    id_like       a categorical column with nearly as many categories as training rows: free
                  text or an ID read as categories, each seen about once, nothing to learn
    unseen        a categorical column whose test values are nearly all unknown to training
    independent   none of those, and the training did not fail: the target may not depend on
                  the features (worded for the data's kind: columns are a table's)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepfit.anomaly.checks import anomaly_items
from deepfit.config import UNSUPERVISED
from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.evaluation.checklist import success_checklist, trivial_reference
from deepfit.training.callbacks.guards import HIGH_LR, LOW_LR, LR_TOO_HIGH, LR_TOO_LOW

ID_LIKE_SHARE = 0.5  # categories / training rows at or above this: text or an ID, not a category
ID_LIKE_MIN = 20  # … and at least this many categories
UNSEEN_SHARE = 0.9  # test rows of unknown category at or above this share: nothing carries over


def run_checklist(prepared: Any, state: Any, metrics: dict, evaluation: Any,
                  notes: Notes, modality: Any = None) -> list[dict]:
    """A finished run's success checklist (`prepared`: lifecycle.prepare.Prepared, `state`: the TrainState,
    `evaluation`: the test split's, `modality`: the data's registered Modality, whose words the
    hint uses). A model no better than the trivial predictor is an
    error-level item with a `hint` (likely_causes) and a warning in `notes`."""
    task = prepared.data.task
    if task in UNSUPERVISED:  # the loss items, the training-mean baseline; the rest skipped
        items = success_checklist(state.history, state.best_epoch, metrics, task, state.warnings)
        items += anomaly_items(metrics)
        for item in items:
            if item.get("severity") == "error":
                notes.warn(f"the autoencoder is no better than the trivial predictor ({item['evidence']})")
        return items
    counts = prepared.imbalance.counts if prepared.imbalance is not None else None
    codes = evaluation.target.reshape(-1).tolist() if task == "classification" else []
    reference = trivial_reference(task, counts, codes, prepared.target.classes)
    items = success_checklist(state.history, state.best_epoch, metrics, task, state.warnings,
                              reference, n_val=prepared.sizes.get("val"))
    for item in items:
        if item.get("severity") == "error":
            causes = likely_causes(prepared.preprocessor, prepared.sizes["train"],
                                   prepared.test_frame[0], warnings=state.warnings,
                                   history=state.history, modality=modality)
            item["hint"] = "; ".join(causes)
            notes.warn(f"the model is no better than the trivial predictor ({item['evidence']}); "
                       f"likely cause: {item['hint']}")
    return items


def likely_causes(preprocessor: Any, n_train: int, X_test: Any, warnings: list[str] = (),
                  history: list[dict] = (), modality: Any = None) -> list[str]:
    """Sentences naming what likely made the model useless: the training, when the run's
    `warnings` and `history` show it failed (`failed_training`); each ID-like or all-unseen
    categorical column of a table (`preprocessor` fitted on `n_train` training rows, `X_test`
    the raw test rows); else, when the training did not fail, the target's independence of
    the inputs, in the words of the data's `modality` (a registered Modality: its
    `unrelated_cause`; None: words for any data)."""
    causes = []
    failed = failed_training(warnings, history)
    if failed:
        causes.append(f"the training failed, not (as far as can be told) the data: {failed}; "
                      "until the model trains, the data cannot be judged")
    categorical = list(getattr(preprocessor, "categorical", []))
    unseen = _unseen_shares(preprocessor, X_test) if categorical else {}
    for col in categorical:
        n_cat = len(col.categories)
        if n_cat >= ID_LIKE_MIN and n_cat >= ID_LIKE_SHARE * n_train:
            causes.append(f"column {col.name!r} was read as {n_cat:,} categories for "
                          f"{plural(n_train, 'training row')}: free text or an ID, each value seen "
                          "about once, which a model cannot learn from; drop it, or turn it into "
                          "real features")
        elif unseen.get(col.name, 0.0) >= UNSEEN_SHARE:
            causes.append(f"column {col.name!r}: {unseen[col.name]:.0%} of the test rows hold a "
                          "category never seen in training, so what was learnt from it does not apply")
    if not causes:
        causes.append(_independent(n_train, modality))
    return causes


def _independent(n_train: int, modality: Any) -> str:
    if modality is not None:
        return modality.unrelated_cause(n_train)
    return (f"the target may not depend on the inputs (labels shuffled, or not matched to their "
            f"samples?), or too weakly for {plural(n_train, 'training sample')}")


def failed_training(warnings: list[str], history: list[dict] = ()) -> str | None:
    """What the guards' `warnings` (and the `history`'s LR) say went wrong in the training
    itself, in words, or None: non-finite values; dead units or dead ReLUs; "loss not
    decreasing" with the LR named as its cause, or with an LR of guards.HIGH_LR or more (or
    guards.LOW_LR or less); vanishing gradients."""
    said = {w.split(":", 1)[0]: w for w in warnings if ":" in w}
    rates = [h["lr"] for h in history if isinstance(h.get("lr"), (int, float))]
    lr = max(rates) if rates else None
    at = f" (lr {lr:.3g})" if lr is not None else ""
    stuck = said.get("loss not decreasing", "").lower()
    if "non-finite values" in said:
        return (f"it diverged: the loss became NaN/Inf{at}, see the non-finite values warning; "
                "try a learning rate 10x lower")
    if LR_TOO_HIGH in stuck or (stuck and lr is not None and lr >= HIGH_LR):
        return (f"{LR_TOO_HIGH}{at}: the loss jumped or overshot and the model collapsed to "
                "the prediction that ignores the inputs, see the loss not decreasing warning; "
                "try a learning rate 10x lower")
    if LR_TOO_LOW in stuck or (stuck and lr is not None and lr <= LOW_LR):
        return (f"{LR_TOO_LOW}{at}: the weights barely moved, see the loss not decreasing "
                "warning; try a learning rate 100x higher")
    if "vanishing gradients" in said:  # before dead ReLUs: a deep plain network has both
        return ("the first layers' gradients vanished, so they barely learnt, see the vanishing "
                "gradients warning; a residual model or fewer layers")
    dead = next((key for key in ("dead units", "dead ReLU") if key in said), None)
    if dead:
        return (f"units of the network died{at}: they output the same for every input, so the "
                f"model cannot tell inputs apart, see the {dead} warning; a lower learning rate, "
                "LeakyReLU/GELU or normalisation before the activations")
    return None


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


__all__ = ["failed_training", "likely_causes", "run_checklist"]
