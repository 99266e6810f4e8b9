"""The tabular data audit: what in a table's columns would make a model fail, mislead, or not
be worth training. Each check takes the loaded `Dataset` (and, for leakage, the very splits
training would use) and returns findings; each is fast enough to run before every training run
(the target-leak check looks at a sample of at most `LEAK_ROWS` rows). The checks every modality
shares are in checks/rows.py, run first by checks/audit.py's `audit_data`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from deepfit.checks.findings import Finding, names
from deepfit.checks.rows import duplicate_rows, row_keys, split_leakage
from deepfit.checks.useless import ID_LIKE_MIN, ID_LIKE_SHARE
from deepfit.config import UNSUPERVISED
from deepfit.core.words import noun_for, plural
from deepfit.data.dataset import Dataset
from deepfit.data.numbers import column_numbers
from deepfit.data.split import Splits
from deepfit.errors import DataFormatError
from deepfit.modalities.tabular.dates import DATE_PARTS, DATETIME64, date_format, is_date_column

NEAR_CONSTANT_SHARE = 0.99
MOSTLY_MISSING = 0.5
SCALE_SPREAD = 1e3  # largest / smallest standard deviation of the numeric columns
LEAK_SCORE = 0.98  # balanced accuracy or R² of one feature alone
LEAK_ROWS = 5_000
LEAK_FOLDS = 3
LEAK_MIN_ROWS = 20


def audit_table(data: Dataset, splits: Splits | None = None, test_data: Dataset | None = None,
                *, seed: int = 0) -> list[Finding]:
    """The table's own checks: its columns (dates, ID-like, missing values, constants, scales),
    duplicate rows and rows shared across `splits`, and a single feature that gives the target
    away."""
    findings = date_columns(data.X) + id_like_columns(data.X)
    findings += missing_values(data.X) + constant_columns(data.X, seed=seed) + scale_spread(data.X)
    keys = row_keys(data.X)
    findings += duplicate_rows(data, keys)
    if splits is not None:
        findings += split_leakage(data, splits, test_data, keys)
    if data.task in UNSUPERVISED:  # labels that only evaluate cannot leak into training
        return findings
    return findings + target_leak(data, seed=seed)




# ------------------------------------------------------------------------------ columns
def missing_values(X: pd.DataFrame) -> list[Finding]:
    share = X.isna().mean()
    share = share[share > 0].sort_values(ascending=False)
    findings = []
    for name, value in share[share > MOSTLY_MISSING].items():
        findings.append(Finding(
            "missing", "warning", f"{name!r} is {value:.0%} missing; what is left may say little",
            str(name), float(value),
            f"drop {name!r}, or keep it only if being missing is itself informative "
            "(deepfit adds a missing-indicator column)"))
    some = share[share <= MOSTLY_MISSING]
    if len(some):
        findings.append(Finding(
            "missing", "info",
            f"{plural(len(some), 'column', 'have')} missing values (at most {some.iloc[0]:.1%}); deepfit fills "
            "numbers with the training median plus a missing-indicator column, and treats a "
            "missing category as a category of its own",
            names(list(map(str, some.index))), float(some.iloc[0]),
            "nothing needed; fill them yourself if you know better values"))
    return findings


def constant_columns(X: pd.DataFrame, *, seed: int = 0) -> list[Finding]:
    # Counting the values of every column is slow on many rows; a column whose most frequent
    # value holds 99% of all rows holds far above 95% of a 2,000-row sample, so only the
    # columns above that in the sample are counted in full.
    sample = X.sample(n=min(len(X), 2_000), random_state=seed)
    constant, near = [], []
    for name in X.columns:
        if sample[name].value_counts(dropna=False, normalize=True).iloc[0] < 0.95:
            continue
        counts = X[name].value_counts(dropna=False, normalize=True)
        if len(counts) <= 1:
            constant.append(str(name))
        elif counts.iloc[0] >= NEAR_CONSTANT_SHARE:
            near.append((str(name), float(counts.iloc[0])))
    findings = []
    if constant:
        findings.append(Finding(
            "constant", "warning",
            f"{plural(len(constant), 'column', 'hold')} a single value: "
            f"{'it carries' if len(constant) == 1 else 'they carry'} no information",
            names(constant), float(len(constant)), f"drop {names(constant, 3)}"))
    if near:
        top = max(share for _, share in near)
        findings.append(Finding(
            "near_constant", "info",
            f"{plural(len(near), 'column', 'hold')} one value in at least {NEAR_CONSTANT_SHARE:.0%} of the rows "
            f"(up to {top:.2%}); they can help only through their rare values",
            names([n for n, _ in near]), top,
            "keep them if the rare values matter (a flag); otherwise drop them"))
    return findings


def date_columns(X: pd.DataFrame) -> list[Finding]:
    """Date columns (text in one date format, or datetimes), which deepfit expands into numbers."""
    found = {str(n): how[0] for n in X.columns if (how := date_format(X[n])) is not None}
    if not found:
        return []
    read = "; ".join(f"{n!r} ({'datetimes' if f == DATETIME64 else f})" for n, f in found.items())
    return [Finding("dates", "info", f"{plural(len(found), 'date column')} expanded into numeric features "
                    f"({DATE_PARTS}; hour and minute when a value has a time), fitted on the "
                    f"training split; a missing date is imputed and flagged: {read}",
                    names(list(found)), float(len(found)), "nothing needed")]


def numeric_columns(X: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns deepfit's preprocessing reads as numbers, as float64 (NaN where missing)."""
    out = {}
    for name in X.columns:
        if is_date_column(X[name]):  # expanded into its parts, not one number (modalities/tabular/dates.py)
            continue
        try:
            values = column_numbers(X[name], str(name))
        except DataFormatError:  # numbers mixed with text: preprocessing stops on it
            values = None
        if values is not None:
            out[str(name)] = values
    return out


