"""The `deepfit` command. It parses arguments and calls the Python API; nothing more.

User errors (`DeepfitError`) print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from deepfit._version import __version__
from deepfit.cli import launch
from deepfit.cli.commands import add_commands, run_command
from deepfit.cli.output import make_console, print_table
from deepfit.cli.tools import TOOLS, add_tools, run_tool
from deepfit.cli.train_flags import (
    SOURCE_HELP,
    TRAIN_KEYS,
    add_data_root_flags,
    add_train,
    train_settings,
)
from deepfit.config import TASKS, WAIT_POLICY
from deepfit.core.words import plural
from deepfit.errors import DeepfitError, SettingsError, TrainingInterrupted, printable


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SettingsError(f"{message} (see {self.prog} --help)")


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="audit the data and sanity-check the model before training; "
                       "exit code 1 when an error is found")
    p.set_defaults(**dict.fromkeys(TRAIN_KEYS))  # the training settings a check does not take
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--target", help="the target column of a CSV/Parquet file")
    p.add_argument("--task", choices=TASKS, help="override the inferred task")
    p.add_argument("--model", action="append", metavar="NAME",
                   help="model to check (default: the data's, mlp for tables, cnn1d for sequences, "
                   "cnn for images); repeat it or separate names by commas")
    p.add_argument("--hidden", help="hidden layer widths, e.g. 128,64,32")
    p.add_argument("--dropout", type=float, help="dropout rate (default 0.3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other model setting, e.g. --set hidden=256,128")
    p.add_argument("--val-size", type=float, help="validation fraction (default 0.15)")
    p.add_argument("--test-size", type=float, help="test fraction (default 0.15)")
    p.add_argument("--test", help="a held-out file training would evaluate on")
    p.add_argument("--batch-size", type=int, help="the batch size training would use (a batch of "
                   "one row, or a last batch of one, with a BatchNorm model is a finding)")
    add_data_root_flags(p)
    p.add_argument("--seed", type=int, help="random seed of the split (default 0)")
    p.add_argument("--window", type=int, help="a CSV time series: windows of this many rows, as "
                   "training would cut them (checks their split by time and the time order)")
    p.add_argument("--horizon", type=int, help="with --window: steps forecast (default 1)")
    p.add_argument("--modality", metavar="{tabular,sequence,image}",
                   help="read the data as this kind (default: from the data and the model)")
    p.add_argument("--image-size", type=int, help="images: resize to this side in pixels")
    p.add_argument("--weights", help="with --model transfer:<name>: the weights training would "
                   "start from (DEFAULT, a file, a run directory, or none), checked to be there")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")


def _add_no_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="load the weights without checking them against model.json's SHA-256 "
                        "(a warning says so; for a run whose checksum was lost, at your own risk)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="deepfit", description="Train neural networks with best practices as defaults.")
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print only the results")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the results")
    parser.add_argument("--version", action="version", version=f"deepfit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser = functools.partial(sub.add_parser, parents=[common])
    add_train(sub)
    _add_check(sub)
    add_tools(sub)
    add_commands(sub)
    p = sub.add_parser("predict", help="predict with a trained run")
    p.add_argument("run_dir")
    p.add_argument("input", help="a CSV/Parquet file or an .npz with X; for a run trained on a "
                   "time series (--window), a series with its columns: forecasts the H steps "
                   "after its last W rows")
    p.add_argument("--all-windows", action="store_true", help="time series: the rolling backtest, "
                   "the forecast of every window of W rows in the file, beside the actual values")
    p.add_argument("-o", "--output", help="write predictions to this CSV (default, or -: stdout)")
    _add_no_verify(p)
    p = sub.add_parser("evaluate", help="metrics of a trained run on labelled data")
    p.add_argument("run_dir")
    p.add_argument("source", help="labelled data: a file with the run's target column, or a bundled name")
    _add_no_verify(p)
    p = sub.add_parser("report", help="regenerate a run's report.html, or compare several runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", help="output file (default RUN_DIR/report.html; for several runs, "
                   "comparison.html beside the first)")
    return parser


def _print_metrics(console: Console, title: str, metrics: dict[str, float]) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if isinstance(value, (int, float)):
            table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    print_table(console, table)
    if metrics.get("labelled") and "threshold" in metrics and metrics.get("confusion_matrix"):
        (tn, fp), (fn, tp) = metrics["confusion_matrix"]  # an anomaly run's, at its threshold
        console.print(f"confusion at the threshold {metrics['threshold']:.4g}: {tp} anomalies flagged, "
                      f"{fn} missed; {fp} normal rows flagged, {tn} not")
    if metrics.get("per_class") and len(metrics["per_class"]) <= 20:
        table = Table(title="per class", show_header=True)
        for column in ("class", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for label, v in metrics["per_class"].items():
            table.add_row(Text(printable(label)), *(f"{v[k]:.4f}" for k in ("precision", "recall", "f1")),
                          str(v["support"]))
        print_table(console, table)
    for item in metrics.get("checklist", []):
        error = item.get("severity") == "error"
        failed = "[bold red]✗ error:[/bold red]" if error else "[yellow]✗[/yellow]"
        mark = "[green]✓[/green]" if item["passed"] else failed
        said = f"{item['criterion']}: {item['evidence']}" + (
            f"; likely cause: {item['hint']}" if item.get("hint") else "")
        console.print(f" {mark} {escape(printable(said))}")  # names from the data: no markup


def _print_timings(console: Console, seconds: dict[str, float]) -> None:
    table = Table(title="timings (s)", show_header=True)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, value in seconds.items():
        bold = name in ("total", "outside the steps")
        table.add_row(f"[bold]{name}[/bold]" if bold else name, f"{value:.2f}")
    print_table(console, table)


SEVERITY_STYLES = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _run_check(args: argparse.Namespace, console: Console) -> int:
    from deepfit.checks.findings import has_errors
    from deepfit.tools.check import check

    settings = train_settings(args)
    findings = check(args.source, models=settings.pop("model", None), **settings)
    if args.json:
        sys.stdout.write(json.dumps([f.to_dict() for f in findings], indent=2) + "\n")
    else:
        table = Table(title=f"deepfit check: {args.source}", show_lines=True, expand=True)
        for column in ("severity", "check", "subject", "message", "fix"):  # wrapped at spaces
            table.add_column(column, no_wrap=column in ("severity", "check"))
        for f in findings:
            table.add_row(Text(f.severity, style=SEVERITY_STYLES[f.severity]), Text(printable(f.check)),
                          *(Text(printable(part)) for part in (f.subject, f.message, f.fix)))
        print_table(console, table)
        counts = {s: sum(f.severity == s for f in findings) for s in SEVERITY_STYLES}
        console.print(f"{plural(counts['error'], 'error')}, {plural(counts['warning'], 'warning')}, "
                      f"{plural(counts['info'], 'note')}")
    return 1 if has_errors(findings) else 0


def run(args: argparse.Namespace) -> int:
    """The command `args` names. The API is imported here, not at the top: parsing and --help
    stay free of torch, scikit-learn and pandas (tests/test_cli_startup.py)."""
    console = make_console()  # as wide as any line when not on a terminal (cli/output.py)
    if args.command == "check":
        return _run_check(args, console)
    if args.command in TOOLS:
        return run_tool(args, console)
    if (code := run_command(args, console)) is not None:
        return code
    if args.command == "train":
        if args.source is None and args.resume is None:
            raise SettingsError("train needs a SOURCE (or --resume RUN_DIR)")
        if args.nproc is not None and not launch.under_torchrun():
            launch.exec_torchrun(args.nproc, args.argv)  # the same command on N processes
        from deepfit.core.timings import Timings, stage

        with Timings().active() as clock:  # from here, including torch's import
            with stage("import"):
                _load_libraries()
                from deepfit.lifecycle.train import train
            quiet = {"progress": False} if args.quiet else {}  # no bar, no line per epoch
            result = train(args.source, out=args.out, resume=args.resume, **train_settings(args), **quiet)
        if launch.rank():  # under torchrun, rank 0 alone prints
            return 0
        _print_metrics(console, "test metrics", result.metrics)
        if args.timings:
            _print_timings(console, result.config.get("timings") or clock.to_dict())
        console.print(f"run saved to {result.path}")
    elif args.command in ("predict", "evaluate", "report"):
        return _run_on_runs(args, console)
    return 0


def _load_libraries() -> None:
    """Import the libraries every training run loads anyway, so that `--timings`' import row
    holds their load time and the later rows deepfit's own work: torch._dynamo (torch.optim
    imports it when the first optimizer is made; about 0.8 s here) and scikit-learn's metrics
    (the evaluation's)."""
    import sklearn.metrics  # noqa: F401
    import torch._dynamo  # noqa: F401


def _run_on_runs(args: argparse.Namespace, console: Console) -> int:
    """predict, evaluate and report: what reads saved runs."""
    from deepfit.core.io import write_text
    from deepfit.lifecycle import directory as run_dirs

    if args.command == "predict":
        frame = run_dirs.predict(args.run_dir, args.input, all_windows=args.all_windows,
                                 verify=args.verify)
        if args.output and args.output != "-":  # `-o -`: standard output, as Unix tools read it
            write_text(Path(args.output), frame.to_csv(index=False))
            console.print(f"{len(frame)} predictions written to {args.output}")
        else:
            sys.stdout.write(frame.to_csv(index=False))
    elif args.command == "evaluate":
        _print_metrics(console, f"metrics on {args.source}", run_dirs.evaluate(args.run_dir, args.source,
                                                                              verify=args.verify))
    elif args.command == "report":
        console.print(f"report written to {run_dirs.report(*args.run_dirs, out=args.out)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `deepfit` command. Before anything imports torch, OpenMP is told to let waiting
    threads sleep (training/threads.py's WAIT_POLICY; a value the user set is kept)."""
    for name, value in WAIT_POLICY.items():
        os.environ.setdefault(name, value)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("%(message)s"))
    logger = logging.getLogger("deepfit")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for --nproc's torchrun
        logger.setLevel(logging.ERROR if args.quiet else logging.INFO)
        return run(args)
    except DeepfitError as exc:
        print(f"deepfit: error: {launch.rank_prefix()}{printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except TrainingInterrupted as exc:
        run_dir = exc.args[1] if len(exc.args) > 1 else "RUN_DIR"
        if launch.rank():
            return 130
        print(f"deepfit: {printable(exc.args[0])}. Resume with: "
              f"deepfit train --resume {run_dir}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("deepfit: interrupted", file=sys.stderr)
        return 130


class _OneLine(logging.Formatter):
    """Log messages escaped as the error lines are (errors.printable): a name quoted from a
    file cannot break the line or repaint the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


if __name__ == "__main__":
    sys.exit(main())
