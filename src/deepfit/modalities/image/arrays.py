"""Image arrays in deepfit's layout, [N, C, H, W]: conversion from the layouts people have,
resizing, channel conversion, and scikit-learn's bundled 8×8 digits as images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from deepfit.core.notes import Notes
from deepfit.core.words import noun_for
from deepfit.errors import DataFormatError, PredictInputError
from deepfit.modalities.image.files import hw


def digits_images() -> np.ndarray:
    """scikit-learn's 8×8 digits as uint8 [1797, 1, 8, 8] (its 17 grey levels spread over 0-255)."""
    from sklearn.datasets import load_digits

    images = load_digits().images  # [N, 8, 8], values 0-16
    return np.rint(images * (255 / 16)).astype(np.uint8)[:, None]


def digits_labels() -> pd.Series:
    from sklearn.datasets import load_digits

    return pd.Series(load_digits().target, name="target")


def to_nchw(X: np.ndarray, where: str, finite: bool = True) -> np.ndarray:
    """[N, H, W], [N, H, W, C] or [N, C, H, W] (C in 1, 3, 4) → [N, C, H, W]: uint16 as it is
    (images of more than 8 bits: ImagePreprocessor scales them by the training range), as uint8
    when the values are whole numbers in 0-255, else float32. `finite`: NaN or infinite values
    are a DataFormatError naming the images (training data leave them to the audit instead,
    whose error-level finding names them and stops the run before any step)."""
    if X.ndim == 3:
        X = X[:, None]
    elif X.ndim == 4:
        channels_first, channels_last = X.shape[1] in (1, 3, 4), X.shape[3] in (1, 3, 4)
        if channels_last and not channels_first:
            X = X.transpose(0, 3, 1, 2)
        elif not channels_first:
            raise DataFormatError(f"{where}X has shape {list(X.shape)}: images need 1, 3 or 4 "
                                  "channels, as [N, H, W, C] or [N, C, H, W]")
    else:
        raise DataFormatError(f"{where}X has shape {list(X.shape)}; images are [N, H, W], "
                              "[N, H, W, C] or [N, C, H, W]")
    if X.dtype.kind not in "biuf":
        raise DataFormatError(f"{where}images must be numbers, not {X.dtype}")
    if finite and X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=(1, 2, 3)))
        shown = ", ".join(map(str, bad[:10])) + (f", … ({len(bad)} in all)" if len(bad) > 10 else "")
        raise DataFormatError(f"{where}the images hold NaN or infinite values ({noun_for(len(bad), 'image')} {shown}); "
                              "drop or repair them")
    if X.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(X)
    if X.dtype.kind in "biu" and X.size and X.min() >= 0 and X.max() <= 255:
        return np.ascontiguousarray(X, dtype=np.uint8) * (255 if X.dtype.kind == "b" else 1)
    return np.ascontiguousarray(X, dtype=np.float32)


def resize(X: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[N, C, H, W] resized to `size` (bilinear, antialiased), in the same dtype."""
    if X.shape[2:] == tuple(size):
        return X
    out = torch.nn.functional.interpolate(torch.from_numpy(X).float(), size=tuple(size),
                                          mode="bilinear", antialias=True, align_corners=False)
    if X.dtype in (np.uint8, np.uint16):
        top = float(np.iinfo(X.dtype).max)
        return out.round_().clamp_(0, top).numpy().astype(X.dtype)
    return out.numpy()


def fit_size(X: np.ndarray, image_size: int | tuple[int, int] | None, notes: Notes) -> np.ndarray:
    if image_size is None or X.shape[2:] == hw(image_size):
        return X
    h, w = hw(image_size)
    notes.decide(f"images resized from {X.shape[2]}×{X.shape[3]} to {h}×{w} (--image-size)")
    return resize(X, (h, w))


def convert_channels(X: np.ndarray, channels: int) -> np.ndarray:
    have = X.shape[1]
    if have == 1 and channels == 3:
        return np.repeat(X, 3, axis=1)
    if have in (3, 4) and channels == 1:
        luma = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), X[:, :3].astype(np.float32), (0, 1))
        return (np.rint(luma).astype(X.dtype) if X.dtype.kind == "u" else luma)[:, None]
    if have == 4 and channels == 3:
        return X[:, :3]
    raise PredictInputError(f"the model takes {channels}-channel images, these have {have}")
