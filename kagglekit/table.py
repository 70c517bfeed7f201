"""`LabelTable`: the one object passed between stages.

Rows are images (`id`, `path`, `labels`); `classes` is the ordered vocabulary.
`labels` always holds a tuple of class names: one name for single-label tables,
any number (zero included) for multi-label ones, and an empty tuple for
unlabelled rows (a test set). Class names are whole strings: spaces are part of
a name ("Ankle boot"), never a separator, once the labels are tuples.

An optional `group` column names the group of each row (a driver, a patient):
`kagglekit.layout.split` keeps every group on one side of a split.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import TableError, list_offenders

_HEADER = "#kagglekit-table "
GROUP_COLUMN = "group"
TARGET_KINDS = ("int", "onehot", "multihot")


def _as_labels(value: object, whole: bool = False) -> tuple[str, ...]:
    """Return `value` as a tuple of class names; a string is split on whitespace unless `whole` (one name: "Ankle boot")."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        if whole:
            return (value.strip(),) if value.strip() else ()
        return tuple(value.split())
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return tuple(str(v) for v in value)
    return (str(value),)


#: The image files kagglekit reads, by suffix, with the format their content should have: the one extension list.
IMAGE_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".png": "PNG", ".gif": "GIF", ".bmp": "BMP", ".dib": "BMP", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF",
}
IMAGE_EXTENSIONS = frozenset(IMAGE_FORMATS)


def is_number(text: object) -> bool:
    """Return whether `text` reads as a number (``3``, ``0.5``, ``1e-3``, ``nan``): the one number test."""
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def is_int(text: object) -> bool:
    """Return whether `text` reads as a whole number (``3``, ``3.0``)."""
    try:
        return float(text) == int(float(text))
    except (TypeError, ValueError, OverflowError):
        return False


def natural_key(name: str) -> tuple:
    """Return a sort key that orders names as people read them: numbers by value, digit runs as numbers.

    The one key order of kagglekit (class vocabularies, file names, ids). A name that is
    a finite number (``"-1"``, ``"0.5"``, ``"2"``, ``"10"``) sorts by its value, before every
    other name; in other names each run of digits compares as a number (``cat.2`` before
    ``cat.10``, ``class2`` before ``class10``) and the rest as text. The name itself breaks
    ties (``cat.02`` / ``cat.2``), so the order never depends on the input order.
    """
    try:
        value = float(name)
    except ValueError:
        value = math.nan
    if math.isfinite(value):
        return (0, value, name)
    parts = re.split(r"(\d+)", name)
    return (1, tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name)


