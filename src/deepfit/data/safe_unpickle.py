"""A restricted unpickler for the few pickled data files deepfit reads (CIFAR's python batches).

Plain `pickle.load` runs whatever a file names; this one resolves only the globals that a pickle
of dicts, lists, numbers, text, bytes and numeric numpy arrays needs, and refuses any other one
before it is imported or called, so a planted file runs nothing.
"""

from __future__ import annotations

import _codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from deepfit.errors import DataFormatError, UnsafeFileError

_LATIN1 = ("latin1", "latin-1", "iso-8859-1", "iso8859-1")


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's array reconstructor, for plain ndarrays only."""
    if subtype is not np.ndarray:
        raise UnsafeFileError("it reconstructs an array of another type than numpy.ndarray")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(*args: Any) -> np.dtype:
    """A numpy dtype, numeric or text only: object arrays would unpickle their elements."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafeFileError("it holds an array of Python objects, whose elements would be "
                              "unpickled")
    return dtype


def _encode(text: str, encoding: str = "utf-8") -> bytes:
    """How protocol 2 writes bytes: _codecs.encode(text, 'latin1'); no other codec is looked up."""
    if not isinstance(text, str) or encoding.lower() not in _LATIN1:
        raise UnsafeFileError(f"it encodes text with codec {encoding!r} (only Latin-1 is "
                              "allowed)")
    return _codecs.encode(text, "latin1")


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 1 (CIFAR's files)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeFileError(f"it names {module}.{name}, which a data file never "
                                  "needs") from None


def safe_load(path: Path) -> Any:
    """The object pickled in `path` (Python 2 text read as Latin-1, as torchvision reads it),
    or UnsafeFileError for a pickle that names anything beyond plain data and numpy arrays."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return _Restricted(io.BytesIO(raw), encoding="latin1").load()
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"{path} is refused, nothing in it was run: {exc}") from None
    except Exception as exc:  # a truncated or malformed pickle raises many types
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise DataFormatError(f"{path} is not a readable pickle of data ({text[:200]})") from None
