"""The permutation-importance bar chart of `deepfit explain`: each column's mean drop of the
score with its spread over the shuffles (one standard deviation), the largest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.core.io import atomic_write_bytes
from deepfit.modalities.explain import render_png

SHOWN = 30  # columns drawn at most


def importance_plot(importance: dict[str, Any], directory: Path) -> Path:
    """directory/importance.png from permutation_importance's result."""
    cols = importance["columns"][:SHOWN][::-1]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        ax.barh(range(len(cols)), [c["mean"] for c in cols], xerr=[c["std"] for c in cols],
                color="tab:blue", ecolor="grey", capsize=2)
        ax.set_yticks(range(len(cols)), [c["column"] for c in cols], fontsize=8)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set(xlabel=f"drop in test {importance['metric']} when shuffled "
                      f"(mean ± std over {importance['repeats']})",
               title="Permutation importance (held-out rows)")
        fig.subplots_adjust(left=0.3, right=0.96, bottom=0.17, top=0.9)

    path = Path(directory) / "importance.png"
    atomic_write_bytes(path, render_png(draw, (6.0, max(3.0, 0.25 * len(cols) + 1.2))))
    return path