class LabelTable:
    """A table of images and their labels, with an ordered class vocabulary.

    Args:
        frame: a DataFrame with columns `id`, `path` and `labels` (`labels` may
            hold tuples of class names, space-separated strings or scalars; with
            ``multilabel=False`` a string is one whole class name: "Ankle boot").
        classes: the ordered vocabulary; by default the sorted set of labels seen
            (numeric names sorted as numbers).
        multilabel: whether rows may carry several labels; by default True when
            any row has more (or fewer) than one label.

    The frame may carry a `group` column (strings; one group per row), kept by
    `take`, `with_classes`, `to_csv` and `read_csv`.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        classes: Sequence[str] | None = None,
        multilabel: bool | None = None,
    ) -> None:
        missing = [c for c in ("id", "path", "labels") if c not in frame.columns]
        if missing:
            raise TableError(
                f"The table has no column {missing}; it needs 'id', 'path' and 'labels' "
                f"(got {list(frame.columns)}). Build it with kagglekit.layout readers or "
                "LabelTable.from_records(ids, paths, labels)."
            )
        frame = frame.reset_index(drop=True).copy()
        frame["id"] = frame["id"].astype(str)
        frame["path"] = frame["path"].astype(str)
        frame["labels"] = [_as_labels(v, whole=multilabel is False) for v in frame["labels"]]
        if GROUP_COLUMN in frame.columns:
            frame[GROUP_COLUMN] = frame[GROUP_COLUMN].astype(str)
        seen = sorted({name for labels in frame["labels"] for name in labels}, key=natural_key)
        self.classes: tuple[str, ...] = tuple(str(c) for c in classes) if classes is not None else tuple(seen)
        if len(set(self.classes)) != len(self.classes):
            dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
            raise TableError(f"The class vocabulary repeats {list_offenders(dupes)}; give each class once.")
        if multilabel is None:
            labelled = [labels for labels in frame["labels"] if labels]
            multilabel = any(len(labels) != 1 for labels in labelled) if labelled else False
        self.multilabel: bool = bool(multilabel)
        self.frame: pd.DataFrame = frame[["id", "path", "labels"] + [c for c in frame.columns if c not in ("id", "path", "labels")]]
        self._index = {name: i for i, name in enumerate(self.classes)}

    # ------------------------------------------------------------------ build
    @classmethod
    def from_records(
        cls,
        ids: Iterable[object],
        paths: Iterable[object],
        labels: Iterable[object] | None = None,
        classes: Sequence[str] | None = None,
        multilabel: bool | None = None,
        groups: Iterable[object] | None = None,
    ) -> "LabelTable":
        """Return a table from parallel sequences of ids, paths, labels and (optionally) groups."""
        ids, paths = list(ids), [str(p) for p in paths]
        labels = list(labels) if labels is not None else [()] * len(ids)
        if not (len(ids) == len(paths) == len(labels)):
            raise TableError(
                f"ids, paths and labels must have the same length (got {len(ids)}, {len(paths)}, {len(labels)})."
            )
        frame = pd.DataFrame({"id": ids, "path": paths, "labels": labels})
        if groups is not None:
            groups = [str(g) for g in groups]
            if len(groups) != len(ids):
                raise TableError(f"groups has {len(groups)} values for {len(ids)} rows; give one group per row.")
            frame[GROUP_COLUMN] = groups
        return cls(frame, classes=classes, multilabel=multilabel)

    # --------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        kind = "multi-label" if self.multilabel else "single-label"
        return f"LabelTable({len(self)} images, {len(self.classes)} classes, {kind})"

    @property
    def ids(self) -> list[str]:
        """Return the image ids, in row order."""
        return self.frame["id"].tolist()

    @property
    def paths(self) -> list[str]:
        """Return the image paths, in row order."""
        return self.frame["path"].tolist()

    @property
    def labels(self) -> list[tuple[str, ...]]:
        """Return each row's labels as a tuple of class names (empty for unlabelled rows)."""
        return self.frame["labels"].tolist()

    @property
    def groups(self) -> list[str] | None:
        """Return each row's group (driver, patient, ...) as a string, or None when the table has no groups."""
        return self.frame[GROUP_COLUMN].tolist() if GROUP_COLUMN in self.frame.columns else None

    def with_groups(self, groups: Iterable[object] | None) -> "LabelTable":
        """Return the same rows with `groups` (one per row) as their groups; None removes them."""
        frame = self.frame.drop(columns=[GROUP_COLUMN], errors="ignore")
        if groups is not None:
            groups = [str(g) for g in groups]
            if len(groups) != len(frame):
                raise TableError(f"groups has {len(groups)} values for {len(frame)} rows; give one group per row.")
            frame = frame.assign(**{GROUP_COLUMN: groups})
        return LabelTable(frame, self.classes, self.multilabel)

    @property
    def labelled(self) -> bool:
        """Return True when every row carries a label (multi-label rows may have none)."""
        return self.multilabel or all(len(x) > 0 for x in self.frame["labels"])

    def take(self, rows: Sequence[int] | np.ndarray) -> "LabelTable":
        """Return the rows at integer positions `rows`, keeping the vocabulary."""
        return LabelTable(self.frame.iloc[np.asarray(rows, dtype=int)], self.classes, self.multilabel)

    def with_classes(self, classes: Sequence[str]) -> "LabelTable":
        """Return the same rows with another (e.g. a training) vocabulary."""
        return LabelTable(self.frame, classes, self.multilabel)

    def counts(self) -> pd.Series:
        """Return the number of images per class, in vocabulary order."""
        counts = dict.fromkeys(self.classes, 0)
        for labels in self.frame["labels"]:
            for name in labels:
                if name in counts:
                    counts[name] += 1
        return pd.Series(counts, name="images", dtype=int)

    # -------------------------------------------------------------- targets
    def targets(self, kind: str = "auto") -> np.ndarray:
        """Return the labels as `int` indices, `onehot` or `multihot` float32 rows.

        `auto` gives `multihot` for multi-label tables and `int` otherwise.
        """
        if kind == "auto":
            kind = "multihot" if self.multilabel else "int"
        if kind not in TARGET_KINDS:
            raise TableError(f"Unknown target kind {kind!r}; use one of {TARGET_KINDS} or 'auto'.")
        self._check_vocabulary()
        if kind == "multihot":
            out = np.zeros((len(self), len(self.classes)), dtype="float32")
            for row, labels in enumerate(self.frame["labels"]):
                for name in labels:
                    out[row, self._index[name]] = 1.0
            return out
        if self.multilabel:
            raise TableError(
                f"This table is multi-label, so its targets cannot be {kind!r}; use targets('multihot')."
            )
        unlabelled = [i for i, labels in zip(self.ids, self.frame["labels"]) if len(labels) != 1]
        if unlabelled:
            raise TableError(
                f"{len(unlabelled)} rows have no label, so the table has no {kind!r} targets: "
                f"{list_offenders(unlabelled)}. Drop them or label them."
            )
        index = np.array([self._index[labels[0]] for labels in self.frame["labels"]], dtype="int32")
        if kind == "int":
            return index
        return np.eye(len(self.classes), dtype="float32")[index]

    # ----------------------------------------------------------- validation
    def _check_vocabulary(self) -> None:
        unknown = sorted({n for labels in self.frame["labels"] for n in labels if n not in self._index}, key=natural_key)
        if unknown:
            rows = [i for i, labels in zip(self.ids, self.frame["labels"]) if any(n not in self._index for n in labels)]
            raise TableError(
                f"Labels outside the class vocabulary: {list_offenders(unknown)} "
                f"(in rows {list_offenders(rows, 3)}). Add them to `classes` or fix the labels."
            )

    def validate(self, check_files: bool = True, require_all_classes: bool = True) -> "LabelTable":
        """Return self after checking ids, labels, the vocabulary and (optionally) files.

        Raises TableError naming the first few offenders and their count.
        """
        if len(self) == 0:
            raise TableError("The table is empty: no images were found. Check the folder or the pattern.")
        dupes = self.frame["id"][self.frame["id"].duplicated(keep=False)].unique().tolist()
        if dupes:
            raise TableError(
                f"{len(dupes)} ids appear more than once: {list_offenders(dupes)}. Ids must be unique; "
                "drop the duplicates or build ids from the full relative path."
            )
        self._check_vocabulary()
        if not self.multilabel:
            bad = [i for i, labels in zip(self.ids, self.frame["labels"]) if len(labels) > 1]
            if bad:
                raise TableError(
                    f"{len(bad)} rows have several labels in a single-label table: {list_offenders(bad)}. "
                    "Pass multilabel=True or keep one label per image."
                )
        if require_all_classes and any(self.frame["labels"].map(len)):
            counts = self.counts()
            empty = counts[counts == 0].index.tolist()
            if empty:
                raise TableError(
                    f"{len(empty)} classes have no images: {list_offenders(empty)}. Remove them from `classes` "
                    "or add images (or pass require_all_classes=False for a subset)."
                )
        if check_files:
            missing = [p for p in self.frame["path"] if not os.path.isfile(p)]
            if missing:
                raise TableError(
                    f"{len(missing)} image files do not exist: {list_offenders(missing, 3)}. "
                    "Check the image folder and the id-to-path rule (folder, extension)."
                )
        return self

    # ------------------------------------------------------------------ I/O
    def to_csv(self, path: str | os.PathLike) -> Path:
        """Return the path written: a CSV (id, path, labels[, group]) with the vocabulary in its first line.

        Labels are space-separated, or JSON lists (``["Ankle boot"]``) when a class name holds
        whitespace or is empty, so every name round-trips through `read_csv` whole.
        """
        from .io import atomic_write_text

        names = set(self.classes) | {n for x in self.frame["labels"] for n in x}
        as_json = any(not c or any(ch.isspace() for ch in c) for c in names)
        meta = {"classes": list(self.classes), "multilabel": self.multilabel, "labels": "json" if as_json else "spaces"}
        frame = self.frame.copy()
        frame["labels"] = [json.dumps(list(x)) if as_json else " ".join(x) for x in frame["labels"]]
        text = _HEADER + json.dumps(meta) + "\n" + frame.to_csv(index=False)
        return atomic_write_text(path, text)

    @classmethod
    def read_csv(cls, path: str | os.PathLike) -> "LabelTable":
        """Return the table saved by `to_csv`."""
        path = Path(path)
        if not path.is_file():
            raise TableError(f"No table file at {path}; save one with LabelTable.to_csv(path).")
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
        if not first.startswith(_HEADER):
            raise TableError(
                f"{path} was not written by LabelTable.to_csv (its first line is not the vocabulary). "
                "Read label CSVs with kagglekit.layout.from_csv instead."
            )
        meta = json.loads(first[len(_HEADER):])
        frame = pd.read_csv(path, skiprows=1, dtype={"id": str, "path": str, "labels": str, GROUP_COLUMN: str},
                            keep_default_na=False)
        if meta.get("labels") == "json":
            frame["labels"] = [tuple(json.loads(x)) if x else () for x in frame["labels"]]
        return cls(frame, classes=meta["classes"], multilabel=meta["multilabel"])

    def equals(self, other: "LabelTable") -> bool:
        """Return True when both tables hold the same rows, vocabulary, kind and groups."""
        return (
            self.classes == other.classes
            and self.multilabel == other.multilabel
            and self.groups == other.groups
            and self.frame[["id", "path", "labels"]].reset_index(drop=True).equals(
                other.frame[["id", "path", "labels"]].reset_index(drop=True)
            )
        )
