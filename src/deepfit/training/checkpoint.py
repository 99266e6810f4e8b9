"""Checkpoint files: one safetensors file per checkpoint holding every tensor, with the rest of
the state as JSON in its header, and a completeness marker written after it.

    checkpoints/last-000001234.safetensors   the model, optimizer, RNG, callback tensors …
    checkpoints/last-000001234.done          {"sha256": …}: written last; without it, no checkpoint

A checkpoint counts only once its marker is there and matches the file, so a write killed at any
moment leaves the previous checkpoint as the one resume picks. Two generations are kept. Nothing
here pickles: tensors go to safetensors, everything else to JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from deepfit.core.io import atomic_write_bytes, read_json, sha256_bytes, write_json

KEEP = 2
_NAME = re.compile(r"^(?P<kind>[a-z]+)-(?P<step>\d{9})\.safetensors$")


def split_tensors(tree: Any, tensors: dict[str, torch.Tensor], path: str = "t") -> Any:
    """A JSON-able copy of `tree` with each tensor moved into `tensors` under a path-like key."""
    if isinstance(tree, torch.Tensor):
        tensors[path] = tree.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree):
            return {k: split_tensors(v, tensors, f"{path}.{k}") for k, v in tree.items()}
        return {"__items__": [[k, split_tensors(v, tensors, f"{path}.{k}")] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return [split_tensors(v, tensors, f"{path}.{i}") for i, v in enumerate(tree)]
    return tree


def join_tensors(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `split_tensors`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__items__"}:
            return {k: join_tensors(v, tensors) for k, v in tree["__items__"]}
        return {k: join_tensors(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_tensors(v, tensors) for v in tree]
    return tree


def save_checkpoint(directory: Path, kind: str, step: int, state: dict[str, Any]) -> Path:
    """Write a checkpoint of `state` (any tree of JSON values and tensors), then its marker."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    meta = split_tensors(state, tensors)
    data = st_save(tensors, metadata={"deepfit": json.dumps(meta)})
    path = directory / f"{kind}-{step:09d}.safetensors"
    atomic_write_bytes(path, data)
    write_json(path.with_suffix(".done"), {"file": path.name, "sha256": sha256_bytes(data)})
    _prune(directory, kind)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    marker = read_json(path.with_suffix(".done"))
    if not isinstance(marker, dict):
        raise TypeError("the marker holds no JSON object")
    if sha256_bytes(data) != marker["sha256"]:
        raise ChecksumMismatch(f"{path} does not match its completeness marker")
    tensors = st_load(data)
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["deepfit"])
    return join_tensors(meta, tensors)


def complete_checkpoints(directory: Path, kind: str) -> list[Path]:
    """Checkpoints of `kind` whose marker is there, newest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if (m := _NAME.match(p.name)) and m["kind"] == kind]
    return sorted((p for p in found if p.with_suffix(".done").exists()), reverse=True)


def latest_checkpoint(directory: Path, kind: str = "last") -> dict[str, Any] | None:
    """The newest complete checkpoint that reads back intact, or None."""
    return usable_checkpoint(directory, kind)[0]


def usable_checkpoint(directory: Path, kind: str = "last") -> tuple[dict[str, Any] | None, list[str]]:
    """(the newest complete checkpoint of `kind` that reads back intact, or None; why each newer
    complete one was skipped, "NAME: reason", newest first). A checkpoint whose marker is
    missing is not complete (its write was killed) and is not listed: it never counted."""
    problems = []
    for path in complete_checkpoints(directory, kind):
        try:
            return load_checkpoint(path), problems
        except Exception as exc:  # a damaged file: fall back to the generation before it
            problems.append(f"{path.name}: {_damage(path, exc)}")
    return None, problems


def _damage(path: Path, exc: Exception) -> str:
    if isinstance(exc, ChecksumMismatch):
        return "its checksum does not match its completeness marker (truncated or altered)"
    if isinstance(exc, (KeyError, TypeError, json.JSONDecodeError)):
        return f"its marker or header is malformed ({type(exc).__name__}: {exc})"
    return f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


class ChecksumMismatch(ValueError):
    """A checkpoint file whose SHA-256 is not the one its marker recorded."""


def remove_stray_files(directory: Path) -> list[str]:
    """Delete temporary files of killed writes and checkpoints that never got their marker."""
    removed = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        incomplete = _NAME.match(path.name) and not path.with_suffix(".done").exists()
        if (path.name.startswith(".") and path.name.endswith(".tmp")) or incomplete:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _prune(directory: Path, kind: str) -> None:
    for old in complete_checkpoints(directory, kind)[KEEP:]:
        old.with_suffix(".done").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
