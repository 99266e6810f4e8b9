"""Counts in messages with the right plural (core/words.py), and no "(s)" left in a message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deepfit.core.words import noun_for, plural, verb_for


@pytest.mark.parametrize("args, expected", [
    ((1, "row"), "1 row"), ((0, "row"), "0 rows"), ((1200, "row"), "1,200 rows"),
    ((1, "column", "have"), "1 column has"), ((3, "column", "hold"), "3 columns hold"),
    ((1, "image", "carry"), "1 image carries"), ((2, "class", "have"), "2 classes have"),
    ((2, "epoch"), "2 epochs"), ((2, "query"), "2 queries"), ((2, "day"), "2 days"),
    ((1, "missing or infinite value"), "1 missing or infinite value"),
    ((4, "unreadable image file"), "4 unreadable image files"), ((2.0, "step"), "2 steps"),
    ((None, "step"), "None steps"),
])
def test_plural(args, expected):
    assert plural(*args) == expected


def test_noun_and_verb_alone():
    assert (noun_for(1, "column"), noun_for(2, "class")) == ("column", "classes")
    assert (verb_for(1, "are"), verb_for(1, "repeat"), verb_for(3, "are")) == ("is", "repeats", "are")


def test_no_message_says_s_in_parentheses():
    """Every count in a message goes through plural(): no "row(s)" or "class(es)" in a string."""
    src = Path(__file__).parents[1] / "src" / "deepfit"
    found = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"""["'].*\b(?!str\(|int\()[a-z]+\((s|es)\)""", line)
             and not line.lstrip().startswith(("#", '"""'))]
    assert not found, found
