"""The guide's success criteria, evaluated at the end of every run: a checklist with evidence."""

from __future__ import annotations

import math
from typing import Any

# test and validation scores further apart than this suggest the validation split was not
# representative, or was used too much for decisions
TEST_VS_VAL = {"accuracy": 0.05, "r2": 0.1}


def success_checklist(history: list[dict[str, float]], best_epoch: int, test: dict[str, float],
                      task: str, warnings: list[str]) -> list[dict[str, Any]]:
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
    return items
