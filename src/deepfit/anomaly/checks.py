"""What the success checklist and the run's checks mean for anomaly detection.

The loss items (decreased, stabilised, no train/validation gap, finite) hold as they are: the
loss is the mean reconstruction error. The trivial predictor of a reconstruction is the training
mean of every reconstructed value (`mean_baseline`): an autoencoder that does no better has
learnt nothing about the rows. What assumes labels to train on (class imbalance handling, the
trivial classifier, decision threshold tuning, test-vs-validation accuracy) is skipped, said so.
"""

from __future__ import annotations

from typing import Any

import torch

from deepfit.core.notes import Notes

SKIPPED = ("class imbalance handling (--imbalance)", "the trivial-classifier baseline",
           "decision threshold tuning (--threshold: the anomaly threshold is --contamination's)")


def skipped_note(train: Any, notes: Notes) -> None:
    """Say what does not apply to an anomaly run (`train`: config.TrainConfig)."""
    notes.decide("anomaly detection: skipped as not applicable: " + "; ".join(SKIPPED)
                 + "; the trivial baseline is predicting the training mean of every value")
    if train.threshold is not None:
        notes.warn("--threshold applies to binary classification; an anomaly run's threshold is "
                   "the validation quantile --contamination sets: ignored")


@torch.no_grad()
def mean_baseline(predictor: Any, X_train: Any, X_test: Any) -> float | None:
    """The trivial predictor's mean squared error on the raw test rows `X_test`: every row
    reconstructed as the training rows' mean of each value the autoencoder reconstructs
    (`model.target`; `X_train`: the preprocessed training tensor [N, ...]). None when the rows
    are not in memory (a streamed folder)."""
    if not isinstance(X_train, torch.Tensor) or hasattr(X_test, "chunks") or not len(X_test):
        return None
    model = predictor.model
    X_test = predictor.features(X_test, Notes(live=False))
    device = next(model.parameters()).device
    total, n = None, 0
    for i in range(0, len(X_train), 4096):
        part = model.target(X_train[i : i + 4096].to(device)).double()
        total = part.sum(0) if total is None else total + part.sum(0)
        n += len(part)
    mean = total / n
    errors = [(model.target(X_test[i : i + 4096].to(device)).double() - mean).square().flatten(1).mean(1)
              for i in range(0, len(X_test), 4096)]
    return float(torch.cat(errors).mean())


def anomaly_extras(predictor: Any, X_train: Any, X_test: Any, evaluation: Any) -> None:
    """An anomaly run's test Evaluation completed: its metrics get mean_baseline_score (the
    training mean's error, `mean_baseline`) and worst_examples (anomaly/report.py's rows), and
    the Evaluation the arrays of those samples, for the report."""
    from deepfit.anomaly.report import worst_examples

    evaluation.metrics["mean_baseline_score"] = mean_baseline(predictor, X_train, X_test)
    evaluation.examples = worst_examples(predictor, X_test, evaluation)
    evaluation.metrics["worst_examples"] = evaluation.examples["rows"]


def anomaly_items(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The checklist's anomaly items: better than the training mean (an error-level item when
    not), and the items skipped as not applicable."""
    items = []
    score, base = metrics.get("mean_score"), metrics.get("mean_baseline_score")
    if isinstance(score, float) and isinstance(base, float):
        item = {"criterion": "better than the trivial predictor", "passed": score < base,
                "evidence": f"test mean reconstruction error {score:.4g}; reconstructing every row "
                            f"as the training mean scores {base:.4g}"}
        items.append(item if item["passed"] else item | {"severity": "error"})
    items.append({"criterion": "checks for labelled training", "passed": True, "skipped": True,
                  "evidence": "not applicable to anomaly detection, skipped: " + "; ".join(SKIPPED)})
    return items


__all__ = ["SKIPPED", "anomaly_extras", "anomaly_items", "mean_baseline", "skipped_note"]
