"""`deepfit compress RUN --method quantize,prune,distill`: new, smaller runs beside RUN
(deepfit/deploy/compress.py), and a table of what each costs and buys."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("compress",)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compress", help="quantise, prune or distil a run into new runs beside it",
                       description="Write RUN-int8 (dynamic int8 quantisation, CPU), RUN-pruned "
                                   "(global magnitude pruning, fine-tuned) and RUN-distilled (a "
                                   "student with half the widths); compare them in RUN/compress.json "
                                   "and compress.html.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--method", default="quantize",
                   help="quantize, prune, distill, or several comma-separated (default quantize)")
    p.add_argument("--source", default=None, help="the run's data, when config.json does not name them")
    p.add_argument("--sparsity", type=float, default=0.5, help="prune: share of weights set to 0 (default 0.5)")
    p.add_argument("--epochs", type=int, default=5, help="prune's fine-tune and the student's epochs (default 5)")
    p.add_argument("--temperature", type=float, default=4.0, help="distill: softmax temperature T (default 4)")
    p.add_argument("--alpha", type=float, default=0.7, help="distill: weight of the soft targets (default 0.7)")
    p.add_argument("--repeats", type=int, default=50, help="timed forward calls per batch size (default 50)")
    p.add_argument("--out", default=None, help="folder for the new runs (default: beside RUN)")


def run(args: argparse.Namespace, console: Any) -> int:
    from deepfit.deploy.compress import compress

    summary = compress(args.run, args.method, source=args.source, sparsity=args.sparsity,
                       epochs=args.epochs, temperature=args.temperature, alpha=args.alpha,
                       repeats=args.repeats, out=args.out)
    base = summary["original"]
    console.print(f"{'method':<10} {'run':<28} {base['score_name']:>9} {'p50 ms@1':>9} "
                  f"{'p50 ms@64':>10} {'size KiB':>9} {'params':>10}")
    for row in [base, *summary["results"]]:
        lat = row["latency_ms"]
        name = row["run"].rsplit("/", 1)[-1]
        console.print(f"{row['method']:<10} {name:<28} {row['score']:>9.4f} {lat['batch_1']['p50']:>9.3f} "
                      f"{lat['batch_64']['p50']:>10.3f} {row['size_bytes'] / 1024:>9.1f} {row['params']:>10,}"
                      + (f"  sparsity {row['sparsity']:.0%}" if "sparsity" in row else ""))
    console.print(f"written: {summary['json']}, {summary['html']}")
    return 0
