"""advise.json, plots/learning_curve.png and advise.html of `deepfit advise` (evaluation/report.py's
page: self-contained, no script, no request)."""

from __future__ import annotations

from deepfit.core.io import atomic_write_bytes, write_json, write_text
from deepfit.evaluation.plots import learning_curves
from deepfit.evaluation.report import _checklist, _e, _figure, _num, _page, _section, _table
from deepfit.tools.advise.result import Advice

BAKEOFF_COLUMNS = ("model", "fraction", "train_rows", "test_score", "test_accuracy", "val_score",
                   "train_seconds", "latency_ms", "epochs_run", "stop_reason")


def write_advice(advice: Advice) -> None:
    path = advice.path
    curves = {m: [tuple(p) for p in points]
              for m, points in advice.evidence["learning_curves"].items()}
    png = learning_curves(curves, advice.metric)
    (path / "plots").mkdir(exist_ok=True)
    atomic_write_bytes(path / "plots" / "learning_curve.png", png)
    write_json(path / "advise.json", advice.to_dict())
    write_text(path / "advise.html", render(advice, png))


def render(advice: Advice, png: bytes) -> str:
    items = [{"passed": i.passed, "criterion": i.criterion, "evidence": i.evidence}
             for i in advice.checklist]
    columns = [k for k in BAKEOFF_COLUMNS
               if k != "test_accuracy" or any(k in r for r in advice.bakeoff)]
    rows = [[_e(r.get("model")) if k == "model" else _num(r.get(k)) for k in columns]
            for r in advice.bakeoff]
    notes = "".join(f"<p>{_e(n)}</p>" for n in advice.notes)
    reasons = "".join(f"<li>{_e(r)}</li>" for r in advice.reasons)
    parts = [
        f"<h1>deepfit advise: {_e(advice.verdict)}</h1>"
        f"<p class=sub>{advice.rows:,} labelled rows of {_e(advice.modality)} data, "
        f"{_e(advice.task)}; device {_e(advice.device)}</p>",
        _section("Verdict", f"<p><b>{_e(advice.verdict)}</b> (the guide's matrix: "
                 f"{_e(advice.rule_verdict)})</p><ul class=plain>{reasons}</ul>"
                 f"<p>Next: <code>{_e(advice.next_command)}</code></p>"),
        _section("Checklist", _checklist(items)),
        _section("The matrix row that applies", f"<p>{_e(advice.matrix_row)}</p>"),
        _section(f"Bake-off (one split; test {advice.metric})", notes + _table(columns, rows)),
        _section("Learning curves", _figure(png, "test score against training rows")),
    ]
    return _page("deepfit advise", "".join(parts), {})
