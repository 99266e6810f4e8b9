"""The data checks every modality shares: sample size, class balance and sizes, and the row
checks on one key per sample (duplicates, conflicting labels, rows shared across splits). Each
takes the loaded `Dataset` and returns findings; a sample's key is a hash of its values. Their
fix texts are what holds for any data; the data's modality replaces those it has better advice
for (Modality.fixes, applied by checks/audit.py), and names its samples (`noun`, `subject`)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from deepfit.checks.findings import Finding, names
from deepfit.core.words import plural, verb_for
from deepfit.data.dataset import Dataset
from deepfit.data.split import Splits

RULE_OF_THUMB_ROWS = 10_000  # the guide's rule of thumb for deep learning on tables


FEW_ROWS = 1_000


IMBALANCE_RATIO = 3.0


DUPLICATE_SHARE = 0.01


FEW_PER_CLASS = 10  # rows of a class below which it can hardly be learnt or measured


SMALL_DATA_FIX = ("collect more labelled samples if you can; start from a model pretrained on "
                  "similar data (transfer learning), and compare the network with simpler models "
                  "(deepfit compare)")
# what a finding names samples by: (data, their row positions) → "rows 3, 7"
Subject = Callable[[Dataset, np.ndarray], str]


def sample_size(data: Dataset, noun: str = "row") -> list[Finding]:
    """`noun`: one sample of these data, in the message ("row", "image", "sequence")."""
    n = len(data)
    counted = f"{n:,} {noun if n == 1 else noun + 's'}"
    if n >= RULE_OF_THUMB_ROWS:
        return [Finding("samples", "info", f"{counted}: at or above the rule of thumb of "
                        f"{RULE_OF_THUMB_ROWS:,} samples for deep learning", "", n)]
    severity = "warning" if n < FEW_ROWS else "info"
    message = (f"{counted}: fewer than the rule of thumb of {RULE_OF_THUMB_ROWS:,} samples for "
               "deep learning; a neural network may overfit or trail simpler models here")
    return [Finding("samples", severity, message, "", n, SMALL_DATA_FIX)]


def class_balance(data: Dataset) -> list[Finding]:
    if data.task != "classification":
        return []
    counts = data.y.astype(str).value_counts()
    ratio = counts.iloc[0] / counts.iloc[-1]
    subject = f"{counts.index[0]} ({counts.iloc[0]}) vs {counts.index[-1]} ({counts.iloc[-1]})"
    if ratio <= IMBALANCE_RATIO:
        return [Finding("imbalance", "info", f"class balance: the largest class is {ratio:.1f}× "
                        f"the smallest ({len(counts)} classes)", subject, ratio)]
    message = (f"classes are imbalanced: the largest, {counts.index[0]!r}, has {ratio:.1f}× the "
               f"rows of the smallest, {counts.index[-1]!r}; a model can score well by ignoring it")
    fix = ("keep --imbalance auto (the default: class weights in the loss above a 3:1 ratio) or "
           "try --imbalance sampler or focal; judge by macro-F1 or balanced accuracy "
           "(--monitor val_f1_macro) rather than accuracy")
    return [Finding("imbalance", "warning", message, subject, ratio, fix)]


def class_sizes(data: Dataset, parts: int = 3, noun: str = "row") -> list[Finding]:
    """Classes too small to learn, or to be in every split (`parts`: train, validation, test)."""
    if data.task != "classification":
        return []
    counts = data.y.astype(str).value_counts()
    tiny, few = counts[counts < parts], counts[(counts >= parts) & (counts < FEW_PER_CLASS)]
    findings = []
    if len(tiny):
        findings.append(Finding(
            "class_size", "error",
            f"{plural(len(tiny), 'class', 'have')} fewer {noun}s than the {parts} splits need "
            f"({_counts(tiny)}): they cannot be in training and evaluation both",
            names(list(tiny.index)), float(tiny.min()),
            "collect more examples of them, merge them into a related class, or drop them"))
    if len(few):
        findings.append(Finding(
            "class_size", "warning",
            f"{plural(len(few), 'class', 'have')} fewer than {FEW_PER_CLASS} {noun}s ({_counts(few)}): too few "
            "to learn them well or to measure how well they are learnt",
            names(list(few.index)), float(few.min()),
            "collect more examples of them, and read their per-class metrics with care"))
    return findings


def _counts(counts: pd.Series, limit: int = 6) -> str:
    return names([f"{label!r}: {n}" for label, n in counts.items()], limit)


def row_keys(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of features (per image or sequence of an array, of its bytes):
    equal rows, equal keys."""
    if isinstance(X, pd.DataFrame):
        return pd.util.hash_pandas_object(X, index=False).to_numpy()
    if hasattr(X, "chunks"):  # a streamed image folder (modalities/image/files.py): decoded by chunks
        parts = [row_keys(chunk) for chunk in X.chunks()]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    flat = np.ascontiguousarray(X).reshape(len(X), -1)
    return np.array([int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
                     for row in flat], dtype=np.uint64)


