"""report.html: one self-contained page per run, and a side-by-side comparison of runs.

The page holds everything inline: CSS in a <style>, plots as base64 data URIs, no script, and a
Content-Security-Policy that forbids any request, so it opens offline, from an e-mail or an
archive exactly as it was written. It shows the settings, the data and their splits, every
automatic decision and warning, the test metrics with a per-class table, and the plots.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from deepfit.core.io import read_json, write_text
from deepfit.errors import RunDirError
from deepfit.evaluation.explain_section import explain_block
from deepfit.evaluation.plots import CAPTIONS, PLOTS, overlay, write_plots

REPORT = "report.html"
LOWER_IS_BETTER = {"mse", "rmse", "mae", "log_loss", "loss", "perplexity"}
NOT_SCORES = {"n", "threshold"}
CONFUSED_NOTE = ("<p class=sub>the test samples the model got most confidently wrong: the highest "
                 "probability given to a wrong class (regression: the largest errors), shortened</p>")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 12px}
table{border-collapse:collapse;background:#fff;margin:4px 0 8px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8dce3;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600} td.num{text-align:right}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #d8dce3;padding:8px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto} figcaption{color:#5b6475;font-size:12px;text-align:center}
.warn{background:#fff6e0;border-left:4px solid #e0a100;padding:6px 10px;margin:4px 0;list-style:none}
ul.plain,ol{background:#fff;border:1px solid #d8dce3;padding:8px 8px 8px 30px;margin:4px 0}
.ok{color:#1a7f37}.no{color:#b35900} .best{font-weight:700;background:#e8f5e9}
.cols{display:flex;flex-wrap:wrap;gap:24px} code{background:#eef1f5;padding:0 3px}
"""


# ------------------------------------------------------------------ writing
def write_run_report(run_dir: Path, config: dict, metrics: dict, history: list[dict],
                     evaluation: Any) -> Path:
    """At the end of training: the plots into RUN_DIR/plots, then RUN_DIR/report.html."""
    run_dir = Path(run_dir)
    classes = [str(c) for c in (metrics.get("per_class") or {})] or None
    write_plots(run_dir / PLOTS, history, evaluation, classes, config.get("train", {}).get("best_epoch"))
    path = run_dir / REPORT
    write_text(path, render_run(run_dir, config, metrics, history))
    return path


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Regenerate a run's report from its files (config.json, metrics.json, history.csv, plots)."""
    run_dir = Path(run_dir)
    config, metrics, history = load_run(run_dir)
    path = Path(out) if out else run_dir / REPORT
    write_text(path, render_run(run_dir, config, metrics, history))
    return path


def write_comparison(run_dirs: list[Path], out: Path) -> Path:
    runs = {_run_name(Path(d), i): (Path(d), *load_run(Path(d))) for i, d in enumerate(run_dirs)}
    write_text(Path(out), render_comparison(runs))
    return Path(out)


def load_run(run_dir: Path) -> tuple[dict, dict, list[dict]]:
    config = read_json(run_dir / "config.json")  # a clear error when this is no run directory
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    for name, record in (("config.json", config), ("metrics.json", metrics)):
        if not isinstance(record, dict):
            raise RunDirError(f"{run_dir / name} is damaged: it holds no JSON object")
    history_file = run_dir / "history.csv"
    history = pd.read_csv(history_file).to_dict("records") if history_file.exists() else []
    return config, metrics, history


def _run_name(run_dir: Path, i: int) -> str:
    return run_dir.resolve().name or f"run {i + 1}"


# ------------------------------------------------------------------ one run
def render_run(run_dir: Path, config: dict, metrics: dict, history: list[dict]) -> str:
    data, train = config.get("data", {}), config.get("train", {})
    title = f"deepfit report: {_run_name(Path(run_dir), 0)}"
    summary = (f"{data.get('task', '?')} of <code>{_e(data.get('target'))}</code> on "
               f"<b>{_e(data.get('name'))}</b> · model <b>{_e(config.get('model', {}).get('name'))}</b> · "
               f"status <b>{_e(config.get('status'))}</b>")
    parts = [
        f"<h1>{_e(title)}</h1><p class=sub>{summary}<br>{_e(_training_line(train))}</p>",
        _section("Test metrics", _metrics_block(metrics)),
        _section("Plots", _plots(Path(run_dir) / PLOTS)),
        *_explanations(Path(run_dir)),
        _section("Data and splits", _data_block(data)),
        _section("Decisions and warnings", _notes_block(config)),
        _section("Settings", _kv_columns(config.get("settings", {}), 3)),
    ]
    if metrics.get("checklist"):
        parts.insert(2, _section("Checklist", _checklist(metrics["checklist"])))
    if metrics.get("worst_examples"):  # anomaly detection: the highest scores of the test split
        parts.insert(3, _section("Worst-reconstructed test samples", _rows_table(metrics["worst_examples"])))
    if metrics.get("confused_examples"):  # the modality's (Modality.report_examples): text's texts
        parts.insert(3, _section("Most confused test examples", CONFUSED_NOTE
                                 + _rows_table(metrics["confused_examples"])))
    return _page(title, "".join(parts), config.get("versions", {}))


