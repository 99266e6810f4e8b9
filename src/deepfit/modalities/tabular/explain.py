"""`deepfit explain` on tables: permutation importance of each original column (its raw values
shuffled across the test rows before preprocessing, so a category's one-hot slots and a date's
parts move together as the one column they are), and integrated gradients summed back from the
model's input slots to those columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepfit.core.io import atomic_write_bytes
from deepfit.modalities.explain import ExplainParts, render_png

SHOWN_COLUMNS = 30  # columns drawn in the attribution plot, the largest first


class TabularExplain(ExplainParts):
    default_rows = 10

    def columns(self, pre: Any) -> list[str]:
        return list(pre.columns)

    def attributable(self, pre: Any) -> int:
        return pre.n_dense  # embedded category indices after them: no gradient reaches an index

    def slot_columns(self, pre: Any) -> list[str]:
        """The original column of each dense input slot [n_dense], in transform's layout:
        numbers (a date's parts: the date column), missing indicators, one-hot blocks."""
        owner = {p: d.name for d in pre.dates for p in d.part_names}
        numbers = [owner.get(c.name, c.name) for c in pre.numeric]
        indicators = [owner.get(c.name, c.name) for c in pre.numeric if c.indicator]
        onehot = [c.name for c in pre.categorical if c.encoding == "onehot" for _ in range(c.width)]
        return numbers + indicators + onehot

    def units(self, pre: Any, attributions: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """[N, n_dense] slot attributions → [N, columns] (NaN for an embedded category, which
        integrated gradients cannot attribute: its permutation importance stands for it)."""
        names = self.columns(pre)  # dates already one column each
        index = {name: i for i, name in enumerate(names)}
        out = np.full((len(attributions), len(names)), np.nan)
        for slot, column in enumerate(self.slot_columns(pre)):
            j = index[column]
            out[:, j] = np.nan_to_num(out[:, j]) + attributions[:, slot]
        return out, names

    def describe(self, units: np.ndarray, names: list[str] | None, rows: list[dict]) -> dict[str, Any]:
        names = names or []
        mean_abs = {n: _number(np.abs(units[:, j]).mean()) for j, n in enumerate(names)}
        for j, row in enumerate(rows):
            row["attributions"] = {n: _number(units[j, k]) for k, n in enumerate(names)}
        return {"mean_abs": mean_abs, "rows": rows,
                "not_attributed": [n for n, v in mean_abs.items() if v is None]}

    def plots(self, pre: Any, inputs: np.ndarray, units: np.ndarray, summary: dict[str, Any],
              directory: Path) -> dict[str, Path]:
        values = {k: v for k, v in summary["mean_abs"].items() if v is not None}
        if not values:
            return {}
        shown = sorted(values, key=values.get, reverse=True)[:SHOWN_COLUMNS][::-1]

        def draw(fig: Any) -> None:
            ax = fig.add_subplot()
            ax.barh(range(len(shown)), [values[c] for c in shown], color="tab:orange")
            ax.set_yticks(range(len(shown)), shown, fontsize=8)
            ax.set(xlabel="mean |integrated gradients| (model output units)",
                   title="Integrated gradients per column (explained test rows)")
            fig.subplots_adjust(left=0.3, right=0.96, bottom=0.14, top=0.9)

        path = Path(directory) / "attributions.png"
        atomic_write_bytes(path, render_png(draw, (6.0, max(3.0, 0.25 * len(shown) + 1.2))))
        return {"attributions": path}


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)
