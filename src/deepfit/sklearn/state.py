"""A fitted estimator's predictor as bytes, for pickling: the run directory's model.json and
model.safetensors (written by Predictor.save, read back by Predictor.load with its checks), so
the weights travel as safetensors inside the pickle, never as pickled tensors."""

from __future__ import annotations

import tempfile
from pathlib import Path

from deepfit.lifecycle.predictor import MODEL_JSON, WEIGHTS, Predictor


def predictor_bytes(predictor: Predictor) -> dict[str, bytes]:
    """{file name: its bytes} of the predictor's model.json and model.safetensors."""
    with tempfile.TemporaryDirectory(prefix="deepfit-pickle-") as tmp:
        predictor.save(Path(tmp))
        return {name: (Path(tmp) / name).read_bytes() for name in (MODEL_JSON, WEIGHTS)}


def predictor_from_bytes(files: dict[str, bytes], device: str = "cpu") -> Predictor:
    """The predictor `predictor_bytes` gave, loaded (checksum verified) on `device`."""
    with tempfile.TemporaryDirectory(prefix="deepfit-pickle-") as tmp:
        for name in (MODEL_JSON, WEIGHTS):
            (Path(tmp) / name).write_bytes(files[name])
        return Predictor.load(tmp, device=device)
