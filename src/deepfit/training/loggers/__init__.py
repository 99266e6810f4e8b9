"""Experiment trackers a run reports to (`deepfit train --log tensorboard --log mlflow`), fed
by the Trainer callback training/callbacks/loggers.py. csv (history.csv) is always written."""

from deepfit.training.loggers.base import LOGGERS, Logger
from deepfit.training.loggers.create import check_loggers, create_loggers

__all__ = ["LOGGERS", "Logger", "check_loggers", "create_loggers"]
