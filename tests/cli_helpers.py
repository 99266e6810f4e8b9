"""Helpers for the CLI's error contract, shared by the bad-input tests: exit code 2, one
`deepfit: error:` line naming the problem, no traceback, and no file written or removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepfit.cli import main


def binary_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Numbers a, b, a text column c and a yes/no label that depends on them."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    c = rng.choice(["x", "y", "z"], size=n)
    label = np.where(a + (c == "x") - 0.5 * b > 0.3, "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "c": c, "label": label})


def write_csv(tmp: Path, name: str, frame: pd.DataFrame, **kw) -> Path:
    path = tmp / name
    frame.to_csv(path, index=False, **kw)
    return path


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def expect_cli_error(argv: list[str], capsys, root: Path, *expected: str | Path) -> str:
    """Run the CLI in-process and check the error contract; return the error line. Each text in
    `expected` must be in the line; each Path must not exist afterwards."""
    before = files_under(root)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"stderr is not one line:\n{err}"
    assert lines[0].startswith("deepfit: error:"), err
    for item in expected:
        if isinstance(item, Path):
            assert not item.exists(), f"{item} was written"
        else:
            assert item in lines[0], lines[0]
    assert files_under(root) == before, "files appeared or vanished"
    return lines[0]
