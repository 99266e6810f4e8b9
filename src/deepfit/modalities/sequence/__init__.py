"""Sequences and time series windows (modality.py: Sequence)."""