def scale_spread(X: pd.DataFrame) -> list[Finding]:
    stats = {}
    for name, values in numeric_columns(X).items():
        finite = values[np.isfinite(values)]
        with np.errstate(over="ignore", invalid="ignore"):
            std = float(finite.std()) if len(finite) > 1 else 0.0
        if math.isfinite(std) and std > 0:  # a std that overflows says nothing useful here
            stats[name] = (std, float(finite.min()), float(finite.max()))
    if len(stats) < 2:
        return []
    stds = np.array([s[0] for s in stats.values()])
    spread = stds.max() / stds.min()
    if spread <= SCALE_SPREAD:
        return []
    median = float(np.median(stds))
    far = math.sqrt(SCALE_SPREAD)  # at least the widest or the narrowest column is this far
    flagged = sorted((n for n, s in stats.items() if not 1 / far <= s[0] / median <= far),
                     key=lambda n: -abs(math.log(max(stats[n][0] / median, 1e-300))))
    described = "; ".join(f"{n!r} {stats[n][1]:.4g} to {stats[n][2]:.4g}" for n in flagged[:4])
    message = (f"numeric features differ in scale by a factor of {spread:.3g} (standard deviation); "
               f"far from the typical column: {described}. deepfit standardises every numeric "
               "column on the training split, so its runs are unaffected (hence info, not a "
               "warning); a model trained on the raw values would be dominated by the widest")
    fix = ("nothing for deepfit; standardise (fitted on the training split) before using the raw "
           "values elsewhere, and check the units of a column off by a round factor like 1e6")
    return [Finding("scale", "info", message, names(flagged), float(spread), fix)]


# ------------------------------------------------------------------------------ rows


# ------------------------------------------------------------------------------ target leak
def target_leak(data: Dataset, *, seed: int = 0) -> list[Finding]:
    """A feature that alone predicts the target almost perfectly, scored out of fold (so an ID
    column cannot memorise its way there): on a numeric column the target of the nearest value
    seen in training (for regression also the absolute rank correlation), on a text column the
    per-category majority (or mean). At most LEAK_ROWS rows are used."""
    X, y = data.X, data.y
    if len(X) < LEAK_MIN_ROWS:  # too few rows for "almost perfectly" to mean anything
        return []
    if len(X) > LEAK_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), LEAK_ROWS, replace=False))
        X, y = X.iloc[rows], y.iloc[rows]
    classify = data.task == "classification"
    target = pd.factorize(y.astype(str))[0] if classify else y.to_numpy(dtype=np.float64)
    folds = _folds(target, classify, seed)
    numeric = numeric_columns(X)
    metric = "balanced accuracy" if classify else "R² or |rank correlation|"
    findings = []
    for name in map(str, X.columns):
        if name in numeric:
            score = _numeric_score(numeric[name], target, folds, classify)
        else:
            # integer codes, missing values one code of their own (pandas 3 keeps NaN in str columns)
            codes = pd.factorize(X[name].astype(object), use_na_sentinel=False)[0]
            score = _category_score(codes, target, folds, classify)
        if score >= LEAK_SCORE:
            findings.append(Finding(
                "target_leak", "error",
                f"{name!r} alone predicts the target with {metric} {score:.3f} (out of fold): "
                "a likely target leak, i.e. the target copied, re-coded, or recorded after the fact",
                name, score,
                f"drop {name!r} unless it is truly known when predicting; if it is, a neural "
                "network is not needed"))
    return findings