def _rows_table(rows: list[dict]) -> str:
    """Rows of column → value as a table: text escaped, numbers as numbers."""
    header = list(dict.fromkeys(k for r in rows for k in r))
    return _table(header, [[_e(r[k]) if isinstance(r.get(k), str) else _num(r.get(k)) for k in header]
                           for r in rows])


def _explanations(run_dir: Path) -> list[str]:
    """The Explanations section, once `deepfit explain` has written RUN_DIR/explain.json."""
    block = explain_block(run_dir)
    return [] if block is None else [_section("Explanations", block)]


def _training_line(train: dict) -> str:
    bits = []
    if train.get("epochs_run") is not None:
        bits.append(f"{train['epochs_run']} epochs run, best epoch {train.get('best_epoch')}"
                    f" by {train.get('monitor', 'val_loss')}")
    if train.get("stop_reason"):
        bits.append(str(train["stop_reason"]))
    if train.get("device"):
        bits.append(f"device {train['device']}")
    return " · ".join(bits)


def _metrics_block(metrics: dict) -> str:
    if not metrics:
        return "<p>No test metrics: the run did not finish.</p>"
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
    html_parts = [_kv_table(scalars, numbers=True)]
    per_class = metrics.get("per_class")
    if per_class:
        rows = [[_e(label), *(_num(v[k]) for k in ("precision", "recall", "f1")), _num(v["support"])]
                for label, v in per_class.items()]
        html_parts.append("<div><h3>Per class</h3>"
                          + _table(["class", "precision", "recall", "F1", "support"], rows) + "</div>")
    matrix = metrics.get("confusion_matrix")
    if matrix and per_class and len(matrix) <= 30:
        labels = list(per_class)
        rows = [[f"<b>{_e(labels[i])}</b>", *(_num(c) for c in row)] for i, row in enumerate(matrix)]
        html_parts.append("<div><h3>Confusion matrix</h3><p class=sub>rows: true class, columns: predicted</p>"
                          + _table(["true \\ predicted", *labels], rows) + "</div>")
    return f"<div class=cols>{''.join(html_parts)}</div>"


def _plots(directory: Path) -> str:
    names = [n for n in CAPTIONS if (directory / f"{n}.png").exists()]
    names += sorted(p.stem for p in directory.glob("*.png") if p.stem not in CAPTIONS) if directory.is_dir() else []
    if not names:
        return "<p>No plots in this run directory.</p>"
    return "<div class=grid>" + "".join(
        _figure((directory / f"{n}.png").read_bytes(), CAPTIONS.get(n, n.replace("_", " ")))
        for n in names) + "</div>"


def _figure(png: bytes, caption: str) -> str:
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f'<figure><img src="{src}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _data_block(data: dict) -> str:
    shown = {k: data.get(k) for k in ("name", "source", "target", "task", "modality", "rows")
             if data.get(k) is not None}
    columns = data.get("columns") or []
    if columns:
        shown["columns"] = f"{len(columns)}: " + ", ".join(map(str, columns[:20])) + (" …" if len(columns) > 20 else "")
    if data.get("test"):
        shown["held-out test file"] = data["test"]
    shown |= data.get("facts") or {}  # the modality's own lines, written with the run
    parts = [_kv_table(shown)]
    sizes = data.get("split_sizes")
    if sizes:
        total = sum(sizes.values()) or 1
        rows = [[_e(k), _num(v), f"{v / total:.1%}"] for k, v in sizes.items()]
        parts.append("<div><h3>Splits</h3>" + _table(["split", "rows", "share"], rows) + "</div>")
    counts = data.get("class_counts")
    if counts:
        total = sum(counts.values()) or 1
        rows = [[_e(k), _num(v), f"{v / total:.1%}"] for k, v in counts.items()]
        ratio = data.get("imbalance_ratio")
        note = f"<p class=sub>majority/minority ratio {ratio:.2f}:1</p>" if ratio else ""
        parts.append("<div><h3>Classes (training split)</h3>" + _table(["class", "rows", "share"], rows)
                     + note + "</div>")
    return f"<div class=cols>{''.join(parts)}</div>"


