"""Tiny generated review tables for the text tests (nothing downloaded): the label is which of
two word lists the review's one sentiment word comes from, among filler words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

POSITIVE = ["great", "lovely", "excellent", "superb", "wonderful"]
NEGATIVE = ["awful", "terrible", "poor", "dreadful", "boring"]
FILLER = ["the", "movie", "was", "really", "and", "plot", "acting", "i", "think", "quite",
          "story", "film", "music", "scenes", "ending"]


def reviews(n: int = 200, seed: int = 0, words: int = 8) -> pd.DataFrame:
    """`n` reviews (a text column "review" of `words` + 2 words, each distinct), a numeric
    column "stars" of noise, a category "genre" and a pos/neg label."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        tokens = [*list(rng.choice(FILLER, words)), str(rng.choice(POSITIVE if label else NEGATIVE))]
        rng.shuffle(tokens)
        rows.append({"review": " ".join(tokens) + f" number{i}", "stars": float(rng.normal()),
                     "genre": str(rng.choice(["drama", "comedy", "horror"])),
                     "label": "pos" if label else "neg"})
    return pd.DataFrame(rows)


def write(tmp: Path, frame: pd.DataFrame, name: str = "reviews.csv") -> Path:
    path = tmp / name
    frame.to_csv(path, index=False)
    return path
