"""`deepfit tune SOURCE --trials N`: a hyperparameter search on Optuna (tools/tune/), with the
train flags for the data and any settings to fix; prints the live progress (on stderr), the
leaderboard, importances, the best run and the `deepfit train` command reproducing it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from deepfit.cli.commands.lr_find import Renamed

NAMES = ("tune",)


def add_parser(sub: Any) -> None:
    from deepfit.cli.train_flags import add_train

    renamed = Renamed(sub, "tune", "search the model's and the trainer's settings on Optuna "
                      "(TPE, pruning, an SQLite or any Optuna storage); resumable")
    add_train(renamed)
    p = renamed.parser
    p.add_argument("--trials", type=int, default=20, help="trials, complete or pruned (default 20; "
                   "the first is the defaults)")
    p.add_argument("--budget-seconds", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--metric", default="val_loss", help="the validation metric to optimise "
                   "(default val_loss; e.g. val_accuracy, val_f1_macro, val_r2)")
    p.add_argument("--direction", choices=("minimize", "maximize"), help="default: from the metric")
    p.add_argument("--jobs", type=int, default=1, help="worker processes on the same storage")
    p.add_argument("--storage", help="an Optuna storage URL (default sqlite:///OUT/study.db); "
                   "postgresql://… or mysql://… to share one study between machines")
    p.add_argument("--study-name", help="default tune-<source>")
    p.add_argument("--space", metavar="space.json", help="override or fix ranges: {\"lr\": "
                   "{\"low\": 1e-4, \"high\": 1e-2, \"log\": true}, \"batch_size\": [32, 64], "
                   "\"dropout\": 0.1}")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from deepfit.cli.output import print_table
    from deepfit.cli.train_flags import train_settings
    from deepfit.errors import SettingsError
    from deepfit.tools.tune import tune

    if args.source is None or args.resume is not None:
        raise SettingsError("tune needs a SOURCE (rerun the same command to continue a study)")
    settings = train_settings(args)
    if settings.get("lr") == "auto":
        raise SettingsError("tune searches lr itself; give a number to fix it, or leave --lr out")
    result = tune(args.source, trials=args.trials, budget_seconds=args.budget_seconds,
                  metric=args.metric, direction=args.direction, jobs=args.jobs,
                  storage=args.storage, study_name=args.study_name, out=args.out,
                  space=args.space, pruner=args.pruner, **settings)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return 0
    table = Table(title=f"deepfit tune: {args.source} ({result['metric']}, {result['direction']})")
    for column in ("trial", "state", "value", "settings", "epochs", "seconds"):
        table.add_column(column, justify="right" if column in ("value", "seconds", "epochs") else "left")
    for r in result["leaderboard"]:
        table.add_row(f"{r['trial']}{' (defaults)' if r['defaults'] else ''}", r["state"],
                      "" if r["value"] is None else f"{r['value']:.4g}",
                      ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in r["params"].items()),
                      str(r["epochs"] or ""), "" if r["seconds"] is None else f"{r['seconds']:.1f}")
    print_table(console, table)
    if result["importances"]:
        console.print("importances (fANOVA): " + ", ".join(f"{k} {v:.2f}" for k, v in result["importances"].items()))
    elif result["importances_note"]:
        console.print(result["importances_note"])
    console.print(result["verdict"])
    console.print("test split (best trial only): " + ", ".join(
        f"{k} {v:.4f}" for k, v in result["test_metrics"].items() if isinstance(v, float)))
    console.print(f"best run: {result['best_run']}")
    console.print(f"reproduce: {result['command']}")
    console.print(f"study: {result['storage']} ({result['study_name']}); report {args.out or 'runs/tune-' + str(args.source)}/tune.html")
    return 0
