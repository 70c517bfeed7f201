"""Raw competition layouts → `LabelTable`; class folders and multi-hot CSVs written out; splits.

Readers (each returns a `LabelTable`; rows are sorted naturally by file name for
folder-based readers and kept in file order for CSV/JSON readers; paths are absolute):

* `from_filenames(folder, pattern)`: labels taken from file names (Dogs vs. Cats:
  ``train/cat.123.jpg``).
* `from_folders(root)`: existing class folders ``root/<class>/**/<image>``; the class is
  the FIRST-level folder, deeper folders only organise files; ids are the relative paths
  without extension (``cat/2019/001``), so they stay unique.
* `from_csv(csv, images=folder)`: ``id,label`` single-label, ``image_name,tags``
  multi-label (space-separated) or the wide 0/1 form; ids become paths by looking in
  `images` (the extension is detected from the files when not given).
* `from_imaterialist_json(json, images=folder)`: the iMaterialist Fashion 2018 JSON;
  a JSON without annotations gives an unlabelled table.
* `from_pixel_csv(csv)`: pixels in a CSV (Digit Recognizer, Fashion-MNIST:
  ``label,pixel0..pixel783``); the images are written once as PNGs and read from there.
* `unlabelled(folder)`: test images, ids = file stems.
* `detect(directory)` / `read_competition(directory)`: find the reader for a whole
  competition folder (train table and test images).

Writers: `write_class_folders` (symlinks by default, hardlinks or copies on request;
never touches the source; idempotent), `write_multihot_csv` (``image,labels`` or wide
0/1), `imaterialist_to_csv`. All files are written atomically.

Splits: `split` (stratified; iterative stratification for multi-label) and `sample`
(stratified ``n`` or ``frac``), all seeded and deterministic.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, LayoutError, TableError, list_offenders
from .io import atomic_open, default_cache_dir
from .table import LabelTable

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})

__all__ = [
    "IMAGE_EXTENSIONS",
    "Layout",
    "Reader",
    "detect",
    "from_csv",
    "from_filenames",
    "from_folders",
    "from_imaterialist_json",
    "from_pixel_csv",
    "imaterialist_to_csv",
    "read_competition",
    "sample",
    "split",
    "unlabelled",
    "write_class_folders",
    "write_multihot_csv",
]


# --------------------------------------------------------------------------- helpers
def natural_key(text: str) -> tuple:
    """Return a sort key that puts 'cat.2' before 'cat.10'."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def _is_image(name: str, extensions: frozenset[str]) -> bool:
    return os.path.splitext(name)[1].lower() in extensions and not name.startswith(".")


def _extensions(extensions: Sequence[str] | None) -> frozenset[str]:
    if extensions is None:
        return IMAGE_EXTENSIONS
    return frozenset(("." + e.lstrip(".")).lower() for e in extensions)


def _require_dir(folder: str | os.PathLike, what: str, fix: str) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        if folder.with_suffix(".zip").is_file():
            raise LayoutError(
                f"{what} {folder} does not exist but {folder.with_suffix('.zip')} does: unpack it first "
                f"(kagglekit.sources.fetch unpacks competition zips) or point at the unpacked folder."
            )
        raise LayoutError(f"{what} {folder} is not a folder. {fix}")
    return folder.absolute()


def _walk_images(folder: Path, extensions: frozenset[str], recursive: bool) -> list[str]:
    """Return image paths relative to `folder` (posix), skipping hidden files and folders."""
    if not recursive:
        with os.scandir(folder) as it:
            return [e.name for e in it if e.is_file() and _is_image(e.name, extensions)]
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "__MACOSX"))]
        rel = os.path.relpath(dirpath, folder)
        for name in filenames:
            if _is_image(name, extensions):
                found.append(name if rel == "." else Path(rel, name).as_posix())
    return found


def _strip_ext(rel: str) -> str:
    return rel[: -len(os.path.splitext(rel)[1])] if os.path.splitext(rel)[1] else rel


def _tuple_labels(values: Sequence[object]) -> list[tuple[str, ...]]:
    return [(str(v),) for v in values]


