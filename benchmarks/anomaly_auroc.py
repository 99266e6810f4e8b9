"""AUROC of deepfit's autoencoder (--task anomaly) against scikit-learn's IsolationForest on the
two test sets of tests/test_anomaly.py, over several seeds: the median and the spread.

    planted   1,000 Gaussian rows on a 2-D manifold in 8 dimensions + 2% far-off rows; 0/1
              labels given as the target (evaluation only); the run's own test split
    digits    scikit-learn's digits as 64-column tables: the rows of 9 classes + 30 rows of the
              held-out class to train on (deepfit's own split of those); scored on 20% of the
              normal rows kept apart and every other row of the held-out class

IsolationForest is fitted on the same preprocessed training rows (compare's baseline row for
planted; for digits the same training rows, standardised by the run's preprocessor).

    PYTHONPATH=src python benchmarks/anomaly_auroc.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def planted(seed: int) -> tuple[float, float]:
    import deepfit
    from anomaly_data import planted_table

    frame = planted_table(seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = deepfit.compare(frame, target="label", task="anomaly", models="dense_ae",
                                 epochs=60, seed=seed, out=Path(tmp) / "cmp", progress=False)
    scores = dict(zip(result.table["model"], result.table["test_score"]))
    return float(scores["dense_ae"]), float(scores["isolation_forest"])


def digits(held: int, seed: int) -> tuple[float, float]:
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    import deepfit
    from anomaly_data import held_out_digits

    X_fit, y_fit, X_eval, y_eval = held_out_digits(held, seed)
    with tempfile.TemporaryDirectory() as tmp:
        run = deepfit.train(X_fit, y=y_fit, task="anomaly", epochs=60, seed=seed,
                            out=Path(tmp) / "run", progress=False)
        ae = roc_auc_score(y_eval, run.predictor.anomaly_score(X_eval))
        pre = run.predictor.preprocessor
        forest = IsolationForest(random_state=seed).fit(pre.transform(pd.DataFrame(X_fit, columns=pre.columns)))
        iso = roc_auc_score(y_eval, -forest.score_samples(pre.transform(pd.DataFrame(X_eval, columns=pre.columns))))
    return float(ae), float(iso)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = range(args.seeds)
    rows = []
    pairs = [planted(s) for s in seeds]
    rows.append(("planted outliers (2%)", [p[0] for p in pairs], [p[1] for p in pairs]))
    for held in range(10):
        pairs = [digits(held, s) for s in seeds]
        rows.append((f"digits, class {held} held out", [p[0] for p in pairs], [p[1] for p in pairs]))
        print(rows[-1][0], summary(rows[-1][1]), summary(rows[-1][2]), flush=True)
    print("| test set | autoencoder AUROC | IsolationForest AUROC |")
    print("|---|---|---|")
    for name, ae, iso in rows:
        print(f"| {name} | {summary(ae)} | {summary(iso)} |")


if __name__ == "__main__":
    main()
