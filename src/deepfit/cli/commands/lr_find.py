"""`deepfit lr-find SOURCE`: the LR range test (tools/lr_find.py) with the train flags for the
data, the model and the training settings; prints the suggestion and where the plot is."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

NAMES = ("lr-find",)


class Renamed:
    """A sub-parsers action whose `add_parser` makes a parser of another name: the train flags
    (cli/train_flags.py: add_train) on another command."""

    def __init__(self, sub: Any, name: str, help: str) -> None:
        self.sub, self.name, self.help = sub, name, help
        self.parser: argparse.ArgumentParser | None = None  # the one made, to add more flags to

    def add_parser(self, _name: str, **kwargs: Any) -> argparse.ArgumentParser:
        self.parser = self.sub.add_parser(self.name, **{**kwargs, "help": self.help})
        return self.parser


def add_parser(sub: Any) -> None:
    from deepfit.cli.train_flags import add_train

    renamed = Renamed(sub, "lr-find", "the learning-rate range test: loss against an exponentially "
                      "growing LR from a copy of the initial weights; suggests an LR")
    add_train(renamed)
    p = renamed.parser
    p.add_argument("--start", type=float, default=1e-7, help="the first LR (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="the last LR (default 10)")
    p.add_argument("--steps", type=int, default=100, help="mini-batches at most (default 100)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace, console: Console) -> int:
    from deepfit.cli.train_flags import train_settings
    from deepfit.errors import SettingsError
    from deepfit.tools.lr_find import lr_find

    if args.source is None or args.resume is not None:
        raise SettingsError("lr-find needs a SOURCE (and takes no --resume)")
    result = lr_find(args.source, start=args.start, end=args.end, steps=args.steps, out=args.out,
                     **train_settings(args))
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return 0
    console.print(f"suggested LR: {result['suggestion']:.3g} (steepest descent at "
                  f"{result['lr_steep']:.3g}, minimum of the smoothed loss at {result['lr_min']:.3g})")
    console.print(f"{result['rule']}; {len(result['lrs'])} steps, {result['stopped']}")
    console.print(f"plot: {result['plot']}   data: {result['json']}")
    console.print(f"train with it: deepfit train {args.source} --lr {result['suggestion']:.3g} "
                  "(or --lr auto)")
    return 0
