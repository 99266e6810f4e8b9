"""The anomaly tests' data (tests/test_anomaly.py, benchmarks/anomaly_auroc.py), generated."""

from __future__ import annotations

import numpy as np
import pandas as pd

N_NORMAL, N_FEATURES, OUTLIER_SHARE = 1000, 8, 0.02


def planted_table(seed: int = 0) -> pd.DataFrame:
    """1,000 normal rows near a 2-D plane in 8 dimensions (Gaussian, noise 0.05) and 2% rows
    drawn far off it (Gaussian of scale 3 in all 8), shuffled; `label` 1 marks the outliers."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, N_FEATURES))
    normal = rng.normal(size=(N_NORMAL, 2)) @ basis + 0.05 * rng.normal(size=(N_NORMAL, N_FEATURES))
    n_out = int(N_NORMAL * OUTLIER_SHARE)
    far = 3.0 * rng.normal(size=(n_out, N_FEATURES))
    X = np.vstack([normal, far])
    y = np.r_[np.zeros(N_NORMAL), np.ones(n_out)].astype(int)
    order = rng.permutation(len(y))
    frame = pd.DataFrame(X[order], columns=[f"x{i}" for i in range(N_FEATURES)])
    frame["label"] = y[order]
    return frame


def held_out_digits(held: int, seed: int = 0, n_train_held: int = 30, images: bool = False):
    """scikit-learn's digits with class `held` as the anomaly: (X_fit, y_fit) = 80% of the other
    classes' rows + `n_train_held` rows of the held class (what deepfit trains, validates and
    tests on), (X_eval, y_eval) = the other 20% of the normal rows + every other held-class row.
    Rows [N, 64] (0..16), or with `images` [N, 1, 8, 8] floats."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.images[:, None].astype(np.float32) / 16 if images else digits.data
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(digits.target != held))
    odd = rng.permutation(np.flatnonzero(digits.target == held))
    cut = int(0.8 * len(normal))
    fit = np.r_[normal[:cut], odd[:n_train_held]]
    evaluate = np.r_[normal[cut:], odd[n_train_held:]]
    label = (digits.target == held).astype(int)
    return X[fit], label[fit], X[evaluate], label[evaluate]
