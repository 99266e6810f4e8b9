"""Synthetic text corpora for the text tests (generated, never downloaded; import from tests).

    order_corpus(n, seed)    the label is which of two marker words comes FIRST, with 1-3
                             distractor words between them: every text holds both markers once,
                             each with a distractor on both sides, drawn alike for both classes,
                             so the unigram and bigram counts of the two classes have the same
                             distribution and a bag of 1- and 2-grams (TF-IDF) sees nothing;
                             a convolution of width 3-5 over the tokens sees the order.
    keyword_corpus(n, seed)  the label is whether a keyword is present (anywhere, among
                             distractors): a bag of words sees it all.

Both return a DataFrame with a "text" column and a "label" column ("yes"/"no"), classes balanced.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WORDS = (
    "the a of to and in is it that was for on are with as his they be at one have this from or "
    "had by word but what some we can out other were all there when up use your how said an each "
    "she which do their time if will way about many then them write would like so these her long "
    "make thing see him two has look more day could go come did number sound no most people my"
)
DISTRACTORS = tuple(WORDS.split())  # common English words, no marker and no keyword among them
MARKERS = ("alpha", "omega")  # order_corpus: "alpha … omega" is "yes", "omega … alpha" is "no"
KEYWORD = "excellent"  # keyword_corpus: present is "yes"


def _words(rng: np.random.Generator, k: int) -> list[str]:
    return list(rng.choice(DISTRACTORS, size=k))


def order_corpus(n: int = 400, seed: int = 0, gap: tuple[int, int] = (1, 3)) -> pd.DataFrame:
    """`n` texts of 8-16 words: distractors (≥ 1), one marker, `gap` distractors, the other
    marker, distractors (≥ 1). label "yes" when MARKERS[0] comes first."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    texts = []
    for label in labels:
        first, second = MARKERS if label else MARKERS[::-1]
        middle = int(rng.integers(gap[0], gap[1] + 1))
        before, after = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        words = [*_words(rng, before), first, *_words(rng, middle), second, *_words(rng, after)]
        texts.append(" ".join(words))
    return pd.DataFrame({"text": texts, "label": np.where(labels == 1, "yes", "no")})


def keyword_corpus(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """`n` texts of 3-8 distractor words; label "yes" texts hold KEYWORD at a random place."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    texts = []
    for label in labels:
        words = _words(rng, int(rng.integers(3, 9)))
        if label:
            words.insert(int(rng.integers(0, len(words) + 1)), KEYWORD)
        texts.append(" ".join(words))
    return pd.DataFrame({"text": texts, "label": np.where(labels == 1, "yes", "no")})


def bag_of_bigrams_accuracy(frame: pd.DataFrame, seed: int = 0) -> float:
    """Cross-validated accuracy of TF-IDF 1-2-grams + logistic regression on `frame` (the check
    that the order corpus hides its label from a bag of words)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(max_iter=1000))
    return float(cross_val_score(model, frame["text"], frame["label"], cv=5).mean())
