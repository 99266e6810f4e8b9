"""Default settings against a short `deepfit tune`: the test score of each and the wall time of
the search, on digits and breast_cancer.

    python benchmarks/tune_scores.py [--sets digits,breast_cancer] [--seeds 0,1,2] [--trials 8]
                                     [--epochs 20]

Per (set, seed): `deepfit.train` with the defaults (mlp, the seed's split) and its test accuracy;
then `deepfit.tune` of --trials trials (the first is the defaults; val_loss minimised, median
pruner, same split and seed), the wall time of the whole search, and the best trial's test
accuracy (the test split evaluated once, for it alone). Both with the same --epochs. Writes
benchmarks/tune_scores.json and prints a markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import deepfit


def one(name: str, seed: int, trials: int, epochs: int, root: Path) -> dict:
    started = time.perf_counter()
    run = deepfit.train(name, seed=seed, epochs=epochs, out=root / f"{name}-{seed}-default",
                        progress=False, report=False)
    default_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = deepfit.tune(name, trials=trials, seed=seed, epochs=epochs, out=root / f"{name}-{seed}-tune")
    return {"set": name, "seed": seed, "trials": trials, "epochs": epochs,
            "default_accuracy": run.metrics["accuracy"], "default_seconds": default_seconds,
            "tuned_accuracy": result["test_metrics"]["accuracy"],
            "search_seconds": time.perf_counter() - started, "pruned": result["pruned"],
            "beats_default_on_val": result["beats_default"], "best_params": result["best_params"]}


def summary(rows: list[dict]) -> str:
    lines = ["| set | default test accuracy | tuned test accuracy | search wall time (s) | pruned |",
             "|---|---|---|---|---|"]

    def med(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"

    for name in dict.fromkeys(r["set"] for r in rows):
        rs = [r for r in rows if r["set"] == name]
        lines.append(f"| {name} | {med([r['default_accuracy'] for r in rs], '.4f')} | "
                     f"{med([r['tuned_accuracy'] for r in rs], '.4f')} | "
                     f"{med([r['search_seconds'] for r in rs], '.1f')} | "
                     f"{med([r['pruned'] for r in rs], '.0f')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="digits,breast_cancer")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                rows.append(one(name, seed, args.trials, args.epochs, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    out = Path(__file__).with_name("tune_scores.json")
    out.write_text(json.dumps({"machine": platform.platform(), "rows": rows}, indent=2) + "\n")
    print(summary(rows))


if __name__ == "__main__":
    main()
