"""The command line of the tools around training: `deepfit benchmark`, `deepfit compare` and
`deepfit advise`. As in cli.py, it parses and formats; the API (bench.py, compare.py, advise.py)
computes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from deepfit.cli.output import print_table
from deepfit.config import TASKS, UNSUPERVISED
from deepfit.core.words import plural
from deepfit.errors import SettingsError

TOOLS = ("benchmark", "compare", "advise")


def add_tools(sub: Any) -> None:
    _add_benchmark(sub)
    _add_compare_advise(sub)


def run_tool(args: argparse.Namespace, console: Console) -> int:
    if args.command == "benchmark":
        return _run_benchmark(args, console)
    source, settings = _shared(args)
    return (run_compare if args.command == "compare" else run_advise)(args, source, settings, console)


def set_pairs(items: list[str]) -> dict[str, str]:
    """The --set KEY=VALUE items."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"--set takes KEY=VALUE, not {item!r}")
        settings[key.strip().replace("-", "_")] = value.strip()
    return settings


BENCHMARK_HELP = """Measure a model on this machine: training throughput (deepfit's Trainer: loss, backward,
clipping, AdamW step), inference latency at batch 1 and at the batch size (p50/p95/p99), peak
memory (CUDA's max allocated, or the process's peak RSS on the CPU), parameters, weights on disk
(safetensors) and forward FLOPs per sample (torch.utils.flop_counter), after warm-up, as the
median and spread over --repeats. It times one training step first, says its plan and how long
it will take, shows progress, and fits repeats × steps into --max-seconds (default 180 on a CPU,
600 on CUDA), saying so when it reduces them.

  deepfit benchmark --model resnet50 --batch-size 64 --device cuda   synthetic input of the
                                                  model's natural shape (images 3,224,224;
                                                  sequences 64,8; tables 32 features)
  deepfit benchmark --model mlp breast_cancer     real rows of a SOURCE
  deepfit benchmark RUN_DIR                       a trained run's model with its preprocessing;
                                                  writes RUN_DIR/benchmark.json
"""


def _add_benchmark(sub: Any) -> None:
    p = sub.add_parser("benchmark", help="measure a model's speed, memory, size and FLOPs",
                       description=BENCHMARK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="?", metavar="RUN_DIR | SOURCE", help="a trained run to measure "
                   "(without --model), or real data for --model (a bundled name or a file)")
    p.add_argument("--model", help="a registered model: mlp, resmlp, cnn, resnet18/34/50, cnn1d, gru, "
                   "lstm, transformer, transfer:<torchvision model>")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a model setting, e.g. --set hidden=256,128")
    p.add_argument("--batch-size", type=int, help="batch size (default 64)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="where to measure (default auto: cuda, then mps, then cpu)")
    p.add_argument("--precision", default="32", choices=("32", "bf16", "fp16"),
                   help="autocast precision, as training uses it (default 32)")
    p.add_argument("--input-shape", help="one synthetic sample's shape: F (tables), T,C "
                   "(sequences) or C,H,W (images)")
    p.add_argument("--task", default="classification", choices=[t for t in TASKS if t not in UNSUPERVISED],
                   help="synthetic targets (default classification)")
    p.add_argument("--classes", type=int, default=10, help="classes of the synthetic targets (default 10)")
    p.add_argument("--target", help="the target column of a CSV/Parquet SOURCE")
    p.add_argument("--compile", action="store_true", help="torch.compile the model first")
    p.add_argument("--repeats", type=int, help="timed repeats; the median and spread are over "
                   "these (default 5)")
    p.add_argument("--steps", type=int, help="training steps and forward calls per repeat (default 10)")
    p.add_argument("--warmup", type=int, help="untimed repeats first (default 1)")
    p.add_argument("--max-seconds", type=float, help="the whole benchmark's time budget: fewer "
                   "repeats and steps when the plan would take longer (default 180 on a CPU, 600 on "
                   "CUDA; inf for no limit)")
    p.add_argument("--quick", action="store_true", help="tiny shapes and few steps (a smoke test)")
    p.add_argument("--profile-memory", action="store_true", help="write a torch.profiler trace "
                   "(memory_trace.json, for TensorBoard or Perfetto) and print the top memory consumers")
    p.add_argument("--out", help="write benchmark.json (and the trace) here (a run: the run directory; "
                   "--profile-memory alone: runs/benchmark-<model>-<time>)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--nproc", metavar="N,M", help="training samples/s of `deepfit train SOURCE` "
                   "(default digits) on each of these process counts (torchrun above 1), e.g. 1,2")


def _run_benchmark(args: argparse.Namespace, console: Console) -> int:
    if args.nproc:
        return _run_nproc(args, console)
    from deepfit.tools.benchmark.measure import benchmark  # here: --help imports no torch

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.replace("x", ",").split(",") if v.strip())
        except ValueError:
            raise SettingsError(f"--input-shape takes sizes like 3,224,224, not {args.input_shape!r}") from None
    settings = set_pairs(args.set)
    where = {"source": args.path} if args.model else {"run": args.path}
    result = benchmark(args.model, **where, target=args.target, batch_size=args.batch_size,
                           device=args.device, precision=args.precision, input_shape=shape,
                           compile=args.compile, repeats=args.repeats, steps=args.steps,
                           warmup=args.warmup, task=args.task, classes=args.classes,
                           quick=args.quick, profile_memory=args.profile_memory, out=args.out,
                           seed=args.seed, threads=args.threads, max_seconds=args.max_seconds,
                           progress=False if args.json else None,
                           on_plan=(lambda plan: None) if args.json else _plan_printer(console),
                           **settings)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        _print_benchmark(console, result)
    return 0


