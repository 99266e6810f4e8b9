"""Seconds of `deepfit.explain` on small runs (issue 21): a table (breast_cancer, 30 columns,
86 test rows; permutation importance with 5 shuffles and integrated gradients of 10 rows), the
digits as 8×8 images (cnn, 270 test images, 24 explained) and motif sequences [300, 32, 1]
(cnn1d, 32 explained). Each run trained once; explain timed `--repeats` times (median, min–max).

    PYTHONPATH=src python benchmarks/explain.py [--repeats 5] [--out /tmp/explain-bench]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import deepfit
from generated import motif_sequences


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="/tmp/explain-bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = Path(args.out)
    X, y = motif_sequences(300)
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "seq.npz", X=X, y=y)
    cases = {"table: breast_cancer, mlp": ("breast_cancer", {}),
             "images: digits 8x8, cnn": ("digits", {"modality": "image"}),
             "sequences: motif [300, 32, 1], cnn1d": (str(root / "seq.npz"), {})}
    for i, (name, (source, extra)) in enumerate(cases.items()):
        run = deepfit.train(source, out=root / f"run{i}", epochs=5, progress=False, **extra)
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = deepfit.explain(run.path)
            seconds.append(time.perf_counter() - start)
        print(f"| {name} | {result['rows']} | {result['integrated_gradients']['samples']} | "
              f"{statistics.median(seconds):.2f} | {min(seconds):.2f}–{max(seconds):.2f} | "
              f"{result['sanity']['spearman_abs']:.2f} | "
              f"{result['integrated_gradients']['completeness']['max_relative_delta']:.2%} |", flush=True)


if __name__ == "__main__":
    main()
