"""The command line's one console, and how its tables are printed.

On a terminal: rich's console, at the terminal's width; a table's column may wrap, at spaces,
but shrinks no narrower than its longest word, so no word is broken ("malignan t") or cut
("gradi…"); only a terminal too narrow for that folds a long word rather than cut it.
Piped or redirected (`| cat`, `> log`, a scheduler's log): as wide as any line, so nothing
wraps or is cut; every row is one line, every cell whole.
"""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

PIPED_WIDTH = 100_000  # characters: no table or line deepfit prints comes near it


def make_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


def print_table(console: Console, table: Table) -> None:
    if console.is_terminal:
        _keep_words_whole(console, table)
    else:
        table.expand = False  # the table's own width, not PIPED_WIDTH's
        for column in table.columns:  # the width leaves room: no cell is cut
            column.no_wrap = True
    console.print(table)


def _keep_words_whole(console: Console, table: Table) -> None:
    """Each column no narrower than its longest word, when the table fits the terminal so; else
    (a terminal too narrow for even that) long words fold onto the next line rather than being
    cut with "…" or the last columns dropped."""
    options = console.options
    unbounded = options.update_width(PIPED_WIDTH)  # rich's measurements stop at the width given
    before = [column.min_width for column in table.columns]
    for column in table.columns:
        longest = max(Measurement.get(console, unbounded, cell).minimum
                      for cell in (column.header, *column.cells))
        column.min_width = max(column.min_width or 0, longest)
    if Measurement.get(console, unbounded, table).minimum > options.max_width:
        for column, width in zip(table.columns, before):
            column.min_width, column.no_wrap, column.overflow = width, False, "fold"
