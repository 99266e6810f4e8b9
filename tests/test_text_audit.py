"""The text audit (modalities/text/audit.py) and the text run report's confused examples
(modalities/text/examples.py, evaluation/report.py): each finding planted in a generated corpus
is found with its counts, none on the clean corpus; the report shows the most confidently wrong
test texts, HTML-escaped, as the Predictor ranks them."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest

from deepfit.checks.audit import audit_data
from deepfit.data.dataset import Dataset
from deepfit.data.split import Splits
from deepfit.modalities.text.audit import (
    LEAK_MIN_TEXTS,
    audit_text,
    label_words,
    long_texts,
    normalise,
    shorten,
)

pytest.importorskip("tokenizers", reason="the text extra (HF tokenizers) is not installed")

VOCAB = [f"w{i}x" for i in range(300)]
TEXT_CHECKS = {"empty_texts", "duplicates", "conflicting_labels", "split_leak", "long_texts",
               "label_word", "unknown_tokens"}
N = 300
SPLITS = Splits(np.arange(0, 200), np.arange(200, 250), np.arange(250, 300))


def corpus(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Two classes of 8-14 random vocabulary words; "match" is in 60% of the sports texts and
    30% of the politics ones (a useful word, not a leak)."""
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n) < 0.5, "sports", "politics")
    texts = []
    for label in labels:
        words = list(rng.choice(VOCAB, rng.integers(8, 15)))
        if rng.random() < (0.6 if label == "sports" else 0.3):
            words.insert(int(rng.integers(0, len(words))), "match")
        texts.append(" ".join(words))
    return pd.DataFrame({"text": texts, "label": labels})


def dataset(frame: pd.DataFrame) -> Dataset:
    return Dataset(frame[["text"]].copy(), frame["label"], "corpus", "label", "classification",
                   modality="text", reading={"text_columns": ["text"]})


def found(findings, check: str):
    return [f for f in findings if f.check == check]


# ------------------------------------------------------------------------------ clean
def test_clean_corpus_has_no_text_finding():
    data = dataset(corpus())
    findings = audit_data(data, SPLITS, dataset(corpus(40, seed=9)))
    assert not [f for f in findings if f.check in TEXT_CHECKS], findings
    assert not [f for f in findings if f.severity != "info" and f.check != "samples"]


def test_check_runs_the_text_audit_end_to_end():
    """`deepfit check` on a DataFrame: the planted leak is an error, unknown tokens an info."""
    import deepfit

    frame = corpus()
    frame.loc[frame["label"] == "sports", "text"] += " sports"
    findings = deepfit.check(frame, target="label", seed=0)
    leak = found(findings, "label_word")
    assert [(f.severity, f.subject) for f in leak] == [("error", "text: sports")]
    assert leak[0].evidence == pytest.approx(frame["label"].eq("sports").sum() * 0.8, abs=20)  # the train split's
    unknown = found(findings, "unknown_tokens")
    assert unknown and unknown[0].severity == "info" and unknown[0].evidence == 0.0
    assert findings[0].check == "label_word"  # errors first


