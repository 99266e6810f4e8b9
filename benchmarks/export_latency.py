"""Exported (onnxruntime) against eager (torch) latency of a trained run's network, at batch 1
and 64, for an mlp on breast_cancer and a cnn on the 8×8 digits as images (by hand, not in the
test suite; issue 16).

Each run is trained briefly, exported with `deepfit.export` (ONNX, dynamic batch; parity is
checked there), and then, on the same preprocessed test rows and the same thread count:
  eager      torch: model(x) under torch.inference_mode()
  onnx       onnxruntime's InferenceSession.run on the CPU (intra-op threads = torch's)
  predictor  deepfit's Predictor.outputs on the raw rows: preprocessing + eager network
Each figure is the median over --repeats of the median per-call time of --calls calls (after
warm-up), with the range of the repeats. Prints a Markdown table for benchmarks/RESULTS.md.

    python benchmarks/export_latency.py --repeats 7 --calls 200 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import deepfit
from deepfit.deploy.formats import onnx_session
from deepfit.lifecycle.held_out import held_out_rows

CASES = {"mlp": ("breast_cancer", {}), "cnn": ("digits", {"modality": "image"})}


def per_call(fn, calls: int) -> float:
    """The median seconds of one call of `fn`, over `calls` calls."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(name: str, tmp: Path, repeats: int, calls: int) -> list[dict]:
    source, extra = CASES[name]
    run = deepfit.train(source, model=name, epochs=3, progress=False, report=False, out=tmp / name, **extra)
    result = deepfit.export(run.path)
    held = held_out_rows(run.path, run.predictor)
    inputs = run.predictor.features(held.X).numpy()
    session = onnx_session(result.model)
    model = run.predictor.model.eval()
    rows = []
    for batch in (1, 64):
        idx = np.arange(batch) % len(inputs)
        x, raw = inputs[idx], held.X.iloc[idx] if hasattr(held.X, "iloc") else held.X[idx]
        xt = torch.from_numpy(x)

        def eager(xt=xt):
            with torch.inference_mode():
                model(xt)

        contenders = {"eager": eager, "onnx": lambda x=x: session.run(["output"], {"input": x}),
                      "predictor": lambda raw=raw: run.predictor.outputs(raw)}
        for fn in contenders.values():  # warm-up
            for _ in range(20):
                fn()
        results = {k: [] for k in contenders}
        for _ in range(repeats):  # interleaved, so drift hits every contender alike
            for key, fn in contenders.items():
                results[key].append(per_call(fn, calls) * 1e6)
        rows.append({"model": name, "source": source, "batch": batch, "exporter": result.exporter,
                     "max_abs_diff": result.max_abs_diff,
                     **{k: (float(np.median(v)), min(v), max(v)) for k, v in results.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for name in CASES for r in measure(name, Path(tmp), args.repeats, args.calls)]
    print(f"{platform.machine()}, {torch.get_num_threads()} thread, torch {torch.__version__}, "
          f"{args.repeats} repeats × {args.calls} calls\n")
    print("| model (data) | batch | eager torch µs | onnxruntime µs | eager ÷ onnx | Predictor (with preprocessing) µs | parity max abs diff |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cell = {k: f"{r[k][0]:,.0f} ({r[k][1]:,.0f}–{r[k][2]:,.0f})" for k in ("eager", "onnx", "predictor")}
        print(f"| {r['model']} ({r['source']}) | {r['batch']} | {cell['eager']} | {cell['onnx']} | "
              f"{r['eager'][0] / r['onnx'][0]:.2f} | {cell['predictor']} | {r['max_abs_diff']:.1e} |")


if __name__ == "__main__":
    main()
