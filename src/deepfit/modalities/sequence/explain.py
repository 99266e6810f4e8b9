"""`deepfit explain` on sequences [N, T, C]: integrated gradients over every time step and
channel, summarised as the mean |attribution| of each (step, channel) cell over the explained
test sequences (a heatmap), and each channel's and each step's share of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepfit.core.io import atomic_write_bytes
from deepfit.modalities.explain import ExplainParts, render_png


class SequenceExplain(ExplainParts):
    default_rows = 32

    def describe(self, units: np.ndarray, names: list[str] | None, rows: list[dict]) -> dict[str, Any]:
        """time_channel: [T][C] mean |attribution|; channel_share [C], step_share [T]: fractions."""
        cells = np.abs(units).mean(axis=0)  # [T, C]
        total = float(cells.sum()) or 1.0
        for j, row in enumerate(rows):
            row["channel_totals"] = units[j].sum(axis=0).tolist()  # [C], signed
        return {"shape": list(cells.shape), "axes": ["time step", "channel"],
                "time_channel": cells.tolist(), "channel_share": (cells.sum(axis=0) / total).tolist(),
                "step_share": (cells.sum(axis=1) / total).tolist(), "rows": rows}

    def plots(self, pre: Any, inputs: np.ndarray, units: np.ndarray, summary: dict[str, Any],
              directory: Path) -> dict[str, Path]:
        cells = np.asarray(summary["time_channel"])  # [T, C]

        def draw(fig: Any) -> None:
            ax = fig.add_subplot()
            image = ax.imshow(cells.T, aspect="auto", cmap="magma", interpolation="nearest")
            fig.colorbar(image, ax=ax, label="mean |integrated gradients|")
            ax.set(xlabel="time step", ylabel="channel",
                   title=f"Attribution over time and channels ({len(units)} test sequences)")
            if cells.shape[1] <= 20:
                ax.set_yticks(range(cells.shape[1]))
            fig.subplots_adjust(left=0.1, right=0.95, bottom=0.2, top=0.88)

        path = Path(directory) / "time_channels.png"
        atomic_write_bytes(path, render_png(draw, (7.0, 3.0 + 0.15 * min(cells.shape[1], 40))))
        return {"time_channels": path}
