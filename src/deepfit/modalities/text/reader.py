"""The text readers: a table (CSV, Parquet, a DataFrame) with free-text columns, and a folder of
.txt files, one subfolder per class (or train/ val/ test/ each with them), like an image folder.

A table is read by the tabular reader first; its text columns are those named (--text-columns)
or found (modalities/text/detect.py), each noted with why. A table without any stays a table,
and --no-text (detection off) reads every string column as a category as before. Held-out data
(a --test file, data to evaluate on) are read as their table, the fitted preprocessor knowing
which columns are text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from deepfit.core.words import plural
from deepfit.data.common import names
from deepfit.data.dataset import Dataset, source_name
from deepfit.data.readers import ReadRequest
from deepfit.data.targets import labelled_target
from deepfit.errors import DataFormatError
from deepfit.modalities.image.layout import find_layout, part_rows
from deepfit.modalities.tabular.reader import read_tabular
from deepfit.modalities.text.detect import text_columns

MODALITY = "text"
TEXT_SUFFIXES = (".txt",)
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")  # tried in turn; latin-1 decodes any bytes
FOLDER_COLUMN = "text"


def _options(request: ReadRequest) -> dict[str, Any]:
    return dict(request.options.get("text") or {})


def read_text_table(request: ReadRequest) -> Dataset | None:
    """A table whose text columns make it text data, or the table as it is when it has none
    (so that the tabular reader need not read it again); None for a modality other than text
    asked for, or with detection off. Raises DataFormatError for a text column named that the
    table lacks, or text asked for (--modality text, a text model) and none found."""
    options = _options(request)
    if request.modality not in (None, MODALITY):
        return None
    if request.modality is None and (request.held_out or options.get("detect") is False):
        return None
    data = read_tabular(request)
    if request.held_out:
        data.modality = MODALITY
        return data
    named = list(options.get("columns") or [])
    notes = request.notes
    if named:
        absent = [c for c in named if c not in data.X.columns]
        if absent:
            raise DataFormatError(f"--text-columns names {', '.join(map(repr, absent))}, not a "
                                  f"feature column of {source_name(request.source)}; it has "
                                  f"{names(data.X.columns)}")
        found = {c: "named by --text-columns" for c in named}
    else:
        found = text_columns(data.X) if options.get("detect", True) else {}
    if not found:
        if request.modality == MODALITY:
            raise DataFormatError(f"no column of {source_name(request.source)} reads as free text "
                                  "(long, many-worded, mostly distinct values); name them with "
                                  "--text-columns")
        return data
    for name, why in found.items():
        data.X[name] = data.X[name].astype(object)  # the tabular reader made it a category
        notes.decide(f"column {name!r} read as text ({why})"
                     + ("; --no-text reads it as a category" if not named else ""))
    data.modality = MODALITY
    data.reading = {**(data.reading or {}), **options, "text_columns": list(found)}
    return data


def read_text_folder(request: ReadRequest) -> Dataset | None:
    """A folder whose class subfolders hold .txt files (more of them than images), as a
    Dataset of one column "text" and the class of each file; None for other sources. Each file
    is decoded as UTF-8 (a byte-order mark dropped), else cp1252, else latin-1 (noted)."""
    source = request.source
    if not isinstance(source, (str, Path)) or not Path(source).is_dir():
        return None
    if request.modality not in (None, MODALITY):
        return None
    path, notes = Path(source), request.notes
    files = [f for f in path.rglob("*") if f.is_file()]
    n_text = sum(f.suffix.lower() in TEXT_SUFFIXES for f in files)
    if n_text == 0 or n_text < len(files) - n_text - sum(f.name.startswith(".") for f in files):
        return None  # not mostly text files: an image folder, say
    layout = find_layout(path, TEXT_SUFFIXES, notes)
    if not layout.files:
        raise DataFormatError(f"{path} holds no .txt files in class subfolders; a text folder is "
                              "one subfolder of .txt files per class")
    texts, fallback = [], []
    for f, _, _ in layout.files:
        text, encoding = _decode(f.read_bytes())
        texts.append(text)
        if encoding != "utf-8-sig":
            fallback.append(f"{f.relative_to(path)} ({encoding})")
    if fallback:
        notes.warn(f"{plural(len(fallback), 'file')} not UTF-8, decoded as written: "
                   + ", ".join(fallback[:5]) + (" …" if len(fallback) > 5 else ""))
    notes.decide(f"{path.name}: {len(texts)} texts in {len(layout.classes)} classes (one folder each)")
    X = pd.DataFrame({FOLDER_COLUMN: texts})
    y = pd.Series([label for _, label, _ in layout.files], name="label")
    reading = {**_options(request), "text_columns": [FOLDER_COLUMN],
               "files": [str(f.relative_to(path)) for f, _, _ in layout.files]}
    if layout.folders:
        reading.update(splits=part_rows([part for _, _, part in layout.files]), folders=layout.folders)
    y, task = labelled_target(y, "label", request.task, notes, request.held_out)
    return Dataset(X, y, path.name, "label", task, modality=MODALITY, reading=reading)


def _decode(raw: bytes) -> tuple[str, str]:
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding).strip(), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")
