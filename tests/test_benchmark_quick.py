"""The benchmark script (benchmarks/run.py, issue 3) runs end to end in its quick mode and writes
a Markdown table with a positive throughput for deepfit, the hand-written loop and the
DataLoader loop."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
LABELS = ("deepfit Trainer", "hand-written loop", "DataLoader loop (guide)")


def test_quick_benchmark_writes_a_table(tmp_path: Path) -> None:
    out = tmp_path / "R.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "| contender | samples/s |" in text
    for label in LABELS:
        rows = [line for line in text.splitlines() if line.startswith(f"| {label} |")]
        assert rows, f"no row for {label}"
        samples_per_s = float(rows[0].split("|")[2].strip().replace(",", ""))
        assert samples_per_s > 0
    assert re.search(r"Machine: .+, \d+ cores", text)
