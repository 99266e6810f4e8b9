"""The guide's success criteria, evaluated at the end of every run: a checklist with evidence.

Each rule was set on real runs, good ones and planted bad ones (tests/test_guard_calibration.py):
every item passes on the good runs, and each planted fault fails the item that names it.

    training loss decreased     the training loss averaged over the last (up to) 3 epochs is
                                1% or more below its average over the first 3: one epoch's
                                noise (dropout, augmentation) does not decide it
    validation loss stabilised  the best validation loss fell by no more than 5% (or 0.01, near
                                zero loss) over the last 5 epochs: the run did not stop while still improving.
                                Early stopping ends a run with `patience` epochs past the best,
                                where the validation loss wanders up a little: that is expected
                                (the best epoch's weights are kept), not a failure
    validation loss within 0.1 or 2x of the training loss
                                at the best epoch; a gap counts only when it is both more than
                                GAP_FLOOR (loss units: nats for cross-entropy, the standardised
                                target's variance for MSE) and more than GAP_RATIO x: near zero
                                loss a ratio means nothing (0.02 against 0.0006 is "37x")
    no NaN/Inf
    test close to validation    |test - validation| within TEST_VS_VAL or 3 standard errors of
                                the difference on these numbers of rows, whichever is larger
                                (on 86 + 86 rows an accuracy moves by 0.05 by chance alone).
                                Where that tolerance reaches MEANINGLESS (half the range of a
                                useful score, 0 to 1), the splits are too small for the
                                comparison to tell anything: the item passes, saying so
    better than the trivial predictor

An item may carry `"severity": "error"` when it fails: "better than the trivial predictor" does,
since a model no better than always answering the majority class (or the training mean) must
never look like a success (`trivial_item`)."""

from __future__ import annotations

import math
from typing import Any

from deepfit.core.words import plural

# test and validation scores further apart than this suggest the validation split was not
# representative, or was used too much for decisions; on small splits, Z standard errors
TEST_VS_VAL = {"accuracy": 0.05, "r2": 0.1}
Z = 3.0
MEANINGLESS = 0.5  # a tolerance this wide lets through any two scores of a useful model
# a validation/training loss gap counts when it is above both (the guards' OverfittingGap too)
GAP_FLOOR, GAP_RATIO = 0.1, 2.0
SMOOTH, TREND = 3, 0.01  # epochs averaged at each end of the training loss; less than 1%: no change
# still improving: the best validation loss fell by more than 5% and 0.01 over the last 5 epochs
TAIL, LEVEL, LEVEL_FLOOR = 5, 0.05, 0.01


