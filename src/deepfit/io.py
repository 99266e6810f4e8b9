"""The run directory and safe, atomic file I/O.

Every file is written to a temporary file in the same directory, flushed, fsynced and renamed
over the target, so a reader sees the old file or the new one, never half of one. Weights are
safetensors with their SHA-256 recorded; metadata is JSON. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from deepfit.errors import IntegrityError, RunDirError, SettingsError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path: Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path.parent} is not a deepfit run: {path.name} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is damaged ({exc})") from None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy and torch scalars
        return obj.item()
    if isinstance(obj, (Path, tuple, set)):
        return str(obj) if isinstance(obj, Path) else list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_weights(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write tensors as safetensors, atomically; return the file's SHA-256."""
    data = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def load_weights(path: Path, sha256: str | None) -> dict[str, torch.Tensor]:
    """Read a safetensors file, checking it against its recorded SHA-256 first."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path.parent} is incomplete: {path.name} is missing")
    data = path.read_bytes()
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise IntegrityError(
            f"{path} does not match the checksum recorded when it was saved: "
            "it was truncated or altered; refusing to load it"
        )
    try:
        return st_load(data)
    except (SafetensorError, Exception) as exc:
        raise IntegrityError(f"{path} is not a readable safetensors file ({exc})") from None


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{name}-{stamp}"
    n = 2
    while path.exists():
        path, n = root / f"{name}-{stamp}-{n}", n + 1
    return path


@contextlib.contextmanager
def new_run_dir(path: Path) -> Iterator[Path]:
    """Create a run directory; if the body fails, remove it so nothing half-written is left."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SettingsError(f"{path} already exists and is not empty; choose another --out")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        else:
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
