"""The TF-IDF + logistic regression baseline of text data in compare and advise (issue 20):
fitted on the run's training split, scored on its validation and test rows; a corpus whose label
is a word order a bag of words cannot see (the network clearly beats it) and one whose label is a
keyword (the baseline is as good, and advise says so)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline

import deepfit
from deepfit.lifecycle.prepare import prepare
from deepfit.tools.compare.baselines import TFIDF_STRENGTHS, encode, fit_baseline
from text_corpora import KEYWORD, MARKERS, bag_of_bigrams_accuracy, keyword_corpus, order_corpus

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = {"epochs": 8, "patience": 8, "report": False}
BASELINE = "tfidf_linear"


@pytest.mark.parametrize("seed", [0, 1])
def test_the_order_corpus_hides_its_label_from_a_bag_of_bigrams(seed):
    order = order_corpus(1000, seed)
    # every text holds both markers once: the unigrams say nothing
    assert all(w.count(MARKERS[0]) == w.count(MARKERS[1]) == 1 for w in order["text"].str.split())
    assert bag_of_bigrams_accuracy(order, seed) < 0.58  # chance, within its noise
    assert bag_of_bigrams_accuracy(keyword_corpus(400, seed), seed) > 0.95
    keyword = keyword_corpus(400, seed)
    assert keyword["text"].str.contains(KEYWORD).eq(keyword["label"] == "yes").all()


def _hand_tfidf(prepared, model_of):
    """The reference: scikit-learn's pipeline on the raw texts of the same training split, the
    strength chosen by the validation split's score, its test predictions."""
    X, y, splits = prepared.data.X, prepared.data.y, prepared.splits
    X_test, y_test = prepared.test_frame
    best = None
    for strength in TFIDF_STRENGTHS:
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                              model_of(strength))
        model.fit(X["text"].iloc[splits.train], y.iloc[splits.train])
        val = model.score(X["text"].iloc[splits.val], y.iloc[splits.val])
        if best is None or val > best[0]:
            best = (val, model)
    return best[1].predict(X_test["text"]), y_test


def best_vocabulary(prepared):
    vectoriser = TfidfVectorizer(ngram_range=(1, 2), min_df=2)
    return vectoriser.fit(prepared.data.X["text"].iloc[prepared.splits.train]).vocabulary_


def test_the_baseline_is_scikit_learns_pipeline_on_the_same_rows():
    frame = keyword_corpus(300, 4)
    frame.loc[frame.index[::7], "label"] = np.where(frame["label"].iloc[::7] == "yes", "no", "yes")  # noise
    prepared = prepare(frame, target="label", seed=4)
    result = fit_baseline(BASELINE, encode(prepared), seed=4)
    preds, y_test = _hand_tfidf(prepared, lambda c: LogisticRegression(C=c, max_iter=1000))
    classes = prepared.target.classes
    assert [classes[i] for i in result.test_pred] == list(preds)
    assert result.test_score == pytest.approx(accuracy_score(y_test, preds))
    assert result.train_rows == prepared.sizes["train"] and result.metric == "accuracy"
    # fitted on the training split only: a word seen only in the test texts has no column
    vocabulary = result.estimator.steps[0][1].named_transformers_["tfidf_0"].vocabulary_
    train_words = set(" ".join(prepared.data.X["text"].iloc[prepared.splits.train]).split())
    assert {w for w in vocabulary if " " not in w} <= train_words
    assert vocabulary.keys() == best_vocabulary(prepared).keys()  # n-grams of ≥ 2 training texts


def test_text_regression_gets_ridge_and_other_columns_sit_beside_the_text():
    rng = np.random.default_rng(5)
    frame = keyword_corpus(300, 5).drop(columns="label")
    frame["price"] = rng.normal(size=len(frame))  # a number column and a category, late fusion
    frame["colour"] = rng.choice(["red", "green", "blue"], len(frame))
    frame["target"] = (frame["text"].str.contains(KEYWORD) * 2.0 + frame["price"]
                       + (frame["colour"] == "red") * 1.5 + rng.normal(0, 0.1, len(frame)))
    prepared = prepare(frame, target="target", seed=5)
    result = fit_baseline(BASELINE, encode(prepared), seed=5)
    assert isinstance(result.estimator.steps[-1][1], Ridge) and result.metric == "r2"
    assert result.test_score > 0.85  # the keyword, the number and the category all seen
    # the text alone explains a part only: the other columns are what lifts it
    X, y, splits = prepared.data.X, prepared.data.y, prepared.splits
    text_only = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), Ridge())
    text_only.fit(X["text"].iloc[splits.train], y.iloc[splits.train])
    assert text_only.score(prepared.test_frame[0]["text"], prepared.test_frame[1]) < 0.7


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 4])
def test_compare_textcnn_clearly_beats_tfidf_on_the_order_corpus(tmp_path, seed):
    c = deepfit.compare(order_corpus(400, seed), target="label", models="textcnn", seed=seed,
                        out=tmp_path / "cmp", **QUICK)
    scores = dict(zip(c.table["model"], c.table["test_score"], strict=True))
    assert set(scores) == {"textcnn", BASELINE}
    assert scores["textcnn"] > 0.85 and scores[BASELINE] < 0.7
    assert scores["textcnn"] - scores[BASELINE] > 0.25
    assert any("TF-IDF + logistic regression" in n for n in c.notes)
    assert (tmp_path / "cmp" / "compare.csv").read_text().count(BASELINE) == 1


