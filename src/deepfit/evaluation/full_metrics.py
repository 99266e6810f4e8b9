"""The whole test-time metric set over a whole split at once: classification and regression
through scikit-learn's metrics (`sklearn.metrics`), the by-name metrics of other tasks through
torchmetrics.

Per epoch, the trainer uses the few fast torch metrics of evaluation/metrics.py; at the end of a
run, `evaluate_outputs` computes everything a report needs. scikit-learn is loaded by every
training run already (the split); torchmetrics costs about 0.6 s more to import on the 2-core
machine (its `__init__` loads scipy.signal, benchmarks/startup.py), so it is imported only inside
the by-name functions that need it.

Classification (logits [N, C], integer targets [N]):
    accuracy, balanced_accuracy, precision / recall / f1 (macro, weighted and per class),
    roc_auc (binary, or one-vs-rest macro), average_precision, log_loss, confusion_matrix
Regression (values in the target's units): mse, rmse, mae, r2
By name (`compute(name, preds, target, ...)`), for the tasks that need them: iou and dice
(segmentation masks), perplexity (token logits), bleu and rouge_l (generated text).

Averages follow scikit-learn's rules, and the tests check every value against it: macro averages
run over the classes present in the targets or the predictions, balanced accuracy over the
classes present in the targets, AUC and average precision over the classes present in the
targets; a per-class value with a zero denominator is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepfit.errors import SettingsError


@dataclass
class Evaluation:
    """Test-split metrics and the arrays behind them (for the plots)."""

    task: str
    target: np.ndarray  # [N] class codes, or values in the target's units
    preds: np.ndarray  # [N] predicted codes (decision threshold applied), or values
    proba: np.ndarray | None  # [N, C] class probabilities (classification)
    metrics: dict[str, Any]
    scores: np.ndarray | None = None  # [N] anomaly scores (the anomaly task: deepfit/anomaly/)
    examples: dict[str, Any] | None = None  # … and its worst-reconstructed samples (anomaly/report.py)


def evaluate_outputs(task: str, outputs: torch.Tensor, target: torch.Tensor, *,
                     classes: list[Any] | None = None, threshold: float | None = None,
                     target_mean: float = 0.0, target_std: float = 1.0) -> Evaluation:
    """All metrics of raw model outputs (logits, or standardised values) on encoded targets."""
    if task == "classification":
        proba = torch.softmax(outputs.double(), dim=1)  # [N, C]
        preds = predict_codes(proba, threshold)
        metrics = classification_metrics(proba, target, preds, classes)
        if threshold is not None and proba.shape[1] == 2:
            metrics["threshold"] = float(threshold)
        return Evaluation(task, target.numpy(), preds.numpy(), proba.numpy(), metrics)
    pred = outputs.reshape(-1).double() * target_std + target_mean
    true = target.reshape(-1).double() * target_std + target_mean
    return Evaluation(task, true.numpy(), pred.numpy(), None, regression_metrics(pred, true))


def predict_codes(proba: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """Class codes [N] from probabilities [N, C]: the most probable class, or for a binary
    problem with a decision threshold, class 1 where P(class 1) >= threshold."""
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).long()
    return proba.argmax(dim=1)


def classification_metrics(proba: torch.Tensor, target: torch.Tensor, preds: torch.Tensor | None = None,
                           classes: list[Any] | None = None) -> dict[str, Any]:
    """proba [N, C] (rows sum to 1), target [N] codes, preds [N] codes (default: argmax)."""
    from sklearn.metrics import confusion_matrix

    proba, target = torch.as_tensor(proba).double(), torch.as_tensor(target).long()
    preds = proba.argmax(dim=1) if preds is None else torch.as_tensor(preds).long()
    n_classes = proba.shape[1]
    classes = list(range(n_classes)) if classes is None else list(classes)
    # rows: true class, columns: predicted; the counts per class, then the ratios in float64
    matrix = confusion_matrix(target.numpy(), preds.numpy(), labels=np.arange(n_classes))
    counts = torch.from_numpy(matrix).double()
    tp, support = counts.diagonal(), counts.sum(dim=1)
    fp, fn = counts.sum(dim=0) - tp, support - tp
    per_class = {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
                 "f1": _ratio(2 * tp, 2 * tp + fp + fn)}
    in_target = support > 0
    in_either = in_target | (tp + fp > 0)
    metrics: dict[str, Any] = {
        "accuracy": tp.sum() / len(target),
        "balanced_accuracy": per_class["recall"][in_target].mean(),
    }
    for name, values in per_class.items():
        metrics[f"{name}_macro"] = values[in_either].mean()
        metrics[f"{name}_weighted"] = (values * support).sum() / support.sum()
    metrics["roc_auc"], metrics["average_precision"] = _ranking_metrics(proba, target, in_target)
    eps = torch.finfo(torch.float64).eps  # clipped like scikit-learn's log_loss
    metrics["log_loss"] = -proba.clamp(eps, 1 - eps).gather(1, target[:, None]).log().mean()
    metrics = {k: (None if v is None else in_range(k, float(v))) for k, v in metrics.items()}
    metrics["n"] = len(target)
    metrics["per_class"] = {
        str(label): {k: in_range(k, float(per_class[k][i])) for k in ("precision", "recall", "f1")}
        | {"support": int(support[i])}
        for i, label in enumerate(classes)
    }
    metrics["confusion_matrix"] = matrix.tolist()
    return metrics


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))


def _ranking_metrics(proba: torch.Tensor, target: torch.Tensor,
                     in_target: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """AUC-ROC and average precision: of P(class 1) for two classes, else one-vs-rest macro over
    the classes present in the targets. None when the targets hold a single class."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if int(in_target.sum()) < 2:
        return None, None
    proba_np, target_np = proba.numpy(), target.numpy()
    if proba.shape[1] == 2:
        return (roc_auc_score(target_np, proba_np[:, 1]),
                average_precision_score(target_np, proba_np[:, 1]))
    present = np.flatnonzero(in_target.numpy())  # one class against the rest, for each present
    auc = [roc_auc_score(target_np == c, proba_np[:, c]) for c in present]
    ap = [average_precision_score(target_np == c, proba_np[:, c]) for c in present]
    return float(np.mean(auc)), float(np.mean(ap))


