"""Sequences: arrays [N, T, C] (or [N, T]), and time series cut into forecasting windows."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from deepfit.core.words import plural
from deepfit.errors import PredictInputError
from deepfit.modalities.base import FEW_LABELS, Modality
from deepfit.modalities.sequence.audit import audit_sequences
from deepfit.modalities.sequence.explain import SequenceExplain
from deepfit.modalities.sequence.preprocess import SequencePreprocessor
from deepfit.modalities.sequence.reader import read_sequences


class Sequence(Modality):
    name = "sequence"
    default_model = "cnn1d"
    anomaly_model = "conv1d_ae"
    preprocessor = SequencePreprocessor
    layout = "[T, C]"
    natural_shape = (64, 8)
    quick_shape = (16, 3)
    readers = (("sequences", read_sequences, 30),)
    noun = "sequence"
    fixes: ClassVar[dict[str, str]] = {
        "samples": ("keep the network small (--model cnn1d or gru, e.g. --set width=16 --set "
                    "depth=2), and compare it with gradient boosting on the flattened sequences: "
                    "deepfit compare DATA --models cnn1d,gru --baselines; summary features of each "
                    "channel (mean, spread, trend) in a table are a strong baseline too"),
    }
    guide_rows = (
        (lambda n, interp: n >= FEW_LABELS, "deep_learning",
         "images or sequences with many labels (≥ 10,000) → deep learning"),
        (lambda n, interp: True, "try_both",
         "sequences with few labels (< 10,000) → try both: a small network and gradient boosting"),
    )

    def create_preprocessor(self, data: Any = None) -> SequencePreprocessor:
        """A table's rows read as sequences: the preprocessor keeps the step columns' names
        (Dataset.reading["steps"]), so new rows are read by name."""
        pre = SequencePreprocessor()
        pre.steps = list((getattr(data, "reading", None) or {}).get("steps") or []) or None
        return pre

    def audit(self, data: Any, splits: Any, test_data: Any, *, seed: int = 0) -> list:
        return audit_sequences(data, splits, test_data)

    def report_facts(self, data: dict[str, Any]) -> dict[str, Any]:
        """A time series' windows: their length, the horizon, the channels and time column."""
        series = data.get("series")
        if not series:
            return {}
        channels = series.get("channels", [])
        return {"windows": f"{series.get('window')} rows in, {plural(series.get('horizon'), 'step')} "
                           "ahead, split by time",
                "channels": f"{len(channels)}: " + ", ".join(map(str, channels[:20]))
                            + (" …" if len(channels) > 20 else ""),
                "time column": series.get("time_column") or "none (the file's order)"}

    def synthetic_rows(self, pre: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        """Sequences of the training length around each channel's mean."""
        return rng.normal(pre.mean, pre.std, (n, pre.length, len(pre.mean))).astype(np.float32)

    def explain_parts(self) -> SequenceExplain:
        return SequenceExplain()

    def request_schema(self, pre: Any) -> dict[str, str]:
        """A table's rows read as sequences: each step column, a number; else "values"."""
        if pre.steps:
            return {name: "number or null" for name in pre.steps}
        return super().request_schema(pre)

    def request_input(self, pre: Any, records: list[dict[str, Any]]) -> Any:
        if not pre.steps:
            return super().request_input(pre, records)
        import pandas as pd

        for i, record in enumerate(records):
            for name in pre.steps:
                value = record.get(name, ...)
                if value is ...:
                    raise PredictInputError(f"records[{i}] lacks the column {name!r} the model was "
                                            "trained on")
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise PredictInputError(f"records[{i}].{name} must be a number or null, "
                                            f"not {str(value)[:40]!r}")
        return pd.DataFrame.from_records([{n: r[n] for n in pre.steps} for r in records])