def _label_keys(y: pd.Series | pd.DataFrame) -> np.ndarray:
    """The target of each row as one comparable value (a multi-step target: a hash of its row)."""
    if isinstance(y, pd.DataFrame):
        return pd.util.hash_pandas_object(y, index=False).to_numpy()
    return y.astype(str).to_numpy()


def rows_text(positions: np.ndarray, limit: int = 6) -> str:
    return ("rows " if len(positions) > 1 else "row ") + names([int(p) for p in positions], limit)


def positions_text(data: Dataset, positions: np.ndarray) -> str:
    """The default Subject: rows by position."""
    return rows_text(positions)


def duplicate_rows(data: Dataset, keys: np.ndarray | None = None,
                   subject: Subject = positions_text) -> list[Finding]:
    """`keys`: row_keys(data.X) when the caller has them already; `subject` names the rows."""
    frame = pd.DataFrame({"x": row_keys(data.X) if keys is None else keys, "y": _label_keys(data.y)})
    exact = np.flatnonzero(frame.duplicated().to_numpy())
    findings = []
    if len(exact):
        share = len(exact) / len(frame)
        findings.append(Finding(
            "duplicates", "warning" if share >= DUPLICATE_SHARE else "info",
            f"{plural(len(exact), 'row')} ({share:.1%}) {verb_for(len(exact), 'repeat')} an earlier row exactly (features and "
            "target); repeated rows weigh more in training and can land in several splits",
            subject(data, exact), float(len(exact)),
            "drop exact duplicates before training unless they are genuine repeated observations"))
    labels = frame.groupby("x")["y"].nunique()
    conflicting = np.flatnonzero(frame["x"].isin(labels.index[labels > 1]).to_numpy())
    if len(conflicting):
        findings.append(Finding(
            "conflicting_labels", "warning",
            f"{plural(len(conflicting), 'row', 'share')} their features with a row of another target value: "
            "label noise, or features that miss what decides the target",
            subject(data, conflicting), float(len(conflicting)),
            "check those labels; no model can get all of them right"))
    return findings


def split_leakage(data: Dataset, splits: Splits, test_data: Dataset | None = None,
                  keys: np.ndarray | None = None, subject: Subject = positions_text) -> list[Finding]:
    """Validation or test rows whose features equal a row of an earlier split (and rows of an
    explicit --test file equal to a training or validation row)."""
    keys = row_keys(data.X) if keys is None else keys
    train, val = keys[splits.train], keys[splits.val]
    earlier = np.concatenate([train, val])
    leaked = np.sort(np.concatenate([splits.val[np.isin(val, train)],
                                     splits.test[np.isin(keys[splits.test], earlier)]]))
    n_eval, n_file = len(splits.val) + len(splits.test), 0
    if test_data is not None and not isinstance(data.X, pd.DataFrame):  # images, sequences
        same = np.shape(test_data.X)[1:] == np.shape(data.X)[1:]
        test_keys = row_keys(test_data.X) if same else np.array([], dtype=np.uint64)
        n_file, n_eval = int(np.isin(test_keys, earlier).sum()), n_eval + len(test_keys)
    elif test_data is not None and set(data.X.columns) <= set(test_data.X.columns):
        test_keys = row_keys(test_data.X[list(data.X.columns)])
        n_file, n_eval = int(np.isin(test_keys, earlier).sum()), n_eval + len(test_keys)
    n_leaked = len(leaked) + n_file
    if not n_leaked:
        return []
    share = n_leaked / n_eval
    # An error once the leak can move the metrics by more than their own sampling noise
    # (the standard error of an accuracy near 50% on this many rows), and by at least 1%.
    threshold = max(0.01, 0.5 / math.sqrt(n_eval))
    severity = "error" if share >= threshold else "warning"
    message = (f"{n_leaked} of the {n_eval} validation/test rows ({share:.1%}) {verb_for(n_leaked, 'have')} an exact copy "
               "(same features) in an earlier split: the model is evaluated on rows it trained on, "
               "so early stopping and the test metrics are too optimistic"
               + ("" if severity == "error" else
                  f"; below {threshold:.1%}, within the metrics' sampling noise, hence a warning"))
    fix = ("drop duplicate samples before training, or keep all copies of one in one split "
           "(split by group)")
    named = "; ".join(part for part in (
        subject(data, leaked) if len(leaked) else "", f"{plural(n_file, 'row')} of the --test file" if n_file else ""
    ) if part)
    return [Finding("split_leak", severity, message, named, float(n_leaked), fix)]
