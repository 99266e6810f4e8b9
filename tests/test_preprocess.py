"""Preprocessing is fitted on the training rows alone, and round-trips through JSON exactly."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepfit.data.split import split_indices
from deepfit.data.targets import TargetEncoder
from deepfit.errors import DataFormatError, PredictInputError
from deepfit.modalities.tabular.preprocess import Preprocessor


def test_statistics_are_those_of_the_training_rows_alone(mixed_frame):
    splits = split_indices(mixed_frame["label"], "classification", 0.15, 0.15, seed=0)
    train = mixed_frame.iloc[splits.train]
    pre = Preprocessor().fit(train.drop(columns="label"))
    reference = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    reference.fit(train[["age", "income"]])
    ours = {c.name: c for c in pre.numeric}
    np.testing.assert_allclose(
        [ours["age"].median, ours["income"].median], reference[0].statistics_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        [ours["age"].mean, ours["income"].mean], reference[1].mean_, rtol=1e-12)
    np.testing.assert_allclose(
        [ours["age"].std, ours["income"].std], reference[1].scale_, rtol=1e-12)
    # and the transformed numbers equal scikit-learn's on every split
    every = mixed_frame.drop(columns="label")
    np.testing.assert_allclose(
        pre.transform(every)[:, :2], reference.transform(every[["age", "income"]]), atol=1e-5)
    # the statistics of all rows differ: the held-out rows did not leak in
    assert ours["age"].mean != pytest.approx(mixed_frame["age"].mean(), abs=1e-9)


def test_layout_missing_indicator_onehot_and_embedding(mixed_frame):
    pre = Preprocessor().fit(mixed_frame.drop(columns="label"))
    spec = pre.input_spec()
    city = next(c for c in pre.categorical if c.name == "city")
    shop = next(c for c in pre.categorical if c.name == "shop")
    assert city.encoding == "onehot" and "<missing>" in city.categories
    assert shop.encoding == "embedding" and shop.width == 31
    # age, income, age's missing indicator, city one-hot (3 cities + missing + unknown), shop index
    assert spec == {"n_features": 2 + 1 + 5 + 1, "n_dense": 8, "cardinalities": [31]}
    out = pre.transform(mixed_frame.drop(columns="label"))
    np.testing.assert_array_equal(out[:, 2], mixed_frame["age"].isna().to_numpy())
    assert (out[:, 3:8].sum(axis=1) == 1).all()
    assert set(np.unique(out[:, 8])) <= set(range(1, 31))


def test_unknown_categories_map_to_the_unknown_slot_with_a_warning(mixed_frame, caplog):
    pre = Preprocessor().fit(mixed_frame.drop(columns="label"))
    new = mixed_frame.drop(columns="label").head(3).copy()
    new["city"] = ["paris", "berlin", "rome"]
    new["shop"] = ["shop01", "shop99", "shop01"]
    with caplog.at_level(logging.WARNING, logger="deepfit"):
        out = pre.transform(new)
    assert "'berlin'" in caplog.text and "unknown slot" in caplog.text
    city_block = out[:, 3:8]
    assert city_block[1, 0] == 1.0 and city_block[2, 0] == 1.0  # slot 0 is 'unknown'
    assert out[1, 8] == 0.0 and out[0, 8] > 0


def test_json_round_trip_is_exact(mixed_frame):
    X = mixed_frame.drop(columns="label")
    pre = Preprocessor().fit(X)
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(pre.transform(X), again.transform(X))


def test_columns_are_matched_by_name(mixed_frame):
    X = mixed_frame.drop(columns="label")
    pre = Preprocessor().fit(X)
    shuffled = X[list(reversed(X.columns))].assign(extra=1.0)
    np.testing.assert_array_equal(pre.transform(X), pre.transform(shuffled))
    with pytest.raises(PredictInputError, match="missing column.*income"):
        pre.transform(X.drop(columns="income"))


def test_junk_in_a_numeric_column_is_named():
    pre = Preprocessor().fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    with pytest.raises(PredictInputError, match="'a'.*'abc'"):
        pre.transform(pd.DataFrame({"a": ["1", "abc", "2"]}))


def test_a_mostly_numeric_training_column_with_junk_is_named():
    values = [str(i) for i in range(50)] + ["n/a?"]
    with pytest.raises(DataFormatError, match="'a' mixes numbers"):
        Preprocessor().fit(pd.DataFrame({"a": values}))


def test_numbers_written_as_text_are_numbers():
    pre = Preprocessor().fit(pd.DataFrame({"a": ["1", "2", None, "4"]}))
    assert [c.name for c in pre.numeric] == ["a"] and pre.numeric[0].indicator


def test_infinite_values_are_treated_as_missing():
    pre = Preprocessor().fit(pd.DataFrame({"a": [1.0, np.inf, 3.0, 5.0]}))
    assert pre.numeric[0].median == 3.0 and pre.numeric[0].indicator
    out = pre.transform(pd.DataFrame({"a": [-np.inf]}))
    assert np.isfinite(out).all()


def test_target_encoder_classes_and_regression_scale():
    enc = TargetEncoder("classification").fit(pd.Series(["b", "a", "c", "a"]))
    assert enc.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(enc.transform(pd.Series(["c", "a"])), [2, 0])
    assert list(enc.inverse(np.array([1, 2]))) == ["b", "c"]
    with pytest.raises(PredictInputError, match="never saw: d"):
        enc.transform(pd.Series(["d"]))
    reg = TargetEncoder("regression").fit(pd.Series([1.0, 3.0]))
    np.testing.assert_allclose(reg.inverse(reg.transform(pd.Series([2.0, 5.0]))), [2.0, 5.0])


def test_a_constant_multi_step_target_is_encoded():
    """Found by the array property: a constant [N, H] target crashed the regression scaling."""
    enc = TargetEncoder("regression").fit(pd.DataFrame(np.zeros((5, 2))))
    assert enc.mean == 0.0 and enc.std == 1.0
