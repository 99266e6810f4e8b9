"""`deepfit export RUN_DIR [--format onnx|pt2]`: the run's network as ONNX or a torch.export
program, preprocess.json and export.json beside it, with parity checked against the Predictor
(deploy/export.py computes; this parses and prints)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.markup import escape

NAMES = ("export",)

HELP = """Export a trained run's network for production, and prove it computes what the run does.

  deepfit export RUN_DIR                     ONNX (torch.onnx.export: the dynamo exporter, the
                                             TorchScript-based one as a named fallback)
  deepfit export RUN_DIR --format pt2        a torch.export program (torch.export.save)

Writes OUT (default RUN_DIR/export-<format>): model.onnx or model.pt2, preprocess.json (what
turns raw rows, images or sequences into the network's input, and its output into predictions)
and export.json. The exported model is run (onnxruntime, or the loaded program) on the run's
test rows after preprocessing and compared with the run's Predictor: max |difference| must be
at most 1e-4 × max(1, max |output|), else it is an error and nothing is written.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="export a run as ONNX or a torch.export program, with a parity check",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a trained run's directory")
    p.add_argument("--format", default="onnx", choices=("onnx", "pt2"), help="what to write (default onnx)")
    p.add_argument("--out", help="the folder to write (default RUN_DIR/export-<format>; an earlier "
                   "export there is replaced)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--dynamic-batch", action=argparse.BooleanOptionalAction, default=True,
                   help="a free batch axis (default on); --no-dynamic-batch fixes it at 1")
    p.add_argument("--exporter", default="auto", choices=("auto", "dynamo", "torchscript", "torch.export"),
                   help="ONNX: dynamo or torchscript (default auto: dynamo, then torchscript)")
    p.add_argument("--max-rows", type=int, default=512, help="test rows the parity check runs on "
                   "(default 512)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="load the weights without checking their SHA-256 (a warning says so)")
    p.add_argument("--json", action="store_true", help="print export.json's record as JSON")


def run(args: argparse.Namespace, console: Console) -> int:
    from deepfit.deploy.export import export

    result = export(args.run_dir, format=args.format, out=args.out, opset=args.opset,
                    dynamic_batch=args.dynamic_batch, exporter=args.exporter, max_rows=args.max_rows,
                    verify=args.verify)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for line in lines(result):
        console.print(escape(line))
    return 0


def lines(result: Any) -> list[str]:
    """What the command prints about an ExportResult, one line each."""
    how = {"dynamo": "torch.onnx's dynamo exporter", "torchscript": "torch.onnx's TorchScript-based exporter",
           "torch.export": "torch.export"}[result.exporter]
    said = [f"exported {result.model} ({result.format}, {how}"
            + (f", opset {result.opset}" if result.opset is not None else "")
            + (", dynamic batch)" if result.dynamic_batch else ", batch fixed at 1)")]
    if result.fallback:
        said.append(f"fallback: {result.fallback}; the TorchScript-based exporter was used instead")
    agree = "" if result.agreement is None else f"; predicted classes agree on {result.agreement:.1%}"
    said.append(f"parity with the Predictor on {result.rows_from}: max |difference| "
                f"{result.max_abs_diff:.2e} (tolerance {result.tolerance:.2e}){agree}")
    said += [f"warning: {w}" for w in result.warnings]
    said.append(f"preprocessing written to {result.preprocess}; the record to {result.report}")
    return said
