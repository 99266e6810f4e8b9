"""PNG plots of a run, drawn with matplotlib's Agg renderer (no display, no pyplot state).

    loss.png                train and validation loss per epoch, the best epoch marked
    metrics.png             the validation metrics per epoch
    lr.png                  the learning rate per epoch
    confusion_matrix.png    classification: counts, rows true, columns predicted
    roc.png, pr.png         binary classification: ROC and precision-recall curves on the test split
    predicted_vs_true.png   regression: test predictions against the true values
    score_histogram.png, worst_examples.png   anomaly detection (anomaly/report.py)
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepfit.anomaly.report import CAPTIONS as ANOMALY_CAPTIONS
from deepfit.anomaly.report import drawers as anomaly_drawers
from deepfit.core.io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from deepfit.evaluation.full_metrics import Evaluation

PLOTS = "plots"
SIZE, DPI = (6.0, 4.0), 90
CAPTIONS = {
    "loss": "Training and validation loss",
    "metrics": "Validation metrics",
    "lr": "Learning rate",
    "confusion_matrix": "Confusion matrix (test split)",
    "roc": "ROC curve (test split)",
    "pr": "Precision-recall curve (test split)",
    "predicted_vs_true": "Predicted against true (test split)",
    **ANOMALY_CAPTIONS,
}


def write_plots(directory: Path, history: list[dict[str, float]], evaluation: Evaluation | None,
                classes: list[Any] | None = None, best_epoch: int | None = None) -> dict[str, Path]:
    """Draw every plot that applies into `directory` (created); {name: path}, in display order."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    drawers: list[tuple[str, Callable[[Axes], None]]] = []
    if history:
        epochs = [h["epoch"] for h in history]
        drawers.append(("loss", lambda ax: _loss(ax, history, epochs, best_epoch)))
        if any(k.startswith("val_") and k != "val_loss" for k in history[0]):
            drawers.append(("metrics", lambda ax: _metrics(ax, history, epochs)))
        if "lr" in history[0]:
            drawers.append(("lr", lambda ax: _lr(ax, history, epochs)))
    if evaluation is not None and evaluation.task == "classification":
        labels = [str(c) for c in (classes or range(evaluation.proba.shape[1]))]
        drawers.append(("confusion_matrix", lambda ax: _confusion(ax, evaluation, labels)))
        if evaluation.proba.shape[1] == 2 and len(np.unique(evaluation.target)) == 2:
            drawers.append(("roc", lambda ax: _roc(ax, evaluation, labels[1])))
            drawers.append(("pr", lambda ax: _pr(ax, evaluation, labels[1])))
    elif evaluation is not None and evaluation.scores is not None:  # anomaly scores
        drawers += anomaly_drawers(evaluation)
    elif evaluation is not None:
        drawers.append(("predicted_vs_true", lambda ax: _scatter(ax, evaluation)))
    written = {}
    for name, draw in drawers:
        written[name] = directory / f"{name}.png"
        atomic_write_bytes(written[name], _render(draw, square=name in ("confusion_matrix", "roc", "pr")))
    return written


def _render(draw: Callable[[Axes], None], square: bool = False) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 4.5) if square else SIZE, dpi=DPI)
    fig.subplots_adjust(left=0.16 if square else 0.13, right=0.96, bottom=0.14, top=0.91)  # no layout engine: 2x faster
    ax = fig.add_subplot()
    draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _loss(ax: Axes, history: list[dict], epochs: list[int], best_epoch: int | None) -> None:
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if key in history[0]:
            ax.plot(epochs, [h[key] for h in history], marker="." if len(epochs) < 40 else None, label=label)
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})")
    ax.set(xlabel="epoch", ylabel="loss", title=CAPTIONS["loss"])
    ax.legend()
    ax.grid(alpha=0.3)


def _metrics(ax: Axes, history: list[dict], epochs: list[int]) -> None:
    for key in history[0]:
        if key.startswith("val_") and key != "val_loss":
            ax.plot(epochs, [h[key] for h in history], label=key.removeprefix("val_"))
    ax.set(xlabel="epoch", ylabel="value", title=CAPTIONS["metrics"])
    ax.legend()
    ax.grid(alpha=0.3)


