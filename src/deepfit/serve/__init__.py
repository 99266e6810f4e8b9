"""`deepfit serve`: trained runs behind an HTTP JSON service (FastAPI on uvicorn).

    app = deepfit.serve.app(["runs/x"])    a FastAPI app: POST /predict, GET /health, /models,
                                           OpenAPI docs at /docs (serve/service.py)

Importing this package loads nothing heavy: FastAPI is imported when an app is made
(core/extras.py names the `serve` extra when it is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def app(runs: str | Path | list[str | Path], *, max_rows: int = 1000, max_body_mb: float = 10.0,
        batch_rows: int = 256, batch_wait_ms: float = 2.0) -> Any:
    """A FastAPI app serving each run of `runs` (loaded once, checksums verified), its model id
    the run directory's name. `max_rows`: records per request (more: 422); `max_body_mb`: the
    request body limit, enforced before parsing (more: 413); concurrent requests are batched
    into one forward of up to `batch_rows` rows, waiting at most `batch_wait_ms` for company
    (serve/batcher.py). Raises MissingExtraError without FastAPI, SettingsError for two runs
    of one name, and what `deepfit.load` raises for a run that cannot be loaded."""
    from deepfit.serve.service import build_app

    paths = [runs] if isinstance(runs, (str, Path)) else list(runs)
    return build_app(paths, max_rows=max_rows, max_body_mb=max_body_mb, batch_rows=batch_rows,
                     batch_wait_ms=batch_wait_ms)


__all__ = ["app"]
