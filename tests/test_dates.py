"""Dates are features, the same way from every format (issue 23, item 2): a text column of dates
in one format and a datetime64 column (Parquet, a DataFrame, tz-aware) expand alike into year,
month, day, day of week, day of year, elapsed days (and hour/minute), fitted on the training split,
saved with the model and applied at predict; plain numbers are never dates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deepfit
from deepfit.core.notes import Notes
from deepfit.lifecycle.directory import predict
from deepfit.modalities import load_source
from deepfit.modalities.tabular.dates import date_format
from deepfit.modalities.tabular.preprocess import Preprocessor
from deepfit.tools.check import check

pytestmark = pytest.mark.usefixtures("one_thread")


def _dates(n: int, seed: int = 0) -> pd.Series:
    """n dates over three years (datetime64), seeded."""
    days = np.random.default_rng(seed).integers(0, 3 * 365, n)
    return pd.Series(pd.Timestamp("2021-01-01") + pd.to_timedelta(days, "D"), name="when")


def _month_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A label decided by the month of `when` alone (summer or not), plus a noise column."""
    when = _dates(n, seed)
    noise = np.random.default_rng(seed + 1).normal(size=n)
    label = np.where(when.dt.month.between(5, 9), "summer", "other")
    return pd.DataFrame({"when": when, "noise": noise, "label": label})


def _fit(X: pd.DataFrame) -> tuple[Preprocessor, Notes]:
    notes = Notes(live=False)
    return Preprocessor().fit(X, notes), notes


# ----------------------------------------------------------------------------- reading
def test_csv_parquet_and_dataframe_give_the_same_features(tmp_path):
    frame = _month_frame(60)
    frame.loc[[3, 7], "when"] = pd.NaT
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    as_category = frame.assign(when=frame["when"].dt.strftime("%Y-%m-%d").astype("category"))
    features = []
    for source in (str(tmp_path / "d.csv"), str(tmp_path / "d.parquet"), frame, as_category):
        data = load_source(source, target="label")
        pre, notes = _fit(data.X)
        assert [d.name for d in pre.dates] == ["when"] and not pre.categorical
        features.append(pre.transform(data.X))
    np.testing.assert_array_equal(features[0], features[1])
    np.testing.assert_array_equal(features[0], features[2])
    np.testing.assert_array_equal(features[0], features[3])
    assert any("'when' read as dates (format ISO8601)" in d for d in notes.decisions) or \
        any("'when' holds datetimes" in d for d in notes.decisions)


def test_parts_of_known_dates_are_right():
    X = pd.DataFrame({"when": ["2024-01-31", "2023-07-04", "2020-02-29"]})
    pre, notes = _fit(X)
    parts = pre.transform(X)[:, :6] * [c.std for c in pre.numeric] + [c.mean for c in pre.numeric]
    np.testing.assert_allclose(parts, [[2024, 1, 31, 2, 31, 1432],  # a Wednesday
                                       [2023, 7, 4, 1, 185, 1221],  # a Tuesday
                                       [2020, 2, 29, 5, 60, 0]], atol=1e-3)  # a Saturday
    assert pre.dates[0].reference.startswith("2020-02-29")
    assert "expanded into year, month, day, day of week, day of year, elapsed days" in notes.decisions[0]


def test_time_of_day_adds_hour_and_minute_and_tz_is_utc():
    X = pd.DataFrame({"when": pd.to_datetime(["2024-03-01 10:30", "2024-03-02 23:05"])
                      .tz_localize("Europe/Paris")})
    pre, notes = _fit(X)
    assert pre.dates[0].parts[-2:] == ["hour", "minute"]
    hours = pre.transform(X)[:, 6] * pre.numeric[6].std + pre.numeric[6].mean
    np.testing.assert_allclose(hours, [9, 22], atol=1e-4)  # 10:30 and 23:05 in Paris, in UTC
    assert "converted to UTC" in notes.decisions[0]
    text = pd.DataFrame({"when": ["2024-03-01T10:30:00+01:00", "2024-03-02T23:05:00+01:00"]})
    np.testing.assert_array_equal(pre.transform(text), pre.transform(X))


def test_a_missing_date_gets_one_indicator():
    X = pd.DataFrame({"when": ["2024-01-01", "", None, "2024-02-01", "2024-03-01"]})
    pre, _notes = _fit(X)
    out = pre.transform(X)
    assert sum(c.indicator for c in pre.numeric) == 1
    np.testing.assert_array_equal(out[:, -1], [0, 1, 1, 0, 0])
    assert np.isfinite(out).all()
    new = pre.transform(pd.DataFrame({"when": [pd.NaT, pd.Timestamp("2024-02-01")]}))
    np.testing.assert_array_equal(new, out[[1, 3]])


def test_day_first_format_is_inferred_from_the_whole_column():
    X = pd.DataFrame({"when": ["01/02/2024", "03/04/2024", "25/12/2023"]})
    pre, _notes = _fit(X)
    assert pre.dates[0].format == "%d/%m/%Y"
    months = pre.transform(X)[:, 1] * pre.numeric[1].std + pre.numeric[1].mean
    np.testing.assert_allclose(months, [2, 4, 12], atol=1e-4)
    # the saved format reads a new file even where its values alone would read month first
    saved = Preprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(saved.transform(X.iloc[:2]), pre.transform(X)[:2])
    assert date_format(pd.Series(["01/02/2024", "03/04/2024"])) == ("%m/%d/%Y", True)


