"""The anomaly run's report pieces: the worst-reconstructed test samples (`worst_examples`, put
on the Evaluation and in metrics.json) and the plots evaluation/plots.py draws from them:

    score_histogram.png   the test scores (log-spaced bins), labelled anomalies apart, the threshold
    worst_examples.png    images: the worst inputs over their reconstructions; sequences: the worst
                          inputs' first channel, solid, their reconstructions dashed
A table's worst rows are a table in the report (their raw values, score and label).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from deepfit.core.notes import Notes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WORST = 8  # samples shown
SHOWN_COLUMNS = 12  # a table's raw columns shown per row


@torch.no_grad()
def worst_examples(predictor: Any, X_test: Any, evaluation: Any, k: int = WORST) -> dict[str, Any]:
    """The `k` test samples of the highest anomaly scores: {"rows": [{row (in the test split),
    anomaly_score, label?, the raw values of a table's first columns}], "inputs" and
    "reconstructions": arrays of the preprocessed samples beyond the batch axis, for samples
    of several axes (images, sequences)}. Nothing is read again for a streamed folder."""
    scores = np.asarray(evaluation.scores)
    top = np.argsort(-scores, kind="stable")[:k]
    labelled = bool(evaluation.metrics.get("labelled"))
    rows = []
    for i in top:
        row: dict[str, Any] = {"row": int(i), "anomaly_score": float(scores[i])}
        if labelled:
            row["label"] = int(evaluation.target[i])
        if isinstance(X_test, pd.DataFrame):
            row |= {str(c): _plain(v) for c, v in X_test.iloc[int(i)].iloc[:SHOWN_COLUMNS].items()}
        rows.append(row)
    examples: dict[str, Any] = {"rows": rows}
    if hasattr(X_test, "chunks") or isinstance(X_test, pd.DataFrame):
        return examples
    features = predictor.features(np.asarray(X_test)[top], Notes(live=False))
    if features.ndim >= 3:  # [k, C, H, W] or [k, T, C]: drawn, not tabulated
        model = predictor.model
        x = features.to(predictor.device)
        examples["inputs"] = model.target(x).float().cpu().numpy()
        examples["reconstructions"] = model.reconstruct(x).float().cpu().numpy()
    return examples


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return str(value)


def draw_histogram(ax: Axes, evaluation: Any) -> None:
    """The test scores' histogram (labelled anomalies in their own colour) and the threshold."""
    scores = np.asarray(evaluation.scores, dtype=np.float64)
    threshold = evaluation.metrics["threshold"]
    positive = scores[scores > 0]
    low = positive.min() if len(positive) else 1e-6
    bins = np.geomspace(low, max(scores.max(), threshold, low * 10) * 1.01, 40)
    clipped = np.clip(scores, low, None)
    if evaluation.metrics.get("labelled"):
        labels = np.asarray(evaluation.target)
        ax.hist(clipped[labels == 0], bins=bins, alpha=0.7, label="normal")
        ax.hist(clipped[labels == 1], bins=bins, alpha=0.7, color="tab:red", label="anomaly")
    else:
        ax.hist(clipped, bins=bins, alpha=0.8, label="test rows")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
    ax.set_xscale("log")
    ax.set(xlabel="anomaly score (reconstruction error)", ylabel="rows", title=CAPTIONS["score_histogram"])
    ax.legend()


def draw_worst(ax: Axes, examples: dict[str, Any]) -> None:
    """Images: a montage, inputs above their reconstructions (the first channel, or RGB when
    there are 3); sequences: each worst sample's first channel and its reconstruction."""
    x, r = examples["inputs"], examples["reconstructions"]
    if x.ndim == 4:  # [k, C, H, W]
        def tiles(a: np.ndarray) -> np.ndarray:
            a = a[:, :3] if a.shape[1] == 3 else a[:, :1]
            return np.concatenate(list(a.transpose(0, 2, 3, 1)), axis=1)  # [H, k·W, c]

        montage = np.concatenate([tiles(x), tiles(r)], axis=0)
        lo, hi = np.percentile(montage, [1, 99])
        montage = np.clip((montage - lo) / max(hi - lo, 1e-12), 0, 1)
        ax.imshow(montage if montage.shape[2] == 3 else montage[..., 0], cmap="gray")
        ax.set_axis_off()
    else:  # [k, C, T]: the autoencoder's channels-first view of a sequence
        offset = 0.0
        for a, b in zip(x, r):
            span = float(np.ptp(a[0])) or 1.0
            line = ax.plot(a[0] + offset, linewidth=1)[0]
            ax.plot(b[0] + offset, linestyle="--", linewidth=1, color=line.get_color())
            offset += span * 1.2
        ax.set(xlabel="step", yticks=[])
    ax.set_title(CAPTIONS["worst_examples"])


CAPTIONS = {"score_histogram": "Anomaly scores (test split) and the threshold",
            "worst_examples": "Worst-reconstructed test samples: inputs and their reconstructions"}


def drawers(evaluation: Any) -> list[tuple[str, Any]]:
    """(plot name, draw(ax)) of an anomaly Evaluation, for evaluation/plots.py."""
    found = [("score_histogram", lambda ax: draw_histogram(ax, evaluation))]
    examples = getattr(evaluation, "examples", None) or {}
    if "inputs" in examples:
        found.append(("worst_examples", lambda ax: draw_worst(ax, examples)))
    return found


__all__ = ["CAPTIONS", "drawers", "worst_examples"]