# --------------------------------------------------------------------------- readers
def from_filenames(
    folder: str | os.PathLike,
    pattern: str = r"^(cat|dog)\.",
    mapping: Mapping[str, str] | Callable[[str], str] | None = None,
    ids: str = "stem",
    classes: Sequence[str] | None = None,
    extensions: Sequence[str] | None = None,
    recursive: bool = False,
    unmatched: str = "error",
) -> LabelTable:
    r"""Return a single-label table whose labels come from the file names in `folder`.

    Args:
        folder: the image folder (e.g. ``train/`` of Dogs vs. Cats).
        pattern: a regular expression searched in each file NAME; the label is the named
            group ``label`` when present, else the first group, else the whole match. A
            named group ``id`` (e.g. ``^(?P<label>[a-z]+)\.(?P<id>\d+)``) gives the id.
        mapping: renames labels (a dict such as ``{"cat": "cats"}`` or a function); labels
            not in a dict are kept as they are.
        ids: ``"stem"`` (``cat.123``), ``"name"`` (``cat.123.jpg``) or ``"relative"``
            (relative path without extension; useful with `recursive`); ignored when the
            pattern has an ``id`` group.
        classes: the vocabulary order; by default the sorted labels found.
        extensions: image suffixes to read (default: common image formats).
        recursive: also read sub-folders.
        unmatched: ``"error"`` (default) or ``"skip"`` for images whose name does not match.
    """
    folder = _require_dir(folder, "The image folder", "Pass the folder holding the labelled images.")
    if ids not in ("stem", "name", "relative"):
        raise ConfigError(f"ids={ids!r} is not supported; use 'stem', 'name' or 'relative'.")
    if unmatched not in ("error", "skip"):
        raise ConfigError(f"unmatched={unmatched!r} is not supported; use 'error' or 'skip'.")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"pattern {pattern!r} is not a valid regular expression ({exc}).") from None
    files = sorted(_walk_images(folder, _extensions(extensions), recursive), key=natural_key)
    rows, misses = [], []
    for rel in files:
        name = rel.rsplit("/", 1)[-1]
        m = regex.search(name)
        if m is None:
            misses.append(rel)
            continue
        if "label" in regex.groupindex:
            label = m.group("label")
        elif regex.groups:
            label = m.group(1)
        else:
            label = m.group(0)
        if label is None or label == "":
            misses.append(rel)
            continue
        if mapping is not None:
            label = mapping(label) if callable(mapping) else mapping.get(label, label)
        if "id" in regex.groupindex and m.group("id"):
            image_id = m.group("id")
        else:
            image_id = {"stem": _strip_ext(name), "name": name, "relative": _strip_ext(rel)}[ids]
        rows.append((image_id, str(folder / rel), (str(label),)))
    if misses and unmatched == "error":
        raise LayoutError(
            f"{len(misses)} of {len(files)} images in {folder} do not match pattern {pattern!r}: "
            f"{list_offenders(misses)}. Fix the pattern, or pass unmatched='skip' to leave them out."
        )
    if not rows:
        raise LayoutError(
            f"No image in {folder} matched pattern {pattern!r} ({len(files)} images seen). "
            "Check the folder and the pattern."
        )
    table = LabelTable.from_records(*zip(*rows), classes=classes, multilabel=False)
    return table.validate(check_files=False)


def from_folders(
    root: str | os.PathLike,
    classes: Sequence[str] | None = None,
    ids: str = "relative",
    extensions: Sequence[str] | None = None,
) -> LabelTable:
    """Return a single-label table from class folders ``root/<class>/...``.

    The class is the first-level folder under `root`; images in deeper folders belong
    to that class (``root/cat/2019/a.jpg`` is a ``cat``). Hidden folders are skipped and
    folders without images are not classes. Images lying directly in `root` are an error.

    Args:
        root: the folder holding one folder per class.
        classes: the vocabulary order (may name classes without images); by default the
            class folders with images, sorted.
        ids: ``"relative"`` (default; ``cat/2019/a``: unique) or ``"stem"`` (``a``: what
            the competition calls the image; duplicates are reported).
        extensions: image suffixes to read.
    """
    root = _require_dir(root, "The class-folder root", "Pass the folder that holds one folder per class.")
    if ids not in ("relative", "stem"):
        raise ConfigError(f"ids={ids!r} is not supported; use 'relative' or 'stem'.")
    exts = _extensions(extensions)
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: natural_key(e.name))
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name, exts)]
    if loose:
        raise LayoutError(
            f"{len(loose)} images lie directly in {root}, outside any class folder: {list_offenders(loose)}. "
            "Move them into a class folder, or read them with from_filenames / unlabelled."
        )
    rows = []
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith((".", "__MACOSX")):
            continue
        files = sorted(_walk_images(Path(entry.path), exts, recursive=True), key=natural_key)
        for rel in files:
            image_id = f"{entry.name}/{_strip_ext(rel)}" if ids == "relative" else _strip_ext(rel.rsplit("/", 1)[-1])
            rows.append((image_id, str(root / entry.name / rel), (entry.name,)))
    if not rows:
        raise LayoutError(
            f"No class folder with images under {root} (found: {list_offenders([e.name for e in entries]) or 'nothing'}). "
            "Expected root/<class>/<image>."
        )
    table = LabelTable.from_records(*zip(*rows), classes=classes, multilabel=False)
    return table.validate(check_files=False, require_all_classes=False)


_ID_NAMES = ("id", "image_id", "imageid", "image", "image_name", "imagename", "id_code", "file", "filename",
             "file_name", "fname", "img", "image_path", "path", "name")
_LABEL_NAMES = ("label", "labels", "tags", "tag", "class", "classes", "category", "label_id", "labelid",
                "target", "breed", "species", "diagnosis", "level", "landmark_id", "y")


def _find_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


