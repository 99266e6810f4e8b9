"""scikit-learn's bundled datasets, read from the files shipped with it (no download)."""

from __future__ import annotations

import pandas as pd

from deepfit.errors import UnknownDatasetError

_LOADERS = {  # names of sklearn.datasets loaders (imported when used: sklearn.datasets is slow)
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
}
# Datasets whose integer codes stand for named classes: the names are kept as labels.
_NAMED_CLASSES = ("breast_cancer", "wine", "iris")

BUILTIN_NAMES = tuple(_LOADERS)


def load_builtin(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and target of a bundled dataset; the target column is called 'target'."""
    if name not in _LOADERS:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}: not a file, and not one of the bundled datasets "
            f"({', '.join(BUILTIN_NAMES)}) or torchvision's (mnist, fashion-mnist, cifar10)"
        )
    from sklearn import datasets

    bunch = getattr(datasets, _LOADERS[name])(as_frame=True)
    X = bunch.data.copy()
    X.columns = [str(c) for c in X.columns]
    y = bunch.target.rename("target")
    if name in _NAMED_CLASSES:
        names = list(bunch.target_names)
        y = y.map(lambda code: str(names[int(code)])).astype(object).rename("target")
    return X, y
