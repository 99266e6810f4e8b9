"""What `deepfit compress` measures for the original and each compressed run, and its page.

    score          the test split's accuracy (classification) or RMSE (regression), the rows
                   `train` held out, through each run's own Predictor
    latency_ms     per forward call in eval mode without gradients on the CPU, at batch 1 and 64
                   (test rows, repeated to 64): p50 and p95 over `repeats` timed calls after a
                   warm-up (tools/benchmark's Latency)
    size_bytes     the run's model.safetensors on disk
    params         parameters of the architecture (an int8 layer's weights count as those of
                   the float layer it replaces; tools/benchmark's count_params)
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import torch

from deepfit.core.notes import Notes
from deepfit.lifecycle.predictor import WEIGHTS, Predictor
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.tools.benchmark.measure import Latency, count_params

BATCHES = (1, 64)


def measure(method: str, run: Path, predictor: Predictor, prepared: Any, repeats: int) -> dict[str, Any]:
    """The row of compress.json for one run (see the module's docstring)."""
    metrics = predictor.evaluation(*prepared.test_frame).metrics
    classification = predictor.task == "classification"
    name = "accuracy" if classification else "rmse"
    X_test = prepared.test_frame[0]
    features = predictor.features(X_test, Notes(live=False))
    arch = predictor.architecture
    float_model = create(arch["name"], InputSpec.from_dict(arch["input_spec"]),
                         OutputSpec(**arch["output_spec"]), **arch["settings"])
    return {"method": method, "run": str(run), "model": arch["name"], "settings": arch["settings"],
            "score_name": name, "score": float(metrics[name]),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "latency_ms": {f"batch_{b}": _latency(predictor.model, features, b, repeats) for b in BATCHES},
            "size_bytes": (Path(run) / WEIGHTS).stat().st_size,
            "params": count_params(float_model)[0]}


@torch.no_grad()
def _latency(model: torch.nn.Module, features: torch.Tensor, batch: int, repeats: int) -> dict[str, Any]:
    x = features[torch.arange(batch) % len(features)]
    model.eval()
    model(x)  # warm-up: allocation, kernel choice
    seconds = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        model(x)
        seconds.append(time.perf_counter() - start)
    found = Latency.of(seconds)
    return {"p50": found.p50, "p95": found.p95, "calls": found.calls}


def write_html(summary: dict[str, Any]) -> str:
    """compress.html: one table, the original first, each result's change beside its value."""
    rows = [summary["original"], *summary["results"]]
    base = summary["original"]
    header = ["method", "run", "model", base["score_name"], "p50 ms (1)", "p95 ms (1)",
              "p50 ms (64)", "p95 ms (64)", "size (KiB)", "parameters", "sparsity"]
    body = []
    for row in rows:
        lat = row["latency_ms"]
        cells = [row["method"], Path(row["run"]).name, row["model"], f"{row['score']:.4f}",
                 _ms(lat["batch_1"]["p50"]), _ms(lat["batch_1"]["p95"]),
                 _ms(lat["batch_64"]["p50"]), _ms(lat["batch_64"]["p95"]),
                 f"{row['size_bytes'] / 1024:,.1f} ({row['size_bytes'] / base['size_bytes']:.0%})",
                 f"{row['params']:,}", f"{row['sparsity']:.0%}" if "sparsity" in row else ""]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>compress {html.escape(Path(summary['run']).name)}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}</style></head><body>"
            f"<h1>Compressing {html.escape(summary['run'])}</h1>"
            f"<p>Test score, latency per forward call on the CPU (p50/p95 over "
            f"{summary['settings']['repeats']} calls, batch 1 and 64), size on disk and parameters.</p>"
            f"<table><tr>{head}</tr>{''.join(body)}</table></body></html>\n")


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
