"""Detection: which reader (and arguments) reads a competition folder's train table and test images."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, LayoutError
from ..table import LabelTable
from .readers import (
    IMAGE_EXTENSIONS,
    _is_image,
    _pixel_columns,
    _walk_images,
    from_csv,
    from_filenames,
    from_folders,
    from_imaterialist_json,
    from_pixel_csv,
    unlabelled,
)

# The functions a `Reader` may name (what `detect` emits), by name.
_READERS = {f.__name__: f for f in (from_csv, from_filenames, from_folders, from_imaterialist_json, from_pixel_csv, unlabelled)}


@dataclass(frozen=True)
class Reader:
    """One reader call: the function name in `kagglekit.layout` and its keyword arguments."""

    function: str
    kwargs: dict = field(default_factory=dict)

    def read(self) -> LabelTable:
        """Return the table this call reads."""
        if self.function not in _READERS:
            raise ConfigError(f"Reader function {self.function!r} is not a kagglekit.layout reader; use one of {sorted(_READERS)}.")
        return _READERS[self.function](**self.kwargs)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={str(v)!r}" for k, v in self.kwargs.items())
        return f"kagglekit.layout.{self.function}({args})"


@dataclass(frozen=True)
class Layout:
    """What `detect` found in a competition folder: the readers of the train table and the test images."""

    directory: Path
    kind: str  # "imaterialist-json" | "csv" | "pixel-csv" | "class-folders" | "filenames"
    train: Reader
    test: Reader | None = None
    valid: Reader | None = None
    notes: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """Return a few human-readable lines saying what was found and how it will be read."""
        lines = [f"{self.directory}: {self.kind} layout", f"  train: {self.train}"]
        if self.valid is not None:
            lines.append(f"  valid: {self.valid}")
        lines.append(f"  test:  {self.test if self.test is not None else 'no test images found'}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary

    def read(self) -> tuple[LabelTable, LabelTable | None]:
        """Return (train table, test table or None)."""
        return self.train.read(), (self.test.read() if self.test is not None else None)


_TEST_DIRS = ("test", "test1", "test-jpg", "test_images", "test_stg1", "test_stg2")
_TRAIN_DIRS = ("train", "train-jpg", "train_images", "training", "images")
_CSV_NAMES = ("train.csv", "labels.csv", "train_labels.csv", "train_v2.csv", "trainLabels.csv", "train_classes.csv")


def _unwrap(folder: Path) -> Path:
    """Return the real image folder when a zip was unpacked one level too deep (``train/train/``, ``test1/test/``)."""
    while folder.is_dir():
        children = [c for c in folder.iterdir() if not c.name.startswith((".", "__MACOSX"))]
        if len(children) == 1 and children[0].is_dir() and children[0].name in (folder.name, *_TRAIN_DIRS, *_TEST_DIRS):
            folder = children[0]
        else:
            break
    return folder


def _image_count(folder: Path, limit: int = 10**9) -> int:
    n = 0
    with os.scandir(folder) as it:
        for e in it:
            if e.is_file() and _is_image(e.name, IMAGE_EXTENSIONS):
                n += 1
                if n >= limit:
                    break
    return n


def _class_dirs(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        subdirs = [e for e in it if e.is_dir() and not e.name.startswith((".", "__MACOSX"))]
    return [e.name for e in subdirs if _walk_images(Path(e.path), IMAGE_EXTENSIONS, recursive=True)]


def _filename_pattern(folder: Path) -> str | None:
    """Return a pattern such as ``^([^.]+)\\.`` when file names start with a label (``cat.1.jpg``)."""
    names = _walk_images(folder, IMAGE_EXTENSIONS, recursive=False)
    if len(names) < 2:
        return None
    for pattern in (r"^([A-Za-z][^.]*)\.", r"^([A-Za-z][A-Za-z-]*)_\d"):
        regex = re.compile(pattern)
        matches = [regex.search(n) for n in names]
        if all(matches):
            labels = {m.group(1) for m in matches}
            if 2 <= len(labels) <= max(2, len(names) // 2):
                return pattern
    return None


def _test_reader(directory: Path) -> Reader | None:
    for name in _TEST_DIRS:
        folder = _unwrap(directory / name)
        if folder.is_dir() and _image_count(folder, 1):
            return Reader("unlabelled", {"folder": folder})
    return None


def _found(directory: Path) -> str:
    entries = sorted(directory.iterdir(), key=lambda p: p.name)
    shown = []
    for p in entries[:25]:
        if p.is_dir():
            shown.append(f"{p.name}/ ({_image_count(p)} images, {len(_class_dirs(p))} sub-folders with images)")
        else:
            shown.append(p.name)
    if len(entries) > 25:
        shown.append(f"... and {len(entries) - 25} more")
    return "; ".join(shown) or "nothing"


def detect(directory: str | os.PathLike) -> Layout:
    """Return the `Layout` of a competition folder: which reader (and arguments) reads its train table and test images.

    Recognises, in this order: iMaterialist JSON (``train.json``), a label CSV
    (``train.csv``, ``labels.csv``, ...) with its image folder, class folders
    (``train/<class>/``) and labels in file names (``train/cat.1.jpg``). Test images come
    from ``test.json`` or a ``test/``, ``test1/`` ... folder. Zips must be unpacked first.
    """
    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise LayoutError(f"The competition folder {directory} does not exist. Fetch it first (kagglekit.sources.fetch).")
    notes: list[str] = []

    # 1. iMaterialist JSON.
    train_json = directory / "train.json"
    if train_json.is_file():
        folder = _unwrap(directory / "train")
        # Downloads from the JSON's URLs always miss a few images: drop those rows (with a warning).
        train = Reader("from_imaterialist_json", {"json_path": train_json, "images": folder, "missing": "drop"})
        valid = None
        if (directory / "validation.json").is_file():
            valid = Reader("from_imaterialist_json", {"json_path": directory / "validation.json",
                                                      "images": _unwrap(directory / "validation"), "missing": "drop"})
        test = None
        if (directory / "test.json").is_file():
            test = Reader("from_imaterialist_json", {"json_path": directory / "test.json", "images": _unwrap(directory / "test")})
        if not folder.is_dir():
            notes.append(f"{folder.name}/ is missing: unpack {folder.name}.zip or download the images first")
        return Layout(directory, "imaterialist-json", train, test, valid, tuple(notes))

    # 2. A label CSV beside an image folder.
    for name in _CSV_NAMES:
        csv = directory / name
        if not csv.is_file():
            continue
        if _pixel_columns(pd.read_csv(csv, nrows=0).columns):
            test_csv = directory / "test.csv"
            test = Reader("from_pixel_csv", {"csv": test_csv}) if test_csv.is_file() else None
            notes.append("images stored as pixels in CSVs; written once as PNGs beside them")
            return Layout(directory, "pixel-csv", Reader("from_pixel_csv", {"csv": csv}), test, None, tuple(notes))
        candidates = [csv.stem, *_TRAIN_DIRS]
        folders = [_unwrap(directory / c) for c in dict.fromkeys(candidates)]
        folders = [f for f in folders if f.is_dir() and _image_count(f, 1)]
        if not folders:
            zips = [z.name for z in directory.glob("*.zip")]
            raise LayoutError(
                f"{csv.name} was found in {directory} but no image folder beside it "
                f"(looked for {', '.join(c + '/' for c in dict.fromkeys(candidates))})"
                + (f"; unpack {', '.join(zips)} first" if zips else "")
                + f". Call kagglekit.layout.from_csv({str(csv)!r}, images=<image folder>)."
            )
        test = _test_reader(directory)
        return Layout(directory, "csv", Reader("from_csv", {"csv": csv, "images": folders[0]}), test, None, tuple(notes))

    # 3/4. A train folder: class folders or labels in file names.
    for name in _TRAIN_DIRS:
        folder = _unwrap(directory / name)
        if not folder.is_dir():
            continue
        test = _test_reader(directory)
        classes = _class_dirs(folder)
        loose = _image_count(folder)
        if len(classes) >= 2 and not loose:
            return Layout(directory, "class-folders", Reader("from_folders", {"root": folder}), test, None, tuple(notes))
        pattern = _filename_pattern(folder) if loose else None
        if pattern is not None:
            notes.append(f"labels taken from file names by {pattern!r}")
            return Layout(directory, "filenames", Reader("from_filenames", {"folder": folder, "pattern": pattern}), test, None, tuple(notes))

    zips = sorted(p.name for p in directory.glob("*.zip"))
    unpack = f" The zips {', '.join(zips)} are not unpacked; unpack them first (kagglekit.sources.fetch does)." if zips else ""
    raise LayoutError(
        f"Cannot recognise the layout of {directory}. Found: {_found(directory)}.{unpack} "
        "Call a reader explicitly: kagglekit.layout.from_csv(csv, images=folder, id_col=..., label_col=...), "
        "from_folders(train_dir), from_filenames(train_dir, pattern=r'^(cat|dog)\\.'), "
        "from_imaterialist_json(json, images=folder), and unlabelled(test_dir) for the test images."
    )


def read_competition(directory: str | os.PathLike) -> tuple[LabelTable, LabelTable | None]:
    """Return (train table, test table or None) of a competition folder, as `detect` finds it."""
    return detect(directory).read()
