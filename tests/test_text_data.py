"""Reading text: detection of text columns (and what is not text), --text-columns, --no-text,
--modality text; folders of .txt files in class subfolders (other encodings, a byte-order mark,
train/ val/ test/); the tokenizer trained on the training split, its round trip through the run
directory and HF tokenizers' own loader; --max-length, the p95 default, --vocab-size, BPE; and
the text extra missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import deepfit
from deepfit.core.notes import Notes
from deepfit.errors import DataFormatError, MissingExtraError
from deepfit.modalities import load_source
from deepfit.modalities.text import tokens
from deepfit.modalities.text.preprocess import TextPreprocessor
from text_helpers import reviews, write

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = {"epochs": 2, "progress": False, "report": False, "embedding_dim": 16, "width": 8}


def _read(source, **text):
    notes = Notes(live=False)
    data = load_source(source, target="label", notes=notes, options={"text": text})
    return data, notes


# --------------------------------------------------------------- detection
def test_a_review_column_is_text_with_its_note_and_a_category_and_an_id_are_not(tmp_path):
    frame = reviews(120)
    frame["code"] = [f"A-{1000 + i}" for i in range(len(frame))]  # an ID: one word each
    data, notes = _read(write(tmp_path, frame))
    assert data.modality == "text"
    assert data.reading["text_columns"] == ["review"]
    said = " ".join(notes.decisions)
    assert "column 'review' read as text (median" in said and "--no-text" in said
    assert "genre" not in data.reading["text_columns"] and "code" not in data.reading["text_columns"]


def test_text_columns_picks_one_and_no_text_keeps_the_old_reading(tmp_path):
    frame = reviews(80)
    frame["summary"] = frame["review"].str.upper() + " indeed"
    path = write(tmp_path, frame)
    assert _read(path)[0].reading["text_columns"] == ["review", "summary"]
    assert _read(path, columns=["summary"])[0].reading["text_columns"] == ["summary"]
    old, _ = _read(path, detect=False)
    assert old.modality == "tabular"


def test_text_columns_naming_a_missing_column_is_a_data_format_error(tmp_path):
    with pytest.raises(DataFormatError, match="'comment'.*not a feature column"):
        _read(write(tmp_path, reviews(40)), columns=["comment"])


def test_modality_text_on_a_table_without_text_names_text_columns(tmp_path):
    frame = reviews(40).drop(columns=["review"])
    with pytest.raises(DataFormatError, match="--text-columns"):
        load_source(write(tmp_path, frame), target="label", modality="text", notes=Notes(live=False))


# ----------------------------------------------------------------- folders
def _folder(root, parts=("",)):
    frame = reviews(40)
    for part in parts:
        for i, row in frame.iterrows():
            where = root / part / row["label"]
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{i}.txt").write_text(row["review"], encoding="utf-8")
    return frame


def test_a_folder_of_txt_files_in_class_subfolders_with_cp1252_and_a_bom(tmp_path):
    root = tmp_path / "texts"
    _folder(root)
    (root / "pos" / "cp.txt").write_bytes("a café at the seaside was lovely – truly".encode("cp1252"))
    (root / "neg" / "bom.txt").write_bytes("\ufeffthe naïve plot was awful and boring".encode("utf-8"))
    data, notes = _read(root)
    assert "cp.txt (cp1252)" in " ".join(notes.warnings)
    assert data.modality == "text" and len(data) == 42 and sorted(set(data.y)) == ["neg", "pos"]
    texts = dict(zip(data.reading["files"], data.X["text"]))
    assert texts["pos/cp.txt"] == "a café at the seaside was lovely – truly"
    assert texts["neg/bom.txt"] == "the naïve plot was awful and boring"  # the BOM dropped


def test_a_train_val_test_folder_layout_gives_its_splits(tmp_path):
    root = tmp_path / "texts"
    _folder(root, parts=("train", "val", "test"))
    data, _ = _read(root)
    assert data.reading["folders"] and len(data) == 120
    parts = data.reading["splits"]
    assert {k: len(v) for k, v in parts.items()} == {"train": 40, "val": 40, "test": 40}


# --------------------------------------------------------------- tokenizer
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    path = write(root, reviews(160))
    return deepfit.train(str(path), target="label", out=root / "run", max_length=6, vocab_size=100, **FAST)


def test_the_tokenizer_round_trips_through_the_run_and_hf_tokenizers(run):
    tk = pytest.importorskip("tokenizers")
    predictor = deepfit.load(run.path)
    pre = predictor.preprocessor
    texts = ["The movie was GREAT", "awful plot", "", "an unseen zebra word"]
    ids, _ = tokens.encode(pre.tokenizer, texts, pre.length)
    again = TextPreprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(tokens.encode(again.tokenizer, texts, again.length)[0], ids)
    own = tk.Tokenizer.from_file(str(run.path / "tokenizer.json"))
    for text, row in zip(texts, ids):
        want = [i + 1 for i in own.encode(text).ids][: pre.length]
        assert row[: len(want)].tolist() == want and not row[len(want):].any()
    assert own.encode("THE Movie").ids == own.encode("the movie").ids  # lower-cased, as stated


def test_max_length_and_vocab_size_are_respected_and_truncation_noted(run):
    pre = deepfit.load(run.path).preprocessor
    assert pre.length == 6 and pre.input_spec()["shape"] == (1, 6)
    assert pre.tokenizer.get_vocab_size() <= 100
    larger = tokens.train_tokenizer(reviews(160)["review"].tolist(), 8000)
    assert larger.get_vocab_size() > 150  # so 100 was a real limit, not the corpus's size
    assert pre.truncated_share > 0.9  # every review has 10 tokens or more


def test_the_default_length_is_the_95th_percentile_and_bpe_trains():
    frame = reviews(100)
    frame.loc[:9, "review"] = frame.loc[:9, "review"] + " and" * 50  # 10% long texts
    notes = Notes(live=False)
    pre = TextPreprocessor(["review"], vocab_size=200, tokenizer="bpe").fit(frame[["review"]], notes)
    lengths = tokens.token_lengths(pre.tokenizer, frame["review"].tolist())
    assert pre.length == int(np.ceil(np.percentile(lengths, 95))) and pre.length > 20
    assert pre.truncated_share == pytest.approx(np.mean(lengths > pre.length))
    assert "bpe" in pre.to_dict()["tokenizer_kind"] and '"BPE"' in pre.to_dict()["tokenizer"]
    assert pre.transform(frame[["review"]]).shape == (100, pre.length)


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_the_same_texts_always_train_the_same_tokenizer(kind):
    texts = [*reviews(120)["review"].tolist(), "Café naïve, don't! Zürich"]
    first = tokens.train_tokenizer(texts, 120, kind)
    for _ in range(4):  # tokenizers' own WordPiece trainer gave other ids on ties, run to run
        assert tokens.train_tokenizer(texts, 120, kind).get_vocab() == first.get_vocab()
    assert first.get_vocab()["[PAD]"] == 0 and first.get_vocab()["[UNK]"] == 1
    assert [t.content for t in first.get_added_tokens_decoder().values()] == ["[PAD]", "[UNK]"]


def test_a_missing_tokenizers_package_names_the_text_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers → ImportError
    with pytest.raises(MissingExtraError, match=r"deepfit\[text\]"):
        TextPreprocessor(["review"]).fit(reviews(20)[["review"]], Notes(live=False))



def test_the_cli_says_a_missing_text_column_in_one_line_and_writes_nothing(tmp_path, capsys, keep_logging):
    from cli_helpers import expect_cli_error

    path = write(tmp_path, reviews(40))
    expect_cli_error(["train", str(path), "--target", "label", "--text-columns", "comment",
                      "--out", str(tmp_path / "run")], capsys, tmp_path, "'comment'", tmp_path / "run")
    expect_cli_error(["train", str(path), "--target", "label", "--tokenizer", "sentencepiece",
                      "--out", str(tmp_path / "run")], capsys, tmp_path, "sentencepiece")
