"""`deepfit explain` on images [N, C, H, W]: integrated gradients summed over the channels into
one map per image, drawn over the image for a sample of test images of each class and for the
model's most confident mistakes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from deepfit.core.io import atomic_write_bytes
from deepfit.modalities.explain import ExplainParts, render_png

MISTAKES_SHARE = 0.25  # of the images explained, at most this many are the surest mistakes
COLUMNS = 6  # images per row of the overlay grid


class ImageExplain(ExplainParts):
    default_rows = 24

    def units(self, pre: Any, attributions: np.ndarray) -> tuple[np.ndarray, None]:
        return attributions.sum(axis=1), None  # [N, C, H, W] → [N, H, W]

    def pick_rows(self, target: np.ndarray | None, proba: np.ndarray | None, n: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """The most confident mistakes (wrong prediction, highest probability), up to a quarter
        of `n` and leaving room for one image of each class, then test images drawn at random
        from each class in turn (a regression: the first `n`)."""
        if target is None or proba is None:
            return super().pick_rows(target, proba, n, rng)
        predicted, sure = proba.argmax(axis=1), proba.max(axis=1)
        wrong = np.flatnonzero(predicted != target)
        mistakes = wrong[np.argsort(-sure[wrong], kind="stable")][: math.ceil(MISTAKES_SHARE * n)]
        mistakes = mistakes[: max(0, n - len(np.unique(target)))] if n > 1 else mistakes[:0]
        rows, reasons = list(mistakes), ["confident mistake"] * len(mistakes)
        pools = [list(rng.permutation(np.setdiff1d(np.flatnonzero(target == c), mistakes)))
                 for c in np.unique(target)]
        while len(rows) < n and any(pools):
            for pool in pools:
                if pool and len(rows) < n:
                    rows.append(pool.pop(0))
                    reasons.append("sample of its class")
        return np.asarray(rows, dtype=np.int64), reasons

    def describe(self, units: np.ndarray, names: list[str] | None, rows: list[dict]) -> dict[str, Any]:
        for j, row in enumerate(rows):
            row["total"] = float(units[j].sum())
            row["peak"] = [int(v) for v in np.unravel_index(np.abs(units[j]).argmax(), units[j].shape)]
        return {"shape": list(units.shape[1:]), "axes": ["height", "width"], "rows": rows}

    def plots(self, pre: Any, inputs: np.ndarray, units: np.ndarray, summary: dict[str, Any],
              directory: Path) -> dict[str, Path]:
        rows = summary["rows"]
        n = len(rows)
        if not n:
            return {}
        cols = min(COLUMNS, n)
        lines = math.ceil(n / cols)

        def draw(fig: Any) -> None:
            for j, row in enumerate(rows):
                ax = fig.add_subplot(lines, cols, j + 1)
                ax.imshow(_picture(pre, inputs[j]), cmap="gray", interpolation="nearest")
                heat = np.abs(units[j])
                ax.imshow(heat / (heat.max() or 1.0), cmap="inferno", alpha=0.55, interpolation="nearest")
                mark = "✗ " if row["reason"] == "confident mistake" else ""
                ax.set_title(f"{mark}true {row['true']} · pred {row['predicted']}"
                             + (f" ({row['probability']:.2f})" if row.get("probability") is not None else ""),
                             fontsize=7, color="tab:red" if mark else "black")
                ax.axis("off")
            fig.suptitle("Integrated gradients over test images (✗: the surest mistakes)", fontsize=10)
            fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.9, hspace=0.35, wspace=0.05)

        path = Path(directory) / "overlays.png"
        atomic_write_bytes(path, render_png(draw, (1.9 * cols, 2.0 * lines + 0.5)))
        return {"overlays": path}


def _picture(pre: Any, x: np.ndarray) -> np.ndarray:
    """One standardised image [C, H, W] back to its pixels in [0, 1]: [H, W] or [H, W, 3]."""
    mean = np.asarray(pre.mean, dtype=np.float64)[:, None, None]
    std = np.asarray(pre.std, dtype=np.float64)[:, None, None]
    raw = x * std + mean
    low, high = float(raw.min()), float(raw.max())
    raw = (raw - low) / (high - low or 1.0)
    return raw[0] if raw.shape[0] != 3 else raw.transpose(1, 2, 0)
