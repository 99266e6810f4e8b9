"""Tables: CSV, Parquet, .npz, DataFrames and bundled sets (modality.py: Tabular)."""