def _notes_block(config: dict) -> str:
    warnings = "".join(f"<li class=warn>⚠ {_e(w)}</li>" for w in config.get("warnings", []))
    decisions = "".join(f"<li>{_e(d)}</li>" for d in config.get("decisions", []))
    return ((f"<ul style='padding:0'>{warnings}</ul>" if warnings else "<p>No warnings.</p>")
            + (f"<ol>{decisions}</ol>" if decisions else ""))


def _checklist(items: list[dict]) -> str:
    rows = [[f"<span class={'ok' if i.get('passed') else 'no'}>{'✓' if i.get('passed') else '✗'}</span>",
             _e(("error: " if i.get("severity") == "error" else "") + str(i.get("criterion"))),
             _e(i.get("evidence")) + (f"<br>likely cause: {_e(i['hint'])}" if i.get("hint") else "")]
            for i in items]
    return _table(["", "criterion", "evidence"], rows)


# ---------------------------------------------------------------- comparison
def render_comparison(runs: dict[str, tuple[Path, dict, dict, list[dict]]]) -> str:
    names = list(runs)
    settings = [r[1].get("settings", {}) for r in runs.values()]
    keys = sorted({k for s in settings for k in s})
    differing = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in settings}) > 1]
    rows = [[_e(k), *(_e(_fmt(s.get(k))) for s in settings)] for k in differing]
    header = ["setting", *names]
    parts = [f"<h1>deepfit comparison of {len(names)} runs</h1>"
             f"<p class=sub>{_e(', '.join(str(r[0]) for r in runs.values()))}</p>",
             _section("Test metrics", _compare_metrics(names, [r[2] for r in runs.values()])),
             _section("Settings that differ", _table(header, rows) if rows else "<p>All settings are equal.</p>")]
    histories = {n: r[3] for n, r in runs.items()}
    columns = [k for k in ("val_loss", "train_loss") if any(h and k in h[0] for h in histories.values())]
    columns += sorted({k for h in histories.values() if h for k in h[0]
                       if k.startswith("val_") and k != "val_loss"})
    if columns:
        parts.append(_section("Curves", "<div class=grid>" + "".join(
            _figure(overlay(histories, k), k.replace("_", " ")) for k in columns) + "</div>"))
    plots = [n for n in CAPTIONS if n not in ("loss", "metrics", "lr")
             and any((r[0] / PLOTS / f"{n}.png").exists() for r in runs.values())]
    for name in plots:
        figures = [_figure((r[0] / PLOTS / f"{name}.png").read_bytes(), f"{n}: {CAPTIONS[name]}")
                   for n, r in runs.items() if (r[0] / PLOTS / f"{name}.png").exists()]
        parts.append(_section(CAPTIONS[name], "<div class=grid>" + "".join(figures) + "</div>"))
    versions = next(iter(runs.values()))[1].get("versions", {})
    return _page("deepfit comparison", "".join(parts), versions)


def _compare_metrics(names: list[str], metrics: list[dict]) -> str:
    keys = [k for k in dict.fromkeys(k for m in metrics for k in m)
            if any(isinstance(m.get(k), (int, float)) for m in metrics)]
    rows = []
    for key in keys:
        values = [m.get(key) for m in metrics]
        numbers = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
        best = None
        if key not in NOT_SCORES and len(numbers) > 1 and len(set(numbers)) > 1:
            best = min(numbers) if key in LOWER_IS_BETTER else max(numbers)
        cells = [(f"<td class='num best'>{_num(v)}</td>" if best is not None and v == best
                  else f"<td class=num>{_num(v)}</td>")
                 for v in values]
        rows.append(f"<tr><th>{_e(key)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in ["metric", *names])
    return f"<table><tr>{head}</tr>{''.join(rows)}</table><p class=sub>best value in bold</p>"


# ------------------------------------------------------------------ helpers
def _page(title: str, body: str, versions: dict) -> str:
    made = time.strftime("%Y-%m-%d %H:%M:%S")
    stamp = ", ".join(f"{k} {v}" for k, v in versions.items())
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{body}<p class=sub>written {made}{' · ' + _e(stamp) if stamp else ''}</p>"
            "</main></body></html>\n")


def _section(title: str, content: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{content}</section>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _kv_table(values: dict, numbers: bool = False) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td{' class=num' if numbers else ''}>"
                   f"{_num(v) if numbers else _e(_fmt(v))}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def _kv_columns(values: dict, n: int) -> str:
    items = list(values.items())
    size = max(1, math.ceil(len(items) / n))
    return "<div class=cols>" + "".join(_kv_table(dict(items[i : i + size]))
                                        for i in range(0, len(items), size)) + "</div>"


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):  # bool too
        return str(value)
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return _e(value)


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))
