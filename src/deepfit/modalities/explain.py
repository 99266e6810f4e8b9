"""What `deepfit explain` (tools/explain/) asks of a kind of data: `Modality.explain_parts()`
returns an `ExplainParts`, and the tool calls nothing else that differs between tables, images
and sequences.

    columns(pre)           the raw columns permutation importance permutes one at a time (a
                           table's original columns), or None: no permutation importance
    attributable(pre)      how many leading model-input slots gradients reach (None: all); the
                           slots after them (a table's embedded category indices) are held at
                           their values, so integrated gradients leave them out
    units(pre, attr)       attributions on the model's inputs [N, *input] summed into what is
                           reported: [N, U...] and the units' names (None when unnamed)
    pick_rows(...)         which test samples to explain, and why each was picked
    describe(...)          the plain-data summary written to explain.json
    plots(...)             the PNGs, {name: path}

This default suits dense samples [N, *shape] of any kind: every input value is its own unit,
the first rows of the test split are explained, and no picture is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class ExplainParts:
    """The explain parts of dense array samples; subclasses override what differs."""

    default_rows = 16  # samples explained when --rows is not given

    def columns(self, pre: Any) -> list[str] | None:
        return None

    def attributable(self, pre: Any) -> int | None:
        return None

    def units(self, pre: Any, attributions: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
        return attributions, None

    def pick_rows(self, target: np.ndarray | None, proba: np.ndarray | None, n: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """The first `n` samples (`target`: class codes, `proba` [N, K]: the model's
        probabilities, both None for regression)."""
        n_rows = len(target) if target is not None else len(proba) if proba is not None else n
        rows = np.arange(min(n, n_rows))
        return rows, ["test row"] * len(rows)

    def describe(self, units: np.ndarray, names: list[str] | None, rows: list[dict]) -> dict[str, Any]:
        """Mean |attribution| of each unit over the explained samples, and the samples."""
        return {"mean_abs": np.abs(units).mean(axis=0).tolist(), "rows": rows}

    def plots(self, pre: Any, inputs: np.ndarray, units: np.ndarray, summary: dict[str, Any],
              directory: Path) -> dict[str, Path]:
        return {}


def top_share(values: dict[str, float], k: int = 3) -> float:
    """The share of the total of `values` (clipped at 0) held by the `k` largest."""
    clipped = sorted((max(float(v), 0.0) for v in values.values()), reverse=True)
    total = sum(clipped)
    return sum(clipped[:k]) / total if total > 0 else 0.0


def render_png(draw: Any, size: tuple[float, float] = (6.0, 4.0), dpi: int = 90) -> bytes:
    """A PNG of `draw(fig)` on a matplotlib Figure (the Agg renderer; no pyplot state)."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    draw(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
