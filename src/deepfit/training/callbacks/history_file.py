"""history.csv kept up to date during training, so a long run can be watched (`tail -f`, a
notebook re-reading it): after every epoch one row is appended and flushed. The file is written
whole (atomically, core/io.py) when it is first made, when an epoch brings a column the header
lacks, and at the start of a fit from the state's history: a resumed run's file then holds each
epoch once, as the checkpoint it resumed from knew them. The run's final write (runs/directory.py)
is the file the report and resume read; this one only keeps it current. The values are the
epoch's logs, already on the host: nothing here touches the device.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from deepfit.core.io import write_text
from deepfit.errors import StorageError
from deepfit.training.callbacks.base import Callback


class HistoryFile(Callback):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.columns: list[str] = []

    def on_fit_start(self, trainer, state) -> None:
        if state.history:  # resumed: the checkpoint's epochs, each once
            self._rewrite(state.history)
        else:  # a fresh start (or a resume with no usable checkpoint): no rows yet
            self.columns = []
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot remove {self.path}: {exc.strerror or exc}") from exc

    def on_epoch_end(self, trainer, state, logs) -> None:
        # Last among the callbacks: the columns they add to the logs are in the row.
        if not self.columns or any(key not in self.columns for key in logs):
            self._rewrite(state.history)
            return
        try:
            with open(self.path, "a", encoding="utf-8", newline="") as f:
                f.write(_rows(self.columns, [logs]))
                f.flush()
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _rewrite(self, history: list[dict[str, Any]]) -> None:
        self.columns = list(dict.fromkeys(key for row in history for key in row))  # as pandas orders them
        write_text(self.path, _rows(self.columns, history, header=True))


def _rows(columns: list[str], rows: list[dict[str, Any]], header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(columns)
    writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """As pandas writes it: a missing value or NaN is an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value
