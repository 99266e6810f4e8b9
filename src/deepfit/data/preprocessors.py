"""Preprocessors by modality, behind one interface, so new kinds of data plug in by name.

A preprocessor has `fit(X_train, notes)`, `transform(X, notes) -> np.ndarray`, `input_spec()`
(the keyword arguments of models.InputSpec), `to_dict()` / `from_dict()` (plain JSON, saved with
the model, carrying its `kind`), and `columns` (the input's named parts, for messages).
Tabular data (a DataFrame) → data.preprocess.Preprocessor. Image and sequence arrays register
their own here.
"""

from __future__ import annotations

from typing import Any

from deepfit.data.preprocess import Preprocessor
from deepfit.data.sequences import SequencePreprocessor

PREPROCESSORS: dict[str, type] = {"tabular": Preprocessor}


def register_preprocessor(modality: str, cls: type) -> type:
    PREPROCESSORS[modality] = cls
    return cls


def create_preprocessor(modality: str) -> Any:
    return PREPROCESSORS[modality]()


def preprocessor_to_dict(pre: Any) -> dict[str, Any]:
    modality = next(m for m, cls in PREPROCESSORS.items() if isinstance(pre, cls))
    return {"kind": modality, **pre.to_dict()}


def preprocessor_from_dict(d: dict[str, Any]) -> Any:
    d = dict(d)
    return PREPROCESSORS[d.pop("kind", "tabular")].from_dict(d)


register_preprocessor("sequence", SequencePreprocessor)