def _lr(ax: Axes, history: list[dict], epochs: list[int]) -> None:
    lrs = [h["lr"] for h in history]
    ax.plot(epochs, lrs, drawstyle="steps-post", color="tab:purple")
    positive = [v for v in lrs if v > 0]
    if positive and max(positive) / min(positive) > 10:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(lrs) * 1.15 or 1)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.set(xlabel="epoch", ylabel="learning rate", title=CAPTIONS["lr"])
    ax.grid(alpha=0.3)


def _confusion(ax: Axes, ev: Evaluation, labels: list[str]) -> None:
    matrix = np.asarray(ev.metrics["confusion_matrix"])
    n = len(labels)
    ax.imshow(matrix, cmap="Blues")
    if n <= 25:
        top = matrix.max() or 1
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=max(6, 12 - n // 3),
                    color="white" if count > top / 2 else "black")
    ticks = range(n) if n <= 30 else range(0, n, math.ceil(n / 30))
    ax.set_xticks(list(ticks), [labels[i] for i in ticks], rotation=45 if n > 6 else 0)
    ax.set_yticks(list(ticks), [labels[i] for i in ticks])
    ax.set(xlabel="predicted", ylabel="true", title=CAPTIONS["confusion_matrix"])


def _roc(ax: Axes, ev: Evaluation, positive: str) -> None:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(ev.target, ev.proba[:, 1])
    ax.plot(fpr, tpr, label=f"AUC {ev.metrics.get('roc_auc') or float('nan'):.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel=f"true positive rate ({positive})",
           title=CAPTIONS["roc"], xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)


def _pr(ax: Axes, ev: Evaluation, positive: str) -> None:
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(ev.target, ev.proba[:, 1])
    ax.step(recall, precision, where="post",
            label=f"AP {ev.metrics.get('average_precision') or float('nan'):.3f}")
    base = float(np.mean(ev.target == 1))
    ax.axhline(base, color="grey", linestyle="--", linewidth=1, label=f"base rate {base:.3f}")
    ax.set(xlabel=f"recall ({positive})", ylabel="precision", title=CAPTIONS["pr"],
           xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)


def _scatter(ax: Axes, ev: Evaluation) -> None:
    ax.scatter(ev.target, ev.preds, s=8, alpha=0.6)
    low, high = float(min(ev.target.min(), ev.preds.min())), float(max(ev.target.max(), ev.preds.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="y = x")
    ax.set(xlabel="true", ylabel="predicted", title=f"{CAPTIONS['predicted_vs_true']}, "
           f"R² {ev.metrics.get('r2', float('nan')):.3f}")
    ax.legend()
    ax.grid(alpha=0.3)


def overlay(runs: dict[str, list[dict[str, float]]], key: str) -> bytes:
    """One curve per run of a history column (for comparisons)."""
    def draw(ax: Axes) -> None:
        for name, history in runs.items():
            if history and key in history[0]:
                ax.plot([h["epoch"] for h in history], [h[key] for h in history], label=name)
        ax.set(xlabel="epoch", ylabel=key, title=key.replace("_", " "))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    return _render(draw)


def score_vs_time(points: dict[str, tuple[float, float]], metric: str) -> bytes:
    """One labelled point per model: test score against training seconds (compare)."""
    def draw(ax: Axes) -> None:
        for name, (seconds, score) in points.items():
            ax.scatter([seconds], [score], s=30)
            ax.annotate(name, (seconds, score), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if points and max(s for s, _ in points.values()) / max(min(s for s, _ in points.values()), 1e-3) > 50:
            ax.set_xscale("log")
        ax.set(xlabel="training seconds", ylabel=f"test {metric}", title=f"Test {metric} against training time")
        ax.grid(alpha=0.3)

    return _render(draw)


def learning_curves(curves: dict[str, list[tuple[int, float]]], metric: str) -> bytes:
    """Each model's score against the training rows it was given (advise's learning curve)."""
    def draw(ax: Axes) -> None:
        for name, points in curves.items():
            ax.plot([r for r, _ in points], [s for _, s in points], marker="o", label=name)
        ax.set(xlabel="training rows", ylabel=f"test {metric}", title="Learning curves")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    return _render(draw)
