"""deepfit: train neural networks the way careful practitioners do, with their practices as defaults.

The public names below are imported on first use (PEP 562's module `__getattr__`), so that
`import deepfit` and `deepfit --help` start at once: torch, scikit-learn and pandas load when a
name that needs them is first touched, not before.

Threads: the `deepfit` command sets `OMP_WAIT_POLICY=PASSIVE` before torch is imported, so idle
OpenMP threads sleep instead of spinning on shared cores. From Python, set it yourself before the
first `import torch` if you want the same (`os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")`);
deepfit chooses the thread count of each run either way (training/threads.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deepfit._version import __version__
from deepfit.errors import DeepfitError

# public name → the module that defines it
_API = {
    "Advice": "deepfit.tools.advise.result",
    "BenchmarkResult": "deepfit.tools.benchmark.measure",
    "Comparison": "deepfit.tools.compare.comparison",
    "Finding": "deepfit.checks.findings",
    "Predictor": "deepfit.lifecycle.predictor",
    "Run": "deepfit.lifecycle.train",
    "advise": "deepfit.tools.advise.advice",
    "benchmark": "deepfit.tools.benchmark.measure",
    "check": "deepfit.tools.check",
    "compare": "deepfit.tools.compare.comparison",
    "compress": "deepfit.deploy.compress",
    "evaluate": "deepfit.lifecycle.directory",
    "explain": "deepfit.tools.explain",
    "export": "deepfit.deploy.export",
    "load": "deepfit.lifecycle.directory",
    "lr_find": "deepfit.tools.lr_find",
    "predict": "deepfit.lifecycle.directory",
    "report": "deepfit.lifecycle.directory",
    "train": "deepfit.lifecycle.train",
    "tune": "deepfit.tools.tune",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from deepfit.checks.findings import Finding
    from deepfit.lifecycle.directory import evaluate, load, predict, report
    from deepfit.lifecycle.predictor import Predictor
    from deepfit.lifecycle.train import Run, train
    from deepfit.tools.advise.advice import advise
    from deepfit.tools.advise.result import Advice
    from deepfit.tools.benchmark.measure import BenchmarkResult, benchmark
    from deepfit.tools.check import check
    from deepfit.tools.compare.comparison import Comparison, compare


def __getattr__(name: str) -> Any:
    """The public name `name`, imported from its module the first time it is asked for."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'deepfit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


__all__ = ["Advice", "BenchmarkResult", "Comparison", "DeepfitError", "Finding", "Predictor", "Run",
           "__version__", "advise", "benchmark", "check", "compare", "evaluate", "load", "predict",
           "report", "train"]