def _resolve_paths(
    ids: Sequence[str], folder: Path, ext: str | None, missing: str, what: str
) -> tuple[list[str], list[int]]:
    """Return (paths, kept row positions) for `ids` in `folder`; detects the extension when `ext` is None."""
    if missing not in ("error", "drop"):
        raise ConfigError(f"missing={missing!r} is not supported; use 'error' or 'drop'.")
    if not folder.is_dir():
        raise LayoutError(
            f"The image folder {folder} for {what} does not exist"
            + (f" ({folder.with_suffix('.zip').name} is there: unpack it first)" if folder.with_suffix(".zip").is_file() else "")
            + ". Pass images=<folder holding the images>."
        )
    with os.scandir(folder) as it:
        names = {e.name for e in it if not e.name.startswith(".")}
    by_stem: dict[str, list[str]] = {}
    for name in names:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() in IMAGE_EXTENSIONS:
            by_stem.setdefault(stem, []).append(name)
    paths, kept, absent, ambiguous = [], [], [], []
    if ext is not None:
        ext = "." + ext.lstrip(".") if ext else ""
    for row, image_id in enumerate(ids):
        if ext is not None:
            name = image_id + ext
            found = name in names or ("/" in name and (folder / name).is_file())
            if found:
                paths.append(str(folder / name))
                kept.append(row)
            else:
                absent.append(name)
            continue
        if (image_id in names and _is_image(image_id, IMAGE_EXTENSIONS)) or ("/" in image_id and (folder / image_id).is_file()):
            paths.append(str(folder / image_id))
            kept.append(row)
            continue
        candidates = by_stem.get(image_id, [])
        if "/" in image_id and not candidates:
            sub = folder / image_id
            if sub.parent.is_dir():
                candidates = [str(Path(image_id).parent / n) for n in os.listdir(sub.parent)
                              if os.path.splitext(n)[0] == sub.name and _is_image(n, IMAGE_EXTENSIONS)]
        if len(candidates) == 1:
            paths.append(str(folder / candidates[0]))
            kept.append(row)
        elif candidates:
            ambiguous.append(f"{image_id} ({', '.join(sorted(candidates))})")
        else:
            absent.append(image_id)
    if ambiguous:
        raise LayoutError(
            f"{len(ambiguous)} ids of {what} match several files in {folder}: {list_offenders(ambiguous, 3)}. "
            "Pass ext='.jpg' (or the right extension) to choose one."
        )
    if absent:
        seen = sorted({os.path.splitext(n)[1].lower() for n in names if os.path.splitext(n)[1]})
        hint = (f"Pass ext= (extensions present in the folder: {', '.join(seen) or 'none'}) "
                "or images=<the right folder>" if ext is None or len(absent) == len(ids)
                else "Check the folder is complete")
        drop = ", or pass missing='drop' to leave those rows out" if len(absent) < len(ids) else ""
        message = (f"{len(absent)} of {len(ids)} images of {what} are not in {folder}: "
                   f"{list_offenders(absent)}. {hint}{drop}.")
        if missing == "error" or len(absent) == len(ids):
            raise LayoutError(message)
        warnings.warn(f"Dropped {len(absent)} rows whose image is missing: {list_offenders(absent)}.", stacklevel=3)
    return paths, kept


def _default_images(source: Path) -> Path:
    """Return the image folder beside a CSV: named like it (``train.csv`` → ``train/``), else a usual train folder."""
    fallbacks = () if "test" in source.stem.lower() else ("train", "train-jpg", "train_images", "images")
    for name in (source.stem, *fallbacks):
        candidate = source.parent / name
        if candidate.is_dir():
            return candidate
    return source.parent / source.stem


