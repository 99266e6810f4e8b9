"""Text: CSV/Parquet/DataFrame columns of free text (with other columns beside them, late
fusion) and folders of .txt files, tokenised by a tokenizer trained on the training split."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepfit.core.words import plural
from deepfit.data.tables import read_table
from deepfit.errors import PredictInputError, SettingsError
from deepfit.modalities.base import FEW_LABELS, Modality
from deepfit.modalities.text.audit import audit_text, unknown_tokens
from deepfit.modalities.text.examples import confused_examples
from deepfit.modalities.text.preprocess import TextPreprocessor
from deepfit.modalities.text.reader import read_text_folder, read_text_table
from deepfit.models.registry import InputSpec

DEFAULT_VOCAB = 8000


class Text(Modality):
    name = "text"
    default_model = "textcnn"
    preprocessor = TextPreprocessor
    layout = "[n_text, L] token ids"
    natural_shape = (1, 128)  # one text column of 128 tokens
    quick_shape = (1, 16)
    # before the image folders (a folder of .txt files) and before the tables (a CSV of text)
    readers = (("text_folders", read_text_folder, 15), ("text_tables", read_text_table, 85))
    noun = "text"
    baselines = True  # compare adds TF-IDF + logistic regression: what to try first on text
    baseline_kinds = ("tfidf_linear",)
    fixes: ClassVar[dict[str, str]] = {
        "samples": ("start from a pretrained language model (--model transfer:PATH, a local Hugging "
                    "Face checkpoint) or keep the network small (textcnn), and compare it with TF-IDF "
                    "and logistic regression: deepfit compare DATA shows that baseline beside it"),
        "duplicates": ("drop repeated texts before training (DataFrame.drop_duplicates(subset=text "
                       "column)) unless they are genuine repeats"),
        "split_leak": ("drop repeated texts before training, or keep all copies of a text in one "
                       "split"),
    }
    guide_rows = (
        (lambda n, interp: n >= FEW_LABELS, "deep_learning",
         "text with many labels (≥ 10,000) → deep learning"),
        (lambda n, interp: True, "try_both",
         "text with few labels (< 10,000) → try both: a small network (or a pretrained model) and "
         "TF-IDF with logistic regression"),
    )

    def create_preprocessor(self, data: Any = None) -> TextPreprocessor:
        """The settings the reader recorded (Dataset.reading): the text columns, vocabulary
        size, length, tokenizer kind and a checkpoint's folder."""
        reading = (getattr(data, "reading", None) or {})
        return TextPreprocessor(reading.get("text_columns") or [],
                                vocab_size=reading.get("vocab_size") or DEFAULT_VOCAB,
                                max_length=reading.get("max_length"),
                                tokenizer=reading.get("tokenizer") or "wordpiece",
                                pretrained=reading.get("pretrained"))

    def baseline_text_columns(self, pre: TextPreprocessor) -> list[str]:
        """The text columns, read raw by the TF-IDF baseline (tools/compare/baselines.py)."""
        return list(pre.text_columns)

    def explain_parts(self) -> Any:
        """Not for text yet: integrated gradients cannot pass through the token ids (an
        embedding lookup has no gradient with respect to its index), and a word's importance
        needs attributions on the embeddings. Raises SettingsError saying so."""
        raise SettingsError("deepfit explain does not support text runs yet: integrated gradients "
                            "cannot pass through token ids (an embedding lookup); compare the run "
                            "with the TF-IDF baseline (deepfit compare) to see which words matter")

    def run_files(self, pre: TextPreprocessor) -> dict[str, str]:
        """tokenizer.json: the tokenizer, loadable by HF tokenizers (Tokenizer.from_file)."""
        return {"tokenizer.json": pre.tokenizer.to_str(pretty=True)}

    def input_spec_of(self, shape: tuple[int, ...]) -> InputSpec:
        n_text, length = shape
        return InputSpec(n_text * length, 0, modality=self.name, shape=tuple(shape),
                         vocab_size=DEFAULT_VOCAB + 1)

    def synthetic_input(self, spec: InputSpec, n: int, generator: Any) -> Any:
        """[n, n_features] float32: the tabular block standard normal (no categories), then
        token ids + 1 drawn uniformly from the vocabulary, every position a real token (the
        longest texts: the slowest case)."""
        import torch

        n_text, length = spec.shape
        n_tabular = spec.n_features - n_text * length
        ids = torch.randint(1, spec.vocab_size, (n, n_text * length), generator=generator)
        return torch.cat([torch.randn((n, n_tabular), generator=generator), ids.float()], dim=1)

    def unrelated_cause(self, n_train: int) -> str:
        return ("the label may not depend on the words of the texts (labels shuffled, or not "
                f"matched to their texts?), or too weakly for {plural(n_train, 'training text')}; "
                "`deepfit compare` shows whether TF-IDF and logistic regression find more")

    def synthetic_rows(self, pre: TextPreprocessor, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Texts of random vocabulary words (of the training length), and the other columns as
        the tabular modality draws them."""
        vocab = [t for t in pre.tokenizer.get_vocab() if t.isalpha()] or ["text"]
        columns: dict[str, Any] = {}
        if pre.tabular is not None:
            from deepfit.modalities.base import get_modality

            columns.update(get_modality("tabular").synthetic_rows(pre.tabular, n, rng).to_dict("series"))
        for name in pre.text_columns:
            columns[name] = [" ".join(rng.choice(vocab, max(1, pre.length // 2))) for _ in range(n)]
        return pd.DataFrame({name: columns[name] for name in pre.columns})

    def prediction_input(self, pre: TextPreprocessor, X: Any) -> Any:
        """A DataFrame as it is; a string, or a list or array of strings, as the one text column
        of a model that reads nothing else. Raises PredictInputError otherwise."""
        if isinstance(X, pd.DataFrame):
            return X
        if isinstance(X, str):
            X = [X]
        values = list(np.asarray(X, dtype=object).ravel()) if not isinstance(X, list) else X
        if len(pre.columns) != 1 or not all(isinstance(v, str) or v is None for v in values):
            raise PredictInputError(f"give a DataFrame with the columns {', '.join(pre.columns)}, "
                                    "or a list of texts for a model of one text column")
        return pd.DataFrame({pre.text_columns[0]: values})

    def read_for_predict(self, pre: TextPreprocessor, path: Path) -> Any:
        """A table of the training columns, or one .txt file as one text."""
        if path.suffix.lower() == ".txt" and path.is_file():
            if len(pre.columns) != 1:
                raise PredictInputError(f"{path.name} is one text, but the model also reads the "
                                        f"columns {', '.join(c for c in pre.columns if c not in pre.text_columns)}"
                                        "; give a CSV or Parquet file of all its columns")
            from deepfit.modalities.text.reader import _decode

            return pd.DataFrame({pre.text_columns[0]: [_decode(path.read_bytes())[0]]})
        written = pre.tabular.written if pre.tabular is not None else {}
        return read_table(path, written=written)

    def report_facts(self, data: dict[str, Any]) -> dict[str, Any]:
        """The text columns' tokens: how many kept of each text, and the vocabulary."""
        spec = data.get("input") or {}
        if len(spec.get("shape") or ()) != 2:
            return {}
        n_text, length = spec["shape"]
        return {"text": f"{plural(n_text, 'text column')}, {length} tokens kept of each text, a "
                        f"vocabulary of {spec.get('vocab_size', 1) - 1} tokens"}

    def audit(self, data: Any, splits: Any, test_data: Any, *, seed: int = 0) -> list:
        """Empty, repeated, conflicting, leaked and far too long texts, label words, and the
        other columns' tabular checks (modalities/text/audit.py)."""
        return audit_text(data, splits, test_data, seed=seed)

    def audit_fitted(self, pre: TextPreprocessor, data: Any, splits: Any, test_data: Any) -> list:
        """The share of the held-out texts' tokens unknown to the tokenizer trained on the
        training split (modalities/text/audit.py: unknown_tokens)."""
        held_out = {}
        if splits is not None:
            held_out = {"validation": data.X.iloc[splits.val], "test": data.X.iloc[splits.test]}
        if test_data is not None:
            held_out["test file"] = test_data.X
        return unknown_tokens(pre, held_out)

    def report_examples(self, pre: TextPreprocessor, X: Any, evaluation: Any,
                        classes: list[Any]) -> list[dict[str, Any]]:
        """The test texts the model got most confidently wrong (modalities/text/examples.py)."""
        return confused_examples(pre, X, evaluation, classes)

    def request_schema(self, pre: TextPreprocessor) -> dict[str, str]:
        schema = {}
        if pre.tabular is not None:
            from deepfit.modalities.base import get_modality

            schema.update(get_modality("tabular").request_schema(pre.tabular))
        schema.update({name: "text (a string), or null for none" for name in pre.text_columns})
        return {name: schema[name] for name in pre.columns}

    def request_input(self, pre: TextPreprocessor, records: list[dict[str, Any]]) -> pd.DataFrame:
        """A DataFrame of the training columns; a record lacking one, or a text that is not a
        string, is a PredictInputError naming it."""
        for i, record in enumerate(records):
            for name in pre.text_columns:
                if name not in record:
                    raise PredictInputError(f"records[{i}] lacks the text column {name!r} the model "
                                            "was trained on (null for no text)")
                if record[name] is not None and not isinstance(record[name], str):
                    raise PredictInputError(f"records[{i}].{name} must be a string or null, not "
                                            f"{str(record[name])[:40]!r}")
        if pre.tabular is not None:
            from deepfit.modalities.base import get_modality

            get_modality("tabular").request_input(pre.tabular, records)
        return pd.DataFrame.from_records([{n: r.get(n) for n in pre.columns} for r in records],
                                         columns=pre.columns)
