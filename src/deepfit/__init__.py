"""deepfit: train neural networks the way careful practitioners do, with their practices as defaults."""

from deepfit._version import __version__
from deepfit.checks.findings import Finding
from deepfit.errors import DeepfitError
from deepfit.runs.directory import evaluate, load, predict, report
from deepfit.runs.predictor import Predictor
from deepfit.runs.train import Run, train
from deepfit.tools.advise.advice import advise
from deepfit.tools.advise.result import Advice
from deepfit.tools.benchmark.measure import BenchmarkResult, benchmark
from deepfit.tools.check import check
from deepfit.tools.compare.comparison import Comparison, compare

__all__ = ["Advice", "BenchmarkResult", "Comparison", "DeepfitError", "Finding", "Predictor", "Run",
           "__version__", "advise", "benchmark", "check", "compare", "evaluate", "load", "predict",
           "report", "train"]
