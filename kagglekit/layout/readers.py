"""Readers: raw competition files → `LabelTable` (file names, class folders, CSVs, JSON, pixel CSVs, unlabelled).

Each reader returns a `LabelTable`; rows are sorted naturally by file name for
folder-based readers and kept in file order for CSV/JSON readers; paths are absolute.
The small file helpers here (image suffixes, walking folders, safe file names) are
shared with `detect` and `writers`.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, LayoutError, list_offenders
from ..io import atomic_open, default_cache_dir
from ..table import LabelTable, natural_key

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


# --------------------------------------------------------------------------- helpers
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


def _safe_name(text: str) -> str:
    """Return `text` with the characters file names cannot hold replaced by ``__``."""
    return re.sub(r"[\\/:*?\"<>|\x00]", "__", text)


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

