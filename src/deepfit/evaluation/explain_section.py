"""The "Explanations" section of a run's report.html, from RUN_DIR/explain.json and the PNGs
beside it (written by `deepfit explain`, tools/explain/): the permutation importance table, the
integrated-gradients checks (completeness, the model-randomisation test) and the plots."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

EXPLAIN_JSON, EXPLAIN_PLOTS = "explain.json", "explain"
CAPTIONS = {"importance": "Permutation importance of each column (test split)",
            "attributions": "Integrated gradients per column (explained test rows)",
            "overlays": "Integrated gradients over test images (✗: the surest mistakes)",
            "time_channels": "Integrated gradients over time steps and channels"}


def explain_block(run_dir: Path) -> str | None:
    """The section's HTML, or None when the run has no readable explain.json."""
    path = Path(run_dir) / EXPLAIN_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    parts = [f"<p class=sub>on {_e(record.get('held_out'))} · metric {_e(record.get('metric'))}</p>"]
    warnings = record.get("warnings") or []
    if warnings:
        parts.append("<ul style='padding:0'>" + "".join(f"<li class=warn>⚠ {_e(w)}</li>" for w in warnings) + "</ul>")
    importance = record.get("permutation_importance")
    if isinstance(importance, dict):
        rows = "".join(f"<tr><td>{_e(c.get('column'))}</td><td class=num>{_n(c.get('mean'))}</td>"
                       f"<td class=num>{_n(c.get('std'))}</td><td class=num>{_n(c.get('share'), '.1%')}</td></tr>"
                       for c in importance.get("columns", [])[:30])
        parts.append(f"<div><h3>Permutation importance</h3><p class=sub>{_e(importance.get('method'))}; "
                     f"{_e(importance.get('repeats'))} shuffles; the top 3 columns carry "
                     f"{_n(importance.get('top3_share'), '.0%')} of the total</p>"
                     "<table><tr><th>column</th><th>mean drop</th><th>std</th><th>share</th></tr>"
                     f"{rows}</table></div>")
    ig = record.get("integrated_gradients") or {}
    sanity, full = record.get("sanity") or {}, ig.get("completeness") or {}
    checks = [("method", ig.get("method")), ("baseline", ig.get("baseline")), ("output", ig.get("output")),
              ("samples explained", ig.get("samples")), ("steps", ig.get("n_steps")),
              ("completeness: largest |delta| / mean |F(x) − F(baseline)|", _n(full.get("max_relative_delta"), ".2%")),
              ("model randomisation", sanity.get("text"))]
    parts.append("<div><h3>Integrated gradients</h3><table>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in checks if v is not None) + "</table></div>")
    pictures = Path(run_dir) / EXPLAIN_PLOTS
    figures = [_figure(pictures / f"{name}.png", caption) for name, caption in CAPTIONS.items()
               if (pictures / f"{name}.png").is_file()]
    if figures:
        parts.append("<div class=grid>" + "".join(figures) + "</div>")
    return "".join(parts)


def _figure(path: Path, caption: str) -> str:
    src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img src="{src}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _n(value: Any, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))
