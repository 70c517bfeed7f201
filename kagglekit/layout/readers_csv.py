"""CSV readers: label CSVs (`from_csv`: narrow, tags, wide one-hot) and id lists (`from_ids`: test.csv, a sample submission).

Column choice is by evidence: the id column is the one whose values name image files
(with or without extension), not a name guess alone (Humpback Whale's ``Image,Id``
resolves to ``Image``); single- versus multi-label is inferred by `infer.label_kind`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..errors import ConfigError, LayoutError, list_offenders
from ..logs import logger
from ..table import LabelTable
from .infer import Guess, label_kind, wide_kind
from .readers import (IMAGE_EXTENSIONS, _resolve_paths, _strip_ext, _walk_images, attach_groups, csv_dialect,
                      read_label_frame)

_ID_NAMES = ("id", "image_id", "imageid", "image", "image_name", "imagename", "id_code", "file", "filename",
             "file_name", "fname", "img", "image_path", "path", "name")
_LABEL_NAMES = ("label", "labels", "tags", "tag", "class", "classes", "classname", "class_name", "category", "label_id",
                "labelid", "target", "breed", "species", "diagnosis", "level", "landmark_id", "y")
GROUP_NAMES = ("subject", "driver", "patient", "patient_id", "patientid", "group", "groups", "study", "study_id",
               "individual", "source", "site")


def _find_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


# Cells pandas reads as NaN by default that no competition uses as a class name: a label missing, not a class.
MISSING_TEXT = frozenset({"NaN", "nan", "-nan", "NA", "N/A", "n/a", "#N/A", "#NA", "<NA>", "NULL", "null"})


def _refuse_missing(csv: Path, label_col: str, rows: list[tuple[str, str]]) -> None:
    """Raise `LayoutError` naming the rows (id, cell) of `csv` whose label is missing (empty, NaN, NA, ...), if any."""
    if not rows:
        return
    shown = [f"{i} ({repr(c) if c else 'empty'})" for i, c in rows]
    empty = " (or pass --multilabel when an image may have no label)" if any(c == "" for _, c in rows) else ""
    raise LayoutError(f"{len(rows)} rows of {csv} have no label in column {label_col!r} (empty, or a mark pandas reads "
                      f"as NaN): {list_offenders(shown)}; kagglekit does not take them for a class: fill in their "
                      f"class or drop those rows{empty}.")


def _say_dialect(csv: Path, delimiter: str | None) -> None:
    """Log how `csv` was read when it is not a UTF-8 CSV with commas (its encoding, its delimiter)."""
    encoding, found, said = csv_dialect(csv)
    if delimiter is not None and delimiter != found:
        said = "; ".join(p for p in said.split("; ") if "separated" not in p)
    if said:
        hint = "; pass delimiter= (recipe: layout.args) to read it otherwise" if "separated" in said else ""
        logger.info("%s: %s (detected from the file%s)", csv.name, said, hint)


def _default_images(source: Path) -> Path:
    """Return the image folder beside a CSV: named like it (``train.csv`` → ``train/``), else a usual train folder."""
    fallbacks = () if "test" in source.stem.lower() else ("train", "train-jpg", "train_images", "images")
    for name in (source.stem, *fallbacks):
        candidate = source.parent / name
        if candidate.is_dir():
            return candidate
    return source.parent / source.stem


def file_keys(folders: Sequence[Path], recursive: bool = False) -> set[str]:
    """Return the image file names and stems found in `folders` (what an id column's values may be)."""
    keys: set[str] = set()
    for folder in folders:
        if folder.is_dir():
            for rel in _walk_images(folder, IMAGE_EXTENSIONS, recursive):
                name = rel.rsplit("/", 1)[-1]
                keys.update((name, _strip_ext(name)))
    return keys


def choose_id_column(frame: pd.DataFrame, keys: set[str], where: str, exclude: Sequence[str] = ()) -> Guess:
    """Return a `Guess` naming the column whose values name image files (`keys`: names and stems), with the share matched.

    Ties go to the column with more distinct values, then to a usual id name. Without a
    matching column the usual names decide (``sure=False``).
    """
    columns = [c for c in frame.columns if c not in exclude]
    head = frame.head(500)
    scored = []
    for c in columns:
        values = head[c].str.strip()
        share = float(values.isin(keys).mean()) if keys and len(values) else 0.0
        unique = values.nunique() / max(1, len(values))
        pref = -(_ID_NAMES.index(c.strip().lower())) if c.strip().lower() in _ID_NAMES else -len(_ID_NAMES)
        scored.append((round(share, 2), unique, pref, c))
    if scored:
        share, _, _, best = max(scored)
        if share >= 0.5:
            return Guess(best, f"the values of {best!r} name image files in {where} ({share:.0%} of rows checked)")
    by_name = _find_column(columns, _ID_NAMES) or (columns[0] if len(columns) == 2 else None)
    if by_name is None:
        return Guess(None, f"no column's values name the image files in {where}, and no column has a usual id name", sure=False)
    return Guess(by_name, f"no column's values name the image files in {where}; {by_name!r} by its name", sure=False)


def wide_label_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Return `columns` when every one holds only 0/1 (a wide one-hot or multi-hot form), else []."""
    if len(columns) < 2:
        return []
    for c in columns:
        if not set(frame[c].str.strip().unique()) <= {"0", "1", "0.0", "1.0"}:
            return []
    return list(columns)


def _wide_labels(csv: Path, frame: pd.DataFrame, ids: list[str], columns: list[str], multilabel: bool | None
                 ) -> tuple[list[tuple[str, ...]], bool]:
    """Return (each row's labels, multilabel) of the wide 0/1 `columns`: the kind inferred when not given, and said.

    Raises LayoutError naming the rows without exactly one 1 when the table is single-label.
    """
    values = frame[columns].apply(lambda s: s.str.strip().map(lambda v: v in ("1", "1.0"))).to_numpy()
    labels = [tuple(c for c, on in zip(columns, row) if on) for row in values]
    if multilabel is None:
        guess = wide_kind([len(x) for x in labels])
        multilabel = bool(guess.value)
        logger.info("%s: %s-label (%s)", csv.name, "multi" if multilabel else "single", guess.reason)
    if not multilabel:
        bad = [i for i, x in zip(ids, labels) if len(x) != 1]
        if bad:
            raise LayoutError(f"{len(bad)} rows of {csv} do not have exactly one 1 in {list_offenders(columns, 6)}: "
                              f"{list_offenders(bad)}. Pass multilabel=True to read them as multi-label.")
    return labels, multilabel


def _cell_labels(csv: Path, frame: pd.DataFrame, ids: list[str], label_col: str, sep: str, multilabel: bool | None
                 ) -> tuple[list[tuple[str, ...]], bool]:
    """Return (each row's labels, multilabel) of column `label_col` (labels split by `sep` when multi-label).

    The kind is inferred when not given, and said; raises LayoutError naming the rows whose label is missing.
    """
    cells = frame[label_col].str.strip()
    if multilabel is None:
        guess = label_kind(cells.tolist(), sep)
        multilabel = bool(guess.value)
        level = logger.info if guess.sure else logger.warning
        level("%s: %s-label (%s)%s", csv.name, "multi" if multilabel else "single", guess.reason,
              "" if guess.sure else "; pass multilabel=True/False to settle it")
    if multilabel:
        labels = [tuple(x.strip() for x in (c.split(sep) if sep else [c]) if x.strip()) for c in cells]
        _refuse_missing(csv, label_col, [(i, t) for i, row in zip(ids, labels) for t in row if t in MISSING_TEXT])
    else:
        _refuse_missing(csv, label_col, [(i, c) for i, c in zip(ids, cells) if c == "" or c in MISSING_TEXT])
        labels = [(c,) for c in cells]
    return labels, multilabel


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
    delimiter: str | None = None,
    label_cols: Sequence[str] | None = None,
    group_col: str | None = None,
) -> LabelTable:
    """Return the table described by a label CSV, with ids turned into image paths.

    Handles ``id,label`` (single label; class names may hold spaces: ``Ankle boot``),
    ``image_name,tags`` (labels separated by `sep`, as in Planet: Amazon) and the wide 0/1
    form (``image,<class1>,<class2>,...``: one-hot is single-label, several 1s multi-label).

    Args:
        csv: the label file.
        images: the folder holding the images; by default the folder named like the CSV
            (``train.csv`` → ``train/``) or ``train/`` beside it.
        id_col: the id column; by default the column whose values name files in `images`
            (``Image`` of Humpback Whale's ``Image,Id``), else a usual name.
        label_col: the label column; by default a usual name (``label``, ``tags``, ...), the
            one column left, or the wide form when all other columns are 0/1.
        ext: extension added to ids (``".jpg"``); by default ids are matched to the files in
            `images` (an id that already names a file is used as is).
        sep: separator between labels of one image (multi-label).
        multilabel: force the kind; by default inferred (`infer.label_kind`: a space inside
            a cell alone does not make a table multi-label) and logged with its reason.
        classes: the vocabulary order; by default the sorted labels seen (the wide columns'
            order for the wide form).
        missing: ``"error"`` or ``"drop"`` for rows whose image is not found.
        delimiter: the CSV column delimiter; by default a comma, or ';', a tab or '|' when the header
            holds no comma but one of them (said; the encoding is detected too: `readers.csv_dialect`).
        label_cols: the wide 0/1 columns, when not all other columns.
        group_col: a column naming each row's group (patient, driver), kept as the table's groups.
    """
    csv = Path(csv)
    if not csv.is_file():
        raise LayoutError(f"No label CSV at {csv}. Pass the path of the CSV that lists ids and labels.")
    frame = read_label_frame(csv, delimiter)
    _say_dialect(csv, delimiter)
    columns = list(frame.columns)
    for name, value in (("id_col", id_col), ("label_col", label_col), ("group_col", group_col), *(("label_cols", c) for c in (label_cols or ()))):
        if value is not None and value not in columns:
            raise LayoutError(f"{csv} has no column {value!r}; its columns are {list_offenders(columns, 12)}. Pass {name}= one of them.")
    folder = Path(images) if images is not None else _default_images(csv)
    if id_col is None:
        guess = choose_id_column(frame, file_keys([folder]), f"{folder.name}/", exclude=[c for c in (label_col, group_col) if c])
        if guess.value is None:
            raise LayoutError(
                f"Cannot tell which column of {csv} holds the image ids (columns: {list_offenders(columns, 12)}). Pass id_col=..."
            )
        id_col = guess.value
        logger.info("%s: ids from column %r (%s)", csv.name, id_col, guess.reason)
    rest = [c for c in columns if c not in (id_col, group_col)]
    wide_columns: list[str] = list(label_cols or [])
    if label_col is None and not wide_columns:
        label_col = _find_column(rest, _LABEL_NAMES)
        if label_col is None and len(rest) == 1:
            label_col = rest[0]
        if label_col is None:
            wide_columns = wide_label_columns(frame, rest)
        if label_col is None and not wide_columns:
            raise LayoutError(
                f"Cannot tell which column of {csv} holds the labels (columns: {list_offenders(columns, 12)}). "
                "Pass label_col=..., or give 0/1 columns for the wide multi-hot form."
            )
    if not len(frame):
        raise LayoutError(f"{csv} has a header but no rows. Check the file.")
    ids = frame[id_col].str.strip().tolist()
    if wide_columns:
        labels, multilabel = _wide_labels(csv, frame, ids, wide_columns, multilabel)
        classes = list(classes) if classes is not None else wide_columns
    else:
        labels, multilabel = _cell_labels(csv, frame, ids, label_col, sep, multilabel)
    paths, kept = _resolve_paths(ids, folder.absolute(), ext, missing, f"{csv.name}")
    groups = [frame[group_col].str.strip().tolist()[i] for i in kept] if group_col else None
    table = LabelTable.from_records(
        [ids[i] for i in kept], paths, [labels[i] for i in kept], classes=classes, multilabel=multilabel, groups=groups
    )
    return table.validate(check_files=False, require_all_classes=False)


def from_ids(
    csv: str | os.PathLike,
    images: str | os.PathLike | Sequence[str | os.PathLike],
    id_col: str | None = None,
    ids: str = "listed",
) -> LabelTable:
    """Return an unlabelled table of the ids listed in a CSV (``test.csv``, a sample submission), found in `images`.

    Args:
        csv: the CSV listing the ids, in the order kept.
        images: the folder (or folders) holding the images; ids are matched with or without
            their extension, so ``abc`` finds ``abc.png`` and ``abc.jpg`` finds itself.
        id_col: the id column; by default the column whose values name the files, else the first.
        ids: ``"listed"`` (as in the CSV), ``"stem"`` (without extension) or ``"name"``
            (with the file's extension): the submission's id convention.
    """
    if ids not in ("listed", "stem", "name"):
        raise ConfigError(f"ids={ids!r} is not supported; use 'listed', 'stem' or 'name'.")
    csv = Path(csv)
    frame = read_label_frame(csv)
    _say_dialect(csv, None)
    folders = [Path(images)] if isinstance(images, (str, os.PathLike)) else [Path(f) for f in images]
    by_key: dict[str, str] = {}
    for folder in folders:
        if not folder.is_dir():
            raise LayoutError(f"The image folder {folder} for {csv.name} does not exist. Pass images=<folder holding the images>.")
        for rel in sorted(_walk_images(folder, IMAGE_EXTENSIONS, False)):
            path = str(folder.absolute() / rel)
            by_key.setdefault(rel, path)
            by_key.setdefault(_strip_ext(rel), path)
    if id_col is None:
        guess = choose_id_column(frame, set(by_key), ", ".join(f"{f.name}/" for f in folders))
        id_col = guess.value if guess.value is not None else frame.columns[0]
    elif id_col not in frame.columns:
        raise LayoutError(f"{csv} has no column {id_col!r}; its columns are {list_offenders(list(frame.columns), 12)}. Pass id_col=.")
    listed = frame[id_col].str.strip().tolist()
    if not listed:
        raise LayoutError(f"{csv} lists no ids. Check the file.")
    paths = [by_key.get(i) for i in listed]
    absent = [i for i, p in zip(listed, paths) if p is None]
    if absent:
        raise LayoutError(f"{len(absent)} of {len(listed)} ids of {csv.name} have no image in "
                          f"{', '.join(str(f) for f in folders)}: {list_offenders(absent)}. Unpack the test images, or pass images=.")
    out = [i if ids == "listed" else (_strip_ext(i) if ids == "stem" else os.path.basename(p)) for i, p in zip(listed, paths)]
    table = LabelTable.from_records(out, paths, None, classes=(), multilabel=False)
    return table.validate(check_files=False, require_all_classes=False)


__all__ = ["GROUP_NAMES", "attach_groups", "choose_id_column", "file_keys", "from_csv", "from_ids", "wide_label_columns"]