@pytest.mark.parametrize("values", [
    [20240101, 20240102, 20231231], ["20240101", "20240102", "20231231"], ["2024", "2023", "2021"],
    [1.5, 2.5, 3.5], ["a1", "b2", "c3"], ["12:30", "13:45", "08:00"], ["1.2.3", "2.0.1", "3.1.4"]])
def test_numbers_and_other_text_are_not_dates(values):
    assert date_format(pd.Series(values)) is None
    pre, _ = _fit(pd.DataFrame({"x": values}))
    assert pre.dates == []


def test_bad_date_at_predict_is_named():
    pre, _ = _fit(pd.DataFrame({"when": ["2024-01-01", "2024-02-01"]}))
    with pytest.raises(deepfit.errors.PredictInputError, match="'when' should hold dates.*'soon'"):
        pre.transform(pd.DataFrame({"when": ["2024-01-05", "soon"]}))


# ----------------------------------------------------------------------------- training
def test_month_is_learnt_and_predict_on_csv_text_matches_parquet(tmp_path, fast):
    frame = _month_frame()
    frame.to_parquet(tmp_path / "train.parquet")
    run = deepfit.train(str(tmp_path / "train.parquet"), target="label", seed=0,
                        out=tmp_path / "run", **fast)
    assert run.metrics["accuracy"] >= 0.9, run.metrics
    assert any("'when' holds datetimes" in d for d in run.notes.decisions)
    new = _month_frame(50, seed=5)
    new.to_parquet(tmp_path / "new.parquet")
    new.assign(when=new["when"].dt.strftime("%Y-%m-%d")).to_csv(tmp_path / "new.csv", index=False)
    from_parquet = predict(run.path, str(tmp_path / "new.parquet"))
    from_csv = predict(run.path, str(tmp_path / "new.csv"))
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    assert (from_csv.iloc[:, 0].to_numpy() == new["label"].to_numpy()).mean() >= 0.9


def test_check_reports_the_date_columns(tmp_path):
    frame = _month_frame(200)
    frame.assign(when=frame["when"].dt.strftime("%d/%m/%Y")).to_csv(tmp_path / "d.csv", index=False)
    findings = check(str(tmp_path / "d.csv"), target="label")
    dates = [f for f in findings if f.check == "dates"]
    assert len(dates) == 1 and dates[0].severity == "info" and dates[0].subject == "when"
    assert "expanded into numeric features" in dates[0].message and "%d/%m/%Y" in dates[0].message
    assert not [f for f in findings if f.severity == "error"], findings


# ----------------------------------------------------------------------------- properties
FORMATS = {"iso": "%Y-%m-%d", "iso_time": "%Y-%m-%dT%H:%M:%S", "iso_space": "%Y-%m-%d %H:%M",
           "dmy": "%d/%m/%Y", "dmy_dots": "%d.%m.%Y"}


@settings(max_examples=40, deadline=None)
@given(days=st.lists(st.dates(dt.date(1950, 1, 1), dt.date(2080, 12, 31)), min_size=2, max_size=25),
       minutes=st.integers(0, 24 * 60 - 1), style=st.sampled_from(sorted(FORMATS)),
       blanks=st.integers(0, 2))
def test_generated_date_columns_expand_to_their_year_month_day(days, minutes, style, blanks):
    stamps = pd.Series(pd.to_datetime(days)) + pd.Timedelta(minutes=minutes if "time" in style
                                                             or "space" in style else 0)
    if style.startswith("dmy"):  # one day above 12, as a day-first file has somewhere
        stamps.iloc[0] = pd.Timestamp("2001-03-25")
    text = list(stamps.dt.strftime(FORMATS[style])) + [""] * blanks
    pre, _ = _fit(pd.DataFrame({"when": text}))
    assert [d.name for d in pre.dates] == ["when"]
    means, stds = (np.array([getattr(c, k) for c in pre.numeric[:3]]) for k in ("mean", "std"))
    parts = pre.transform(pd.DataFrame({"when": text}))[: len(stamps), :3] * stds + means
    expected = np.stack([stamps.dt.year, stamps.dt.month, stamps.dt.day], axis=1)
    np.testing.assert_allclose(parts, expected, atol=1e-6 * np.abs(expected).max() + 1e-3)


def test_the_whole_column_decides_the_format_for_a_split_that_alone_is_ambiguous():
    """Training rows whose days are all <= 12 read day first when another row of the file holds
    25/12/2023 (the loader's decision travels with the rows); alone they would read month first."""
    frame = pd.DataFrame({"when": ["01/02/2024", "03/04/2024", "05/06/2024", "25/12/2023"],
                          "y": [0, 1, 0, 1]})
    data = load_source(frame, target="y")
    train = data.X.iloc[[0, 1, 2]]
    pre = Preprocessor().fit(train, Notes(live=False))
    assert pre.dates[0].format == "%d/%m/%Y"
    alone = Preprocessor().fit(frame.drop(columns="y").iloc[[0, 1, 2]], Notes(live=False))
    assert alone.dates[0].format == "%m/%d/%Y"  # the negative control: the split alone
    months = pre.transform(train)[:, 1] * pre.numeric[1].std + pre.numeric[1].mean
    np.testing.assert_allclose(months, [2, 4, 6], rtol=1e-5)