@pytest.mark.slow
def test_advise_says_tfidf_is_as_good_on_the_keyword_corpus(tmp_path):
    # seed 1: TF-IDF scores 1.0 on its test rows (benchmarks/RESULTS.md), so no network can be ahead
    advice = deepfit.advise(keyword_corpus(400, 1), target="label", seed=1, budget_seconds=300,
                            out=tmp_path / "adv", **QUICK)
    scores = advice.evidence["scores"]
    assert set(scores) == {"textcnn", BASELINE} and scores[BASELINE] > 0.95, advice.reasons
    assert any(r.startswith("TF-IDF + logistic regression is as good") for r in advice.reasons)
    assert advice.verdict != "deep_learning"
    assert advice.evidence["gradient_boosting_vs_linear"] is None
    assert {r["model"] for r in advice.bakeoff} == {"textcnn", BASELINE}


@pytest.mark.slow
def test_advise_says_the_network_clearly_beats_tfidf_on_the_order_corpus(tmp_path):
    advice = deepfit.advise(order_corpus(400, 2), target="label", seed=2, budget_seconds=300,
                            out=tmp_path / "adv", **QUICK)
    assert advice.evidence["network_vs_best_baseline"]["clear"], advice.reasons
    assert any(r.startswith("the network clearly beats TF-IDF + logistic regression")
               for r in advice.reasons)
    assert advice.verdict == "deep_learning"


@pytest.mark.slow
def test_compare_on_the_command_line_shows_the_tfidf_row_for_a_text_csv(tmp_path, capsys):
    from deepfit.cli import main

    keyword_corpus(200, 6).to_csv(tmp_path / "reviews.csv", index=False)
    code = main(["-q", "compare", str(tmp_path / "reviews.csv"), "--target", "label", "--models",
                 "textcnn", "--epochs", "2", "--out", str(tmp_path / "c")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tfidf_linear" in printed and "TF-IDF + logistic regression" in printed


def test_advise_words_the_one_text_baseline_in_each_case():
    from deepfit.tools.advise.advice import next_command
    from deepfit.tools.advise.rules import Evidence, Gap, decide

    def evidence(net: float, tfidf: float) -> Evidence:
        return Evidence("accuracy", {"textcnn": net, BASELINE: tfidf}, "textcnn",
                        Gap("textcnn", BASELINE, net - tfidf, 0.01), None, {}, BASELINE,
                        {BASELINE: "TF-IDF + logistic regression"})

    verdict, reasons = decide("try_both", evidence(0.95, 0.60), False, None)
    assert verdict == "deep_learning"
    assert reasons[-1].startswith("the network clearly beats TF-IDF + logistic regression (textcnn − tfidf_linear = +0.350")
    verdict, reasons = decide("try_both", evidence(0.91, 0.90), False, None)
    assert verdict == "try_both" and reasons[-1].startswith("TF-IDF + logistic regression is as good: ")
    verdict, reasons = decide("try_both", evidence(0.70, 0.90), False, None)
    assert verdict == "linear_model"
    assert reasons[-1].startswith("TF-IDF + logistic regression is as good, and better: clearly ahead")
    assert next_command(verdict, "r.csv", {"target": "y"}, "textcnn", BASELINE).endswith(
        "# the tfidf_linear row is the one to use")
    # a latency bound the network misses: the baseline that meets it
    slow = evidence(0.95, 0.60)
    slow.latency_ms = {"textcnn": 5.0, BASELINE: 0.1}
    assert decide("try_both", slow, False, 1.0)[0] == "linear_model"