def loss_trend(train: list[float]) -> tuple[float, float, int]:
    """(mean of the first w, mean of the last w, w): w = min(SMOOTH, len // 2), at least 1."""
    w = max(1, min(SMOOTH, len(train) // 2))
    return sum(train[:w]) / w, sum(train[-w:]) / w, w


def still_falling(val: list[float]) -> tuple[bool, int, float]:
    """(whether the best validation loss fell by more than LEVEL of it and LEVEL_FLOOR over the
    last TAIL epochs, tail, the fall): the run was still improving. Fewer than 2 epochs: not."""
    if len(val) < 2:
        return False, 0, 0.0
    tail = min(TAIL, len(val) - 1)
    before = min(val[:-tail])
    drop = before - min(val) if math.isfinite(before - min(val)) else math.inf
    return drop > max(LEVEL * before, LEVEL_FLOOR), tail, drop


def is_gap(val: float, train: float) -> bool:
    """Whether a validation loss is above a training loss by a gap that means something."""
    return val - train > GAP_FLOOR and val > GAP_RATIO * train


def success_checklist(history: list[dict[str, float]], best_epoch: int, test: dict[str, float],
                      task: str, warnings: list[str], reference: dict[str, Any] | None = None,
                      n_val: int | None = None) -> list[dict[str, Any]]:
    """The checklist items (criterion, passed, evidence[, severity]). `reference`: the trivial
    predictor's numbers on the test rows (`trivial_reference`); with it, the trivial item.
    `n_val`: the validation rows, for the sampling error of "test close to validation"."""
    best = history[max(best_epoch, 1) - 1]
    finite = all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in history)
    items = [_decreased(history), _stabilised(history), _gap(best, best_epoch),
             _item("no NaN/Inf", finite and not any(w.startswith("non-finite") for w in warnings),
                   "all losses finite" if finite else "non-finite losses occurred")]
    metric = "accuracy" if task == "classification" else "r2"
    val_score, test_score = best.get(f"val_{metric}"), test.get(metric)
    if val_score is not None and test_score is not None:
        items.append(_close(metric, val_score, test_score, n_val, test.get("n")))
    trivial = trivial_item(test, task, reference) if reference is not None else None
    if trivial is not None:
        items.append(trivial)
    return items


def _item(criterion: str, passed: bool, evidence: str) -> dict[str, Any]:
    return {"criterion": criterion, "passed": bool(passed), "evidence": evidence}


def _close(metric: str, val: float, test: float, n_val: Any, n_test: Any) -> dict[str, Any]:
    diff = abs(test - val)
    se = _diff_se(metric, val, test, n_val, n_test)
    tolerance = max(TEST_VS_VAL[metric], Z * se)
    scores = f"test {metric} {test:.4g} vs validation {val:.4g} (|diff| {diff:.3g}"
    rows = (f"{n_val:,} validation and {plural(n_test, 'test row')}"
            if isinstance(n_val, int) and isinstance(n_test, int) else "")
    if tolerance >= MEANINGLESS:
        return _item("test close to validation", True,
                     f"not applicable: too few rows to compare ({rows}): by chance alone the "
                     f"{metric} of two such splits can differ by {MEANINGLESS:g} or more, so the "
                     f"comparison cannot tell anything; {scores})")
    why = f"{Z:g} standard errors on {rows}" if tolerance > TEST_VS_VAL[metric] else "the fixed tolerance"
    return _item("test close to validation", diff <= tolerance,
                 f"{scores}, tolerance {tolerance:.3g}: {why})")


def _decreased(history: list[dict[str, float]]) -> dict[str, Any]:
    train = [h["train_loss"] for h in history]
    if len(train) < 2:
        return _item("training loss decreased", False, f"a single epoch ({train[0]:.4g})")
    first, last, w = loss_trend(train)
    return _item("training loss decreased", last < (1 - TREND) * first,
                 f"{first:.4g} {over(w, 'first')}, {last:.4g} {over(w, 'last')}")


def over(w: int, end: str) -> str:
    """The ends loss_trend compares, in words: 'averaged over the first 3 epochs', or 'in the
    first epoch' when each end is one epoch."""
    return f"in the {end} epoch" if w == 1 else f"averaged over the {end} {w} epochs"


def _stabilised(history: list[dict[str, float]]) -> dict[str, Any]:
    val = [h["val_loss"] for h in history]
    if len(val) < 2:
        return _item("validation loss stabilised", False, "a single epoch: nothing to compare")
    falling, tail, drop = still_falling(val)
    best = min(val)
    at = val.index(best) + 1
    last = "in the last epoch" if tail == 1 else f"over the last {tail} epochs"
    fell = f"it fell by {drop:.3g}" if drop > 0 else "it did not fall"
    evidence = (f"best {best:.4g} at epoch {at} of {len(val)}; {last} {fell}"
                + (" and was still falling: more epochs would help" if falling else ""))
    return _item("validation loss stabilised", not falling, evidence)


def _gap(best: dict[str, float], best_epoch: int) -> dict[str, Any]:
    val, train = best["val_loss"], best["train_loss"]
    times = f"{val / train:.2f}x" if train > 0 else "inf x"
    return _item(f"validation loss within {GAP_FLOOR:g} or {GAP_RATIO:g}x of the training loss",
                 not is_gap(val, train),
                 f"at the best epoch ({best_epoch}): validation {val:.4g}, training {train:.4g} "
                 f"({val - train:+.3g}, {times})")


def _diff_se(metric: str, val: float, test: float, n_val: Any, n_test: Any) -> float:
    """The standard error of test − validation from sampling alone: for accuracy binomial, at
    the pooled rate; for R², (1 − R²)·√(2/n) per split (normal errors). 0 without the counts."""
    if not (isinstance(n_val, int) and isinstance(n_test, int) and n_val > 0 and n_test > 0):
        return 0.0
    if metric == "accuracy":
        p = min(max((val * n_val + test * n_test) / (n_val + n_test), 0.0), 1.0)
        return math.sqrt(p * (1 - p) * (1 / n_val + 1 / n_test))
    return math.sqrt(2 * (max(1 - val, 0.0) ** 2 / n_val + max(1 - test, 0.0) ** 2 / n_test))


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
