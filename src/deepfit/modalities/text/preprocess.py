"""Text preprocessing fitted on the training split only, saved with the model as plain JSON.

Output of `TextPreprocessor.transform` (one float32 matrix, so batches stay one tensor):
    [ the other columns, as modalities/tabular/preprocess.py makes them | text 1's ids | … ]
Each text column takes `length` values: token id + 1, 0 for padding (modalities/text/tokens.py).
`input_spec()` says where the blocks are: n_dense and cardinalities describe the tabular block
(n_features - n_text × length values), shape = (n_text, length), vocab_size = ids + 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.core.words import noun_for, plural
from deepfit.errors import DataFormatError, PredictInputError, RunDirError
from deepfit.modalities.tabular.preprocess import Preprocessor
from deepfit.modalities.text import tokens


class TextPreprocessor:
    """A tokenizer trained on the training split's texts (or a checkpoint's), the length kept of
    each text, and the tabular preprocessing of the other columns (late fusion)."""

    def __init__(self, text_columns: list[str] | None = None, *, vocab_size: int = 8000,
                 max_length: int | None = None, tokenizer: str = "wordpiece",
                 pretrained: str | None = None) -> None:
        self.text_columns = list(text_columns or [])
        self.vocab_size, self.max_length, self.kind = vocab_size, max_length, tokenizer
        self.pretrained = pretrained  # a checkpoint folder whose own tokenizer is used
        self.length = 0
        self.tokenizer: Any = None
        self.tabular: Preprocessor | None = None
        self.unknown_share = 0.0  # of the training split's tokens (the audit reports it)
        self.truncated_share = 0.0

    # ----------------------------------------------------------------- fit
    def fit(self, X: pd.DataFrame, notes: Notes | None = None) -> TextPreprocessor:
        notes = notes if notes is not None else Notes()
        self._check_columns(X)
        others = [c for c in X.columns if str(c) not in self.text_columns]
        self.tabular = Preprocessor().fit(X[others], notes) if others else None
        texts = [t for c in self.text_columns for t in tokens.as_texts(X[c])]
        if not any(t.strip() for t in texts):
            raise DataFormatError("the text columns hold no text in the training split")
        if self.pretrained:
            self.tokenizer = tokens.pretrained_tokenizer(Path(self.pretrained))
            notes.decide(f"text: the tokenizer of {self.pretrained} "
                         f"({self.tokenizer.get_vocab_size()} tokens, its own normalisation)")
        else:
            self.tokenizer = tokens.train_tokenizer(texts, self.vocab_size, self.kind)
            notes.decide(f"text: a {self.kind} tokenizer of {self.tokenizer.get_vocab_size()} tokens "
                         "trained on the training split only (Unicode NFKC, lower-cased, split on "
                         "spaces and punctuation; HF tokenizers)")
        lengths = tokens.token_lengths(self.tokenizer, texts)
        if self.max_length is None:
            p95 = float(np.percentile(lengths, 95))
            self.length = int(min(tokens.MAX_LENGTH, max(1, math.ceil(p95))))
            why = f"the 95th percentile of the training lengths{', capped' if p95 > tokens.MAX_LENGTH else ''}"
        else:
            self.length, why = int(self.max_length), "--max-length"
        self.truncated_share = float((lengths > self.length).mean())
        _, counts = tokens.encode(self.tokenizer, texts, self.length)
        self.unknown_share = counts["unknown"] / max(counts["tokens"], 1)
        notes.decide(f"text: {self.length} tokens kept of each text ({why}; median "
                     f"{np.median(lengths):g}); {self.truncated_share:.1%} of the training texts "
                     "truncated, shorter ones padded and masked")
        return self

    def _check_columns(self, X: pd.DataFrame) -> None:
        absent = [c for c in self.text_columns if c not in X.columns]
        if absent:
            raise PredictInputError(f"missing text {noun_for(len(absent), 'column')} the model was "
                                    f"trained on: {', '.join(map(repr, absent))}")

    # ----------------------------------------------------------- transform
    def transform(self, X: pd.DataFrame, notes: Notes | None = None) -> np.ndarray:
        """[N, n_features] float32 (the module docstring). Raises PredictInputError for a
        column the model was trained on that X lacks."""
        self._check_columns(X)
        parts = []
        if self.tabular is not None:
            parts.append(self.tabular.transform(X, notes))
        unknown = total = 0
        for column in self.text_columns:
            ids, counts = tokens.encode(self.tokenizer, tokens.as_texts(X[column]), self.length)
            parts.append(ids)
            unknown, total = unknown + counts["unknown"], total + counts["tokens"]
        share = unknown / max(total, 1)
        if share > max(0.05, 2 * self.unknown_share):
            (notes or Notes()).warn(f"text: {share:.0%} of the tokens are unknown to the tokenizer "
                                    f"(training had {self.unknown_share:.1%}); is this text in the "
                                    "language and script the model was trained on?")
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    # ----------------------------------------------------------- describe
    @property
    def columns(self) -> list[str]:
        return (self.tabular.columns if self.tabular is not None else []) + self.text_columns

    @property
    def n_tabular(self) -> int:
        return self.tabular.n_features if self.tabular is not None else 0

    def input_spec(self) -> dict[str, Any]:
        tab = self.tabular.input_spec() if self.tabular is not None else {"n_dense": 0, "cardinalities": []}
        return {"n_features": self.n_tabular + len(self.text_columns) * self.length,
                "n_dense": tab["n_dense"], "cardinalities": tab["cardinalities"], "modality": "text",
                "shape": (len(self.text_columns), self.length),
                "vocab_size": self.tokenizer.get_vocab_size() + 1}

    def to_dict(self) -> dict[str, Any]:
        return {"text_columns": self.text_columns, "length": self.length,
                "vocab_size": self.vocab_size, "tokenizer_kind": self.kind,
                "pretrained": self.pretrained, "unknown_share": self.unknown_share,
                "truncated_share": self.truncated_share,
                "tokenizer": tokens.tokenizer_to_str(self.tokenizer),
                "tabular": self.tabular.to_dict() if self.tabular is not None else None}

    def to_spec(self) -> dict[str, Any]:
        """What another language needs (an export's preprocess.json): the text columns, the
        tokenizer (HF tokenizers' JSON, loadable by tokenizers in Python, Rust or JavaScript),
        the encoding rule, and the tabular block's spec."""
        return {"input_layout": (f"[N, {self.n_tabular + len(self.text_columns) * self.length}] float32: "
                                 f"the tabular block's {self.n_tabular} values, then for each text "
                                 f"column {self.length} token ids"),
                "text_columns": self.text_columns, "length": self.length,
                "text_rule": ("a missing text is ''; encode with the tokenizer (its normaliser, "
                              "pre-tokenizer and post-processor), keep the first `length` ids "
                              "(truncation), write id + 1, then 0 up to `length` (padding)"),
                "tokenizer": self.to_dict()["tokenizer"],
                "tabular": self.tabular.to_spec() if self.tabular is not None else None,
                "columns": self.columns}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextPreprocessor:
        """The preprocessor `to_dict` saved. Raises RunDirError for a record that is not one."""
        where = "model.json's text preprocessor"
        if not isinstance(d.get("text_columns"), list) or not isinstance(d.get("tokenizer"), str):
            raise RunDirError(f"{where} lacks its text columns or its tokenizer")
        if not isinstance(d.get("length"), int) or d["length"] < 1:
            raise RunDirError(f"{where}'s 'length' is {d.get('length')!r}, not a number of tokens")
        pre = cls(d["text_columns"], vocab_size=int(d.get("vocab_size", 8000)),
                  tokenizer=d.get("tokenizer_kind", "wordpiece"), pretrained=d.get("pretrained"))
        pre.length = d["length"]
        pre.unknown_share = float(d.get("unknown_share", 0.0))
        pre.truncated_share = float(d.get("truncated_share", 0.0))
        try:
            pre.tokenizer = tokens.tokenizer_from_str(d["tokenizer"])
        except Exception as exc:  # tokenizers raises its own Exception type
            if type(exc).__name__ == "MissingExtraError":
                raise
            raise RunDirError(f"{where}'s tokenizer cannot be read: {exc}") from None
        pre.tabular = Preprocessor.from_dict(d["tabular"]) if d.get("tabular") else None
        return pre


def describe(pre: TextPreprocessor) -> str:
    """One line on the text reading, for messages."""
    return (f"{plural(len(pre.text_columns), 'text column')} ({', '.join(pre.text_columns)}), "
            f"{pre.length} tokens each")
