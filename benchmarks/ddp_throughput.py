"""Training samples/s of `deepfit train digits` on 1 and 2 processes (2: torchrun, gloo on the
CPU), median and spread over repeats; writes nothing, prints a Markdown table for RESULTS.md.

    PYTHONPATH=src python benchmarks/ddp_throughput.py [--repeats 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from deepfit.tools.benchmark.processes import process_throughput


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--counts", default="1,2")
    a = p.parse_args()
    rows = process_throughput("digits", tuple(int(c) for c in a.counts.split(",")), epochs=a.epochs,
                              batch_size=a.batch_size, repeats=a.repeats, threads=1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, CUDA {'yes' if torch.cuda.is_available() else 'no'}")
    print("| processes | samples/s (median) | min | max | runs |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['samples_per_s']:,.0f} | {r['min']:,.0f} | {r['max']:,.0f} | "
              f"{', '.join(f'{v:,.0f}' for v in r['runs'])} |")


if __name__ == "__main__":
    main()