def _folds(target: np.ndarray, classify: bool, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    index = np.zeros((len(target), 1))
    if classify and np.bincount(target).min() >= LEAK_FOLDS:
        splitter = StratifiedKFold(LEAK_FOLDS, shuffle=True, random_state=seed)
    else:
        splitter = KFold(LEAK_FOLDS, shuffle=True, random_state=seed)
    return list(splitter.split(index, target))


def _score(target: np.ndarray, predicted: np.ndarray, classify: bool) -> float:
    """Balanced accuracy (the mean recall over classes), or R²."""
    if classify:
        counts = np.bincount(target)
        hits = np.bincount(target, weights=predicted == target, minlength=len(counts))
        return float(np.mean(hits[counts > 0] / counts[counts > 0]))
    spread = float(((target - target.mean()) ** 2).sum())
    return 1.0 - float(((target - predicted) ** 2).sum()) / spread if spread > 0 else 0.0


def _numeric_score(values: np.ndarray, target: np.ndarray, folds, classify: bool) -> float:
    """The target of the nearest training value (a one-feature nearest neighbour: exact for any
    re-coding, however many classes; a depth-limited tree reaches only 50% balanced accuracy on
    a copy of a 20-class target), and for regression the better of that and the absolute rank
    correlation (any monotonic re-scaling, robust to a little noise)."""
    finite = np.isfinite(values)
    if not finite.any():
        return 0.0
    low, high = values[finite].min(), values[finite].max()
    filled = np.where(np.isnan(values), low - 1.0, values)  # missing is a value of its own
    filled = np.clip(filled, low - 2.0, high + 2.0)  # and so are ±inf
    score = _nearest_score(filled, target, folds, classify)
    if not classify and score < LEAK_SCORE and np.ptp(filled) > 0 and np.ptp(target) > 0:
        rank = pd.Series(filled).corr(pd.Series(target), method="spearman")
        score = max(score, abs(float(rank)) if np.isfinite(rank) else 0.0)
    return score


def _per_value(values: np.ndarray, target: np.ndarray, classify: bool) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values in ascending order, and the majority class (or the mean target) of
    the rows holding each."""
    known, inverse = np.unique(values, return_inverse=True)
    if not classify:
        return known, np.bincount(inverse, weights=target) / np.bincount(inverse)
    n_classes = int(target.max()) + 1
    if len(known) * n_classes > 5_000_000:  # too many cells for a dense table
        frame = pd.DataFrame({"v": inverse, "t": target}).value_counts().reset_index()
        top = frame.drop_duplicates("v").sort_values("v")  # value_counts: most frequent first
        return known, top["t"].to_numpy()
    table = np.bincount(inverse * n_classes + target, minlength=len(known) * n_classes)
    return known, table.reshape(len(known), n_classes).argmax(axis=1)


def _nearest_score(values: np.ndarray, target: np.ndarray, folds, classify: bool) -> float:
    predicted = np.empty(len(target), dtype=target.dtype)
    for train, held in folds:
        known, answers = _per_value(values[train], target[train], classify)
        wanted = values[held]
        right = np.clip(np.searchsorted(known, wanted), 0, len(known) - 1)
        left = np.clip(right - 1, 0, len(known) - 1)
        nearer = np.where(np.abs(wanted - known[left]) <= np.abs(known[right] - wanted), left, right)
        predicted[held] = answers[nearer]
    return _score(target, predicted, classify)


def _category_score(values: np.ndarray, target: np.ndarray, folds, classify: bool) -> float:
    predicted = np.empty(len(target), dtype=target.dtype)
    for train, held in folds:
        lookup = pd.Series(*reversed(_per_value(values[train], target[train], classify)))
        fallback = np.bincount(target[train]).argmax() if classify else target[train].mean()
        predicted[held] = pd.Series(values[held]).map(lookup).fillna(fallback).to_numpy()
    return _score(target, predicted, classify)


def id_like_columns(X: pd.DataFrame) -> list[Finding]:
    """Before training (the data audit): text columns with at least ID_LIKE_MIN distinct values,
    as many as ID_LIKE_SHARE of the rows. Read as categories, each is seen about once, so a model
    learns nothing from them and new rows hold unseen values: free text or an ID."""
    flagged, counts = [], []
    for name in X.columns:
        column = X[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column) \
                or column.dtype.kind == "M" or is_date_column(column):
            continue
        distinct = int(column.dropna().nunique())
        if distinct >= ID_LIKE_MIN and distinct >= ID_LIKE_SHARE * len(X):
            flagged.append(str(name))
            counts.append(f"{name!r}: {distinct:,} distinct values in {len(X):,} rows")
    if not flagged:
        return []
    return [Finding("id_like", "warning",
                    f"{noun_for(len(flagged), 'column')} with nearly one value per row, read as categories: free text or an "
                    f"ID, nothing a model can learn from as categories ({'; '.join(counts)})",
                    names(flagged), float(len(flagged)),
                    "drop them (an ID), or turn free text into features yourself")]
