"""How a folder of images is laid out, read before any file is opened.

    photos/cats/*.png, photos/dogs/*.png           one folder of images per class; the splits are
                                                   drawn at random (data/split.py)
    photos/train/cats/…, photos/val/cats/…,         the folder's own splits: train/, and val/ (or
    photos/test/cats/…                              valid/, validation/) and/or test/, any case,
                                                   each with the same class folders; a split that
                                                   is not there is carved from train/
                                                   (data/split.py: fixed_splits)

A class's images lie directly in its folder. A class folder whose images lie in folders of its own
(photos/cats/indoor/*.png), a split layout beside other folders, two folders for one split, or a
class in val/ or test/ that train/ lacks is a DataFormatError that describes what was found; a
class of train/ missing from val/ or test/ is a warning (it is never validated or tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepfit.core.notes import Notes
from deepfit.core.words import noun_for
from deepfit.errors import DataFormatError

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}
LAYOUTS = "deepfit reads one folder of images per class, or train/ val/ test/ each with class folders"


@dataclass
class Layout:
    """The image files found, each with its class and split ('' when the folder has no splits),
    and the split folders used (split → folder name; empty for one folder per class)."""

    files: list[tuple[Path, str, str]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)


def find_layout(path: Path, suffixes: tuple[str, ...], notes: Notes) -> Layout:
    """The layout of `path` by the rules above (the files in a stable order: split, class, name).
    Raises DataFormatError for the layouts named there."""
    subdirs = _folders(path)
    splits = _split_folders(path, subdirs)
    if splits is None:
        files = [(f, d.name, "") for d in subdirs for f in _images(d, path, suffixes)]
        return Layout(files, [d.name for d in subdirs])
    layout = Layout(folders={part: d.name for part, d in splits.items()})
    classes_of = {}
    for part in ("train", "val", "test"):
        if part not in splits:
            continue
        classes = _folders(splits[part])
        if not classes and any(_is_image(f, suffixes) for f in splits[part].iterdir()):
            raise DataFormatError(f"{_rel(splits[part], path)}/ holds images, not class folders: "
                                  f"{LAYOUTS}")
        classes_of[part] = [d.name for d in classes]
        layout.files += [(f, d.name, part) for d in classes for f in _images(d, path, suffixes)]
    layout.classes = classes_of["train"]
    _check_classes(classes_of, splits, path, notes)
    return layout


def part_rows(parts: list[str]) -> dict[str, np.ndarray]:
    """Each split's row numbers, from the split of each (kept) image."""
    parts = np.asarray(parts)
    return {part: np.flatnonzero(parts == part) for part in ("train", "val", "test")
            if (parts == part).any()}


def _split_folders(path: Path, subdirs: list[Path]) -> dict[str, Path] | None:
    """split → its folder when `path` is a split layout (it has train/), else None."""
    named = [(SPLIT_FOLDERS[d.name.lower()], d) for d in subdirs if d.name.lower() in SPLIT_FOLDERS]
    if not any(part == "train" for part, _ in named):
        return None
    splits: dict[str, Path] = {}
    for part, d in named:
        if part in splits:
            raise DataFormatError(f"{path} holds both {splits[part].name}/ and {d.name}/ for the "
                                  f"{SPLIT_WORDS[part]} split; keep one")
        splits[part] = d
    others = [d.name + "/" for d in subdirs if d.name.lower() not in SPLIT_FOLDERS]
    if others:
        raise DataFormatError(f"{path} holds split folders ({', '.join(d.name + '/' for d in splits.values())}) "
                              f"beside other folders ({', '.join(others[:5])}): {LAYOUTS}")
    return splits


def _check_classes(classes_of: dict[str, list[str]], splits: dict[str, Path], path: Path,
                   notes: Notes) -> None:
    train = set(classes_of["train"])
    for part in ("val", "test"):
        if part not in classes_of:
            continue
        folder = _rel(splits[part], path)
        new = sorted(set(classes_of[part]) - train)
        if new:
            raise DataFormatError(f"{folder}/ holds {noun_for(len(new), 'class folder')} that {_rel(splits['train'], path)}/ "
                                  f"lacks: {', '.join(new[:10])}; the model can only learn classes "
                                  "it trains on: add their training images, or remove them")
        missing = sorted(train - set(classes_of[part]))
        if missing:
            notes.warn(f"{folder}/ has no folder for {noun_for(len(missing), 'class')} {', '.join(missing[:10])}: they are "
                       f"never {'validated' if part == 'val' else 'tested'}")


def _images(class_dir: Path, root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The images directly in a class folder (sorted); images in folders below it are an error."""
    nested = [d for d in _folders(class_dir)
              if any(_is_image(f, suffixes) and not _hidden(f, d) for f in d.rglob("*"))]
    images = sorted(f for f in class_dir.iterdir() if _is_image(f, suffixes) and not _hidden(f, class_dir))
    if nested:
        shown = ", ".join(_rel(d, root) + "/" for d in nested[:3])
        beside = " beside its images" if images else ", not images"
        raise DataFormatError(f"{_rel(class_dir, root)}/ holds folders ({shown}){beside}: {LAYOUTS}")
    return images


def _folders(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _is_image(f: Path, suffixes: tuple[str, ...]) -> bool:
    return f.suffix.lower() in suffixes and f.is_file()


def _hidden(f: Path, base: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(base).parts)


def _rel(d: Path, root: Path) -> str:
    return str(Path(root.name) / d.relative_to(root))
