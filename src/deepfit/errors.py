"""User errors. Every one is a `DeepfitError`: the CLI prints one line and exits with code 2.

Bugs are not `DeepfitError`s: they keep their traceback.
"""

from __future__ import annotations


class DeepfitError(Exception):
    """Base class of every error caused by the user's data or settings."""

    exit_code = 2


class SourceNotFoundError(DeepfitError):
    """A file or directory given as a source does not exist."""


class DatasetFilesMissing(SourceNotFoundError):
    """A named torchvision dataset (mnist, cifar10, …) whose files are not under the data root."""


class DownloadFailed(DeepfitError):
    """A dataset could not be downloaded (no network, a server or checksum error)."""


class UnknownDatasetError(DeepfitError):
    """A bundled dataset name that deepfit does not know."""


class DataFormatError(DeepfitError):
    """A file that cannot be read as the format it claims to be, or data of the wrong shape."""


class TargetError(DeepfitError):
    """The target column is absent, has missing values, or has too few classes."""


class SplitError(DeepfitError):
    """The data cannot be split as asked (too few rows, a class too small to stratify)."""


class SettingsError(DeepfitError):
    """An unknown setting, or a setting with an invalid value."""


class ImageSizeError(SettingsError):
    """Images of a size or channel count the model asked for cannot take (found before training)."""


class PredictInputError(DeepfitError):
    """Data given to predict or evaluate do not match what the model was trained on."""


class RunDirError(DeepfitError):
    """A run directory that is missing, incomplete or damaged."""


class IntegrityError(RunDirError):
    """A file of a run directory whose checksum does not match the one recorded."""


class UnsafeFileError(DeepfitError):
    """A file whose loading would run code (a pickle with more than tensors in it)."""


class TrainingFailed(DeepfitError):
    """Training produced nothing usable (every epoch's loss was NaN/Inf, say)."""


class CheckFailed(DeepfitError):
    """A check before training found an error-level problem (rerun with --force to train anyway)."""


class ImageDecodeError(DataFormatError):
    """An image file that passed the check when its folder was read but fails to decode later,
    when a streamed batch reaches it (modalities/image/files.py)."""


class DataTooLargeError(DeepfitError):
    """Data that do not fit the memory allowed for them, with --loader memory asked for."""


class StorageError(DeepfitError):
    """A file could not be written: the disk is full, a quota is reached, the permission was
    lost or the filesystem is read-only (the OSError's reason is in the message)."""


class MissingExtraError(DeepfitError):
    """An optional integration (ONNX, Optuna, FastAPI, TensorBoard, MLflow, Captum) was asked for
    but its package is not installed; the message names the extra that installs it."""


class ExportError(DeepfitError):
    """A run that cannot be exported as asked (the exporters failed on its model); nothing of
    the export is kept."""


class ExportParityError(ExportError):
    """An exported model (ONNX, torch.export) whose outputs on the run's preprocessed rows differ
    from the Predictor's by more than the tolerance; nothing of the export is kept."""


class DistributedMismatch(DeepfitError):
    """Under torchrun, the processes disagree on what they are training: their split,
    preprocessing, settings or checkpoint differ (training/distributed.py's fingerprint check)."""


class WorldSizeMismatch(DeepfitError):
    """A run resumed with another number of processes than it was checkpointed with: the
    data order and every process's generators belong to that number."""


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; the run can be resumed. Not a
    DeepfitError: nothing the user gave was wrong. Raised by training/trainer.py."""


def printable(text: object) -> str:
    """`text` as one line that cannot act on a terminal: newlines, carriage returns and tabs as
    \\n, \\r, \\t, and every other control character (ANSI escape sequences start with one)
    as \\xNN. Used for each error line and log message the command prints."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
