"""Tokenisation with HF `tokenizers` (the `text` extra): a WordPiece or BPE tokenizer trained on
the training split's texts only, or a pretrained checkpoint's own tokenizer, and the encoding of
texts into the rows of token ids the text models take.

Encoding: each text becomes `length` values, token id + 1, padded with 0 after its last token
(0 is padding whatever the tokenizer's own pad id; the models take the mask as `ids > 0`), and
truncated to `length` tokens (a checkpoint's post-processor keeps its [CLS]/[SEP]). Own
tokenizers normalise by Unicode NFKC and lower-casing, split on whitespace and punctuation
(BERT's pre-tokenizer), and reserve [PAD] (0) and [UNK] (1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from deepfit.core.extras import import_extra
from deepfit.data.numbers import is_missing
from deepfit.errors import SettingsError, SourceNotFoundError

PAD, UNK = "[PAD]", "[UNK]"
MAX_LENGTH = 512  # the longest default length, as BERT's


def _tokenizers():
    return import_extra("tokenizers", "text", "reading text columns")


def as_texts(values: Any) -> list[str]:
    """Values as texts: a missing one is the empty text, anything else its str()."""
    return ["" if is_missing(v) else str(v) for v in list(values)]


def train_tokenizer(texts: list[str], vocab_size: int, kind: str = "wordpiece") -> Any:
    """A `tokenizers.Tokenizer` trained on `texts` (the training split's): WordPiece (Wu et al.
    2016, BERT's) or byte-pair encoding (Sennrich et al. 2016), of at most `vocab_size` tokens
    (or the characters seen, when they are more). The same texts always give the same tokenizer."""
    tk = _tokenizers()
    if kind == "bpe":
        tokenizer = tk.Tokenizer(tk.models.BPE(unk_token=UNK))
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK],
                                         show_progress=False)
    elif kind == "wordpiece":
        tokenizer = tk.Tokenizer(tk.models.WordPiece(unk_token=UNK))
    else:
        raise SettingsError(f"tokenizer must be wordpiece or bpe, not {kind!r}")
    tokenizer.normalizer = tk.normalizers.Sequence([tk.normalizers.NFKC(), tk.normalizers.Lowercase()])
    tokenizer.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
    if kind == "wordpiece":
        # tokenizers' WordPiece trainer numbers the word-inner characters ("##e") in hash order,
        # and ties between merges are broken by those numbers: two trainings on the same texts
        # give other vocabularies (so a resumed run would re-fit other token ids). Numbering them
        # first, in sorted order (as special tokens, made ordinary afterwards), fixes the result.
        inner: set[str] = set()
        for text in texts:
            for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(text)):
                inner.update(word[1:])
        trainer = tk.trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=[PAD, UNK, *("##" + c for c in sorted(inner))],
            show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if kind == "wordpiece":
        document = json.loads(tokenizer.to_str())
        document["added_tokens"] = [t for t in document["added_tokens"] if t["content"] in (PAD, UNK)]
        tokenizer = tk.Tokenizer.from_str(json.dumps(document))
    return tokenizer


def pretrained_tokenizer(path: Path) -> Any:
    """The tokenizer of a local Hugging Face checkpoint folder: its tokenizer.json, else the one
    `transformers` builds from its vocabulary files (local files only, never the network).
    Raises SourceNotFoundError when the folder has neither."""
    tk = _tokenizers()
    if (path / "tokenizer.json").exists():
        return tk.Tokenizer.from_file(str(path / "tokenizer.json"))
    transformers = import_extra("transformers", "text", "a transfer:PATH text model")
    try:
        auto = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
    except (OSError, ValueError) as exc:
        raise SourceNotFoundError(f"{path} holds no tokenizer (tokenizer.json or vocab.txt) for "
                                  f"its text: {exc}") from None
    return auto.backend_tokenizer


def tokenizer_to_str(tokenizer: Any) -> str:
    return tokenizer.to_str()


def tokenizer_from_str(text: str) -> Any:
    return _tokenizers().Tokenizer.from_str(text)


def unknown_id(tokenizer: Any) -> int | None:
    """The unknown token's id, or None when the model has none (byte-level BPE)."""
    model = json.loads(tokenizer.to_str()).get("model", {})
    unk = model.get("unk_token")
    return tokenizer.token_to_id(unk) if unk else None


def token_lengths(tokenizer: Any, texts: list[str]) -> np.ndarray:
    """Each text's number of tokens, untruncated."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return np.fromiter((len(e.ids) for e in tokenizer.encode_batch(texts)), dtype=np.int64, count=len(texts))


def encode(tokenizer: Any, texts: list[str], length: int) -> tuple[np.ndarray, dict[str, int]]:
    """[len(texts), length] float32 of token id + 1, 0 after the last token; and counts:
    "truncated" texts, "tokens" kept, "unknown" of them."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=length)
    unk = unknown_id(tokenizer)
    out = np.zeros((len(texts), length), dtype=np.float32)
    counts = {"truncated": 0, "tokens": 0, "unknown": 0}
    for i, encoding in enumerate(tokenizer.encode_batch(texts)):
        ids = encoding.ids
        out[i, : len(ids)] = np.asarray(ids, dtype=np.float32) + 1.0
        counts["tokens"] += len(ids)
        counts["truncated"] += bool(encoding.overflowing)
        if unk is not None:
            counts["unknown"] += sum(t == unk for t in ids)
    tokenizer.no_truncation()
    return out, counts