def regression_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
    """pred and target [N], in the target's units."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    pred = torch.as_tensor(pred).double().reshape(-1).numpy()
    target = torch.as_tensor(target).double().reshape(-1).numpy()
    mse = float(mean_squared_error(target, pred))
    if bool((target == target[0]).all()):  # constant targets: R² is 1 if exact, else 0 (scikit-learn)
        r2 = 1.0 if mse == 0 else 0.0
    else:
        r2 = float(r2_score(target, pred))
    return {"mse": max(mse, 0.0), "rmse": float(np.sqrt(max(mse, 0.0))),
            "mae": max(float(mean_absolute_error(target, pred)), 0.0), "r2": min(r2, 1.0),
            "n": len(target)}


# the range of each score: rounding in a mean or a sum may step outside it (an AUC of
# 1.0000000000000002); a metric is reported clipped to it
SCORE_RANGE = (0.0, 1.0)
NON_NEGATIVE = (0.0, float("inf"))


def in_range(name: str, value: float) -> float:
    """`value` of the metric `name` clipped to the metric's range: [0, 1] for the scores
    (accuracy, precision, recall, F1 and their averages, AUC, average precision), [0, ∞) for
    losses and errors, at most 1 for R²; other names as they are. NaN stays NaN."""
    base = name.removeprefix("val_").removeprefix("train_")
    if base.startswith(("precision", "recall", "f1")) or base in (
            "accuracy", "balanced_accuracy", "roc_auc", "average_precision"):
        lo, hi = SCORE_RANGE
    elif base in ("log_loss", "loss", "mse", "rmse", "mae"):
        lo, hi = NON_NEGATIVE
    elif base == "r2":
        lo, hi = -float("inf"), 1.0
    else:
        return value
    return value if value != value else min(max(value, lo), hi)


# ------------------------------------------------------------ metrics by name, for other tasks
def iou(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Mean intersection over union of class-index masks (any shape), over all pixels at once,
    averaged over the classes present."""
    from torchmetrics.functional.classification import multiclass_jaccard_index

    return float(multiclass_jaccard_index(preds.reshape(-1), target.reshape(-1), num_classes,
                                          average="macro"))


def dice(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Mean Dice coefficient of class-index masks [N, ...], over all pixels at once."""
    from torchmetrics.functional.segmentation import dice_score

    return float(dice_score(preds, target, num_classes=num_classes, input_format="index",
                            aggregation_level="global", average="macro").reshape(-1)[0])


def perplexity(logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None) -> float:
    """exp(mean token cross-entropy) of logits [N, T, V] on token ids [N, T]."""
    from torchmetrics.functional.text import perplexity as tm_perplexity

    return float(tm_perplexity(logits.float(), target, ignore_index=ignore_index))


def bleu(preds: list[str], target: list[str] | list[list[str]], n_gram: int = 4) -> float:
    """Corpus BLEU of generated sentences against one or several references each."""
    from torchmetrics.functional.text import bleu_score

    refs = [[t] if isinstance(t, str) else list(t) for t in target]
    return float(bleu_score(list(preds), refs, n_gram=n_gram))


def rouge_l(preds: list[str], target: list[str] | list[list[str]]) -> float:
    """Mean ROUGE-L F-measure (longest common subsequence) of generated texts."""
    from torchmetrics.functional.text.rouge import rouge_score

    refs = [[t] if isinstance(t, str) else list(t) for t in target]
    return float(rouge_score(list(preds), refs, rouge_keys="rougeL")["rougeL_fmeasure"])


def _as_proba(proba: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(proba).double(), torch.as_tensor(target).long()


METRICS: dict[str, tuple[Callable[..., Any], str]] = {  # name → (function, "max" or "min")
    "iou": (iou, "max"),
    "dice": (dice, "max"),
    "perplexity": (perplexity, "min"),
    "bleu": (bleu, "max"),
    "rouge_l": (rouge_l, "max"),
}
CLASSIFICATION = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                  "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc",
                  "average_precision", "log_loss")
REGRESSION = ("mse", "rmse", "mae", "r2")


def metric_names() -> list[str]:
    return sorted([*CLASSIFICATION, *REGRESSION, *METRICS])


def compute(name: str, preds: Any, target: Any, **settings: Any) -> Any:
    """One metric by name. Classification names take probabilities [N, C] and codes [N];
    regression names take values [N]; the others take what their function documents."""
    if name in METRICS:
        return METRICS[name][0](preds, target, **settings)
    if name in CLASSIFICATION:
        return classification_metrics(*_as_proba(preds, target), **settings)[name]
    if name in REGRESSION:
        return regression_metrics(torch.as_tensor(preds), torch.as_tensor(target))[name]
    raise SettingsError(f"unknown metric {name!r}; available: {', '.join(metric_names())}")
