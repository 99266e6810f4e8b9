"""deepfit.sklearn: scikit-learn's own conformance checks, and the estimators inside Pipeline,
GridSearchCV, cross_val_score (two processes), clone, pickle and a saved run directory."""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # so the array-API checks run, if scipy is not loaded yet

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import deepfit
from deepfit.sklearn import DeepClassifier, DeepfitWarning, DeepRegressor, load

pytestmark = pytest.mark.filterwarnings("ignore::deepfit.sklearn.DeepfitWarning")

SMALL = {"epochs": 10, "lr": 1e-2}


@pytest.mark.slow
@parametrize_with_checks([DeepClassifier(**SMALL), DeepRegressor(**SMALL)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:200], y[:200]


@pytest.fixture(scope="module")
def fitted(cancer):
    return DeepClassifier(epochs=8, random_state=1).fit(*cancer)


def test_predict_proba_rows_sum_to_one_in_classes_order(cancer):
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")  # sorted: benign first
    clf = DeepClassifier(epochs=8, random_state=1).fit(X, labels)
    proba = clf.predict_proba(X)
    assert list(clf.classes_) == ["benign", "malignant"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert accuracy_score(labels, clf.predict(X)) > 0.85
    assert clf.score(X, labels) == accuracy_score(labels, clf.predict(X))


def test_regressor_has_no_predict_proba_and_scores_r2():
    X, y = load_diabetes(return_X_y=True)
    reg = DeepRegressor(epochs=30, lr=1e-2).fit(X, y)
    assert not hasattr(reg, "predict_proba")
    assert reg.score(X, y) == pytest.approx(r2_score(y, reg.predict(X)))
    assert reg.score(X, y) > 0.3


def test_fitted_attributes_and_history(fitted, cancer):
    assert fitted.n_features_in_ == cancer[0].shape[1]
    assert not hasattr(fitted, "feature_names_in_")  # an array has no names
    assert len(fitted.history_) == fitted.run_.record["train"]["epochs_run"]
    assert {"train_loss", "val_loss", "lr"} <= set(fitted.history_[0])
    assert fitted.run_.path is None  # nothing written until save


def test_fit_writes_nothing_to_the_working_directory(tmp_path, monkeypatch, cancer):
    monkeypatch.chdir(tmp_path)
    DeepClassifier(epochs=2).fit(*cancer)
    assert list(tmp_path.iterdir()) == []


def test_audit_warnings_are_python_warnings(cancer):
    X, y = cancer
    X = np.column_stack([X, y])  # a planted target leak
    with pytest.warns(DeepfitWarning, match="target leak"):
        DeepClassifier(epochs=2).fit(X, y)


def test_clone_and_pickle_give_identical_predictions(fitted, cancer):
    X, y = cancer
    again = clone(fitted).fit(X, y)  # same parameters, same seed
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    assert clone(fitted).get_params() == fitted.get_params()
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert restored.history_ == fitted.history_


def test_saved_and_loaded_predicts_identically(fitted, cancer, tmp_path):
    X, _ = cancer
    path = fitted.save(tmp_path / "run")
    assert {"config.json", "model.safetensors", "model.json", "history.csv",
            "metrics.json"} <= {p.name for p in path.iterdir()}
    loaded = load(path)
    assert type(loaded) is DeepClassifier and loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    # a normal run directory: deepfit's own loader answers the same
    np.testing.assert_allclose(deepfit.load(path).predict_proba(X), fitted.predict_proba(X))


def test_dataframe_with_categories_and_missing_values(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"size": rng.normal(size=n), "colour": rng.choice(["red", "blue"], n)})
    frame.loc[::7, "size"] = np.nan
    y = rng.normal(size=n) + (frame["colour"] == "red") * 3
    reg = DeepRegressor(epochs=20, lr=1e-2).fit(frame, y)
    assert list(reg.feature_names_in_) == ["size", "colour"]
    assert reg.score(frame, y) > 0.5
    loaded = load(reg.save(tmp_path / "run"))
    np.testing.assert_array_equal(loaded.predict(frame), reg.predict(frame))


@pytest.mark.slow
def test_grid_search_in_a_pipeline_with_a_column_transformer():
    rng = np.random.default_rng(0)
    n = 160
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                          "kind": rng.choice(["x", "y", "z"], n)})
    y = ((frame["a"] + (frame["kind"] == "x")) > 0.5).astype(int).to_numpy()
    pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                             ("cat", OneHotEncoder(), ["kind"])])
    pipe = Pipeline([("pre", pre), ("net", DeepClassifier(epochs=5))])
    search = GridSearchCV(pipe, {"net__lr": [1e-3, 1e-2]}, cv=2).fit(frame, y)
    assert search.best_params_["net__lr"] in (1e-3, 1e-2)
    assert len(search.cv_results_["mean_test_score"]) == 2
    # the refitted best pipeline scores as its own predictions say
    assert search.score(frame, y) == accuracy_score(y, search.predict(frame))


@pytest.mark.slow
def test_cross_val_score_in_two_processes_matches_one(cancer):
    X, y = cancer
    est = DeepClassifier(epochs=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two = cross_val_score(est, X, y, cv=3, n_jobs=2)
        one = cross_val_score(est, X, y, cv=3, n_jobs=1)
    np.testing.assert_allclose(two, one)
    assert (two > 0.5).all()
