"""Where the test images are and what the submission calls them: test folders, test.csv, test.json, the sample's ids.

`find_test` returns the `Reader` of the test table, whose ids are the ids the submission
uses (the sample submission's convention: ``abc.jpg`` when its ids keep the extension,
``abc`` when they do not), with the facts that say where they came from.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .infer import Guess, id_extension
from .readers import IMAGE_EXTENSIONS, _is_image, read_label_frame
from .readers_csv import choose_id_column, file_keys

TEST_DIRS = ("test", "test1", "test-jpg", "test_images", "test_stg1", "test_stg2")
TRAIN_DIRS = ("train", "train-jpg", "train_images", "training", "images")


def _unwrap(folder: Path) -> Path:
    """Return the real image folder when a zip was unpacked one level too deep (``train/train/``, ``test1/test/``)."""
    while folder.is_dir():
        children = [c for c in folder.iterdir() if not c.name.startswith((".", "__MACOSX"))]
        if len(children) == 1 and children[0].is_dir() and children[0].name in (folder.name, *TRAIN_DIRS, *TEST_DIRS):
            folder = children[0]
        else:
            break
    return folder


@dataclass(frozen=True)
class Sample:
    """The sample submission: its file, columns, ids (first column) and the cells of its first value column."""

    path: Path
    columns: tuple[str, ...]
    ids: tuple[str, ...]
    values: tuple[str, ...]


def read_sample(directory: Path) -> Sample | None:
    """Return the `Sample` of ``sample_submission*.csv`` in `directory` (Planet ships ``sample_submission_v2.csv``), or None."""
    found = sorted(directory.glob("sample_submission*.csv"), key=lambda p: (len(p.name), p.name))
    found = found or sorted(directory.glob("*sample*.csv"))
    if not found:
        return None
    path = found[-1] if found[-1].name.endswith("_v2.csv") else found[0]
    frame = read_label_frame(path)
    columns = tuple(frame.columns)
    values = tuple(frame[columns[1]].str.strip()) if len(columns) > 1 else ()
    return Sample(path, columns, tuple(frame[columns[0]].str.strip()), values)


def _has_images(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return any(e.is_file() and _is_image(e.name, IMAGE_EXTENSIONS) for e in it)
    except OSError:
        return False


def test_folders(base: Path) -> list[Path]:
    """Return the flat test image folders in `base`: the usual names first, then other ``test*`` folders (``test-jpg-additional``)."""
    named = [base / n for n in TEST_DIRS]
    others = sorted(p for p in base.iterdir() if p.is_dir() and p.name.lower().startswith("test") and p not in named)
    out = []
    for folder in [*named, *others]:
        folder = _unwrap(folder)
        if folder.is_dir() and _has_images(folder) and folder not in out:
            out.append(folder)
    return out


def convention(sample: Sample | None, train_ids: list[str]) -> Guess:
    """Return the `Guess` of whether submission ids keep the image extension."""
    return id_extension(sample.ids if sample is not None else (), train_ids)


def find_test(directory: Path, base: Path, sample: Sample | None, keep_ext: Guess,
              shared: list[Path]) -> tuple[str | None, dict, Guess]:
    """Return (reader function name or None, its kwargs, a `Guess` saying where the test ids come from and how many).

    In order: ``test.csv`` naming images (in a test folder or a folder shared with train),
    test folders (all of them: ``test-jpg`` + ``test-jpg-additional``), the sample
    submission's ids found in a shared image folder.
    """
    ids = "name" if keep_ext.value else "stem"
    folders = test_folders(base)
    test_csv = base / "test.csv" if (base / "test.csv").is_file() else directory / "test.csv"
    if test_csv.is_file():
        frame = read_label_frame(test_csv)
        where = folders or shared
        keys = file_keys(where)
        guess = choose_id_column(frame, keys, ", ".join(f"{f.name}/" for f in where))
        if guess.sure and guess.value is not None:
            return "from_ids", {"csv": test_csv, "images": [str(f) for f in where], "id_col": guess.value, "ids": ids}, Guess(
                [test_csv.name], f"{len(frame)} ids listed in {test_csv.name} (column {guess.value!r}), images in "
                                 f"{', '.join(f.name + '/' for f in where)}")
    if folders:
        return "unlabelled", {"folder": [str(f) for f in folders], "ids": ids}, Guess(
            [f"{f.relative_to(directory)}/" for f in folders], f"every image of {', '.join(f.name + '/' for f in folders)}")
    if sample is not None and shared:
        keys = file_keys(shared)
        hits = sum(1 for i in sample.ids if i in keys)
        if sample.ids and hits == len(sample.ids):
            return "from_ids", {"csv": sample.path, "images": [str(f) for f in shared], "id_col": sample.columns[0], "ids": ids}, Guess(
                [sample.path.name], f"no test folder or test.csv: the {len(sample.ids)} ids of {sample.path.name}, found in "
                                    f"{', '.join(f.name + '/' for f in shared)}", sure=False)
    return None, {}, Guess([], "no test folder, test.csv, test.json or sample ids matching images", sure=False)
