"""How `deepfit compare` and `deepfit advise` print their results (the API computes them)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from deepfit.compare import COLUMNS, compare, records


def run_compare(args: argparse.Namespace, source: Any, settings: dict[str, Any], console: Console) -> int:
    if args.json:
        settings["progress"] = False  # stdout carries the JSON alone
    result = compare(source, models=args.models, out=args.out, budget_seconds=args.budget_seconds,
                     baselines=args.baselines, **settings)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return 0
    table = Table(title=f"deepfit compare: {source} (test {result.metric}, best first)")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("model", "metric") else "right")
    for row in records(result.table):
        table.add_row(*(_cell(row[c]) for c in COLUMNS))
    console.print(table)
    console.print(f"leaderboard: {result.path / 'compare.csv'}, {result.path / 'compare.html'}")
    return 0


def run_advise(args: argparse.Namespace, source: Any, settings: dict[str, Any], console: Console) -> int:
    from deepfit.advise import advise

    advice = advise(source, out=args.out, need_interpretability=args.need_interpretability,
                    latency_ms=args.latency_ms, budget_seconds=args.budget_seconds, **settings)
    if args.json:
        sys.stdout.write(json.dumps(advice.to_dict(), indent=2, default=str) + "\n")
        return 0
    console.print(f"[bold]deepfit advise: {source}[/bold]")
    for item in advice.checklist:
        mark = "[green]✓[/green]" if item.passed else "[yellow]✗[/yellow]"
        console.print(f" {mark} {item.criterion}: {item.evidence}")
    console.print(f"matrix row: {advice.matrix_row}")
    table = Table(title=f"bake-off (one split; test {advice.metric})")
    for column in ("model", "train_rows", "test_score", "val_score", "train_seconds"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in advice.bakeoff:
        table.add_row(*(_cell(row.get(c)) for c in ("model", "train_rows", "test_score", "val_score",
                                                      "train_seconds")))
    console.print(table)
    console.print(f"[bold]verdict: {advice.verdict}[/bold]")
    for reason in advice.reasons:
        console.print(f"  - {reason}")
    console.print(f"next: [bold]{advice.next_command}[/bold]")
    console.print(f"report: {advice.path / 'advise.html'}")
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.4f}"
    return str(value)