def test_cli_check_and_train_on_a_leaked_csv(tmp_path, capsys):
    """`deepfit check --json` lists the text findings (exit 1 on the error); `deepfit train`
    stops before training on the label word (exit 2), and names it."""
    from deepfit.cli import main

    frame = corpus()
    frame.loc[frame["label"] == "politics", "text"] = "Politics: " + frame["text"]
    held = corpus(30, seed=9)
    held.loc[[0, 1], "text"] = frame.loc[[0, 1], "text"].str.upper().to_numpy()
    frame.to_csv(tmp_path / "train.csv", index=False)
    held.to_csv(tmp_path / "test.csv", index=False)
    argv = [str(tmp_path / "train.csv"), "--target", "label", "--test", str(tmp_path / "test.csv")]
    assert main(["check", *argv, "--json"]) == 1
    findings = json.loads(capsys.readouterr().out)
    checks = {f["check"]: f for f in findings}
    assert checks["label_word"]["severity"] == "error" and checks["label_word"]["subject"] == "text: politics"
    assert "2 texts of the --test file" in checks["split_leak"]["message"]
    assert main(["train", *argv, "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert "the word 'politics'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ planted
def test_empty_texts_counted():
    frame = corpus()
    frame.loc[[3, 17, 250], "text"] = ["", "   \n\t", None]
    (finding,) = found(audit_text(dataset(frame), SPLITS), "empty_texts")
    assert finding.evidence == 3 and finding.subject == "text" and finding.severity == "warning"
    assert "rows 3, 17, 250" in finding.message and "(1.0%)" in finding.message
    # empty texts are no duplicates, conflicts or leaks of one another
    frame.loc[[4, 210], "text"] = ""
    frame.loc[4, "label"], frame.loc[210, "label"] = "sports", "politics"
    checks = {f.check for f in audit_text(dataset(frame), SPLITS)}
    assert not checks & {"duplicates", "conflicting_labels", "split_leak"}


def test_cross_split_duplicates_are_a_split_leak():
    frame = corpus()
    pairs = [(5, 210), (6, 220), (7, 260), (8, 270), (9, 280), (10, 235)]  # train → val/test
    for source, copy in pairs:
        frame.loc[copy] = frame.loc[source]
    frame.loc[210, "text"] = "  " + frame.loc[5, "text"].upper().replace(" ", "   ")  # case, spaces
    frame.loc[240] = frame.loc[215]  # val → test is earlier too (val 215 stays, so rows 240)
    frame.loc[245] = frame.loc[290]  # a test text in val: val 245 is not in train → no leak
    held = corpus(20, seed=9)
    held.loc[[0, 1, 2], "text"] = frame.loc[[11, 12, 205], "text"].to_numpy()  # 2 train, 1 val
    findings = audit_text(dataset(frame), SPLITS, dataset(held))
    (leak,) = found(findings, "split_leak")
    # val: 210, 220, 235 copy train; test: 260, 270, 280 copy train, 290 copies val 245;
    # the --test file: 3 texts
    assert leak.evidence == 6 + 1 + 3
    assert "10 of the 120 validation/test texts of 'text' (8.3%)" in leak.message
    assert leak.severity == "error" and leak.subject == "text"
    assert "3 texts of the --test file" in leak.message
    assert repr(shorten(frame.loc[5, "text"].upper())) in leak.message  # examples, as written
    # a single copy among 120 held-out texts is within the sampling noise: a warning
    frame = corpus()
    frame.loc[210] = frame.loc[5]
    (leak,) = found(audit_text(dataset(frame), SPLITS), "split_leak")
    assert leak.evidence == 1 and leak.severity == "warning"
    (repeat,) = found(audit_text(dataset(frame), SPLITS), "duplicates")
    assert repeat.evidence == 1 and "row 210" in repeat.message


def test_a_text_folder_names_its_files(tmp_path):
    from deepfit.modalities import load_source

    frame = corpus(60)
    for i, (text, label) in enumerate(zip(frame["text"], frame["label"])):
        (tmp_path / label).mkdir(exist_ok=True)
        (tmp_path / label / f"{i:02d}.txt").write_text(text)
    (tmp_path / "sports" / "empty.txt").write_text("  \n")
    first = frame.loc[0, "label"]
    other = "politics" if first == "sports" else "sports"
    (tmp_path / other / "copy.txt").write_text(frame.loc[0, "text"].upper())
    data = load_source(str(tmp_path))
    assert data.modality == "text"
    findings = audit_data(data)
    assert "sports/empty.txt" in found(findings, "empty_texts")[0].message
    (clash,) = found(findings, "conflicting_labels")
    assert f"{first}/00.txt" in clash.message and f"{other}/copy.txt" in clash.message


def test_conflicting_labels():
    frame = corpus()
    frame.loc[30, "text"] = frame.loc[31, "text"]
    frame.loc[30, "label"], frame.loc[31, "label"] = "sports", "politics"
    frame.loc[[40, 41, 42], "text"] = frame.loc[43, "text"]
    frame.loc[[40, 41, 42, 43], "label"] = ["sports", "sports", "sports", "politics"]
    findings = audit_text(dataset(frame), SPLITS)
    (conflict,) = found(findings, "conflicting_labels")
    assert conflict.evidence == 2  # two texts…
    assert "6 rows, rows 30, 31, 40, 41, 42, 43" in conflict.message  # … in six rows
    assert "(politics, sports)" in conflict.message
    (repeat,) = found(findings, "duplicates")  # 41 and 42 repeat 40 with its label
    assert repeat.evidence == 2


def test_regression_repeats_need_the_same_target_and_have_no_conflicts():
    frame = corpus()
    frame["score"] = np.arange(N, dtype=float)
    frame.loc[[50, 51, 52], "text"] = frame.loc[53, "text"]
    frame.loc[52, "score"] = frame.loc[53, "score"]
    data = Dataset(frame[["text"]], frame["score"], "corpus", "score", "regression",
                   modality="text", reading={"text_columns": ["text"]})
    findings = audit_text(data, SPLITS)
    (repeat,) = found(findings, "duplicates")
    assert repeat.evidence == 1 and "row 53" in repeat.message  # 53 repeats 52, text and target
    assert not found(findings, "conflicting_labels") and not found(findings, "label_word")


def test_extreme_length():
    frame = corpus()
    rng = np.random.default_rng(1)
    frame.loc[12, "text"] = " ".join(rng.choice(VOCAB, 5_000))
    (long,) = found(audit_text(dataset(frame), SPLITS), "long_texts")
    assert long.evidence == 1 and "the longest 5,000 words (row 12" in long.message
    assert "about 5.0% of the texts will be truncated" in long.message
    # with --max-length 10, the texts of 11 or more words are truncated (a lower bound)
    texts = frame["text"].tolist()
    share = np.mean([len(t.split()) > 10 for t in texts])
    (long,) = long_texts("text", texts, max_length=10)
    assert f"at least {share:.1%} of the texts will be truncated" in long.message
    # over 10,000 words is extreme even when every text is long
    assert long_texts("text", ["word " * 12_000] * 50)[0].evidence == 50
    assert long_texts("text", ["word " * 900] * 50) == []


def test_leaked_label_word_error_and_keyword_warning():
    frame = corpus()
    sports = np.flatnonzero(frame["label"].eq("sports"))
    politics = np.flatnonzero(frame["label"].eq("politics"))
    frame.loc[sports[::2], "text"] += " Sports."  # the label left in half of its texts
    frame.loc[politics[:60], "text"] = "zzvote " + frame.loc[politics[:60], "text"]
    frame.loc[sports[1], "text"] += " zzvote"  # one exception: precision 60/61 < 99%
    findings = label_words("text", frame["text"].tolist(), frame["label"].to_numpy())
    (leak,) = [f for f in findings if f.subject == "text: sports"]
    assert leak.severity == "error" and leak.evidence == len(sports[::2])
    assert f"{len(sports[::2])} of them (100.0%) are of class 'sports'" in leak.message
    assert "Sports.'" in leak.message  # a snippet around the word, as written
    assert not [f for f in findings if "zzvote" in f.subject]
    frame.loc[sports[1], "text"] = frame.loc[sports[1], "text"].replace(" zzvote", "")
    findings = label_words("text", frame["text"].tolist(), frame["label"].to_numpy())
    (keyword,) = [f for f in findings if f.subject == "text: zzvote"]
    assert keyword.severity == "warning" and keyword.evidence == 60
    # a word in most texts of a corpus of 99.5% one class is no leak, though 99.5% precise
    rng = np.random.default_rng(3)
    labels = np.array(["common"] * 1990 + ["rare"] * 10)
    texts = [("the " if rng.random() < 0.9 else "") + " ".join(rng.choice(VOCAB, 8)) for _ in labels]
    assert label_words("text", texts, labels) == []
    # too few texts to say: no finding, however clean the split
    few = frame.iloc[: LEAK_MIN_TEXTS - 1]
    assert label_words("text", few["text"].tolist(), few["label"].to_numpy()) == []


def test_unknown_tokens_of_another_script():
    from deepfit.modalities import get_modality
    from deepfit.modalities.text.preprocess import TextPreprocessor

    frame = corpus()
    pre = TextPreprocessor(["text"], vocab_size=500).fit(frame[["text"]].iloc[:200])
    modality = get_modality("text")
    held = corpus(20, seed=9)
    held["text"] = ["Съешь же ещё этих мягких французских булок"] * 10 + held["text"].tolist()[:10]
    data = dataset(frame)
    (unknown,) = modality.audit_fitted(pre, data, SPLITS, dataset(held))
    assert unknown.check == "unknown_tokens" and unknown.severity == "warning"
    texts = held["text"].tolist()
    from deepfit.modalities.text import tokens

    _, counts = tokens.encode(pre.tokenizer, frame["text"].iloc[200:].tolist() + texts, pre.length)
    assert unknown.evidence == pytest.approx(counts["unknown"] / counts["tokens"])
    assert unknown.evidence > 0.05
    _, alone = tokens.encode(pre.tokenizer, texts, pre.length)
    assert f"test file {alone['unknown'] / alone['tokens']:.1%}" in unknown.message
    assert "the most frequent: 'Съешь', 'же', 'ещё'" in unknown.message


def test_other_columns_get_the_table_checks():
    frame = corpus()
    frame["constant"], frame["number"] = 1.0, np.arange(N) % 7
    data = Dataset(frame[["text", "constant", "number"]], frame["label"], "corpus", "label",
                   "classification", modality="text", reading={"text_columns": ["text"]})
    findings = audit_data(data, SPLITS)
    assert [f.subject for f in found(findings, "constant")] == ["constant"]
    assert not found(findings, "id_like")  # the text column is text, not an ID read as categories


def test_regression_examples_by_error():
    from deepfit.evaluation.full_metrics import Evaluation
    from deepfit.modalities.text.examples import confused_examples
    from deepfit.modalities.text.preprocess import TextPreprocessor

    X = pd.DataFrame({"text": ["a  b", "c <d>", "e", "f"]})
    evaluation = Evaluation("regression", np.array([1.0, 2.0, 3.0, 4.0]),
                            np.array([1.5, 9.0, 3.0, 0.0]), None, {})
    rows = confused_examples(TextPreprocessor(["text"]), X, evaluation, [], k=2)
    assert rows == [{"text": "c <d>", "true": 2.0, "predicted": 9.0, "error": 7.0},
                    {"text": "f", "true": 4.0, "predicted": 0.0, "error": 4.0}]


def test_normalise():
    assert normalise("  Great\tFILM\n ") == normalise("great film") == "great film"
    assert shorten("a " * 100, 10) == "a a a a a…"


# ------------------------------------------------------------------------------ report
@pytest.mark.slow
def test_report_shows_confused_texts_escaped(tmp_path):
    import deepfit

    train = corpus(240)
    train["text"] = train["text"] + " <b>&amp;</b>"
    test = corpus(60, seed=5)
    test["text"] = test["text"] + " <b>&amp;</b>"
    test.to_csv(tmp_path / "test.csv", index=False)
    run = deepfit.train(train, target="label", test=str(tmp_path / "test.csv"), epochs=2,
                        progress=False, out=tmp_path / "run")
    metrics = json.loads((run.path / "metrics.json").read_text())
    examples = metrics["confused_examples"]
    # the reference: the Predictor's probabilities on the test file, wrong ones by confidence
    proba = run.predictor.predict_proba(test[["text"]])
    classes = [str(c) for c in run.predictor.classes]
    predicted = proba.argmax(1)
    wrong = np.flatnonzero(np.array(classes)[predicted] != test["label"].to_numpy())
    confidence = proba[wrong, predicted[wrong]]
    assert len(examples) == min(10, len(wrong)) > 0
    reference = {shorten(test["text"][i], 200): (classes[predicted[i]], test["label"][i], c)
                 for i, c in zip(wrong, confidence)}
    for e in examples:
        assert (e["predicted"], e["true"]) == reference[e["text"]][:2]
        assert e["probability"] == pytest.approx(reference[e["text"]][2], abs=1e-6)
    shown = [e["probability"] for e in examples]
    assert shown == sorted(shown, reverse=True)  # the most confident first, and no one above
    assert shown[-1] >= np.sort(confidence)[::-1][len(examples) - 1] - 1e-6  # … left out
    # the unknown tokens of the validation split and the --test file, recorded with the run
    config = json.loads((run.path / "config.json").read_text())
    (unknown,) = [f for f in config["findings"] if f["check"] == "unknown_tokens"]
    assert "validation" in unknown["message"] and "test file" in unknown["message"]
    page = (run.path / "report.html").read_text()
    assert "Most confused test examples" in page
    for e in examples:
        assert html.escape(e["text"]) in page
    assert "<b>&amp;</b>" not in page and "&lt;b&gt;&amp;amp;&lt;/b&gt;" in page
