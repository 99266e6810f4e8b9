"""`deepfit compare`: comparison.py trains the models on one split, baselines.py fits the
scikit-learn baselines (gradient boosting, a linear model) on the same encoded rows."""
