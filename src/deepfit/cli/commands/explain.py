"""`deepfit explain RUN [SOURCE]`: what a trained run's model relies on, on its own test split
(or labelled SOURCE): permutation importance of each original column, integrated gradients for
a sample of held-out samples, and their checks; explain.json, PNGs and the report's section.
It parses and formats; tools/explain/ computes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deepfit.cli.output import print_table

NAMES = ("explain",)
SHOWN_ROWS = 5  # explained samples printed (all are in explain.json)

HELP = """Explain a trained run on rows it never saw (its test split, rebuilt from the run
directory, or a labelled SOURCE):

  tables      permutation importance of each original column (a category's one-hot slots
              shuffled together as one column), mean ± std over --repeats shuffles, with the
              run's metric; integrated gradients per column for --rows test rows
  images      integrated gradients drawn over test images of each class and the model's most
              confident mistakes (explain/overlays.png)
  sequences   integrated gradients over time steps and channels (explain/time_channels.png)

Integrated gradients (Captum; pip install 'deepfit[explain]') start from the training means
(0 after standardisation). Two checks come with them: completeness (attributions sum to
F(x) − F(baseline)) and the model-randomisation test (Adebayo et al. 2018): a re-initialised
model must be explained differently, or the explanation is not about what was learned.
Writes OUT/explain.json and OUT/explain/*.png (OUT: the run directory, whose report.html gets
an Explanations section, or --out)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("explain", help="what a trained model relies on: permutation importance "
                       "and integrated gradients, sanity-checked", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("source", nargs="?", help="labelled data to explain on instead of the run's test split")
    p.add_argument("--rows", type=int, help="samples explained by integrated gradients (default: "
                   "10 table rows, 32 sequences, 24 images)")
    p.add_argument("--repeats", type=int, default=5, help="shuffles per column for permutation importance (default 5)")
    p.add_argument("--steps", type=int, help="integrated gradients' path steps (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffles and the sample (default 0)")
    p.add_argument("--out", help="write explain.json and explain/*.png here (default: the run directory)")
    p.add_argument("--json", action="store_true", help="print explain.json's content")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="load the weights without checking their SHA-256 (a warning says so)")


def run(args: argparse.Namespace, console: Console) -> int:
    from deepfit.tools.explain import explain

    steps = {"n_steps": args.steps} if args.steps is not None else {}
    result = explain(args.run_dir, args.source, rows=args.rows, repeats=args.repeats, out=args.out,
                     seed=args.seed, verify=args.verify, **steps)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return 0
    console.print(f"[bold]deepfit explain: {escape(args.run_dir)}[/bold] on {escape(result['held_out'])}")
    importance = result.get("permutation_importance")
    if importance:
        _print_importance(console, importance)
    _print_attributions(console, result["integrated_gradients"])
    sanity = result["sanity"]
    mark = "[green]✓[/green]" if sanity["passed"] else "[bold red]✗[/bold red]"
    console.print(f" {mark} model randomisation: {escape(sanity['text'])}")
    full = result["integrated_gradients"]["completeness"]
    console.print(f" completeness: attributions sum to F(x) − F(baseline) within "
                  f"{full['max_relative_delta']:.2%} (largest |delta| {full['max_abs_delta']:.2g})")
    for path in result["plots"]:
        console.print(f"plot: {escape(path)}")
    console.print(f"written: {escape(str(args.out or args.run_dir))}/explain.json")
    return 0


def _print_importance(console: Console, importance: dict[str, Any]) -> None:
    table = Table(title=f"permutation importance: drop in test {importance['metric']} "
                  f"(from {importance['score']:.4f}), {importance['repeats']} shuffles")
    for column in ("column", "mean", "std", "share"):
        table.add_column(column, justify="left" if column == "column" else "right")
    for c in importance["columns"]:
        table.add_row(escape(c["column"]), f"{c['mean']:+.4f}", f"{c['std']:.4f}", f"{c['share']:.1%}")
    print_table(console, table)
    console.print(f"the top 3 columns carry {importance['top3_share']:.0%} of the total importance")


def _print_attributions(console: Console, ig: dict[str, Any]) -> None:
    """Each of the first explained samples with its largest attributions (columns), or its
    channel totals (sequences), or why it was picked (images)."""
    console.print(f"integrated gradients of {ig['output']}, baseline {ig['baseline']}; "
                  f"{ig['samples']} samples, {ig['n_steps']} steps", highlight=False)
    for row in ig["rows"][:SHOWN_ROWS]:
        said = f"  row {row['row']} ({row['reason']}): true {_v(row['true'])}, predicted {_v(row['predicted'])}"
        if row.get("probability") is not None:
            said += f" ({row['probability']:.2f})"
        if "attributions" in row:
            top = sorted(((k, v) for k, v in row["attributions"].items() if v is not None),
                         key=lambda kv: -abs(kv[1]))[:3]
            said += "; " + ", ".join(f"{k} {v:+.3f}" for k, v in top)
        elif "channel_totals" in row:
            said += "; by channel " + ", ".join(f"{v:+.3f}" for v in row["channel_totals"][:8])
        console.print(escape(said), highlight=False)
    if "channel_share" in ig:
        console.print("share of |attribution| by channel: "
                      + ", ".join(f"{v:.0%}" for v in ig["channel_share"][:20]), highlight=False)


def _v(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
