"""The image audit: the array checks (checks/arrays.py) with images' words and severities, and
what only images have: how a folder's files were read, and every image the same.

    unreadable_files  a folder's files that cannot be read (not an image, truncated, empty),
                      skipped by training: a warning naming each by its path in the folder
    blank             (checks/arrays.py) images of one flat colour, a warning naming them: by
                      file name for a folder, by index ("images 12, 40") for arrays
    exif_orientation, bit_depth, split_layout
                      how a folder's files were read (info): images turned by their EXIF tag,
                      files of more than 8 bits and their values, the folder's own splits
    identical         every image the same: an error that, for a folder, blames the decoding
                      (a conversion that lost the contrast), not duplicates in the data
"""

from __future__ import annotations

import numpy as np

from deepfit.checks.arrays import ArrayKind, audit_arrays
from deepfit.checks.findings import Finding, names
from deepfit.core.words import plural
from deepfit.data.dataset import Dataset
from deepfit.data.split import Splits
from deepfit.modalities.image.files import SHOWN, skipped_message


def unreadable(data: Dataset, failed: list[tuple[str, str]] | None = None) -> list[Finding]:
    """A folder's files that failed the check or the decoding (data.skipped_files, each
    'name (why)'), and `failed` ((name, why) of a streamed folder's files that passed the check
    but failed to decode in the audit's pass), named; the message starts as training's warning,
    which it replaces in a check."""
    skipped, failed = data.skipped_files or [], failed or []
    if not skipped and not failed:
        return []
    files = ((data.reading or {}).get("skipped") or skipped) + [name for name, _ in failed]
    message = skipped_message(skipped) if skipped else ""
    if failed:
        late = "; ".join(f"{name} ({why})" for name, why in failed[:SHOWN])
        message += ("; and " if skipped else "") + (
            f"{plural(len(failed), 'file')} that passed the check but cannot be decoded: {late}"
            + (f"; … ({len(failed)} in all)" if len(failed) > SHOWN else ""))
    return [Finding("unreadable_files", "warning", message, names(files, SHOWN),
                    float(len(skipped) + len(failed)), "training leaves them out: remove them, or repair them "
                    "(re-export or re-download the originals) to train on them")]


def image_names(data: Dataset, positions: np.ndarray) -> str:
    """The images at these row positions: a folder's file names, else their indices."""
    files = (data.reading or {}).get("files")
    if files is None and hasattr(data.X, "files"):  # streamed: the files themselves
        files = [data.X.name(f) for f in data.X.files]
    if files is not None and len(files) == len(data):
        return names([files[int(i)] for i in positions], SHOWN)
    return ("images " if len(positions) > 1 else "image ") + names([int(i) for i in positions])


def reading(data: Dataset, stats: dict[str, np.ndarray]) -> list[Finding]:
    """How a folder of image files was read (modalities/image/files.py), as info findings."""
    facts, findings = data.reading or {}, unreadable(data, stats.get("failed"))
    if facts.get("exif_rotated"):
        n = facts["exif_rotated"]
        findings.append(Finding("exif_orientation", "info", f"{plural(n, 'image', 'carry')} an EXIF "
                                "orientation tag: each is turned as a viewer shows it", "", float(n)))
    if facts.get("deep"):
        n, lo, hi = facts["deep"], stats["min"].min(), stats["max"].max()
        how = ("scaled to 8 bits by the training split's range (saved with the model)"
               if facts.get("dtype") == "uint16" else "standardised as float values")
        findings.append(Finding("bit_depth", "info", f"{plural(n, 'image', 'have')} more than 8 bits (modes "
                                f"{', '.join(facts['modes'])}), values {lo:g} to {hi:g}: {how}",
                                "", float(n)))
    if facts.get("splits"):
        sizes = ", ".join(f"{facts['folders'][part]}/ {len(rows)}" for part, rows in facts["splits"].items())
        findings.append(Finding("split_layout", "info", f"the folder holds its own splits ({sizes} "
                                "images): used as they are, no random split; --val-size / "
                                "--test-size only carve a split it lacks from train/", "",
                                float(len(facts["splits"]))))
    return findings


def identical(data: Dataset, keys: np.ndarray) -> list[Finding]:
    """Every image the same (more than one): for decoded files, the decoding lost the contrast."""
    if len(keys) < 2 or len(np.unique(keys)) > 1:
        return []
    facts = data.reading
    if facts is not None:
        message = (f"all {len(keys)} images decode to the same pixels: the decoding lost their "
                   f"contrast (modes {', '.join(facts['modes'])}); these are not duplicate files")
        fix = "convert the files to 8-bit PNG or JPEG, and tell deepfit's authors which format this was"
    else:
        message = f"all {len(keys)} images are identical: nothing tells the classes apart"
        fix = "check how the image array was made (a conversion that flattened it, a broadcast)"
    return [Finding("identical", "error", message, "", float(len(keys)), fix)]


IMAGES = ArrayKind(
    noun="image", channel_axis=1,
    non_finite=("error", "they reach the model and make the loss NaN",
                "drop or repair those images (re-export them; check the conversion to floats)"),
    blank_always_warns=True, blank_kind="a single flat colour", blank_by_channel=True,
    blank_why="a blank image teaches nothing, and usually means a failed export or capture",
    blank_fix=("look at them: re-export or re-capture them, or remove them; keep them only if a "
               "blank image is a real case the model must learn"),
    subject=image_names, before=reading, same_samples=identical)


def audit_images(data: Dataset, splits: Splits | None, test_data: Dataset | None) -> list[Finding]:
    """The array checks with images' words, the folder's reading facts, and identical images."""
    return audit_arrays(data, splits, test_data, IMAGES)
