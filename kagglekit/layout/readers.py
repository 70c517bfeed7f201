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
from ..logs import logger
from ..table import IMAGE_EXTENSIONS, LabelTable, natural_key


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
    root = os.path.realpath(folder)
    found, seen_dirs, seen_files, skipped = [], {root}, set(), []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        rel = os.path.relpath(dirpath, folder)
        keep = []
        for d in dirnames:
            if d.startswith((".", "__MACOSX")):
                continue
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen_dirs or root.startswith(real.rstrip(os.sep) + os.sep):  # a loop: read once only
                skipped.append(d if rel == "." else Path(rel, d).as_posix())
                continue
            seen_dirs.add(real)
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            if _is_image(name, extensions):
                real = os.path.realpath(os.path.join(dirpath, name))
                if real not in seen_files:
                    seen_files.add(real)
                    found.append(name if rel == "." else Path(rel, name).as_posix())
    if skipped:
        logger.warning("%s: %d folder links lead back to a folder already read or above it (%s): not followed, "
                       "so each image is read once", folder, len(skipped), list_offenders(skipped, 3))
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
    groups_csv: str | os.PathLike | None = None,
    group_col: str | None = None,
) -> LabelTable:
    """Return a single-label table from class folders ``root/<class>/...`` (with groups when a group CSV is given).

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
        groups_csv, group_col: a CSV naming each image's group (State Farm's
            ``driver_imgs_list.csv``, column ``subject``); see `attach_groups`.
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
    rows = _once_per_file(rows, root)
    if not rows:
        raise LayoutError(
            f"No class folder with images under {root} (found: {list_offenders([e.name for e in entries]) or 'nothing'}). "
            "Expected root/<class>/<image>."
        )
    table = LabelTable.from_records(*zip(*rows), classes=classes, multilabel=False)
    if groups_csv is not None:
        if group_col is None:
            raise ConfigError(f"groups_csv={str(groups_csv)!r} needs group_col= (the column naming each image's group).")
        table = attach_groups(table, groups_csv, group_col)
    return table.validate(check_files=False, require_all_classes=False)


def _once_per_file(rows: list[tuple[str, str, tuple[str, ...]]], root: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """Return `rows` (id, path, labels) keeping the first row of each real file (links into other class folders dropped, said)."""
    seen: dict[str, str] = {}
    kept, dropped = [], []
    for row in rows:
        real = os.path.realpath(row[1])
        if real in seen:
            dropped.append(f"{row[0]} (= {seen[real]})")
            continue
        seen[real] = row[0]
        kept.append(row)
    if dropped:
        logger.warning("%s: %d images are links to an image already read in another class folder: %s; each file is "
                       "read once, in its first class folder (remove the links to settle its class)", root,
                       len(dropped), list_offenders(dropped, 3))
    return kept


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
        renamed = [i for i in absent if os.path.splitext(i)[1] and os.path.splitext(i)[0] in by_stem]
        if ext is None and renamed and len(renamed) == len(absent):  # ids a0.jpg, files a0.png: converted images
            there = sorted({os.path.splitext(n)[1] for i in renamed[:50] for n in by_stem[os.path.splitext(i)[0]]})
            hint = (f"Their names are there with another extension ({', '.join(there)}, not "
                    f"{os.path.splitext(renamed[0])[1]}): the images were converted or renamed; give them the names "
                    f"{what} uses, or drop the extension from its ids")
        drop = ", or pass missing='drop' to leave those rows out" if len(absent) < len(ids) else ""
        message = (f"{len(absent)} of {len(ids)} images of {what} are not in {folder}: "
                   f"{list_offenders(absent)}. {hint}{drop}.")
        if missing == "error" or len(absent) == len(ids):
            raise LayoutError(message)
        warnings.warn(f"Dropped {len(absent)} rows whose image is missing: {list_offenders(absent)}.", stacklevel=3)
    return paths, kept



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
    folder: str | os.PathLike | Sequence[str | os.PathLike],
    extensions: Sequence[str] | None = None,
    recursive: bool = False,
    ids: str = "stem",
) -> LabelTable:
    """Return an unlabelled table (e.g. the test images) of the images in `folder` (one folder or several).

    Args:
        folder: the test image folder, or several (Planet: ``test-jpg/`` and
            ``test-jpg-additional/``), read in the order given.
        extensions: image suffixes to read.
        recursive: also read sub-folders.
        ids: ``"stem"`` (``1`` for ``1.jpg``; default) or ``"name"`` (``1.jpg``): the id
            convention of the submission (its sample's id column).
    """
    if ids not in ("stem", "name"):
        raise ConfigError(f"ids={ids!r} is not supported; use 'stem' or 'name' (the file name with its extension).")
    folders = [folder] if isinstance(folder, (str, os.PathLike)) else list(folder)
    rows: list[tuple[str, str]] = []
    for one in folders:
        one = _require_dir(one, "The test image folder", "Pass the folder holding the images to predict.")
        files = sorted(_walk_images(one, _extensions(extensions), recursive), key=natural_key)
        if not files:
            deeper = [] if recursive else sorted({Path(f).parent.name for f in _walk_images(one, _extensions(extensions), True)})
            below = (f" (only in its sub-folders {', '.join(deeper[:5])}{', ...' if len(deeper) > 5 else ''}: is it "
                     "the train folder of class folders?)" if deeper else "")
            raise LayoutError(f"No images in {one}{below}. Pass the folder holding the images to predict.")
        for f in files:
            name = f.rsplit("/", 1)[-1]
            rows.append((_strip_ext(name) if ids == "stem" else name, str(one / f)))
    table = LabelTable.from_records([r[0] for r in rows], [r[1] for r in rows], None, classes=(), multilabel=False)
    return table.validate(check_files=False, require_all_classes=False)


def attach_groups(
    table: LabelTable, groups_csv: str | os.PathLike, group_col: str, id_col: str | None = None, missing: str = "error"
) -> LabelTable:
    """Return `table` with a `group` per row read from `groups_csv` (State Farm's ``driver_imgs_list.csv``).

    Rows are matched by image file name or stem: the CSV's `id_col` (by default the column
    whose values match the most file names of `table`) against each row's path.
    `missing`: ``"error"`` or ``"drop"`` for rows the CSV does not list.
    """
    groups_csv = Path(groups_csv)
    frame = read_label_frame(groups_csv)
    if group_col not in frame.columns:
        raise LayoutError(f"{groups_csv} has no column {group_col!r}; its columns are {list_offenders(list(frame.columns), 12)}. "
                          "Pass group_col= one of them.")
    names = [os.path.basename(p) for p in table.paths]
    keys = set(names) | {_strip_ext(n) for n in names}
    if id_col is None:
        scores = {c: frame[c].str.strip().isin(keys).mean() for c in frame.columns if c != group_col}
        id_col = max(scores, key=scores.get) if scores else None
        if id_col is None or scores[id_col] == 0:
            raise LayoutError(f"No column of {groups_csv} names the images of the table (columns: {list(frame.columns)}). "
                              "Pass id_col= the column of image names.")
    lookup: dict[str, str] = {}
    for key, group in zip(frame[id_col].str.strip(), frame[group_col].str.strip()):
        lookup[key] = group
        lookup.setdefault(_strip_ext(os.path.basename(key)), group)
    groups = [lookup.get(n, lookup.get(_strip_ext(n))) for n in names]
    absent = [i for i, g in zip(table.ids, groups) if g is None]
    if absent:
        if missing != "drop" or len(absent) == len(table):
            raise LayoutError(f"{len(absent)} of {len(table)} images are not listed in {groups_csv} (column {id_col!r}): "
                              f"{list_offenders(absent)}. Complete the file, or pass group_col=None to split without groups.")
        keep = [k for k, g in enumerate(groups) if g is not None]
        warnings.warn(f"Dropped {len(absent)} rows without a group in {groups_csv.name}: {list_offenders(absent)}.", stacklevel=2)
        return table.take(keep).with_groups([groups[k] for k in keep])
    return table.with_groups(groups)


# Delimiters a label CSV may use instead of commas (spreadsheets in many locales write ';'), in the order tried.
OTHER_DELIMITERS = (";", "\t", "|")


def csv_dialect(csv: str | os.PathLike) -> tuple[str, str, str]:
    """Return (encoding, delimiter, what differs from a UTF-8 comma CSV, or "") of the CSV at `csv`, from its first bytes.

    Encodings: a BOM says UTF-8, UTF-16 or UTF-32; NUL bytes without one say UTF-16; text that is
    not UTF-8 is read as Latin-1 (every byte is a character), and said. The delimiter is a comma
    unless the header holds none and holds ';', a tab or '|'.
    """
    import codecs

    with open(csv, "rb") as fh:
        raw = fh.read(65536)
    said = []
    boms = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
            (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    encoding = next((enc for bom, enc in boms if raw.startswith(bom)), None)
    if encoding is None and b"\x00" in raw[:200]:
        encoding = "utf-16-le" if raw[1:200:2].count(0) > raw[0:200:2].count(0) else "utf-16-be"
    if encoding is None:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(raw, final=len(raw) < 65536)
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "latin-1"
            said.append("not UTF-8, read as Latin-1")
    elif encoding != "utf-8-sig":
        said.append(f"encoded in {encoding.upper().replace('-LE', ' LE').replace('-BE', ' BE')}")
    text = raw.decode(encoding, errors="replace")
    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    delimiter = ","
    if "," not in header:
        delimiter = next((d for d in OTHER_DELIMITERS if d in header), ",")
        if delimiter != ",":
            said.append(f"columns separated by {'a tab' if delimiter == chr(9) else repr(delimiter)}, not commas")
    return encoding, delimiter, "; ".join(said)


def read_label_frame(csv: str | os.PathLike, delimiter: str | None = None, nrows: int | None = None) -> pd.DataFrame:
    """Return the CSV at `csv` as strings (no NaN), or raise `LayoutError` naming the file when it is empty or garbled.

    The encoding and (unless `delimiter` is given) the delimiter are detected (`csv_dialect`).
    """
    csv = Path(csv)
    if not csv.is_file():
        raise LayoutError(f"No CSV at {csv}. Pass the path of the CSV that lists ids and labels.")
    encoding, found, said = csv_dialect(csv)
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, sep=delimiter or found, nrows=nrows, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise LayoutError(f"{csv} is empty (no header, no rows). Download it again, or pass the right file "
                          "(from_csv(csv=...)) or read the layout explicitly.") from None
    except (pd.errors.ParserError, UnicodeError) as exc:
        raise LayoutError(f"{csv} cannot be read as a CSV (read in {encoding} with {delimiter or found!r} between "
                          f"columns: {' '.join(str(exc).split())[:200]}). Download it again, or save it as a UTF-8 CSV "
                          "with commas, or pass delimiter= (a recipe's layout.args) when another character separates "
                          "its columns.") from None
    frame.columns = [str(c).lstrip("\ufeff") for c in frame.columns]
    return frame


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

