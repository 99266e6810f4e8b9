"""Startup and the time outside the training steps, as the `deepfit` command gives them.

    python benchmarks/startup.py [--repeats 5]

Three tables, each the median and the spread (min–max) of `--repeats` fresh processes, the
kinds interleaved across repeats so that drift of the machine spreads over all of them:

1. Help: the wall seconds of `deepfit --help` and `deepfit train --help` (the installed script
   next to this interpreter, or `python -c "from deepfit.cli import console; console()"`).
2. The library floor: the seconds a bare interpreter spends importing what a training run
   needs, timed inside the process like --timings' "import" row (torch; + torch._dynamo, which
   torch.optim loads at the first optimizer, so a hand-written loop pays it too; + pandas and
   scikit-learn; + torchmetrics; + matplotlib, for the report's plots). No deepfit code runs.
3. `deepfit train digits --timings`: the process's wall seconds and config.json's "timings"
   per stage (exclusive seconds; "import" is the libraries' load inside the command).

Writes benchmarks/startup.json; prints markdown tables for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLOOR = {  # name → the imports of a bare interpreter, each row adding to the one above
    "torch": "import torch",
    "+ torch._dynamo": "import torch, torch._dynamo",
    "+ pandas, sklearn.model_selection, sklearn.metrics":
        "import torch, torch._dynamo, pandas, sklearn.model_selection, sklearn.metrics",
    "+ torchmetrics": ("import torch, torch._dynamo, pandas, sklearn.model_selection, "
                       "sklearn.metrics, torchmetrics"),
    "+ matplotlib.pyplot": ("import torch, torch._dynamo, pandas, sklearn.model_selection, "
                            "sklearn.metrics, torchmetrics, matplotlib; matplotlib.use('Agg'); "
                            "import matplotlib.pyplot"),
}


def _deepfit() -> list[str]:
    script = Path(sys.executable).with_name("deepfit")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from deepfit.cli import console; console()"]


def _imports(code: str) -> float:
    timed = f"import time\nstart = time.perf_counter()\n{code}\nprint(time.perf_counter() - start)"
    out = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True, check=True,
                         timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def _wall(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, env=env, timeout=600)
    return time.perf_counter() - start


def _train(out: Path) -> tuple[float, dict]:
    """One `deepfit train digits --timings` → (wall seconds, {stage: seconds}, test accuracy)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    wall = _wall([*_deepfit(), "train", "digits", "--timings", "--out", str(out), "-q"], env)
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    return wall, config["timings"], metrics


def _cell(values: list[float], digits: int = 2) -> str:
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    help_walls: dict[str, list[float]] = {"deepfit --help": [], "deepfit train --help": []}
    floor: dict[str, list[float]] = {name: [] for name in FLOOR}
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    accuracies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            help_walls["deepfit --help"].append(_wall([*_deepfit(), "--help"]))
            help_walls["deepfit train --help"].append(_wall([*_deepfit(), "train", "--help"]))
            for name, code in FLOOR.items():
                floor[name].append(_imports(code))
            wall, timings, metrics = _train(Path(tmp) / f"run{repeat}")
            walls.append(wall)
            for stage, seconds in timings.items():
                stages.setdefault(stage, []).append(seconds)
            test = metrics.get("test", metrics)
            if isinstance(test, dict) and "accuracy" in test:
                accuracies.append(float(test["accuracy"]))
            print(f"repeat {repeat + 1}/{args.repeats}: train digits {wall:.2f} s", file=sys.stderr)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "repeats": args.repeats, "help": help_walls,
              "floor": floor, "train_digits": {"wall": walls, "stages": stages,
                                               "test_accuracy": accuracies}}
    (HERE / "startup.json").write_text(json.dumps(result, indent=1))
    print(f"{result['machine']}, {result['date']}, median (min–max) of {args.repeats} processes\n")
    print("| command | wall s |\n|---|---|")
    for name, values in help_walls.items():
        print(f"| `{name}` | {_cell(values)} |")
    print("\n| a bare interpreter importing | s |\n|---|---|")
    for name, values in floor.items():
        print(f"| {name} | {_cell(values)} |")
    print("\n| `deepfit train digits --timings` | s |\n|---|---|")
    print(f"| process wall | {_cell(walls)} |")
    for stage, values in stages.items():
        print(f"| {stage} | {_cell(values)} |")
    if accuracies:
        print(f"| test accuracy | {_cell(accuracies, 4)} |")


if __name__ == "__main__":
    main()
