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
import pickle
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from deepfit.errors import (
    DataFormatError,
    IntegrityError,
    RunDirError,
    SettingsError,
    SourceNotFoundError,
    StorageError,
    UnsafeFileError,
)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory (flushed, fsynced,
    renamed over `path`). Raises StorageError when the system refuses the write (disk full,
    quota, permission, read-only filesystem); the temporary file is removed and `path` keeps
    its previous content."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
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
    if path.is_symlink() and not path.exists():
        raise RunDirError(f"{path} is a broken symbolic link (or one that points to itself)")
    if not path.exists():
        raise RunDirError(f"{path.parent} is not a deepfit run: {path.name} is missing")
    if not path.is_file():  # a folder, a FIFO (reading one blocks), a device
        raise RunDirError(f"{path} is not a regular file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is damaged ({exc})") from None
    except RecursionError:
        raise RunDirError(f"{path} is damaged (nested too deeply to be a deepfit file)") from None
    except OSError as exc:
        raise RunDirError(f"{path} cannot be read ({exc.strerror or exc})") from None


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


FOREIGN_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def load_foreign_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """A state dict from a file deepfit did not write. safetensors is read as is; a pickle-based
    file only through `torch.load(weights_only=True)`, which refuses anything but tensors and
    plain containers: a file whose unpickling would run code is a named error, and nothing runs."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"no such weights file: {path}")
    if path.suffix == ".safetensors":
        return load_weights(path, sha256=None)
    if path.suffix not in FOREIGN_SUFFIXES:
        raise DataFormatError(f"{path}: weights must be .safetensors or one of {', '.join(FOREIGN_SUFFIXES)}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it calls {found[1]})" if found else ""
        raise UnsafeFileError(
            f"{path} would run code when unpickled{what}; refused, nothing was run. "
            "Convert it to safetensors where it came from"
        ) from None
    except Exception as exc:
        raise DataFormatError(f"{path} is not a readable weights file ({exc})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataFormatError(f"{path} holds no state dict of tensors")
    return state


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{name}-{stamp}"
    n = 2
    while path.exists():
        path, n = root / f"{name}-{stamp}-{n}", n + 1
    return path


@contextlib.contextmanager
def new_run_dir(path: Path, *, resuming: bool = False,
                keep_on: tuple[type[BaseException], ...] = (),
                drop_on: tuple[type[BaseException], ...] = (),
                resumable: Callable[[Path], bool] = lambda path: False) -> Iterator[Path]:
    """Create a run directory (or enter the one being resumed). If the body fails, a new
    directory is removed so nothing half-written is left, unless `resumable(path)` says it holds
    something to resume from (a complete checkpoint): then it is kept, whatever the failure
    (disk full, a signal, an error after training), and the failure is raised as it came. A
    failure of one of `keep_on` keeps it too (compare: the models finished before a signal);
    one of `drop_on` removes it even so (a training that failed for good: nothing to resume)."""
    path = Path(path)
    if resuming:
        yield path
        return
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SettingsError(f"{path} already exists and is not empty; choose another --out")
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the run directory {path}: {exc.strerror or exc}") from None
    try:
        yield path
    except keep_on:
        raise
    except BaseException as exc:
        if not isinstance(exc, drop_on) and resumable(path):
            raise
        if created:
            shutil.rmtree(path, ignore_errors=True)
        else:
            for child in path.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged_dir(path: Path, *, replaceable: Callable[[Path], bool] = lambda path: False) -> Iterator[Path]:
    """A folder written whole or not at all: the body fills a hidden folder beside `path`
    (`.NAME.staging-*`), renamed to `path` when the body succeeds and removed when it fails,
    so `path` never holds half of it. An existing `path` is replaced only when
    `replaceable(path)` says so (an earlier result of the same kind), else SettingsError;
    the old one is removed only once the new one is in place. Raises StorageError when the
    folder cannot be made or renamed."""
    path = Path(path)
    if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or replaceable(path))):
        raise SettingsError(f"{path} already exists and is not empty; choose another --out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.staging-", dir=path.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700, as a folder made by mkdir would be
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        yield staging
        old = path.with_name(f"{staging.name}-old") if path.exists() else None
        if old is not None:
            path.rename(old)
        try:
            staging.rename(path)
        except OSError:
            if old is not None:
                old.rename(path)  # the earlier one back in place
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_temporary_files(directory: Path) -> list[str]:
    """Delete the temporary files (`.NAME.*.tmp`) that writes killed mid-way left in
    `directory`; returns their names."""
    removed = []
    if Path(directory).is_dir():
        for child in Path(directory).iterdir():
            if child.name.startswith(".") and child.name.endswith(".tmp") and child.is_file():
                child.unlink(missing_ok=True)
                removed.append(child.name)
    return removed
