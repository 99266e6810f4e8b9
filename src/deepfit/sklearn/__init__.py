"""scikit-learn estimators over deepfit's training: `DeepClassifier` and `DeepRegressor`
(Pipeline, GridSearchCV, cross_val_score, clone and pickle work with them), and `load`, which
gives back an estimator saved with `est.save(RUN_DIR)` (or any classification or regression
run directory of a table).

    from deepfit.sklearn import DeepClassifier
    clf = DeepClassifier(epochs=30).fit(X_train, y_train)
    clf.predict_proba(X_test)          # [N, n_classes], columns in clf.classes_ order
"""

from deepfit.sklearn.base import DeepfitWarning
from deepfit.sklearn.estimators import DeepClassifier, DeepRegressor
from deepfit.sklearn.persist import load

__all__ = ["DeepClassifier", "DeepRegressor", "DeepfitWarning", "load"]