def _run_nproc(args: argparse.Namespace, console: Console) -> int:
    from deepfit.tools.benchmark.processes import process_throughput

    try:
        counts = tuple(int(v) for v in args.nproc.split(",") if v.strip())
    except ValueError:
        raise SettingsError(f"--nproc takes process counts like 1,2, not {args.nproc!r}") from None
    rows = process_throughput(args.path or "digits", counts, batch_size=args.batch_size or 64,
                              repeats=args.repeats or 3, threads=args.threads or 1)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    for row in rows:
        console.print(f"{plural(row['processes'], 'process')}: "
                      f"{row['samples_per_s']:,.0f} samples/s (median of {len(row['runs'])}, "
                      f"{row['min']:,.0f} to {row['max']:,.0f})", highlight=False)
    return 0


def _plan_printer(console: Console) -> Any:
    """Says the plan on stdout, before the long part."""
    def say(plan: Any) -> None:
        for line in plan.lines():
            console.print(f"plan: {line}", soft_wrap=True, highlight=False)
    return say


def _print_benchmark(console: Console, r: Any) -> None:
    m = r.machine
    cpu = f"{m['processor']}, {m['cpu_count']} cores ({m['torch_threads']} torch threads), {m['system']}"
    console.print(f"[bold]deepfit benchmark[/bold] {r.model} · {r.data} input {r.input_shape} · "
                  f"batch {r.batch_size}\nmachine: {m['gpu'] + ' · ' if m['gpu'] else ''}{cpu}\n"
                  f"device {r.device} · torch {m['torch']} · precision {r.precision}"
                  f"{' · compiled' if r.compiled else ''}", soft_wrap=True)
    asked = r.plan.get("requested", {})
    reduced = (f" (reduced from {asked['repeats']} × {asked['steps']} to fit --max-seconds "
               f"{r.plan['max_seconds']:g})" if r.plan.get("reduced") and asked else "")
    table = Table(show_header=True, title=f"median over {r.repeats} repeat{'s' * (r.repeats != 1)} "
                  f"of {r.steps} step{'s' * (r.steps != 1)}{reduced}")
    for column in ("measure", "value", "spread"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    t = r.train_samples_per_s
    table.add_row("train samples/s", f"{t.median:,.1f}", "n/a (1 repeat)" if t.min is None
                  else f"{t.min:,.1f} – {t.max:,.1f}")
    for label, lat in (("latency", r.latency_ms), ("predict latency", r.predict_latency_ms)):
        for key, v in lat.items():
            table.add_row(f"{label} {key.replace('_', ' ')} (ms)", f"p50 {v.p50:.3f}",
                          "n/a (1 call)" if v.p95 is None else
                          f"p95 {v.p95:.3f} · p99 {v.p99:.3f} ({v.calls} calls)")
    table.add_row(f"peak memory (MB, {r.peak_memory_kind})", f"{r.peak_memory_mb:,.1f}",
                  f"{r.memory_before_mb:,.1f} in use before")
    table.add_row("parameters (trainable)", f"{r.params:,}", f"{r.trainable_params:,}")
    table.add_row("weights (MB, safetensors)", f"{r.weights_mb:,.2f}", "")
    table.add_row("forward FLOPs per sample", f"{r.flops_per_sample:,}", "")
    print_table(console, table)
    if r.memory_top:
        top = Table(show_header=True, title=f"top memory consumers (trace: {r.memory_trace})")
        for column in ("operator", "self MB", "MB", "calls"):
            top.add_column(column, justify="left" if column == "operator" else "right")
        for e in r.memory_top:
            top.add_row(e["operator"], f"{e['self_memory_mb']:.2f}", f"{e['memory_mb']:.2f}", str(e["calls"]))
        print_table(console, top)
    if r.plan.get("seconds") is not None:
        console.print(f"took {r.plan['seconds']:.0f} s (estimated {r.plan['estimated_seconds']:.0f} s)")
    if r.saved_to:
        console.print(f"results written to {r.saved_to}")


def _add_shared(p: argparse.ArgumentParser) -> None:
    """SOURCE (or --dataset) and the data and training settings compare and advise share."""
    p.add_argument("source", nargs="?", help="a bundled dataset, a CSV/Parquet file, an .npz, an "
                   "image folder, or a torchvision dataset (mnist, fashion-mnist, cifar10)")
    p.add_argument("--dataset", help="the same as SOURCE")
    p.add_argument("--target", help="the target column of a CSV/Parquet file")
    p.add_argument("--task", choices=TASKS, help="override the inferred task")
    p.add_argument("--modality", choices=("tabular", "sequence", "image"), help="read the data as this kind")
    p.add_argument("--budget-seconds", type=float, help="wall-clock training budget per model")
    p.add_argument("--contamination", type=float, help="--task anomaly: the share of validation rows "
                   "above the threshold (default 0.01)")
    p.add_argument("--data-root", help="where the torchvision datasets are (or go, with --download)")
    p.add_argument("--download", action="store_true", default=None,
                   help="download a torchvision dataset into --data-root if it is not there")
    for flag, kind, what in (("--val-size", float, "validation fraction"), ("--test-size", float, "test fraction"),
                             ("--epochs", int, "maximum epochs"), ("--patience", int, "early-stopping patience"),
                             ("--window", int, "a CSV time series: windows of this many rows"),
                             ("--horizon", int, "with --window: forecast this many steps"),
                             ("--batch-size", int, "batch size"), ("--seed", int, "the seed of the split and of "
                              "every model (default 0)"), ("--image-size", int, "images: resize to this side")):
        p.add_argument(flag, type=kind, help=what)
    p.add_argument("--device", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: chosen for each "
                   "model's size, as train does)")
    p.add_argument("--out", help="output directory (default runs/<command>-<source>-<timestamp>)")


def _add_compare_advise(sub: Any) -> None:
    p = sub.add_parser("compare", help="train several models on one split and seed; a leaderboard")
    _add_shared(p)
    p.add_argument("--models", help="comma-separated model names, e.g. mlp,cnn,resnet18 (default: "
                   "mlp; gradient boosting and a linear model are added for tables, TF-IDF + logistic "
                   "regression for text; with --task anomaly "
                   "autoencoders, default the data's (dense_ae for a table), and IsolationForest is added)")
    p.add_argument("--baselines", action="store_true", default=None, help="add gradient boosting "
                   "and a linear model for images and sequences too (always added for tables; "
                   "TF-IDF + logistic regression always added for text)")
    p.add_argument("--log-every", type=int, metavar="N", help="without a terminal: each model's "
                   "line per epoch on stderr every N epochs, and the last (default 1)")
    p.add_argument("--json", action="store_true", help="print the leaderboard as JSON")
    p = sub.add_parser("advise", help="the guide's checklist and matrix on your data and machine: "
                       "deep learning, gradient boosting, a linear model, or transfer learning?")
    _add_shared(p)
    p.add_argument("--need-interpretability", action="store_true",
                   help="the model's decisions must be explained (favours linear models and trees)")
    p.add_argument("--latency-ms", type=float, help="the most milliseconds a prediction may take, per sample")
    p.add_argument("--json", action="store_true", help="print the advice as JSON")


SHARED_KEYS = ("target", "task", "modality", "data_root", "download", "val_size", "test_size",
               "epochs", "patience", "batch_size", "seed", "image_size", "device", "window", "horizon",
               "threads", "contamination")


def _shared(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    if args.source is not None and args.dataset is not None and args.source != args.dataset:
        raise SettingsError("give the data once: SOURCE or --dataset, not both")
    source = args.source if args.source is not None else args.dataset
    if source is None:
        raise SettingsError(f"{args.command} needs a SOURCE (or --dataset NAME)")
    return source, {k: getattr(args, k) for k in SHARED_KEYS if getattr(args, k) is not None}



def run_compare(args: argparse.Namespace, source: Any, settings: dict[str, Any], console: Console) -> int:
    from deepfit.tools.compare.comparison import compare, records

    if args.json or args.quiet:
        settings["progress"] = False  # --json: stdout carries the JSON alone
    if args.log_every is not None:
        settings["log_every"] = args.log_every
    result = compare(source, models=args.models, out=args.out, budget_seconds=args.budget_seconds,
                     baselines=args.baselines, **settings)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return 0
    table = Table(title=f"deepfit compare: {source} (test {result.metric}, best first)")
    for column in result.table.columns:
        table.add_column(column, justify="left" if column in ("model", "metric") else "right")
    for row in records(result.table):
        table.add_row(*(_cell(row[c], c) for c in result.table.columns))
    print_table(console, table)
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"leaderboard: {result.path / 'compare.csv'}, {result.path / 'compare.html'}")
    return 0


def run_advise(args: argparse.Namespace, source: Any, settings: dict[str, Any], console: Console) -> int:
    from deepfit.tools.advise.advice import advise

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
    shown = [c for c in ("model", "train_rows", "test_score", "test_accuracy", "val_score",
                         "train_seconds") if c != "test_accuracy" or "test_accuracy" in advice.bakeoff[0]]
    for column in shown:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in advice.bakeoff:
        table.add_row(*(_cell(row.get(c), c) for c in shown))
    print_table(console, table)
    for note in advice.notes:
        console.print(f"note: {note}")
    console.print(f"[bold]verdict: {advice.verdict}[/bold]")
    for reason in advice.reasons:
        console.print(f"  - {reason}")
    console.print(f"next: [bold]{advice.next_command}[/bold]")
    console.print(f"report: {advice.path / 'advise.html'}")
    return 0


COUNTS = ("best_epoch", "epochs_run", "params", "train_rows")  # whole numbers, in a float column


def _cell(value: Any, column: str = "") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if column in COUNTS and isinstance(value, (int, float)):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.4f}"
    return str(value)
