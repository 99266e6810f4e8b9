"""Whether a folder's decoded images are cached in memory or streamed from disk: the cache may
take CACHE_SHARE of the available memory (or --cache-limit-mb, or $DEEPFIT_CACHE_LIMIT_MB);
a folder over it is streamed, unless --loader says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from deepfit.core.memory import available_memory
from deepfit.core.notes import Notes
from deepfit.errors import DataFormatError, DataTooLargeError

CACHE_SHARE = 0.05  # the uint8 cache may take this share of the available memory by default
CACHE_ENV = "DEEPFIT_CACHE_LIMIT_MB"


def stream_folder(nbytes: int, loader: str, cache_limit_mb: float | None, path: Path,
                  notes: Notes) -> bool:
    """Whether to stream the folder rather than cache it (the rule of modalities/image/files.py's docstring)."""
    budget, why = cache_budget(cache_limit_mb)
    size = f"{mb(nbytes)} decoded"
    if loader == "memory" and nbytes > budget:
        raise DataTooLargeError(
            f"{path}: --loader memory, but its images take {size}, over the cache limit of "
            f"{mb(budget)} ({why}); use --loader auto or stream, a smaller "
            "--image-size, or a larger --cache-limit-mb")
    if loader == "stream":
        notes.decide(f"{path.name}: streamed from disk, decoded batch by batch in the DataLoader's "
                     "workers (--loader stream)")
        return True
    if nbytes > budget:
        notes.decide(f"{path.name}: streamed from disk, decoded batch by batch in the DataLoader's "
                     f"workers: its images take {size}, over the cache limit of "
                     f"{mb(budget)} ({why})")
        return True
    notes.decide(f"{path.name}: decoded once into memory ({size}; cache limit "
                 f"{mb(budget)}, {why})")
    return False


def cache_budget(cache_limit_mb: float | None) -> tuple[float, str]:
    """(bytes the uint8 cache may take, where that limit comes from)."""
    if cache_limit_mb is not None:
        return float(cache_limit_mb) * 2**20, "--cache-limit-mb"
    env = os.environ.get(CACHE_ENV)
    if env:
        try:
            return float(env) * 2**20, CACHE_ENV
        except ValueError:
            raise DataFormatError(f"{CACHE_ENV} must be a number of MB, not {env!r}") from None
    return CACHE_SHARE * available_memory(), f"{CACHE_SHARE:.0%} of the available memory"


def mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:.3g} MB"
