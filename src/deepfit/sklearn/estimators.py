"""DeepClassifier and DeepRegressor: scikit-learn estimators over deepfit's training."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets

from deepfit.sklearn.base import DeepEstimator

_DOC = """
    Parameters (stored as given; checked when `fit` runs, as scikit-learn asks):
      model         a registered model taking tables ("mlp", "resmlp"…); None: deepfit's default
      hidden, depth, width, dropout   the model's settings (None: the model's default)
      epochs        most epochs; early stopping (`patience` epochs without a better validation
                    loss) ends sooner and the best epoch's weights are restored
      batch_size, lr, weight_decay, schedule   AdamW's batches, learning rate, decoupled weight
                    decay, and the LR schedule ("plateau", "cosine", "onecycle", "none")
      val_size      the share of the rows given to `fit` held out for validation (seeded and
                    stratified); fewer rows than a split needs: validated on the training rows,
                    with a DeepfitWarning
      random_state  an int seed, a RandomState (one seed drawn from it), or None (seed 0: a
                    fit is repeatable by default)
      device        "auto", "cpu", "cuda" or "mps"
      verbose       0: silent; 1: the progress line of `deepfit train`

    Fitted attributes: n_features_in_, feature_names_in_ (a DataFrame's columns), history_ (one
    dict per epoch: losses, metrics, lr), run_ (deepfit.lifecycle.in_memory.Fitted: predictor,
    config record, history, validation metrics, notes; its `path` once saved).
    Inputs: arrays [n_samples, n_features] of numbers (NaN allowed: imputed), or DataFrames
    whose category and text columns are encoded as `deepfit train` encodes a table's.
    Warnings of the data audit and of training are raised as DeepfitWarning."""


class DeepClassifier(ClassifierMixin, DeepEstimator):
    __doc__ = ("A neural-network classifier trained by deepfit (lifecycle/in_memory.py): "
               "preprocessing fitted on the rows given to `fit`, a validation split carved from "
               "them, early stopping with the best weights restored, class imbalance handled "
               "(`imbalance`: auto, none, weights, sampler, focal); the scikit-learn estimator "
               "API (sklearn.base.ClassifierMixin). Fitted: classes_ (sorted, the columns of "
               "predict_proba)." + _DOC)

    _task = "classification"

    def fit(self, X: Any, y: Any) -> DeepClassifier:
        """Train on X [n_samples, n_features] and labels y [n_samples]. → self.
        Raises ValueError (scikit-learn's) for malformed inputs, a DeepfitError for bad settings."""
        frame = self._frame_for_fit(X)  # X first: scikit-learn's checks expect its errors first
        y = self._check_y(frame, y, numeric=False)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in "
                             f"the data, but the data contain only one class: {classes[0]!r}")
        self.classes_ = classes
        fitted = self._fit(frame, codes.astype(np.int64))
        # deepfit trained on the codes 0 … K-1: the labels go into the saved target encoding,
        # so the predictor (and a saved run) answers with them
        fitted.predictor.target.classes = [c.item() if hasattr(c, "item") else c for c in classes]
        counts = fitted.record["data"].get("class_counts")
        if counts:
            fitted.record["data"]["class_counts"] = {str(classes[int(k)]): v for k, v in counts.items()}
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities [n_samples, n_classes] (softmax of the model's outputs), the
        columns in `classes_` order; each row sums to 1."""
        rows = self._outputs_input(X)  # checks that the estimator is fitted first
        return self.run_.predictor.predict_proba(rows)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row [n_samples], labels as in `classes_`."""
        proba = self.predict_proba(X)  # checks that the estimator is fitted first
        return self.classes_[np.argmax(proba, axis=1)]


class DeepRegressor(RegressorMixin, DeepEstimator):
    __doc__ = ("A neural-network regressor trained by deepfit (lifecycle/in_memory.py): "
               "preprocessing and target standardisation fitted on the rows given to `fit`, a "
               "validation split carved from them, early stopping with the best weights "
               "restored; the scikit-learn estimator API (sklearn.base.RegressorMixin). "
               "It has no predict_proba." + _DOC)

    _task = "regression"

    def fit(self, X: Any, y: Any) -> DeepRegressor:
        """Train on X [n_samples, n_features] and numeric targets y [n_samples]. → self.
        Raises ValueError (scikit-learn's) for malformed inputs, a DeepfitError for bad settings."""
        frame = self._frame_for_fit(X)
        y = self._check_y(frame, y, numeric=True).astype(np.float64)
        self._fit(frame, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values [n_samples], in the target's units (float64)."""
        rows = self._outputs_input(X)  # checks that the estimator is fitted first
        return np.asarray(self.run_.predictor.predict(rows), dtype=np.float64)
