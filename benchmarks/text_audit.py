"""Seconds the text audit (modalities/text/audit.py: audit_text, run before every text training
run) takes on generated corpora of 10,000 and 100,000 texts of 8-60 words (200-word median
texts for the largest), with the validation/test split training would use; 3 repeats, median
and range.

    PYTHONPATH=src python benchmarks/text_audit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd


def corpus(n: int, words: tuple[int, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}x" for i in range(5_000)])
    lengths = rng.integers(*words, n)
    ids = rng.integers(0, len(vocab), lengths.sum())
    texts = [" ".join(part) for part in np.split(vocab[ids], np.cumsum(lengths)[:-1])]
    return pd.DataFrame({"text": texts, "label": rng.choice(["a", "b", "c"], n)})


def main() -> None:
    from deepfit.data.dataset import Dataset
    from deepfit.data.split import Splits
    from deepfit.modalities.text.audit import audit_text

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| texts | words per text | seconds, median (range) |\n|---|---|---|")
    for n, words in ((10_000, (8, 60)), (100_000, (8, 60)), (20_000, (150, 250))):
        frame = corpus(n, words)
        data = Dataset(frame[["text"]], frame["label"], "bench", "label", "classification",
                       modality="text", reading={"text_columns": ["text"]})
        rows = np.random.default_rng(1).permutation(n)
        splits = Splits(rows[: int(0.7 * n)], rows[int(0.7 * n): int(0.85 * n)], rows[int(0.85 * n):])
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            audit_text(data, splits, None)
            seconds.append(time.perf_counter() - start)
        print(f"| {n:,} | {words[0]}-{words[1]} | {statistics.median(seconds):.2f} "
              f"({min(seconds):.2f}-{max(seconds):.2f}) |")


if __name__ == "__main__":
    main()
