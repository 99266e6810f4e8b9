"""The text audit: what in a table's free-text columns would make a model fail or mislead, run
before the tokenizer is fitted (`audit_text`, the text modality's `audit`), and the one check
that needs the fitted tokenizer (`unknown_tokens`, after preprocessing: lifecycle/prepare.py).

Texts are compared after normalising them (Unicode NFKC, lower case, runs of white space as
one space), so "Great  film" and "great film" are the same text. Per text column:

    empty_texts         missing, empty or white-space-only texts: the model sees only padding
    duplicates          the same text with the same label repeated (as checks/rows.py's)
    conflicting_labels  the same text with two labels (classification): label noise
    split_leak          validation/test texts (and a --test file's) equal to an earlier split's:
                        an error once it can move the metrics (the tabular split_leak's rule)
    long_texts          texts far longer than the rest (over LONG_FACTOR × the 99th percentile of
                        words, or over LONG_WORDS words), and the share that will be truncated
    label_word          a word whose presence alone gives one class (precision ≥ LEAK_PRECISION
                        over ≥ LEAK_MIN_TEXTS training texts, in ≥ LEAK_SHARE of them, or in
                        half of a class's texts when the class is smaller, and erring at most a
                        tenth as often as answering that class always): an error when the word
                        is the class's own name (the label left in the text), else a warning
    unknown_tokens      (fitted) the share of the validation/test tokens the tokenizer trained on
                        the training split does not know

The other columns of a mixed table get the tabular column checks (modalities/tabular/audit.py).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from deepfit.checks.findings import Finding, names
from deepfit.checks.rows import DUPLICATE_SHARE, rows_text
from deepfit.config import UNSUPERVISED
from deepfit.core.words import plural, verb_for
from deepfit.data.dataset import Dataset
from deepfit.data.split import Splits
from deepfit.modalities.tabular import audit as tab
from deepfit.modalities.text import tokens
from deepfit.modalities.text.tokens import as_texts

SHORT = 60  # characters of a text shown in a finding
EXAMPLES = 3  # texts shown per finding
EMPTY_WARN_SHARE = 0.01  # empty texts below this share are an info
LONG_FACTOR, LONG_WORDS = 4, 10_000
LEAK_SHARE, LEAK_CLASS_SHARE, LEAK_PRECISION, LEAK_MIN_TEXTS = 0.2, 0.5, 0.99, 20
LEAK_LIFT = 10  # a label word errs at most 1/LEAK_LIFT as often as answering its class always
LEAK_ROWS = 20_000  # training texts the label-word check reads at most (a sample)
UNKNOWN_SAMPLE = 2_000  # held-out texts whose unknown pieces are named
LEAK_WORDS = 5  # label words named per column at most
WORD = r"(?u)\b\w+\b"  # one word of the label-word check: letters and digits, lower-cased
Rows = Callable[[Any], str]  # row positions → how a finding names them: "rows 3, 7", file names


def normalise(text: str) -> str:
    """The form texts are compared in: NFKC, lower case, white space collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def shorten(text: str, limit: int = SHORT) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def examples(texts: list[str], positions: Any, limit: int = EXAMPLES) -> str:
    """Up to `limit` shortened, quoted texts at `positions`: '"a film…", "the plot…"'."""
    shown = [repr(shorten(texts[int(i)])) for i in list(positions)[:limit]]
    return ", ".join(shown) + (", …" if len(positions) > limit else "")


