"""Free text: CSV/Parquet text columns and folders of .txt files (modalities/text/modality.py)."""
