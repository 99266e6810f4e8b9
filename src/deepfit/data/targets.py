"""The target: its values cleaned to one kind, the task it means, checked, and encoded for the
model (TargetEncoder). Shared by every modality's reader."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.data.labels import class_labels, whole_numbers
from deepfit.data.numbers import CLIP_STD, is_missing, mean_std, scale
from deepfit.errors import PredictInputError, RunDirError, TargetError


class TargetEncoder:
    """Class names ↔ integer codes for classification; standardisation for regression. A
    regression target may be a DataFrame of H columns (multi-step forecasts, modalities/sequence/preprocess.py):
    one mean and standard deviation for all, and H model outputs."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.classes: list[Any] = []
        self.mean, self.std = 0.0, 1.0
        self.n_targets = 1  # values per row (regression)

    def fit(self, y: pd.Series) -> TargetEncoder:
        if self.task == "anomaly":  # labels (0 normal, 1 anomaly) only evaluate; one score out
            self.classes = [0, 1]
            return self
        if self.task == "classification":
            self.classes = sorted(_plain(v) for v in pd.unique(y))
        else:
            self.mean, self.std = mean_std(y.to_numpy(dtype=np.float64))
            self.n_targets = y.shape[1] if y.ndim == 2 else 1
        return self

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else self.n_targets

    def transform(self, y: pd.Series) -> np.ndarray:
        if self.task == "anomaly":
            return anomaly_codes(y)
        if self.task == "regression":
            numbers = y.apply(pd.to_numeric, errors="coerce") if y.ndim == 2 else pd.to_numeric(y, errors="coerce")
            values = numbers.to_numpy(dtype=np.float64)
            if np.isnan(values).any():
                raise PredictInputError("the target holds missing or non-numeric values")
            z = scale(values, self.mean, self.std)
            far = ~(np.abs(z) <= CLIP_STD)
            if far.any():
                raise TargetError(
                    f"the target holds {values[far][0]:.6g}, more than {CLIP_STD:g} standard "
                    f"deviations from the training values ({self.mean:.6g} ± {self.std:.6g}); "
                    "remove the outlier or rescale the target")
            return z.astype(np.float32)
        lookup = {c: i for i, c in enumerate(self.classes)}
        codes = [lookup.get(_plain(v), -1) for v in y.tolist()]
        if -1 in codes:
            unseen = sorted({str(v) for v, c in zip(y.tolist(), codes) if c == -1})[:5]
            raise PredictInputError(f"the target holds classes the model never saw: {', '.join(unseen)}")
        return np.asarray(codes, dtype=np.int64)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Codes → class labels, or standardised values → the target's units."""
        if self.task == "regression":
            return values.astype(np.float64) * self.std + self.mean
        return np.asarray(self.classes, dtype=object)[values]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes": self.classes, "mean": self.mean, "std": self.std,
                "n_targets": self.n_targets}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetEncoder:
        from deepfit.core.run_checks import finite_numbers

        where = "model.json's target"
        if d.get("task") not in ("classification", "regression", "anomaly"):
            raise RunDirError(f"{where}'s 'task' is {str(d.get('task'))[:40]!r}")
        if not isinstance(d.get("classes"), list):
            raise RunDirError(f"{where} lacks its list of classes")
        enc = cls(d["task"])
        enc.classes = list(d["classes"])
        enc.mean, enc.std = finite_numbers([d.get("mean"), d.get("std")], f"{where}'s 'mean' and 'std'")
        if not enc.std > 0:
            raise RunDirError(f"{where}'s 'std' is {enc.std!r}: a scale must be above 0")
        n = d.get("n_targets", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000:
            raise RunDirError(f"{where}'s 'n_targets' is {n!r}")
        enc.n_targets = n
        return enc


def _plain(value: Any) -> Any:
    """A JSON-safe Python scalar for a label (numpy ints → int, etc.)."""
    return value.item() if isinstance(value, np.generic) else value


MAX_CLASSES_FOR_INTEGER_TARGET = 20


def clean_target(y: pd.Series, target: str) -> pd.Series:
    """Labels of one kind: numbers, booleans or text (bytes decoded); anything else is named."""
    if isinstance(y.dtype, pd.CategoricalDtype) or y.dtype.kind == "S":
        y = y.astype(object)
    if y.dtype.kind in "biuf" or pd.api.types.is_bool_dtype(y) or pd.api.types.is_string_dtype(y):
        return y
    if y.dtype.kind != "O":
        raise TargetError(f"the target {target!r} holds {y.dtype} values; "
                          "labels must be numbers, booleans or text")
    kind = pd.api.types.infer_dtype(y, skipna=True)
    if kind == "bytes":
        return y.map(_text, na_action="ignore")
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        numbers = pd.to_numeric(y)
        return numbers.astype(np.float64) if numbers.dtype.kind == "O" else numbers
    if kind in ("string", "boolean", "empty"):
        return y
    kinds = sorted({type(v).__name__ for v in y if not is_missing(v)})
    raise TargetError(f"the target {target!r} mixes kinds of values ({', '.join(kinds)}); "
                      "make its labels all text or all numbers")


def _text(value: Any) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def resolve_task(y: pd.Series, target: str, task: str | None, notes: Notes) -> str:
    """The task asked for, or the one the target's values mean: labels (text, booleans) and a
    few whole numbers (at most MAX_CLASSES_FOR_INTEGER_TARGET, written as integers or as floats
    such as 0.0/1.0) are classes; other numbers are regression. Noted, with the reason."""
    if task is not None:
        notes.decide(f"task: {task} (as asked)")
        return task
    n_unique = y.dropna().nunique()
    whole = whole_numbers(y)
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        inferred, why = "classification", "the target holds labels"
    elif whole and n_unique <= MAX_CLASSES_FOR_INTEGER_TARGET:
        kind = "integer values" if pd.api.types.is_integer_dtype(y) else "whole numbers written as floats"
        inferred, why = "classification", f"the target holds {n_unique} {kind}"
    elif whole:  # it looks like a class column, but has too many values for one
        inferred, why = "regression", (f"the target holds {n_unique} distinct whole numbers, more than "
                                       f"the {MAX_CLASSES_FOR_INTEGER_TARGET} a class column may have")
    else:
        inferred, why = "regression", f"the target holds {n_unique} distinct numbers"
    notes.decide(f"task inferred: {inferred} ({why} in {target!r}; override with --task)")
    return inferred


def check_target(y: pd.Series, target: str, task: str, held_out: bool) -> None:
    n_missing = int(y.isna().sum())
    if n_missing:
        raise TargetError(f"the target {target!r} has {plural(n_missing, 'missing value')}; drop or fill those rows")
    if task == "classification":
        if y.nunique() < 2 and not held_out:
            only = y.iloc[0].item() if isinstance(y.iloc[0], np.generic) else y.iloc[0]
            raise TargetError(f"the target {target!r} has a single class ({only!r}); nothing to learn")
    else:
        values = pd.to_numeric(y, errors="coerce")
        if values.isna().any():
            bad = y[values.isna()].iloc[0]
            raise TargetError(f"regression needs a numeric target; {target!r} holds {bad!r}")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            raise TargetError(f"the target {target!r} holds infinite values")


def anomaly_codes(y: Any) -> np.ndarray:
    """Anomaly labels [N] as int64 codes: 1 anomaly, 0 normal (0/1 numbers, booleans, or the
    words true/false, yes/no, anomaly/normal). Raises TargetError for other values."""
    y = pd.Series(np.asarray(y).reshape(-1) if not isinstance(y, pd.Series) else y)
    words = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "yes": 1, "no": 0,
             "anomaly": 1, "normal": 0}
    codes = y.map(lambda v: words.get(str(v).strip().lower(), -1), na_action="ignore")
    if codes.isna().any() or (codes == -1).any():
        bad = y[codes.isna() | (codes == -1)].iloc[0]
        raise TargetError(f"anomaly labels are 0 (normal) and 1 (anomaly); the target holds {bad!r}")
    return np.array(codes.to_numpy(dtype=np.int64))  # writable: torch.from_numpy takes it


def labelled_target(y: pd.Series, target: str, task: str | None, notes: Notes,
                    held_out: bool) -> tuple[pd.Series, str]:
    """(the target cleaned, as class labels for classification, and its task): clean_target,
    resolve_task, class_labels and check_target, the steps every reader's 1-D target takes.
    The anomaly task's target is its 0/1 labels, kept to evaluate only (data/targets.anomaly_codes)."""
    if task == "anomaly":
        codes = anomaly_codes(y.reset_index(drop=True))
        if not held_out:
            notes.decide(f"task: anomaly (as asked); the {plural(int(codes.sum()), 'labelled anomaly')} "
                         f"in {target!r} are used to evaluate only, never to train")
        return pd.Series(codes, name=y.name), task
    y = clean_target(y.reset_index(drop=True), target)
    # held-out rows take the model's task: nothing was asked, nothing to say
    task = task if held_out and task is not None else resolve_task(y, target, task, notes)
    y = class_labels(y, task, notes)
    check_target(y, target, task, held_out)
    return y, task
