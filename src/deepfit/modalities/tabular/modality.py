"""Tables: rows of named columns (numbers, categories, dates), read from CSV, Parquet, .npz,
DataFrames, arrays or scikit-learn's bundled sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepfit.core.words import plural
from deepfit.data.tables import read_npz_features, read_table
from deepfit.errors import PredictInputError
from deepfit.modalities.base import FEW_LABELS, Modality
from deepfit.modalities.tabular.audit import audit_table
from deepfit.modalities.tabular.explain import TabularExplain
from deepfit.modalities.tabular.preprocess import Preprocessor
from deepfit.modalities.tabular.reader import read_tabular, table_signal
from deepfit.models.registry import InputSpec


class Tabular(Modality):
    name = "tabular"
    default_model = "mlp"
    anomaly_model = "dense_ae"
    preprocessor = Preprocessor
    layout = "[F]"
    natural_shape = (32,)
    quick_shape = (8,)
    readers = (("tables", read_tabular, 90),)  # the catch-all: asked last
    unstructured = False
    baselines = True  # on tables, gradient boosting is the model to beat
    enough_rows = 100_000
    noun = "row"
    fixes: ClassVar[dict[str, str]] = {
        "samples": ("compare with gradient boosting, usually as good or better on small tables: "
                    "deepfit compare DATA --target Y trains scikit-learn's HistGradientBoosting"
                    "Classifier/Regressor and a linear model beside the network, on the same split"),
        "duplicates": ("drop exact duplicates before training (DataFrame.drop_duplicates()) unless "
                       "they are genuine repeated observations"),
        "split_leak": ("drop duplicate rows before training (DataFrame.drop_duplicates(subset="
                       "feature columns)), or keep all copies of a row in one split (split by group)"),
    }
    guide_rows = (
        (lambda n, interp: n < FEW_LABELS, "gradient_boosting",
         "tabular, < 10,000 rows → gradient boosting or a linear model"),
        (lambda n, interp: True, "try_both",
         "tabular, ≥ 10,000 rows → try both: gradient boosting and a network"),
    )

    def input_spec_of(self, shape: tuple[int, ...]) -> InputSpec:
        return InputSpec(shape[0], shape[0])

    def unrelated_cause(self, n_train: int) -> str:
        return ("no column was read oddly: the target may not depend on these features (or too "
                f"weakly for {plural(n_train, 'training row')}); `deepfit compare` shows whether "
                "gradient boosting or a linear model finds more")

    def alternatives(self, data: Any) -> dict[str, str]:
        """cnn1d on each row read as a sequence, when the table looks like one ordered signal
        (data/kinds.py: signal_like)."""
        return {"cnn1d": "sequence"} if table_signal(data.X) is not None else {}

    def audit(self, data: Any, splits: Any, test_data: Any, *, seed: int = 0) -> list:
        return audit_table(data, splits, test_data, seed=seed)

    def synthetic_rows(self, pre: Any, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Numbers around each column's mean, categories among those seen, dates within a year
        of the reference."""
        columns = {c.name: rng.normal(c.mean, c.std or 1.0, n) for c in pre.numeric}
        columns |= {c.name: rng.choice(c.categories, n) for c in pre.categorical}
        columns |= {d.name: pd.Timestamp(d.reference) + pd.to_timedelta(rng.integers(0, 366, n), "D")
                    for d in getattr(pre, "dates", [])}
        return pd.DataFrame({name: columns[name] for name in pre.columns})

    def held_out_reading(self, pre: Any) -> dict[str, Any]:
        return {"written": dict(getattr(pre, "written", {}) or {})}

    def prediction_input(self, pre: Any, X: Any) -> Any:
        """A DataFrame as it is; an array [N, F] (or one row [F]) gets the training columns.
        Raises PredictInputError for another number of features."""
        if isinstance(X, pd.DataFrame):
            return X
        array = np.asarray(X)
        if array.ndim == 1:
            array = array[None, :]
        columns = pre.columns
        if array.ndim != 2 or array.shape[1] != len(columns):
            raise PredictInputError(
                f"expected rows of {len(columns)} features ({', '.join(columns[:8])}"
                f"{', …' if len(columns) > 8 else ''}), got an array of shape {array.shape}")
        return pd.DataFrame(array, columns=columns)

    def read_for_predict(self, pre: Any, path: Path) -> Any:
        if path.suffix.lower() == ".npz":
            return read_npz_features(path)
        return read_table(path, **self.held_out_reading(pre))

    def explain_parts(self) -> TabularExplain:
        return TabularExplain()

    def request_schema(self, pre: Any) -> dict[str, str]:
        """Each training column: a number (or null) or one of its categories (text)."""
        dates = {d.name for d in getattr(pre, "dates", [])}
        kinds = {c.name: "number or null" for c in pre.numeric}
        kinds |= {c.name: f"category (text), one of {len(c.categories)} seen in training, or null"
                  for c in pre.categorical}
        kinds |= {name: "date (text)" for name in dates}
        return {name: kinds.get(name, "value") for name in pre.columns}

    def request_input(self, pre: Any, records: list[dict[str, Any]]) -> pd.DataFrame:
        """A DataFrame of the training columns (other fields ignored); a record without one, or
        a number column holding something else, is a PredictInputError naming it."""
        numeric = {c.name for c in pre.numeric}
        for i, record in enumerate(records):
            for name in pre.columns:
                if name not in record:
                    raise PredictInputError(f"records[{i}] lacks the column {name!r} the model was "
                                            "trained on (null for a missing value)")
                value = record[name]
                if name in numeric and value is not None and (
                        isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise PredictInputError(f"records[{i}].{name} must be a number or null, "
                                            f"not {str(value)[:40]!r}")
        return pd.DataFrame.from_records([{n: r[n] for n in pre.columns} for r in records],
                                         columns=pre.columns)
