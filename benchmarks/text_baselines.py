"""TF-IDF + logistic regression against textcnn on the synthetic corpora of tests/text_corpora.py,
across seeds (the margins tests/test_text_baselines.py asserts): compare on the order corpus,
advise on the keyword corpus. Prints one line per seed and the medians and spreads.

    PYTHONPATH=src python benchmarks/text_baselines.py [SEEDS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import deepfit
from text_corpora import keyword_corpus, order_corpus

QUICK = {"epochs": 8, "patience": 8, "report": False}


def main(seeds: int) -> None:
    gaps, ties = [], 0
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as tmp:
            c = deepfit.compare(order_corpus(400, seed), target="label", models="textcnn", seed=seed,
                                out=Path(tmp) / "c", **QUICK)
            s = dict(zip(c.table["model"], c.table["test_score"], strict=True))
            a = deepfit.advise(keyword_corpus(400, seed), target="label", seed=seed,
                               budget_seconds=60, out=Path(tmp) / "a", **QUICK)
        as_good = any(r.startswith("TF-IDF + logistic regression is as good") for r in a.reasons)
        ties += as_good
        gaps.append(s["textcnn"] - s["tfidf_linear"])
        print(f"seed {seed}: order corpus textcnn {s['textcnn']:.3f}, tfidf_linear {s['tfidf_linear']:.3f}; "
              f"keyword corpus advise textcnn {a.evidence['scores']['textcnn']:.3f}, tfidf_linear "
              f"{a.evidence['scores']['tfidf_linear']:.3f}, 'as good' said: {as_good}, verdict {a.verdict}",
              flush=True)
    print(f"order corpus gap textcnn - tfidf: median {statistics.median(gaps):.3f}, "
          f"min {min(gaps):.3f}, max {max(gaps):.3f}; keyword corpus 'as good' in {ties}/{seeds}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