def around(texts: list[str], positions: Any, word: str, limit: int = 2) -> str:
    """Up to `limit` quoted snippets of the texts at `positions` around the first `word` in
    each: '"…the final score was sports…"'."""
    shown = []
    for i in list(positions)[:limit]:
        text = " ".join(texts[int(i)].split())
        found = re.search(rf"(?i)\b{re.escape(word)}\b", text)
        start = max(0, found.start() - SHORT // 2) if found else 0
        if start:  # from the start of a word
            start = min(text.find(" ", start) + 1 or start, found.start())
        part = shorten(text[start:], SHORT)
        shown.append(repr(("…" if start else "") + part))
    return ", ".join(shown) + (", …" if len(positions) > limit else "")


def text_columns_of(data: Dataset) -> list[str]:
    """The columns the reader took as text (Dataset.reading), those of data.X."""
    named = (data.reading or {}).get("text_columns") or []
    return [c for c in named if c in getattr(data.X, "columns", [])]


# ------------------------------------------------------------------------------ the audit
def audit_text(data: Dataset, splits: Splits | None = None, test_data: Dataset | None = None,
               *, seed: int = 0) -> list[Finding]:
    """Every text check on each text column (the module docstring), and the tabular column
    checks on the other columns. `splits`: the rows training would use (None: no split check);
    `test_data`: an explicit --test file."""
    columns = text_columns_of(data)
    findings = _other_columns(data, columns, seed)
    classify = data.task == "classification"
    # each row's target as text (a repeat is of the text and its target), if it is one column
    labels = data.y.astype(str).to_numpy() if isinstance(data.y, pd.Series) else None
    rows_of = _rows_namer(data)
    for column in columns:
        texts = as_texts(data.X[column])
        norm = [normalise(t) for t in texts]
        findings += empty_texts(column, texts, norm, rows_of)
        findings += repeated_texts(column, texts, norm, labels, rows_of, conflicts=classify)
        if splits is not None:
            held = None
            if test_data is not None and column in getattr(test_data.X, "columns", []):
                held = as_texts(test_data.X[column])
            findings += split_leak(column, texts, norm, splits, held, rows_of)
        findings += long_texts(column, texts, (data.reading or {}).get("max_length"), rows_of)
        if classify and labels is not None:
            rows = splits.train if splits is not None else np.arange(len(texts))
            findings += label_words(column, [texts[i] for i in rows], labels[rows], seed=seed)
    return findings


def _rows_namer(data: Dataset) -> Rows:
    """Rows by position, or a folder's .txt files by their path in it (Dataset.reading)."""
    files = (data.reading or {}).get("files")
    if files is None or len(files) != len(data):
        return rows_text
    return lambda positions: names([files[int(i)] for i in positions])


def _other_columns(data: Dataset, columns: list[str], seed: int) -> list[Finding]:
    """The tabular column checks (and its target leak) on the columns beside the texts."""
    others = [c for c in data.X.columns if c not in columns]
    if not others:
        return []
    X = data.X[others]
    findings = (tab.date_columns(X) + tab.id_like_columns(X) + tab.missing_values(X)
                + tab.constant_columns(X, seed=seed) + tab.scale_spread(X))
    if data.task not in UNSUPERVISED:
        findings += tab.target_leak(replace(data, X=X), seed=seed)
    return findings


def empty_texts(column: str, texts: list[str], norm: list[str],
                rows_of: Rows = rows_text) -> list[Finding]:
    empty = np.flatnonzero([not t for t in norm])
    if not len(empty):
        return []
    share = len(empty) / len(texts)
    return [Finding(
        "empty_texts", "warning" if share >= EMPTY_WARN_SHARE else "info",
        f"{plural(len(empty), 'text')} of {column!r} ({share:.1%}) {verb_for(len(empty), 'are')} missing, "
        f"empty or only white space ({rows_of(empty)}): the model sees only padding for "
        f"{'it' if len(empty) == 1 else 'them'}",
        column, float(len(empty)),
        "drop those rows, or fill in their text; keep them only if a missing text is a real case")]


def repeated_texts(column: str, texts: list[str], norm: list[str], labels: np.ndarray | None,
                   rows_of: Rows = rows_text, *, conflicts: bool = True) -> list[Finding]:
    """The same (normalised, non-empty) text repeated with its target (`labels`, as text; None:
    the text alone); with `conflicts` (classification), the same text under two labels."""
    frame = pd.DataFrame({"x": norm, "y": labels if labels is not None else ""})
    frame = frame[frame["x"] != ""]
    findings = []
    repeated = frame.index[frame.duplicated()].to_numpy()
    if len(repeated):
        share = len(repeated) / len(texts)
        findings.append(Finding(
            "duplicates", "warning" if share >= DUPLICATE_SHARE else "info",
            f"{plural(len(repeated), 'text')} of {column!r} ({share:.1%}) {verb_for(len(repeated), 'repeat')} an "
            f"earlier one with the same target, after normalising case and spaces ({rows_of(repeated)}: "
            f"{examples(texts, repeated)}); repeats weigh more in training and can land in several splits",
            column, float(len(repeated)),
            "drop repeated texts before training unless they are genuine repeats"))
    if labels is None or not conflicts:
        return findings
    per_text = frame.groupby("x")["y"].nunique()
    clashing = per_text.index[per_text > 1]
    if len(clashing):
        rows = frame.index[frame["x"].isin(clashing)].to_numpy()
        first = frame[frame["x"].isin(clashing)].drop_duplicates("x")
        shown = "; ".join(f"{shorten(texts[i])!r} ({', '.join(sorted(frame.loc[frame['x'] == frame.loc[i, 'x'], 'y'].unique()))})"
                          for i in first.index[:EXAMPLES])
        findings.append(Finding(
            "conflicting_labels", "warning",
            f"{plural(len(clashing), 'text')} of {column!r} {verb_for(len(clashing), 'carry')} more than one label "
            f"({plural(len(rows), 'row')}, {rows_of(rows)}): {shown}; label noise, or the label "
            "depends on more than the text",
            column, float(len(clashing)),
            "check those labels; no model can get all of them right"))
    return findings


def split_leak(column: str, texts: list[str], norm: list[str], splits: Splits,
               held_out: list[str] | None = None, rows_of: Rows = rows_text) -> list[Finding]:
    """Validation and test texts equal to a text of an earlier split (and --test file texts
    equal to a training or validation text), empty texts aside. An error when the share can
    move the metrics by more than their sampling noise (checks/rows.py's split_leakage rule)."""
    keys = np.asarray(norm, dtype=object)
    train = set(keys[splits.train]) - {""}
    earlier = train | set(keys[splits.val]) - {""}
    leaked = [int(i) for i in splits.val if keys[i] in train]
    leaked += [int(i) for i in splits.test if keys[i] in earlier]
    held_norm = [normalise(t) for t in held_out] if held_out is not None else []
    in_file = [i for i, k in enumerate(held_norm) if k and k in earlier]
    n_eval = len(splits.val) + len(splits.test) + len(held_norm)
    n_leaked = len(leaked) + len(in_file)
    if not n_leaked or not n_eval:
        return []
    share = n_leaked / n_eval
    threshold = max(0.01, 0.5 / math.sqrt(n_eval))
    severity = "error" if share >= threshold else "warning"
    where = []
    if leaked:
        where.append(f"{rows_of(np.sort(leaked))}: {examples(texts, sorted(leaked))}")
    if in_file:
        where.append(f"{plural(len(in_file), 'text')} of the --test file: {examples(held_out, in_file)}")
    return [Finding(
        "split_leak", severity,
        f"{n_leaked} of the {n_eval} validation/test texts of {column!r} ({share:.1%}) "
        f"{verb_for(n_leaked, 'have')} a copy in an earlier split, after normalising case and spaces "
        f"({'; '.join(where)}): the model is evaluated on texts it trained on, so early stopping "
        "and the test metrics are too optimistic"
        + ("" if severity == "error" else
           f"; below {threshold:.1%}, within the metrics' sampling noise, hence a warning"),
        column, float(n_leaked),
        "drop repeated texts before training, or keep all copies of a text in one split")]


def long_texts(column: str, texts: list[str], max_length: int | None = None,
               rows_of: Rows = rows_text) -> list[Finding]:
    """Texts far longer than the rest, in words (split on white space), and the share of texts
    that will be truncated: over --max-length words (a lower bound: a word is at least one
    token), or with the default length (the 95th percentile of the training texts' tokens,
    capped at 512) about 5% and every text over 512 words."""
    words = np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
    if not len(words) or words.max() == 0:
        return []
    p99 = float(np.percentile(words, 99))
    limit = min(LONG_FACTOR * max(p99, 1.0), LONG_WORDS)
    far = np.flatnonzero(words > limit)
    if not len(far):
        return []
    if max_length:
        truncated, how = float((words > max_length).mean()), f"--max-length {max_length}: at least"
    else:
        truncated = max(0.05, float((words > 512).mean()))
        how = "the default length (the 95th percentile of the training tokens, at most 512): about"
    longest = far[np.argsort(-words[far], kind="stable")]
    return [Finding(
        "long_texts", "warning",
        f"{plural(len(far), 'text')} of {column!r} {verb_for(len(far), 'are')} far longer than the rest: over "
        f"{limit:,.0f} words ({LONG_FACTOR}× the 99th percentile of {p99:,.0f} words, at most {LONG_WORDS:,}), the "
        f"longest {words[longest[0]]:,} words ({rows_of(longest)}: {examples(texts, longest)}); with "
        f"{how} {truncated:.1%} of the texts will be truncated",
        column, float(len(far)),
        "look at them: a merged or scraped document, markup, or a log often lands in a text column; "
        "split, clean or drop them (the model reads only the first tokens of each text)")]


def label_words(column: str, texts: list[str], labels: np.ndarray, *, seed: int = 0) -> list[Finding]:
    """Words (lower-cased, WORD) whose presence alone gives one class of the training `texts`
    (the module docstring's thresholds), counted with scikit-learn's CountVectorizer; at most
    LEAK_ROWS texts (a sample) are read."""
    n = len(texts)
    if n < LEAK_MIN_TEXTS:
        return []
    if n > LEAK_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(n, LEAK_ROWS, replace=False))
        texts, labels, n = [texts[i] for i in rows], labels[rows], LEAK_ROWS
    from sklearn.feature_extraction.text import CountVectorizer

    classes, codes = np.unique(labels, return_inverse=True)
    sizes = np.bincount(codes, minlength=len(classes))
    wanted = np.minimum(LEAK_SHARE * n, LEAK_CLASS_SHARE * sizes)  # texts with the word, per class
    vectorizer = CountVectorizer(binary=True, lowercase=True, token_pattern=WORD,
                                 min_df=max(LEAK_MIN_TEXTS, math.ceil(wanted.min())))
    try:
        present = vectorizer.fit_transform(texts)  # [n, V] 0/1
    except ValueError:  # no word is in that many texts
        return []
    onehot = np.zeros((n, len(classes)))
    onehot[np.arange(n), codes] = 1.0
    counts = np.asarray(present.T @ onehot)  # [V, C]: texts with the word, per class
    total = counts.sum(axis=1)
    best = counts.argmax(axis=1)
    precision = counts[np.arange(len(total)), best] / np.maximum(total, 1)
    # … and far above the class's own share, so that a common word of a class of 99.5% of the
    # texts is no leak: it must err at most a tenth as often as answering that class always
    base = sizes[best] / n
    hit = np.flatnonzero((precision >= LEAK_PRECISION) & (total >= LEAK_MIN_TEXTS)
                         & (total >= wanted[best]) & (1 - precision <= (1 - base) / LEAK_LIFT))
    hit = hit[np.lexsort((-total[hit], -precision[hit]))][:LEAK_WORDS]
    vocabulary = vectorizer.get_feature_names_out()
    findings = []
    for v in hit:
        word, label = str(vocabulary[v]), str(classes[best[v]])
        own = word in re.findall(WORD, str(label).lower())
        n_word, n_class = int(total[v]), int(counts[v, best[v]])
        findings.append(Finding(
            "label_word", "error" if own else "warning",
            f"the word {word!r} is in {n_word} of the {n} training texts of {column!r}, and "
            f"{n_class} of them ({precision[v]:.1%}) are of class {label!r} ({n_class} of its "
            f"{int(sizes[best[v]])} texts; {around(texts, present[:, v].nonzero()[0], word)}): "
            + ("the label written into the text, a leak the model will learn instead of the text"
               if own else "one word that alone gives the label away: a leak (a tag, a template, "
               "a signature) or a keyword task"),
            f"{column}: {word}", float(n_word),
            (f"remove the word {word!r} from the texts (the label left in them), or --force if it is "
             "truly there when predicting") if own else
            (f"check where {word!r} comes from; if it is truly in the texts to predict, TF-IDF with "
             "logistic regression (deepfit compare) may be all this needs")))
    return findings


