"""deepfit: train neural networks the way careful practitioners do, with their practices as defaults."""

__version__ = "0.1.0"

from deepfit.advise import Advice, advise
from deepfit.api import Run, evaluate, load, predict, report, train
from deepfit.bench import BenchmarkResult, benchmark
from deepfit.checks import Finding, check
from deepfit.compare import Comparison, compare
from deepfit.errors import DeepfitError
from deepfit.predict import Predictor

__all__ = ["Advice", "BenchmarkResult", "Comparison", "DeepfitError", "Finding", "Predictor", "Run",
           "__version__", "advise", "benchmark", "check", "compare", "evaluate", "load", "predict",
           "report", "train"]
