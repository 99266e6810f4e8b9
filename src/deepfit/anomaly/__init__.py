"""Anomaly detection: autoencoders (models/autoencoder.py) scored by reconstruction error,
a threshold from the validation scores, metrics, the IsolationForest baseline, report pieces."""
