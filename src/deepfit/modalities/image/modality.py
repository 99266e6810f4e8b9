"""Images: folders of files (one subfolder per class, or train/ val/ test/), arrays
[N, H, W(, C)] or [N, C, H, W], the bundled digits, and torchvision's named sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.errors import PredictInputError
from deepfit.modalities.base import FEW_LABELS, Modality
from deepfit.modalities.image.audit import audit_images
from deepfit.modalities.image.augment import make_augment
from deepfit.modalities.image.explain import ImageExplain
from deepfit.modalities.image.files import SHOWN, skipped_message
from deepfit.modalities.image.preprocess import ImagePreprocessor
from deepfit.modalities.image.reader import read_images, read_named_set
from deepfit.models.registry import InputSpec


class Image(Modality):
    name = "image"
    default_model = "cnn"
    anomaly_model = "conv_ae"
    preprocessor = ImagePreprocessor
    layout = "[C, H, W]"
    # ImageNet's 224 × 224 RGB, what resnet50 and the transfer models were made for
    natural_shape = (3, 224, 224)
    quick_shape = (3, 8, 8)
    readers = (("named_sets", read_named_set, 10), ("images", read_images, 20))
    channels_last = True
    noun = "image"
    fixes: ClassVar[dict[str, str]] = {
        "samples": ("fine-tune a network pretrained on many images rather than train one from "
                    "scratch (--model transfer:resnet18 --weights DEFAULT), keep augmentation on "
                    "(--augment light, the default, or strong), and collect more images if you can"),
        "duplicates": ("delete the repeated files (one picture saved under two names) or drop the "
                       "repeats from the array, unless they are genuine repeated captures"),
        "split_leak": ("delete the repeated files, or keep all copies of a picture in one split "
                       "(a folder's own train/ val/ test/ subfolders are used as they are)"),
    }
    guide_rows = (
        (lambda n, interp: n < FEW_LABELS, "transfer_learning",
         "images with few labels (< 10,000) → fine-tune a pretrained network (transfer learning)"),
        (lambda n, interp: True, "deep_learning",
         "images or sequences with many labels (≥ 10,000) → deep learning"),
    )

    def input_spec_of(self, shape: tuple[int, ...]) -> InputSpec:
        return InputSpec(shape[0], shape[0], modality=self.name, shape=shape)

    def audit(self, data: Any, splits: Any, test_data: Any, *, seed: int = 0) -> list:
        return audit_images(data, splits, test_data)

    def augment(self, data_cfg: Any, pre: Any, notes: Notes) -> Any:
        """modalities/image/augment.py's batch augmentation at `data_cfg.augment` (none, light,
        strong) with `data_cfg.flip`, in the preprocessor's normalised space; noted."""
        augment = make_augment(data_cfg.augment, data_cfg.flip, pre.shape, pre.mean, pre.std,
                               unit_range=getattr(pre, "unit_range", True))
        if augment is None:
            notes.decide("no augmentation (--augment none)" + (": --flip ignored" if data_cfg.flip else ""))
        else:
            notes.decide(f"augmentation of the training batches on the device: {augment.description} "
                         "(--augment, --flip); never on validation, test or predictions")
        return augment

    def synthetic_rows(self, pre: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        """8-bit images of the training shape, uniform noise."""
        return rng.integers(0, 256, (n, *pre.shape), dtype=np.uint8)

    def held_out_reading(self, pre: Any) -> dict[str, Any]:
        return {"image_size": tuple(pre.shape[1:])}  # (H, W) of the training images

    def report_facts(self, data: dict[str, Any]) -> dict[str, Any]:
        """A folder's reading: cached or streamed, and its unreadable files, named."""
        if data.get("skipped_files") is None:
            return {}
        skipped = data["skipped_files"]
        shown = "; ".join(skipped[:SHOWN]) + (f"; … ({len(skipped)} in all)" if len(skipped) > SHOWN else "")
        return {"image files": "streamed from disk batch by batch" if data.get("streamed")
                else "decoded once into memory",
                "unreadable files skipped": f"{len(skipped)}" + (f": {shown}" if skipped else "")}

    def predict_files(self, predictor: Any, path: Path) -> pd.DataFrame | None:
        """Predictions for a folder's image files (or one file), with a `file` column, decoded a
        chunk at a time; files that fail the check are named in a warning and left out. An
        .npz is left to read_for_predict (None)."""
        if path.suffix.lower() == ".npz":
            return None
        images, failed = predictor.preprocessor.image_files(path)
        if failed:
            Notes().warn(skipped_message([f"{images.name(f)} ({why})" for f, why in failed]))
        if not len(images):
            raise PredictInputError(f"{path}: none of its image files can be read")
        frame = predictor.predict_frame(images)
        frame.insert(0, "file", [images.name(f) for f in images.files])
        return frame

    def explain_parts(self) -> ImageExplain:
        return ImageExplain()

    def request_schema(self, pre: Any) -> dict[str, str]:
        c, h, w = pre.shape
        return {"image": f"an image file (PNG, JPEG, …) in base64; resized to {h} × {w}, "
                         f"{'grey' if c == 1 else 'RGB'}",
                "values": f"or the pixels as numbers nested as {list(pre.shape)}"}

    def request_input(self, pre: Any, records: list[dict[str, Any]]) -> np.ndarray:
        """Base64 image files decoded (Pillow) at the training size and channels, [N, C, H, W]
        uint8; records with "values" instead as the default reads them."""
        if not any("image" in r for r in records):
            return super().request_input(pre, records)
        return np.stack([decode_base64_image(r.get("image"), f"records[{i}].image", pre.shape)
                         for i, r in enumerate(records)])


def decode_base64_image(text: Any, where: str, shape: tuple[int, int, int]) -> np.ndarray:
    """One base64 image file → [C, H, W] uint8 at `shape`; PredictInputError naming `where`."""
    import base64
    import binascii
    import io

    from PIL import Image as PILImage

    if not isinstance(text, str):
        raise PredictInputError(f"{where} must be an image file in base64 text")
    try:
        data = base64.b64decode(text, validate=True)
        with PILImage.open(io.BytesIO(data)) as im:
            im = im.convert("L" if shape[0] == 1 else "RGB").resize((shape[2], shape[1]))
            array = np.asarray(im, dtype=np.uint8)
    except (binascii.Error, ValueError):
        raise PredictInputError(f"{where} is not valid base64") from None
    except (OSError, PILImage.DecompressionBombError) as exc:
        raise PredictInputError(f"{where} cannot be decoded as an image ({str(exc)[:80]})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