def from_csv(
    csv: str | os.PathLike,
    images: str | os.PathLike | None = None,
    id_col: str | None = None,
    label_col: str | None = None,
    ext: str | None = None,
    sep: str = " ",
    multilabel: bool | None = None,
    classes: Sequence[str] | None = None,
    missing: str = "error",
    delimiter: str = ",",
) -> LabelTable:
    """Return the table described by a label CSV, with ids turned into image paths.

    Handles ``id,label`` (single label), ``image_name,tags`` (labels separated by `sep`,
    as in Planet: Amazon) and the wide 0/1 form (``image,<class1>,<class2>,...``).

    Args:
        csv: the label file.
        images: the folder holding the images; by default the folder named like the CSV
            (``train.csv`` → ``train/``) or ``train/`` beside it.
        id_col, label_col: column names; detected from usual names (``id``, ``image_name``,
            ``label``, ``tags``, ...) or, for a two-column file, its two columns.
        ext: extension added to ids (``".jpg"``); by default ids are matched to the files in
            `images` (an id that already names a file is used as is).
        sep: separator between labels of one image (multi-label).
        multilabel: force the kind; by default multi-label when any cell holds `sep`.
        classes: the vocabulary order; by default the sorted labels seen.
        missing: ``"error"`` or ``"drop"`` for rows whose image is not found.
        delimiter: the CSV column delimiter.
    """
    csv = Path(csv)
    if not csv.is_file():
        raise LayoutError(f"No label CSV at {csv}. Pass the path of the CSV that lists ids and labels.")
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, sep=delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{csv} cannot be read as a CSV ({exc}). Check the file, or pass delimiter=.") from None
    columns = list(frame.columns)
    if id_col is not None and id_col not in columns:
        raise LayoutError(f"{csv} has no column {id_col!r}; its columns are {list_offenders(columns, 12)}. Pass id_col= one of them.")
    if label_col is not None and label_col not in columns:
        raise LayoutError(f"{csv} has no column {label_col!r}; its columns are {list_offenders(columns, 12)}. Pass label_col= one of them.")
    id_col = id_col or _find_column(columns, _ID_NAMES) or (columns[0] if len(columns) == 2 else None)
    if id_col is None:
        raise LayoutError(
            f"Cannot tell which column of {csv} holds the image ids (columns: {list_offenders(columns, 12)}). Pass id_col=..."
        )
    rest = [c for c in columns if c != id_col]
    wide_columns: list[str] = []
    if label_col is None:
        label_col = _find_column(rest, _LABEL_NAMES)
        if label_col is None and len(rest) == 1:
            label_col = rest[0]
        if label_col is None and len(rest) > 1 and all(set(frame[c].str.strip().unique()) <= {"0", "1"} for c in rest):
            wide_columns = rest
        if label_col is None and not wide_columns:
            raise LayoutError(
                f"Cannot tell which column of {csv} holds the labels (columns: {list_offenders(columns, 12)}). "
                "Pass label_col=..., or give 0/1 columns for the wide multi-hot form."
            )
    if not len(frame):
        raise LayoutError(f"{csv} has a header but no rows. Check the file.")
    ids = frame[id_col].str.strip().tolist()
    if wide_columns:
        values = frame[wide_columns].apply(lambda s: s.str.strip()).to_numpy() == "1"
        labels = [tuple(c for c, on in zip(wide_columns, row) if on) for row in values]
        classes = list(classes) if classes is not None else wide_columns
        multilabel = True if multilabel is None else multilabel
    else:
        cells = frame[label_col].str.strip()
        if multilabel is None:
            multilabel = bool(cells.str.contains(re.escape(sep)).any()) if sep else False
        if multilabel:
            labels = [tuple(x for x in (c.split(sep) if sep else [c]) if x) for c in cells]
        else:
            empty = [i for i, c in zip(ids, cells) if c == ""]
            if empty:
                raise LayoutError(
                    f"{len(empty)} rows of {csv} have no label in column {label_col!r}: {list_offenders(empty)}. "
                    "Fill them, drop them, or pass multilabel=True if images may have no label."
                )
            labels = _tuple_labels(cells)
    folder = Path(images) if images is not None else _default_images(csv)
    paths, kept = _resolve_paths(ids, folder.absolute(), ext, missing, f"{csv.name}")
    table = LabelTable.from_records(
        [ids[i] for i in kept], paths, [labels[i] for i in kept], classes=classes, multilabel=multilabel
    )
    return table.validate(check_files=False, require_all_classes=False)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise LayoutError(f"No annotation file at {path}. Pass the iMaterialist train/validation/test JSON.")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path} is not valid JSON ({exc}). Download it again.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        keys = list(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
        raise LayoutError(
            f"{path} is not in the iMaterialist format: it needs an 'images' list (found {keys}). "
            'Expected {"images":[{"imageId":"1","url":...}], "annotations":[{"imageId":"1","labelId":[...]}]}.'
        )
    return doc


def _imaterialist_rows(path: Path) -> tuple[list[str], list[tuple[str, ...]] | None]:
    doc = _read_json(path)
    try:
        ids = [str(rec["imageId"]) for rec in doc["images"]]
    except (KeyError, TypeError):
        raise LayoutError(f"Some entries of 'images' in {path} have no 'imageId'. Check the file.") from None
    if "annotations" not in doc:
        return ids, None
    by_id: dict[str, tuple[str, ...]] = {}
    for rec in doc["annotations"]:
        try:
            by_id[str(rec["imageId"])] = tuple(sorted({str(x) for x in rec.get("labelId", [])}, key=natural_key))
        except (KeyError, TypeError):
            raise LayoutError(f"Some annotations in {path} have no 'imageId'. Check the file.") from None
    unknown = sorted(set(by_id) - set(ids), key=natural_key)
    if unknown:
        raise LayoutError(
            f"{len(unknown)} annotated imageIds of {path} are not listed in its 'images': {list_offenders(unknown)}. "
            "The file is inconsistent; download it again."
        )
    return ids, [by_id.get(i, ()) for i in ids]


def from_imaterialist_json(
    json_path: str | os.PathLike,
    images: str | os.PathLike | None = None,
    ext: str | None = None,
    classes: Sequence[str] | None = None,
    missing: str = "error",
) -> LabelTable:
    """Return the multi-label table of an iMaterialist Fashion 2018 JSON (unlabelled when it has no annotations).

    Args:
        json_path: ``train.json``, ``validation.json`` or ``test.json``.
        images: the folder of downloaded images ``<imageId>.<ext>``; by default the folder
            named like the JSON (``train.json`` → ``train/``).
        ext: image extension; detected from the folder when not given.
        classes: the vocabulary (e.g. all 228 label ids); by default the label ids seen,
            sorted as numbers.
        missing: ``"error"`` or ``"drop"`` for images that were never downloaded.
    """
    json_path = Path(json_path)
    ids, labels = _imaterialist_rows(json_path)
    folder = Path(images) if images is not None else json_path.parent / json_path.stem
    paths, kept = _resolve_paths(ids, folder.absolute(), ext, missing, json_path.name)
    if labels is None:
        return LabelTable.from_records([ids[i] for i in kept], paths, None, classes=(), multilabel=False).validate(
            check_files=False, require_all_classes=False
        )
    table = LabelTable.from_records([ids[i] for i in kept], paths, [labels[i] for i in kept], classes=classes, multilabel=True)
    return table.validate(check_files=False, require_all_classes=False)


def imaterialist_to_csv(json_path: str | os.PathLike, out_csv: str | os.PathLike) -> Path:
    """Return `out_csv` after writing the multi-hot CSV ``image,labels`` (space-separated label ids) of an iMaterialist JSON.

    Needs no images; a JSON without annotations gives empty label cells.
    """
    ids, labels = _imaterialist_rows(Path(json_path))
    frame = pd.DataFrame({"image": ids, "labels": [" ".join(x) for x in labels] if labels is not None else ""})
    with atomic_open(out_csv) as fh:
        frame.to_csv(fh, index=False)
    return Path(out_csv)


def unlabelled(
    folder: str | os.PathLike, extensions: Sequence[str] | None = None, recursive: bool = False
) -> LabelTable:
    """Return an unlabelled table (e.g. the test images) of the images in `folder`; ids are the file stems."""
    folder = _require_dir(folder, "The test image folder", "Pass the folder holding the images to predict.")
    files = sorted(_walk_images(folder, _extensions(extensions), recursive), key=natural_key)
    if not files:
        raise LayoutError(f"No images in {folder}. Pass the folder holding the images to predict.")
    ids = [_strip_ext(f.rsplit("/", 1)[-1]) for f in files]
    table = LabelTable.from_records(ids, [str(folder / f) for f in files], None, classes=(), multilabel=False)
    return table.validate(check_files=False, require_all_classes=False)


def _pixel_columns(columns: Sequence[str]) -> list[str]:
    return [c for c in columns if re.fullmatch(r"pixel\d+", str(c))]


def _writable_dir(preferred: Path, key: str) -> Path:
    """Return `preferred` when it can be created and written, else a folder in the kagglekit cache."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        probe = preferred / ".kagglekit-write-test"
        probe.touch()
        probe.unlink()
        return preferred
    except OSError:  # read-only input, e.g. /kaggle/input
        folder = default_cache_dir() / "pixels" / key
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def from_pixel_csv(
    csv: str | os.PathLike,
    images: str | os.PathLike | None = None,
    label_col: str | None = "label",
    id_col: str | None = None,
    shape: tuple[int, ...] | None = None,
    first_id: int = 1,
) -> LabelTable:
    """Return the table of a pixel CSV (``label,pixel0..``), after writing its images as PNGs once.

    Ids come from `id_col` when given, else from the row number counted from
    `first_id` (1, as Digit Recognizer's ``ImageId``). The PNGs go to `images`
    (default ``<csv stem>_images/`` beside the CSV, or the kagglekit cache when that
    folder is read-only) and are rewritten only when the CSV changes. A CSV without
    the label column gives an unlabelled table (a test set).
    """
    import hashlib

    from PIL import Image

    csv = Path(csv)
    if not csv.is_file():
        raise LayoutError(f"No pixel CSV at {csv}. Pass the path of a CSV with pixel0, pixel1, ... columns.")
    frame = pd.read_csv(csv)
    pixels = _pixel_columns(frame.columns)
    if not pixels:
        raise LayoutError(f"{csv} has no pixel0, pixel1, ... columns (columns: {list(frame.columns)[:8]}). "
                          "Use from_csv for CSVs that name image files.")
    n = len(pixels)
    if shape is None:
        side = int(round(n ** 0.5))
        if side * side == n:
            shape = (side, side)
        elif n % 3 == 0 and int(round((n // 3) ** 0.5)) ** 2 == n // 3:
            side = int(round((n // 3) ** 0.5))
            shape = (side, side, 3)
        else:
            raise LayoutError(f"{csv} has {n} pixel columns, which is not a square image; pass shape=(height, width).")
    if int(np.prod(shape)) != n:
        raise LayoutError(f"shape={shape} holds {int(np.prod(shape))} pixels but {csv} has {n} pixel columns.")
    labelled = label_col is not None and label_col in frame.columns
    if id_col is not None and id_col not in frame.columns:
        raise LayoutError(f"{csv} has no id column {id_col!r} (columns: {list(frame.columns)[:8]}).")
    ids = frame[id_col].astype(str).tolist() if id_col else [str(i + first_id) for i in range(len(frame))]
    stat = csv.stat()
    key = hashlib.md5(f"{csv.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{shape}".encode()).hexdigest()[:16]
    folder = _writable_dir(Path(images) if images else csv.parent / f"{csv.stem}_images", key)
    marker = folder / ".kagglekit-pixels"
    paths = [folder / f"{_safe_name(i)}.png" for i in ids]
    if not (marker.is_file() and marker.read_text() == key and all(p.is_file() for p in paths)):
        values = frame[pixels].to_numpy()
        if values.min() < 0 or values.max() > 255:
            raise LayoutError(f"{csv} has pixel values outside 0..255 ({values.min()}..{values.max()}); rescale them first.")
        values = values.astype("uint8").reshape((len(frame), *shape))
        from tqdm.auto import tqdm

        for path, pic in zip(tqdm(paths, desc=f"writing {csv.name} images", unit="img", leave=False), values):
            with atomic_open(path, "wb", encoding=None, durable=False) as fh:  # one sync below, not one per image
                Image.fromarray(pic).save(fh, format="PNG")
        os.sync()
        marker.write_text(key)
    labels = [str(v) for v in frame[label_col]] if labelled else None
    table = LabelTable.from_records(ids, [str(p) for p in paths], labels,
                                    classes=None if labelled else (), multilabel=False)
    return table.validate(check_files=False, require_all_classes=False)


# --------------------------------------------------------------------------- writers
_MODES = ("symlink", "hardlink", "copy")


def _safe_name(text: str) -> str:
    return re.sub(r"[\\/:*?\"<>|\x00]", "__", text)


def _place(source: str, target: Path, mode: str) -> bool:
    """Create `target` from `source` unless it is already right; return True when something was written."""
    if os.path.lexists(target):
        if os.path.islink(target):
            if mode == "symlink" and os.readlink(target) == source:
                return False
        elif os.path.samefile(target, source):
            return False  # the source itself, or a hard link to it
        elif mode == "copy":
            s, t = os.stat(source), os.stat(target)
            if s.st_size == t.st_size and int(s.st_mtime) == int(t.st_mtime):
                return False
    tmp = target.with_name(f".{target.name}.kk-part")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        if mode == "symlink":
            os.symlink(source, tmp)
        elif mode == "hardlink":
            os.link(source, tmp)
        else:
            shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        other = "mode='copy'" if mode != "copy" else "another out_dir"
        raise LayoutError(
            f"Cannot create {target} as a {mode} of {source} ({exc.strerror or exc}). "
            f"Try {other} (hard links need the same file system; symlinks may be disabled)."
        ) from None
    return True


def write_class_folders(
    table: LabelTable, out_dir: str | os.PathLike, mode: str = "symlink", progress: bool = True
) -> LabelTable:
    """Return the table of the files written as ``out_dir/<class>/<id><ext>`` (one folder per class).

    Symlinks by default (absolute targets), hard links or copies on request. The source files
    are never modified; files already right are left alone, so re-running is idempotent.
    Reading the result back with ``from_folders(out_dir, ids="stem")`` gives the same ids and
    labels. Multi-label and unlabelled tables are refused (a file can sit in one folder only).
    """
    if mode not in _MODES:
        raise ConfigError(f"mode={mode!r} is not supported; use one of {_MODES}.")
    if table.multilabel:
        raise LayoutError(
            "A multi-label table cannot be written as class folders (an image would need several folders). "
            "Write it with write_multihot_csv(table, path) instead."
        )
    unlabelled_ids = [i for i, x in zip(table.ids, table.labels) if len(x) != 1]
    if unlabelled_ids:
        raise LayoutError(
            f"{len(unlabelled_ids)} rows have no label, so they have no class folder: {list_offenders(unlabelled_ids)}. "
            "Write only labelled tables."
        )
    bad = [c for c in table.classes if c in ("", ".", "..") or "/" in c or "\\" in c or "\x00" in c]
    if bad:
        raise LayoutError(f"Class names {list_offenders(bad)} cannot be folder names. Rename them (from_filenames(mapping=...)).")
    table.validate(check_files=True, require_all_classes=False)
    out_dir = Path(out_dir).absolute()
    sources = {os.path.realpath(p) for p in table.paths}
    rows = []
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    items = list(zip(table.ids, table.paths, table.labels))
    iterator = tqdm(items, desc="class folders", unit="file", disable=not progress or len(items) < 1000) if tqdm else items
    made = set()
    for image_id, source, labels in iterator:
        folder = out_dir / labels[0]
        if labels[0] not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(labels[0])
        source = os.path.abspath(source)
        target = folder / (_safe_name(image_id) + os.path.splitext(source)[1])
        if os.path.realpath(target) in sources and not os.path.islink(target) and not os.path.samefile(target, source):
            raise LayoutError(
                f"Writing {target} would overwrite the source image {target} of another row. "
                "Choose an out_dir outside the source folders."
            )
        _place(source, target, mode)
        rows.append((image_id, str(target), labels))
    return LabelTable.from_records(*zip(*rows), classes=table.classes, multilabel=False)


def write_multihot_csv(
    table: LabelTable,
    path: str | os.PathLike,
    wide: bool = False,
    id_col: str = "image",
    label_col: str = "labels",
    sep: str = " ",
) -> Path:
    """Return `path` after writing the labels atomically as ``image,labels`` (space-separated) or, with `wide`, ``image,<class>...`` 0/1 columns.

    Both forms read back with `from_csv` (the wide form needs no arguments).
    """
    table._check_vocabulary()
    if wide:
        clash = [c for c in table.classes if c == id_col]
        if clash:
            raise LayoutError(f"A class is named {id_col!r} like the id column; pass id_col= another name.")
        frame = pd.DataFrame(table.targets("multihot").astype("int8"), columns=list(table.classes))
        frame.insert(0, id_col, table.ids)
    else:
        bad = [c for c in table.classes if sep in c]
        if bad:
            raise LayoutError(f"Class names {list_offenders(bad)} contain the separator {sep!r}; pass wide=True or another sep.")
        frame = pd.DataFrame({id_col: table.ids, label_col: [sep.join(x) for x in table.labels]})
    with atomic_open(path) as fh:
        frame.to_csv(fh, index=False)
    return Path(path)


# --------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class Reader:
    """One reader call: the function name in `kagglekit.layout` and its keyword arguments."""

    function: str
    kwargs: dict = field(default_factory=dict)

    def read(self) -> LabelTable:
        """Return the table this call reads."""
        return globals()[self.function](**self.kwargs)

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


# --------------------------------------------------------------------------- splits
def _check_fraction(value: float | int, name: str, total: int) -> int:
    """Return `value` (a float fraction in (0, 1) or an int count) as a count in [1, total - 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}={value!r} must be a fraction in (0, 1) or a whole number of images.")
    if isinstance(value, (float, np.floating)):
        if not 0 < value < 1:
            raise ConfigError(f"{name}={value} is not a fraction in (0, 1); e.g. {name}=0.2 (or an int count of images).")
        count = int(round(float(value) * total))
    else:
        count = int(value)
    if not 1 <= count <= total - 1:
        raise ConfigError(
            f"{name}={value} gives {count} of {total} images; each side needs at least one image. "
            f"Use a fraction in (0, 1) or a count between 1 and {total - 1}."
        )
    return count


def _labelled_or_error(table: LabelTable, what: str) -> None:
    if len(table) < 2:
        raise TableError(f"The table has {len(table)} images; {what} needs at least 2.")


def _single_label_split(table: LabelTable, n_valid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    y = np.array([x[0] if x else "" for x in table.labels], dtype=object)
    counts = pd.Series(y).value_counts()
    singles = counts[counts < 2].index.tolist()
    rows = np.arange(len(table))
    keep_train = rows[np.isin(y, singles)]
    rest = rows[~np.isin(y, singles)]
    if singles:
        warnings.warn(
            f"{len(singles)} classes have a single image, so they cannot appear on both sides of the split: "
            f"{list_offenders(sorted(singles, key=natural_key))}. Their images stay in train; add images to validate them.",
            stacklevel=3,
        )
    n_classes = len(set(y[rest]))
    if len(rest) < 2 or n_valid > len(rest) - n_classes or n_valid < n_classes:
        raise TableError(
            f"A stratified split of {len(rest)} images in {n_classes} classes needs between {n_classes} and "
            f"{max(len(rest) - n_classes, 0)} validation images, not {n_valid}. Change valid= (or add images)."
        )
    train, valid = train_test_split(rest, test_size=n_valid, random_state=seed, stratify=y[rest])
    return np.sort(np.concatenate([train, keep_train])), np.sort(valid)


def _multilabel_split(
    table: LabelTable, n_valid: int, seed: int, both_sides: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    y = table.targets("multihot").astype(np.uint8)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
    train, valid = next(splitter.split(np.zeros((len(y), 1)), y))
    side = np.zeros(len(y), dtype=bool)  # True = valid
    side[valid] = True
    rng = np.random.default_rng(seed)
    if both_sides:
        _fix_sides(y, side, rng)
    _resize_side(y, side, n_valid, rng)
    rows = np.arange(len(y))
    return rows[~side], rows[side]


def _safe_rows(y: np.ndarray, rows: np.ndarray, counts: np.ndarray, totals: np.ndarray, fixing: int = -1) -> np.ndarray:
    """Return the `rows` that can leave their side: each of their labels (but `fixing`) keeps an image there.

    Among those, only the rows with the fewest labels (they disturb the balance least).
    """
    fragile = (counts <= 1) & (totals >= 2)
    if fixing >= 0:
        fragile[fixing] = False
    ok = rows[~y[np.ix_(rows, np.flatnonzero(fragile))].any(axis=1)] if fragile.any() else rows
    if not len(ok):
        return ok
    n_labels = y[ok].sum(axis=1)
    return ok[n_labels == n_labels.min()]


def _fix_sides(y: np.ndarray, side: np.ndarray, rng: np.random.Generator) -> None:
    """Swap images (in place) so every label with >= 2 images is on both sides, keeping the side sizes.

    The library's iterative stratification usually gets there alone; this catches the rest.
    """
    totals = y.sum(axis=0)
    for _ in range(2 * y.shape[1] + 10):
        in_valid = y[side].sum(axis=0)
        in_train = totals - in_valid
        lacking = [(j, True) for j in np.flatnonzero((totals >= 2) & (in_valid == 0))]
        lacking += [(j, False) for j in np.flatnonzero((totals >= 2) & (in_train == 0))]
        if not lacking:
            return
        label, to_valid = lacking[0]
        source_counts, dest_counts = (in_train, in_valid) if to_valid else (in_valid, in_train)
        donors = np.flatnonzero((y[:, label] == 1) & (side != to_valid))
        pool = _safe_rows(y, donors, source_counts, totals, fixing=label)
        pool = pool if len(pool) else donors
        donor = pool[int(rng.integers(len(pool)))]
        side[donor] = to_valid
        # Send one image back the other way so both sides keep their size.
        dest_counts = dest_counts + y[donor]
        back = np.flatnonzero((side == to_valid) & (y[:, label] == 0))
        pool = _safe_rows(y, back, dest_counts, totals)
        if len(pool):
            side[pool[int(rng.integers(len(pool)))]] = not to_valid


def _resize_side(y: np.ndarray, side: np.ndarray, n_valid: int, rng: np.random.Generator) -> None:
    """Move images (in place) until `n_valid` are on the valid side; the library can miss by a few with rare labels.

    Only images whose labels all keep an image on the side they leave are moved, fewest labels first.
    """
    totals = y.sum(axis=0)
    for _ in range(len(y)):
        excess = int(side.sum()) - n_valid
        if excess == 0:
            return
        leaving = excess > 0  # True: move valid -> train
        counts = y[side].sum(axis=0) if leaving else totals - y[side].sum(axis=0)
        pool = _safe_rows(y, np.flatnonzero(side == leaving), counts, totals)
        if not len(pool):
            return
        side[pool[int(rng.integers(len(pool)))]] = not leaving


def split(table: LabelTable, valid: float | int = 0.2, seed: int = 0) -> tuple[LabelTable, LabelTable]:
    """Return (train, valid) tables, stratified by class (iterative stratification for multi-label).

    Args:
        table: the labelled table.
        valid: the validation share, a fraction in (0, 1) or a number of images.
        seed: the random seed; the same seed gives the same split.

    Single-label classes with one image stay in train (with a warning). In multi-label
    tables every label with at least 2 images appears on both sides. Rows keep their
    original order within each side; both sides keep the full class vocabulary.
    """
    _labelled_or_error(table, "a split")
    n_valid = _check_fraction(valid, "valid", len(table))
    if table.multilabel:
        train, held = _multilabel_split(table, n_valid, seed)
    elif all(len(x) == 1 for x in table.labels):
        train, held = _single_label_split(table, n_valid, seed)
    else:
        unl = [i for i, x in zip(table.ids, table.labels) if len(x) != 1]
        if len(unl) != len(table):
            raise TableError(
                f"{len(unl)} rows have no label in a single-label table: {list_offenders(unl)}. Drop or label them before splitting."
            )
        order = np.random.default_rng(seed).permutation(len(table))
        held, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    return table.take(train), table.take(held)


def sample(table: LabelTable, n: int | None = None, frac: float | None = None, seed: int = 0) -> LabelTable:
    """Return a stratified random subset of `n` images or a `frac` share, for quick experiments.

    Single-label: each class gets its share (largest remainders), and at least one image
    when `n` is at least the number of classes. Multi-label: iterative stratification.
    Rows keep their original order; the vocabulary is kept.
    """
    if (n is None) == (frac is None):
        raise ConfigError("Pass exactly one of n= (a number of images) or frac= (a fraction in (0, 1]).")
    total = len(table)
    if frac is not None:
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise ConfigError(f"frac={frac!r} must be a fraction in (0, 1]; e.g. frac=0.1.")
        n = max(1, int(round(frac * total)))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= total:
        raise ConfigError(f"n={n!r} must be a whole number of images between 1 and {total}.")
    if n == total:
        return table.take(np.arange(total))
    rng = np.random.default_rng(seed)
    if table.multilabel:
        if n == 1:
            return table.take([int(rng.integers(total))])
        return table.take(_multilabel_split(table, n, seed, both_sides=False)[1])
    y = np.array([x[0] if x else "" for x in table.labels], dtype=object)
    groups = {c: np.flatnonzero(y == c) for c in sorted(set(y), key=natural_key)}
    shares = {c: n * len(rows) / total for c, rows in groups.items()}
    quota = {c: int(np.floor(s)) for c, s in shares.items()}
    if n >= len(groups):
        for c in quota:
            quota[c] = max(quota[c], 1)
    left = n - sum(quota.values())
    by_remainder = sorted(groups, key=lambda c: (-(shares[c] - np.floor(shares[c])), natural_key(c)))
    step = 1 if left >= 0 else -1
    candidates = by_remainder if left >= 0 else sorted(groups, key=lambda c: (-quota[c], natural_key(c)))
    k = 0
    while left != 0:
        c = candidates[k % len(candidates)]
        if (step > 0 and quota[c] < len(groups[c])) or (step < 0 and quota[c] > 1):
            quota[c] += step
            left -= step
        k += 1
    picked = [rng.choice(groups[c], size=quota[c], replace=False) for c in groups if quota[c]]
    return table.take(np.sort(np.concatenate(picked)))


def split_arrays(x: np.ndarray, y: np.ndarray, valid: float, seed: int = 0) -> tuple[tuple, tuple]:
    """Return ((x_train, y_train), (x_valid, y_valid)): `valid` of the rows held out, stratified by y when single-label."""
    from sklearn.model_selection import train_test_split

    x, y = np.asarray(x), np.asarray(y)
    xt, xv, yt, yv = train_test_split(x, y, test_size=valid, random_state=seed, stratify=y if y.ndim == 1 else None)
    return (xt, yt), (xv, yv)
