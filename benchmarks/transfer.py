"""Transfer learning against training from scratch on few images, over many seeds (by hand, not
in the test suite): the statistical claims that tests/test_image_train.py no longer makes.

Two pairs, each on scikit-learn's bundled 8×8 digits, the cnn, the same seeds and splits:
  parity   the cnn trained on all ten digits (the first 1,000 images) is fine-tuned with
           deepfit's default stages to tell even from odd digits from 5 images of each digit;
           the test's pair, where the source's features clearly help;
  low-high the cnn trained on digits 0-4 is fine-tuned (the same default stages) to digits 5-9
           from 20 images of each (session 2's pair: its margin, +0.009 there, did not hold on a fresh machine).
Each seed draws the few images, trains both models and scores them on the rest; the script
prints each seed's accuracies, then the mean, standard deviation and range of the margin.

    python benchmarks/transfer.py --seeds 10 [--pairs parity low-high]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import deepfit
from deepfit.modalities.image.arrays import digits_images

QUIET = {"progress": False, "report": False, "threads": 1, "checkpoint": False}
COMMON = {"epochs": 20, "batch_size": 16, "augment": "none", "test_size": 0.0, **QUIET}


def pair_setup(name: str, X: np.ndarray, y: np.ndarray, tmp: Path, per_class: int | None):
    """(source run, target labels, pool of target rows, images per class)."""
    if name == "parity":
        source = deepfit.train(X[:1000], y=y[:1000], model="cnn", epochs=8, out=tmp / "src10", **QUIET)
        labels = np.where(y % 2 == 0, "even", "odd")
        return source, labels, np.arange(1000, len(y)), per_class or 5
    low = y < 5
    source = deepfit.train(X[low], y=y[low], model="cnn", epochs=8, out=tmp / "src5", **QUIET)
    pool = np.flatnonzero(~low)
    return source, y.astype(str), pool, per_class or 20


def run_pair(name: str, seeds: int, X: np.ndarray, y: np.ndarray, tmp: Path,
             per_class: int | None = None) -> None:
    source, labels, pool, per_class = pair_setup(name, X, y, tmp, per_class)
    margins = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        few = np.concatenate([rng.choice(pool[y[pool] == c], per_class, replace=False)
                              for c in np.unique(y[pool])])
        rest = np.setdiff1d(pool, few)
        np.savez(tmp / f"{name}{seed}.npz", X=X[rest], y=labels[rest])
        test = str(tmp / f"{name}{seed}.npz")
        tuned = deepfit.train(X[few], y=labels[few], test=test, seed=seed, model="transfer",
                              weights=str(source.path), out=tmp / f"{name}t{seed}", **COMMON)
        scratch = deepfit.train(X[few], y=labels[few], test=test, seed=seed, model="cnn",
                                out=tmp / f"{name}s{seed}", **COMMON)
        a, b = tuned.metrics["accuracy"], scratch.metrics["accuracy"]
        margins.append(a - b)
        print(f"{name} seed {seed}: transfer {a:.3f}  scratch {b:.3f}  margin {a - b:+.3f}", flush=True)
    m = np.array(margins)
    print(f"{name}: margin mean {m.mean():+.3f}, sd {m.std(ddof=1):.3f}, range {m.min():+.3f} to "
          f"{m.max():+.3f}, transfer ahead on {int((m > 0).sum())} of {len(m)} seeds", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--per-class", type=int, help="target images of each class (default: 5 for "
                        "parity, 20 for low-high)")
    parser.add_argument("--pairs", nargs="+", default=["parity", "low-high"],
                        choices=["parity", "low-high"])
    args = parser.parse_args()
    X, y = digits_images(), load_digits().target
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.pairs:
            run_pair(name, args.seeds, X, y, Path(tmp), args.per_class)


if __name__ == "__main__":
    main()
