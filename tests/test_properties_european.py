"""Property-based tests (issue 23): a CSV file written the European way (';' between fields,
decimal commas, thousands dots, maybe a space after each ';') reads to the same numbers, and
gives the same features, as the same table written with dots and commas."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepfit.core.notes import Notes
from deepfit.data.tables import read_table
from deepfit.modalities.tabular.preprocess import Preprocessor

EXAMPLES = int(os.environ.get("DEEPFIT_PROPERTY_EXAMPLES", "25"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@st.composite
def number_columns(draw) -> list[tuple[str, int, list[float | None]]]:
    """(name, decimals, values) for one to three columns; the first has decimals (so the file
    holds decimal commas), any may have a missing value; integers (0 decimals) may have thousands
    dots."""
    n = draw(st.integers(1, 25))
    columns = []
    for j in range(draw(st.integers(1, 3))):
        decimals = draw(st.integers(1, 3)) if j == 0 else draw(st.integers(0, 3))
        scale = draw(st.sampled_from([1, 1_000, 10_000_000]))
        values = draw(st.lists(st.one_of(st.integers(-scale * 1000, scale * 1000),
                                         st.none() if j else st.integers(0, 9)),
                               min_size=n, max_size=n))
        numbers = [None if v is None else v / 10**decimals for v in values]
        if j == 0 and all(v is None for v in numbers):
            numbers[0] = 0.5
        columns.append((f"n{j}", decimals, numbers))
    return columns


def _write(columns, words: list[str], european: bool, space: bool) -> str:
    sep = (";" + " " * space) if european else ","
    def cell(value, decimals):
        if value is None:
            return ""
        text = f"{value:,.{decimals}f}" if european else f"{value:.{decimals}f}"
        return text.translate(str.maketrans(",.", ".,")) if european else text
    header = [name for name, _, _ in columns] + ["word"]
    rows = [sep.join([cell(values[i], d) for _, d, values in columns] + [words[i % len(words)]])
            for i in range(len(columns[0][2]))]
    return "\n".join([sep.join(header), *rows]) + "\n"


@PROPERTY
@given(columns=number_columns(),
       words=st.lists(st.sampled_from(["rot", "grün", "blau"]), min_size=1), space=st.booleans())
def test_a_european_csv_reads_to_the_numbers_of_the_dot_csv(columns, words, space, tmp_path):
    dots, commas = tmp_path / "dots.csv", tmp_path / "commas.csv"
    dots.write_text(_write(columns, words, european=False, space=False), encoding="utf-8")
    commas.write_text(_write(columns, words, european=True, space=space), encoding="utf-8")
    expected, read = read_table(dots), read_table(commas, notes := Notes(live=False))
    assert list(read.columns) == list(expected.columns)
    for name, _, values in columns:
        assert read[name].dtype.kind in "if", (name, read[name].dtype)
        numbers = read[name].to_numpy(dtype=float)
        np.testing.assert_array_equal(numbers, expected[name].to_numpy(dtype=float))
        np.testing.assert_allclose(numbers, np.array(values, dtype=float), rtol=1e-12)
    assert read["word"].tolist() == expected["word"].tolist()
    assert any("written with a decimal comma" in d for d in notes.decisions)
    features = [Preprocessor().fit(frame, Notes(live=False)).transform(frame, Notes(live=False))
                for frame in (expected, read)]
    np.testing.assert_array_equal(features[0], features[1])
