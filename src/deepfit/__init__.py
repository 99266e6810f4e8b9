"""deepfit: train neural networks the way careful practitioners do, with their practices as defaults."""

__version__ = "0.1.0"

from deepfit.api import Run, evaluate, load, predict, train
from deepfit.errors import DeepfitError
from deepfit.predict import Predictor

__all__ = ["DeepfitError", "Predictor", "Run", "__version__", "evaluate", "load", "predict", "train"]
