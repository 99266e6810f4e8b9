"""The guide's success criteria, evaluated at the end of every run: a checklist with evidence.

An item may carry `"severity": "error"` when it fails: "better than the trivial predictor" does,
since a model no better than always answering the majority class (or the training mean) must
never look like a success (`trivial_item`)."""

from __future__ import annotations

import math
from typing import Any

# test and validation scores further apart than this suggest the validation split was not
# representative, or was used too much for decisions
TEST_VS_VAL = {"accuracy": 0.05, "r2": 0.1}


def success_checklist(history: list[dict[str, float]], best_epoch: int, test: dict[str, float],
                      task: str, warnings: list[str],
                      reference: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The checklist items (criterion, passed, evidence[, severity]). `reference`: the trivial
    predictor's numbers on the test rows (`trivial_reference`); with it, the trivial item."""
    first, last = history[0], history[-1]
    best = history[max(best_epoch, 1) - 1]
    items = []

    def add(criterion: str, passed: bool, evidence: str) -> None:
        items.append({"criterion": criterion, "passed": bool(passed), "evidence": evidence})

    add("training loss decreased", last["train_loss"] < first["train_loss"],
        f"{first['train_loss']:.4g} at epoch 1, {last['train_loss']:.4g} at epoch {len(history)}")
    tail = [h["val_loss"] for h in history[-3:]]
    spread = (max(tail) - min(tail)) / max(abs(min(tail)), 1e-12) if len(tail) > 1 else 0.0
    add("validation loss stabilised", len(history) >= 3 and spread < 0.1,
        f"last {len(tail)} validation losses vary by {spread:.1%}")
    gap = best["val_loss"] / best["train_loss"] if best["train_loss"] > 0 else math.inf
    add("validation/training loss gap < 2x", gap < 2.0, f"{gap:.2f}x at the best epoch ({best_epoch})")
    finite = all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in history)
    add("no NaN/Inf", finite and not any(w.startswith("non-finite") for w in warnings),
        "all losses finite" if finite else "non-finite losses occurred")
    metric = "accuracy" if task == "classification" else "r2"
    val_score, test_score = best.get(f"val_{metric}"), test.get(metric)
    if val_score is not None and test_score is not None:
        diff = abs(test_score - val_score)
        add("test close to validation", diff <= TEST_VS_VAL[metric],
            f"test {metric} {test_score:.4g} vs validation {val_score:.4g} (|diff| {diff:.3g}, "
            f"tolerance {TEST_VS_VAL[metric]})")
    trivial = trivial_item(test, task, reference) if reference is not None else None
    if trivial is not None:
        items.append(trivial)
    return items


def trivial_reference(task: str, train_counts: list[int] | None, test_codes: Any,
                      classes: list[Any]) -> dict[str, Any]:
    """What the trivial predictor scores on the test rows: for classification the training
    majority class (`train_counts` per class code) and its share of the test codes [N]."""
    if task != "classification" or not train_counts:
        return {}
    codes = [int(c) for c in test_codes]
    test_counts = [codes.count(i) for i in range(len(classes))]
    top = max(range(len(train_counts)), key=lambda i: train_counts[i])
    return {"classes": len(classes), "test_counts": test_counts, "majority": str(classes[top]),
            "majority_share": test_counts[top] / max(len(codes), 1)}


def chance_tolerance(test_counts: list[int]) -> float:
    """How far above chance a predictor that ignores the features reaches, by luck, in balanced
    accuracy on test rows of these class counts: two of its standard errors (its recall of
    class c is a binomial share of the n_c rows, at rate 1/k), at least 0.02."""
    present = [n for n in test_counts if n > 0]
    k = max(len(present), 1)
    var = sum((1 / k) * (1 - 1 / k) / n for n in present) / k**2
    return max(0.02, 2 * math.sqrt(var))


def trivial_item(test: dict[str, Any], task: str, reference: dict[str, Any]) -> dict[str, Any] | None:
    """'better than the trivial predictor': balanced accuracy above chance (1/k, k the classes
    of the test rows) by more than luck (`chance_tolerance`), or R² above 0 (what the training
    mean scores); failed, it is an error-level item. None without the score."""
    classify = task == "classification" and bool(reference)
    score = test.get("balanced_accuracy" if classify else "r2")
    if not isinstance(score, (int, float)) or not math.isfinite(score):
        return None
    if classify:
        k = max(sum(n > 0 for n in reference["test_counts"]), 1)
        bound = 1 / k + chance_tolerance(reference["test_counts"])
        passed = score > bound
        evidence = (f"test balanced accuracy {score:.3f}, chance {1 / k:.3f} (up to {bound:.3f} by "
                    f"luck on these test rows); accuracy {test.get('accuracy', math.nan):.3f}, "
                    f"always answering {reference['majority']!r} scores "
                    f"{reference['majority_share']:.3f}")
    else:
        passed = score > 0
        evidence = f"test R² {score:.3f}; predicting the training mean scores about 0"
    item = {"criterion": "better than the trivial predictor", "passed": bool(passed),
            "evidence": evidence}
    return item if passed else item | {"severity": "error"}
