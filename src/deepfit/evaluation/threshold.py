"""The decision threshold of a binary classifier that maximises F1 on the validation split.

Class 1 (the second class in sorted order) is the positive class: a row is predicted positive
when P(class 1) >= threshold. Among the validation scores, the cut with the highest F1 is chosen
(the highest such cut on a tie), and the threshold is placed halfway between that score and the
next lower one, so the validation predictions are those that scored best, and a test score that
falls between two validation scores is not decided by a floating-point tie.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepfit.core.notes import Notes
from deepfit.errors import SettingsError


def f1_optimal_threshold(p_positive: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(threshold, F1 of class 1 at it) for scores P(class 1) [N] and 0/1 targets [N]."""
    scores = np.asarray(p_positive, dtype=np.float64).reshape(-1)
    positive = np.asarray(target).reshape(-1) == 1
    n_pos = int(positive.sum())
    if n_pos == 0:
        return 0.5, 0.0  # nothing to find: keep the plain rule
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last row of each distinct score
    true_pos = np.cumsum(positive)[last]
    predicted = last + 1
    f1 = 2 * true_pos / (predicted + n_pos)  # 2TP / (2TP + FP + FN)
    best = int(np.argmax(f1))
    lower = scores[last[best + 1]] if best + 1 < len(last) else 0.0
    return float((scores[last[best]] + lower) / 2), float(f1[best])


def decision_threshold(asked: float | str, outputs: torch.Tensor, target: torch.Tensor,
                       classes: list[Any], notes: Notes) -> float:
    """The threshold of a binary model: as asked, or (auto) the F1-optimal one on validation
    logits [N, 2] and targets [N]. The decision goes to `notes`."""
    positive = classes[1]
    if asked != "auto":
        notes.decide(f"decision threshold {asked:g} on P({positive}) (as asked)")
        return float(asked)
    p_positive = torch.softmax(outputs.double(), dim=1)[:, 1].cpu().numpy()
    y = target.cpu().numpy()
    found, f1 = f1_optimal_threshold(p_positive, y)
    notes.decide(f"decision threshold {found:.4g} on P({positive}): it maximises the validation F1 of "
                 f"class {positive} ({f1:.3f}; {f1_at(p_positive, y, 0.5):.3f} at 0.5) (--threshold auto)")
    return found


def f1_at(p_positive: np.ndarray, target: np.ndarray, threshold: float) -> float:
    """F1 of class 1 when rows with P(class 1) >= threshold are predicted positive."""
    predicted = np.asarray(p_positive).reshape(-1) >= threshold
    positive = np.asarray(target).reshape(-1) == 1
    denominator = predicted.sum() + positive.sum()
    return float(2 * (predicted & positive).sum() / denominator) if denominator else 0.0


def parse_threshold(value: object) -> float | str | None:
    """A --threshold setting: None or 'none' (the most probable class), 'auto', or a number in (0, 1)."""
    if value is None or (isinstance(value, str) and value.lower() in ("none", "argmax")):
        return None
    if isinstance(value, str) and value.lower() == "auto":
        return "auto"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"threshold must be auto, none or a number in (0, 1), not {value!r}") from None
    if not 0.0 < number < 1.0:
        raise SettingsError(f"threshold must be in (0, 1), not {number}")
    return number