# ------------------------------------------------------------------------------ fitted
def unknown_tokens(pre: Any, held_out: dict[str, Any]) -> list[Finding]:
    """The share of the held-out texts' tokens (split name → DataFrame) unknown to the fitted
    TextPreprocessor's tokenizer, beside the training split's: a warning above 5% and twice the
    training share (the preprocessor's own rule when it transforms), else an info."""
    if pre.tokenizer is None or tokens.unknown_id(pre.tokenizer) is None:
        return []
    findings = []
    for column in pre.text_columns:
        parts, unknown, total, seen = [], 0, 0, []
        for split, X in held_out.items():
            if X is None or not len(X) or column not in getattr(X, "columns", []):
                continue
            texts = as_texts(X[column])
            seen += texts[: UNKNOWN_SAMPLE - len(seen)]
            _, counts = tokens.encode(pre.tokenizer, texts, pre.length)
            unknown, total = unknown + counts["unknown"], total + counts["tokens"]
            parts.append(f"{split} {counts['unknown'] / max(counts['tokens'], 1):.1%}")
        if not total:
            continue
        share = unknown / total
        high = share > max(0.05, 2 * pre.unknown_share)
        words = unknown_words(pre.tokenizer, seen) if unknown else []
        findings.append(Finding(
            "unknown_tokens", "warning" if high else "info",
            f"{share:.1%} of the validation/test tokens of {column!r} ({unknown:,} of {total:,}; "
            f"{', '.join(parts)}) are unknown to the tokenizer trained on the training split "
            f"(which has {pre.unknown_share:.1%} on its own texts)"
            + ("; the model sees [UNK] for them" if high else "")
            + (f"; the most frequent: {', '.join(map(repr, words))}" if words else ""),
            column, float(share),
            "train on texts of the same language and script as those to predict, or raise "
            "--vocab-size" if high else ""))
    return findings


def unknown_words(tokenizer: Any, texts: list[str], limit: int = EXAMPLES + 2) -> list[str]:
    """The pieces of `texts` the tokenizer reads as its unknown token, most frequent first (by
    the encodings' character offsets into each text)."""
    from collections import Counter

    unk = tokens.unknown_id(tokenizer)
    if unk is None or not texts:
        return []
    tokenizer.no_truncation()
    tokenizer.no_padding()
    found: Counter[str] = Counter()
    for text, encoding in zip(texts, tokenizer.encode_batch(texts)):
        found.update(shorten(text[a:b], 20) for i, (a, b) in zip(encoding.ids, encoding.offsets) if i == unk)
    return [word for word, _ in found.most_common(limit)]
