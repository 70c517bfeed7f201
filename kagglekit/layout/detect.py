"""Detection: which reader (and arguments) reads a competition folder's train table and test images, and what was inferred, why.

`detect` returns a `Layout`: the readers, plus every inferred fact (layout, label kind,
classes, id and label columns, test sources, id convention, groups, positive class)
with its reason, and the ambiguities it could not settle, each naming its override.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from ..errors import ConfigError, LayoutError
from ..logs import logger
from ..table import LabelTable, is_number, natural_key
from .infer import Guess, label_kind, positive_class, wide_kind
from .readers import (
    IMAGE_EXTENSIONS,
    _is_image,
    _pixel_columns,
    _walk_images,
    from_filenames,
    from_folders,
    from_imaterialist_json,
    from_pixel_csv,
    read_label_frame,
    unlabelled,
)
from .readers_csv import GROUP_NAMES, _LABEL_NAMES, _find_column, choose_id_column, file_keys, from_csv, from_ids, wide_label_columns
from .tests_source import TEST_DIRS as _TEST_DIRS, TRAIN_DIRS as _TRAIN_DIRS, Sample, _unwrap, convention, find_test, read_sample

_CSV_NAMES = ("train.csv", "labels.csv", "train_labels.csv", "train_v2.csv", "trainLabels.csv", "train_classes.csv")

# The functions a `Reader` may name (what `detect` emits), by name.
_READERS = {f.__name__: f for f in (from_csv, from_filenames, from_folders, from_ids, from_imaterialist_json, from_pixel_csv, unlabelled)}

# The overrides `detect` accepts: keyword -> the CLI flag / recipe key that sets it.
OVERRIDES = {
    "multilabel": "--multilabel / --single-label (recipe: multilabel = true/false)",
    "positive": "--positive CLASS (recipe: positive = \"CLASS\")",
    "group_col": "--group-col NAME (recipe: group_col = \"NAME\")",
    "id_col": "--id-col NAME (recipe: id_col = \"NAME\")",
    "label_col": "--label-col NAME (recipe: label_col = \"NAME\")",
    "metric": "--metric NAME (recipe: metric = \"NAME\")",
    "id_extension": "--id-extension / --no-id-extension (recipe: id_extension = true/false)",
    "test": "--test FOLDER_OR_CSV (recipe: layout.test = \"FOLDER\")",
    "tag_sep": "--tag-sep SEP (recipe: tag_sep = \",\")",
}


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
        args = ", ".join(f"{k}={v!r}" if isinstance(v, (bool, list)) else f"{k}={str(v)!r}" for k, v in self.kwargs.items())
        return f"kagglekit.layout.{self.function}({args})"


@dataclass(frozen=True)
class Fact:
    """One thing `detect` inferred: its name, value and the reason a user reads."""

    name: str
    value: Any
    reason: str


@dataclass(frozen=True)
class Ambiguity:
    """Something `detect` could not settle from the data: what, the default taken, and the override that settles it."""

    fact: str
    message: str
    override: str  # the `detect` keyword (and recipe key) that settles it: "positive", "multilabel", ...

    @property
    def flag(self) -> str:
        """Return the CLI flag / recipe key text that settles this ambiguity."""
        return OVERRIDES.get(self.override, self.override)

    def __str__(self) -> str:
        return f"{self.fact}: {self.message}; settle it with {self.flag}"


@dataclass(frozen=True)
class Layout:
    """What `detect` found in a competition folder: the readers, the inferred facts (each with its reason) and the ambiguities."""

    directory: Path
    kind: str  # "imaterialist-json" | "csv" | "pixel-csv" | "class-folders" | "filenames"
    train: Reader
    test: Reader | None = None
    valid: Reader | None = None
    notes: tuple[str, ...] = ()
    facts: tuple[Fact, ...] = ()
    ambiguities: tuple[Ambiguity, ...] = ()
    _tables: dict = field(default_factory=dict, compare=False, repr=False)

    def fact(self, name: str) -> Fact | None:
        """Return the fact called `name` (``"label_kind"``, ``"positive"``, ...), or None when it was not inferred."""
        return next((f for f in self.facts if f.name == name), None)

    def _value(self, name: str, default: Any = None) -> Any:
        found = self.fact(name)
        return found.value if found is not None else default

    @property
    def multilabel(self) -> bool | None:
        """Return True for a multi-label train table, False for single-label."""
        return self._value("multilabel")

    @property
    def positive(self) -> str | None:
        """Return the positive class of a binary problem, or None (not binary, or the data cannot tell: see `ambiguities`)."""
        return self._value("positive")

    @property
    def classes(self) -> tuple[str, ...]:
        """Return the train table's class vocabulary."""
        return tuple(self._value("classes", ()))

    @property
    def id_column(self) -> str | None:
        """Return the train CSV's id column (None for folder layouts)."""
        return self._value("id_column")

    @property
    def label_columns(self) -> tuple[str, ...]:
        """Return the train CSV's label column(s) (several for the wide one-hot form)."""
        return tuple(self._value("label_columns", ()))

    @property
    def test_sources(self) -> tuple[str, ...]:
        """Return where the test ids come from (folders, ``test.csv``, ``test.json``, the sample submission)."""
        return tuple(self._value("test_sources", ()))

    @property
    def test_count(self) -> int:
        """Return the number of test images found."""
        return int(self._value("test_count", 0))

    @property
    def id_extension(self) -> bool:
        """Return True when submission (and test table) ids keep the image extension (``abc.jpg``)."""
        return bool(self._value("id_extension", False))

    @property
    def group_column(self) -> str | None:
        """Return the column the train table's groups came from (``subject``), or None."""
        return self._value("group_column")

    @property
    def files_read(self) -> tuple[str, ...]:
        """Return the files (not folders) the readers read and detection consulted, relative to the competition folder."""
        paths = [v for r in (self.train, self.valid, self.test) if r is not None for v in r.kwargs.values()
                 if isinstance(v, (str, os.PathLike))]
        paths += [self.directory / str(f.value) for f in self.facts if f.name in ("sample_submission", "class_names_file")]
        out = []
        for p in map(Path, paths):
            if p.is_file():
                name = str(p.relative_to(self.directory)) if p.is_relative_to(self.directory) else str(p)
                if name not in out:
                    out.append(name)
        return tuple(out)

    def summary(self) -> list[str]:
        """Return the lines a user reads before training (``str(layout)`` is the same text, joined)."""
        lines = [f"{self.directory}: {self.kind} layout", f"  train: {self.train}"]
        if self.valid is not None:
            lines.append(f"  valid: {self.valid}")
        lines.append(f"  test:  {self.test if self.test is not None else 'no test images found'}")
        lines.append(f"  files read: {', '.join(self.files_read) or '-'}")
        for f in self.facts:
            value = (", ".join(map(str, f.value)) or "-") if isinstance(f.value, (list, tuple)) and f.name != "classes" else f.value
            if f.name == "classes":
                value = f"{len(f.value)} ({', '.join(map(str, list(f.value)[:6]))}{', ...' if len(f.value) > 6 else ''})"
            lines.append(f"  {f.name}: {value} ({f.reason})")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  AMBIGUOUS {a}" for a in self.ambiguities]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary())

    def read(self) -> tuple[LabelTable, LabelTable | None]:
        """Return (train table, test table or None); tables `detect` already read are not read again."""
        if "train" not in self._tables:
            self._tables["train"] = self.train.read()
        if "test" not in self._tables:
            self._tables["test"] = self.test.read() if self.test is not None else None
        return self._tables["train"], self._tables["test"]


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


class _Record:
    """Facts and ambiguities gathered while detecting."""

    def __init__(self) -> None:
        self.facts: list[Fact] = []
        self.ambiguities: list[Ambiguity] = []

    def add(self, name: str, value: Any, reason: str) -> None:
        self.facts.append(Fact(name, value, reason))

    def guess(self, name: str, guess: Guess, override: str, message: str | None = None) -> Any:
        self.add(name, guess.value, guess.reason)
        if not guess.sure:
            self.ambiguities.append(Ambiguity(name, message or f"{guess.reason}; taken as {guess.value!r}", override))
        return guess.value


def _bases(directory: Path) -> list[Path]:
    """Return `directory` and the folders inside it that hold a train folder (State Farm's ``imgs/``)."""
    out = [directory]
    for d in sorted(p for p in directory.iterdir() if p.is_dir()):
        if d.name.startswith((".", "__MACOSX")) or d.name in (*_TRAIN_DIRS, *_TEST_DIRS):
            continue
        if any((d / n).is_dir() for n in _TRAIN_DIRS):
            out.append(d)
    return out


def _label_cells_of_sample(sample: Sample | None) -> list[str] | None:
    return list(sample.values) if sample is not None and len(sample.columns) == 2 else None


def _group_file(directory: Path, train_folder: Path, group_col: str | None, skip: Sequence[Path]) -> tuple[Path, str, str] | None:
    """Return (csv, group column, reason) of a CSV naming each train image's group (``driver_imgs_list.csv``), or None."""
    keys = file_keys([train_folder], recursive=True)
    for csv in sorted(directory.glob("*.csv")):
        if csv in skip or csv.name.startswith("sample_submission") or csv.name == "test.csv":
            continue
        frame = read_label_frame(csv)
        guess = choose_id_column(frame, keys, f"{train_folder.relative_to(directory)}/")
        if not guess.sure:
            continue
        rest = [c for c in frame.columns if c != guess.value]
        column = group_col if group_col in rest else _find_column(rest, GROUP_NAMES)
        if column is None:
            continue
        n = frame[column].nunique()
        how = "as asked (group_col)" if group_col else f"its name {column!r} is a usual group name"
        return csv, column, f"{csv.name}: {guess.reason}; column {column!r} ({how}) puts them in {n} groups"
    return None


def detect(
    directory: str | os.PathLike,
    multilabel: bool | None = None,
    positive: str | None = None,
    group_col: str | None = None,
    id_col: str | None = None,
    label_col: str | None = None,
    id_extension: bool | None = None,
    test: str | os.PathLike | None = None,
    tag_sep: str | None = None,
) -> Layout:
    """Return the `Layout` of a competition folder: its readers, the facts inferred (each with its reason) and the ambiguities.

    Recognises, in this order: iMaterialist JSON (``train.json``), a label CSV (``train.csv``,
    ``labels.csv``, ...) with its image folder (also one ``images/`` folder shared with test),
    class folders (``train/<class>/``, also nested: ``imgs/train/c0``) with an optional group
    CSV (``driver_imgs_list.csv``), and labels in file names (``train/cat.1.jpg``). Test images
    come from ``test.json``, ``test.csv``, every ``test*`` folder, or the sample submission's
    ids; test ids follow the sample submission's convention. Zips must be unpacked first.

    Every guess can be overridden (the CLI flag / recipe key is in `OVERRIDES`):

    Args:
        directory: the competition folder.
        multilabel: True / False to settle single- versus multi-label.
        positive: the positive class of a binary problem (the class a probability is of).
        group_col: the column naming each image's group (driver, patient) for group splits.
        id_col, label_col: the train CSV's id and label columns.
        id_extension: True / False: submission ids keep / drop the image extension.
        test: the test images: a folder (relative to `directory` or absolute) or a CSV of ids.
        tag_sep: what separates the tags of one image in a multi-label column (default: a space, or a
            comma when the cells hold tags split by commas: said in the notes).
    """
    directory = Path(directory).absolute()
    if directory.is_file():
        raise LayoutError(f"{directory} is a file, not a competition folder; name the folder holding the competition's "
                          "files (an archive: unpack it first, e.g. kagglekit fetch PATH, or run kagglekit run on it).")
    if not directory.is_dir():
        raise LayoutError(f"The competition folder {directory} does not exist. Fetch it first (kagglekit.sources.fetch).")
    rec, notes = _Record(), []
    sample = read_sample(directory)
    if sample is not None:
        rec.add("sample_submission", sample.path.name, f"{len(sample.ids)} rows, columns {', '.join(sample.columns)}")
    for extra in sorted(directory.glob("*.json")):
        if extra.stem not in ("train", "validation", "test"):
            rec.add("class_names_file", extra.name, "seen; labels are kept as written in the train labels "
                                                    "(the submission uses them), the file only names them")
    found = _train_reader(directory, rec, notes, sample, multilabel, group_col, id_col, label_col, tag_sep)
    kind, train, valid, base, shared, train_ids, test_reader = found  # a _TrainSource
    _no_columns_to_name(kind, directory, id_col=id_col, label_col=label_col)
    train_table = train.read()
    rec.add("train_count", len(train_table), f"rows read by {train.function}")
    rec.add("classes", train_table.classes, f"{len(train_table.classes)} classes seen in the train labels")
    if train_table.groups is not None:
        rec.add("groups", len(set(train_table.groups)), "distinct groups: validation is split by group")
    if multilabel is not None and train_table.multilabel != multilabel and train.function != "from_csv":
        notes.append(f"multilabel={multilabel} does not apply to {train.function}; the table is "
                     f"{'multi' if train_table.multilabel else 'single'}-label")
    keep = (Guess(id_extension, f"set by id_extension={id_extension}") if id_extension is not None
            else convention(sample, train_ids))
    keep_ext = rec.guess("id_extension", keep, "id_extension",
                         f"{keep.reason}; test ids taken {'with' if keep.value else 'without'} the extension")
    if test is not None:
        test_path = Path(test) if Path(test).is_absolute() else directory / test
        if test_path.is_dir():
            test_reader = Reader("unlabelled", {"folder": [str(test_path)], "ids": "name" if keep_ext else "stem"})
        elif test_path.is_file():
            if test_path.suffix.lower() not in (".csv", ".tsv", ".txt"):
                what = "one image" if test_path.suffix.lower() in IMAGE_EXTENSIONS else f"a {test_path.suffix or 'suffix-less'} file"
                raise LayoutError(f"test={str(test)!r} is {what}, not a folder of test images or a CSV of test ids; name "
                                  "the folder holding the test images (or a .csv listing their ids) with --test PATH.")
            images = list(shared) or [f for f in (base / "test", base / "test_images", base / "images") if f.is_dir()]
            test_reader = Reader("from_ids", {"csv": test_path, "images": [str(f) for f in images], "ids": "name" if keep_ext else "stem"})
        else:
            raise LayoutError(f"test={str(test)!r}: no such folder or CSV in {directory}. Name the test image folder or a CSV of test ids.")
        where = Guess([test_path.name + ("/" if test_path.is_dir() else "")], "set by test=")
    elif test_reader is None:
        function, kwargs, where = find_test(directory, base, sample, Guess(keep_ext, ""), list(shared))
        test_reader = Reader(function, kwargs) if function else None
    else:
        where = Guess([test_reader.kwargs.get("json_path", test_reader.kwargs.get("csv", "")).name], "listed there")
    test_table = test_reader.read() if test_reader is not None else None
    rec.add("test_sources", where.value, where.reason)
    if test_table is not None and not where.sure:
        rec.ambiguities.append(Ambiguity("test_sources", f"{where.reason}; taken as the test set", "test"))
    if test_table is None:
        rec.ambiguities.append(Ambiguity("test", "no test images found", "test"))
    else:
        rec.add("test_count", len(test_table), f"test ids as the submission writes them ({'with' if keep_ext else 'without'} extension)")
        if sample is not None and set(sample.ids) != set(test_table.ids):
            missing = len(set(sample.ids) - set(test_table.ids))
            notes.append(f"{sample.path.name} lists {len(sample.ids)} ids, the test images are {len(test_table)}; "
                         f"{missing} sample ids are not among the test ids")
    _positive(rec, train_table, sample, positive)
    layout = Layout(directory, kind, train, test=test_reader, valid=valid, notes=tuple(notes), facts=tuple(rec.facts),
                    ambiguities=tuple(rec.ambiguities))
    layout._tables.update(train=train_table, test=test_table)
    for line in layout.summary():
        logger.debug(line)
    return layout


def _positive(rec: _Record, table: LabelTable, sample: Sample | None, positive: str | None) -> None:
    """Record the positive class of a binary problem (or why there is none)."""
    classes = table.classes
    if positive is not None:
        if positive not in classes:
            raise ConfigError(f"positive={positive!r} is not a class; the classes are {list(classes)[:10]}. Pass one of them.")
        rec.add("positive", positive, "set by positive=")
        return
    if len(classes) != 2 or table.multilabel:
        return
    values = sample.values if sample is not None else ()
    numeric = bool(values) and all(is_number(v) for v in values)
    if sample is not None and not numeric:
        rec.add("positive", None, f"{sample.path.name} names classes, not a probability: no positive class needed")
        return
    label_columns = next((f.value for f in rec.facts if f.name == "label_columns"), ())
    guess = positive_class(classes, tuple(label_columns), sample.columns if sample is not None else (), values)
    rec.guess("positive", guess, "positive", guess.reason)


class _TrainSource(NamedTuple):
    """What reading the train side found: the layout kind, its readers, and what finding the test images needs."""

    kind: str  # "imaterialist-json" | "csv" | "pixel-csv" | "class-folders" | "filenames"
    train: Reader
    valid: Reader | None = None  # the competition's own validation set (iMaterialist's validation.json)
    base: Path | None = None  # the folder the train files sit in
    shared: Sequence[Path] = ()  # image folders train and test share (a CSV layout's one images/ folder)
    train_ids: Sequence[str] = ()  # the train ids, to tell the test ids apart in a shared folder
    test: Reader | None = None  # the test reader when the train side settles it (test.json, test.csv pixels)


def _train_reader(directory: Path, rec: _Record, notes: list[str], sample: Sample | None, multilabel: bool | None,
                  group_col: str | None, id_col: str | None, label_col: str | None, tag_sep: str | None = None):
    """Return the `_TrainSource`: the layout kind, the train (and shipped validation) Reader, and what the test side needs."""
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
        rec.add("reader", "from_imaterialist_json", f"{train_json.name} holds images and annotations")
        rec.add("multilabel", True, "iMaterialist annotations list several label ids per image")
        rec.add("label_columns", ("labelId",), "the annotations' labelId lists")
        return _TrainSource("imaterialist-json", train, valid=valid, base=directory, test=test)

    # 2. A label CSV beside an image folder.
    for base in _bases(directory):
        for name in _CSV_NAMES:
            csv = base / name
            if csv.is_file():
                return _csv_reader(directory, base, csv, rec, notes, sample, multilabel, group_col, id_col, label_col,
                                   tag_sep)

    # 3/4. A train folder: class folders or labels in file names (also one level down: imgs/train/).
    for base in _bases(directory):
        for name in _TRAIN_DIRS:
            folder = _unwrap(base / name)
            if not folder.is_dir():
                continue
            classes = _class_dirs(folder)
            loose = _image_count(folder)
            where = folder.relative_to(directory)
            if classes and not loose:  # one class folder too: read, and refused as one class (kagglekit.preflight)
                kwargs: dict = {"root": folder}
                groups = _group_file(directory, folder, group_col, ())
                if groups is not None:
                    kwargs.update(groups_csv=groups[0], group_col=groups[1])
                    rec.add("group_column", groups[1], groups[2])
                elif group_col is not None:
                    raise LayoutError(f"group_col={group_col!r}: no CSV in {directory} has that column beside the train "
                                      "image names. Check the name, or drop group_col.")
                rec.add("reader", "from_folders", f"{where}/ holds {len(classes)} folders of images and no loose images")
                rec.add("multilabel", False, "class folders: one folder, so one label, per image")
                rec.add("label_columns", (), "labels are the class folder names (kept whole, spaces included)")
                return _TrainSource("class-folders", Reader("from_folders", kwargs), base=base)
            pattern = _filename_pattern(folder) if loose else None
            if pattern is not None:
                notes.append(f"labels taken from file names by {pattern!r}")
                rec.add("reader", "from_filenames", f"the file names in {where}/ start with a label ({pattern!r})")
                rec.add("multilabel", False, "one label per file name")
                rec.add("label_columns", (), "labels are taken from the file names")
                return _TrainSource("filenames", Reader("from_filenames", {"folder": folder, "pattern": pattern}), base=base)

    zips = sorted(p.name for p in directory.glob("*.zip"))
    unpack = f" The zips {', '.join(zips)} are not unpacked; unpack them first (kagglekit.sources.fetch does)." if zips else ""
    raise LayoutError(
        f"Cannot recognise the layout of {directory}. Found: {_found(directory)}.{unpack} "
        "Call a reader explicitly: kagglekit.layout.from_csv(csv, images=folder, id_col=..., label_col=...), "
        "from_folders(train_dir), from_filenames(train_dir, pattern=r'^(cat|dog)\\.'), "
        "from_imaterialist_json(json, images=folder), and unlabelled(test_dir) for the test images."
    )


def _no_columns_to_name(kind: str, directory: Path, **given: str | None) -> None:
    """Raise `LayoutError` when id_col / label_col were given but the labels read come from no label CSV (they would be ignored)."""
    named = {k: v for k, v in given.items() if v is not None}
    if kind == "csv" or not named:
        return
    source = {"class-folders": "class folder names", "filenames": "the file names", "pixel-csv": "a pixel CSV",
              "imaterialist-json": "train.json"}.get(kind, kind)
    flags = " and ".join(f"{OVERRIDES[k].split(' (')[0].split(' ')[0]} {v!r}" for k, v in named.items())
    raise LayoutError(f"{flags} names a column of a train CSV, but the labels of {directory} come from {source}, "
                      f"not a CSV, so it would be ignored; drop {'them' if len(named) > 1 else 'it'}.")


def _csv_reader(directory: Path, base: Path, csv: Path, rec: _Record, notes: list[str], sample: Sample | None,
                multilabel: bool | None, group_col: str | None, id_col: str | None, label_col: str | None,
                tag_sep: str | None = None):
    """Return `_train_reader`'s tuple for a label CSV (pixel CSV included)."""
    frame = read_label_frame(csv)
    if _pixel_columns(frame.columns):
        return _pixel_csv_reader(base, csv, rec, notes)
    candidates = [csv.stem, *_TRAIN_DIRS]
    folders = [_unwrap(base / c) for c in dict.fromkeys(candidates)]
    folders = [f for f in folders if f.is_dir() and _image_count(f, 1)]
    if not folders:
        _no_image_folder(directory, base, csv, candidates)
    columns = list(frame.columns)
    _check_roles(csv, columns, id_col=id_col, label_col=label_col, group_col=group_col)
    keyed = [(f, file_keys([f])) for f in folders]
    if id_col is None:
        head = frame.head(500)
        best = max(keyed, key=lambda fk: max(float(head[c].str.strip().isin(fk[1]).mean()) for c in columns))
        folder = best[0]
        id_col = rec.guess("id_column", choose_id_column(frame, best[1], f"{folder.name}/", exclude=[c for c in (label_col, group_col) if c]),
                           "id_col")
        if id_col is None:
            raise LayoutError(f"Cannot tell which column of {csv} holds the image ids (columns: {', '.join(columns[:12])}). "
                              "Pass id_col=... (detect(..., id_col=) or the recipe's id_col).")
    else:
        folder, keys = max(keyed, key=lambda fk: frame[id_col].str.strip().isin(fk[1]).mean())
        _check_id_column(directory, csv, frame, folder, keys, id_col, [c for c in (label_col, group_col) if c])
        rec.add("id_column", id_col, "set by id_col=")
    rest = [c for c in columns if c != id_col]
    group_col = _group_column(rec, frame, [c for c in rest if c != label_col], group_col)
    rest = [c for c in rest if c != group_col]
    kwargs: dict = {"csv": csv, "images": folder, "id_col": id_col}
    wide: list[str] = []
    label_reason = "set by label_col="
    if label_col is None:
        named = _find_column(rest, _LABEL_NAMES)
        label_col = named or (rest[0] if len(rest) == 1 else None)
        label_reason = (f"column {label_col!r} has a usual label name" if named else
                        f"column {label_col!r} is the only column besides the id" + (" and the group" if group_col else ""))
        wide = [] if label_col else wide_label_columns(frame, rest)
        if label_col is None and not wide:
            if group_col is not None and _find_column([group_col], _LABEL_NAMES) is not None:
                raise LayoutError(f"group_col={group_col!r} names the column that looks like the labels in {csv.name} "
                                  f"(columns: {', '.join(columns[:12])}), so no label column is left: name the group "
                                  "column with --group-col (driver, patient, ...), or the labels with --label-col.")
            raise LayoutError(f"Cannot tell which column of {csv} holds the labels (columns: {', '.join(columns[:12])}). "
                              "Pass label_col=... (detect(..., label_col=) or the recipe's label_col).")
    if wide:
        rec.add("label_columns", tuple(wide), "every column besides the id holds only 0/1: one column per class")
        kwargs["label_cols"] = wide
        on = frame[wide].apply(lambda s: s.str.strip().isin(("1", "1.0"))).sum(axis=1).tolist()
        kind = Guess(multilabel, "set by multilabel=") if multilabel is not None else wide_kind(on)
    else:
        rec.add("label_columns", (label_col,), label_reason)
        kwargs["label_col"] = label_col
        sep = _tag_separator(rec, notes, csv.name, label_col, frame[label_col].tolist(), tag_sep)
        if sep != " ":
            kwargs["sep"] = sep
        cells = [sep.join(t.strip() for t in c.split(sep)) for c in frame[label_col].tolist()] if sep else frame[label_col].tolist()
        kind = (Guess(multilabel, "set by multilabel=") if multilabel is not None
                else label_kind(cells, sep, _label_cells_of_sample(sample)))
    kwargs["multilabel"] = bool(rec.guess("multilabel", kind, "multilabel",
                                          f"{kind.reason}; read as {'multi' if kind.value else 'single'}-label"))
    if group_col is not None:
        kwargs["group_col"] = group_col
    rec.add("reader", "from_csv", f"{csv.relative_to(directory)} names images in {folder.relative_to(directory)}/")
    shared = [folder] if folder.name in ("images", "imgs", "jpg", "jpgs", "all") else []
    train_ids = frame[id_col].str.strip().tolist()
    return _TrainSource("csv", Reader("from_csv", kwargs), base=base, shared=shared, train_ids=train_ids)


def _no_image_folder(directory: Path, base: Path, csv: Path, candidates: list[str]) -> None:
    """Raise `LayoutError` for a label CSV with no image folder beside it (naming class folders, when that is what is there)."""
    zips = [z.name for z in base.glob("*.zip")]
    classed = [f for f in (_unwrap(base / c) for c in dict.fromkeys(candidates)) if f.is_dir() and _class_dirs(f)]
    if classed:
        where, names = classed[0].relative_to(directory), sorted(_class_dirs(classed[0]), key=natural_key)
        raise LayoutError(
            f"{csv.name} was found in {base}, but {where}/ holds class folders ({', '.join(names[:4])}"
            f"{', ...' if len(names) > 4 else ''}), not the images a label CSV names. If the class folders are the "
            f"labels, move {csv.name} out of the folder (or give a recipe: [layout] reader = \"from_folders\", "
            f"args = {{ root = \"{where}\" }}, test = \"TEST FOLDER\"); if {csv.name} holds them, name the image "
            f"folder: kagglekit.layout.from_csv({str(csv)!r}, images=<image folder>).")
    raise LayoutError(
        f"{csv.name} was found in {base} but no image folder beside it "
        f"(looked for {', '.join(c + '/' for c in dict.fromkeys(candidates))})"
        + (f"; unpack {', '.join(zips)} first" if zips else "")
        + f". Call kagglekit.layout.from_csv({str(csv)!r}, images=<image folder>)."
    )


def _check_roles(csv: Path, columns: list[str], **given: str | None) -> None:
    """Raise `LayoutError` when a column named for id_col / label_col / group_col is missing, or two name one column."""
    for key, value in given.items():
        if value is not None and value not in columns:
            raise LayoutError(f"{key}={value!r} is not a column of {csv.name} (columns: {', '.join(columns[:12])}).")
    roles = [(k, v) for k, v in given.items() if v is not None]
    for i, (key, value) in enumerate(roles):
        for other, same in roles[i + 1:]:
            if same == value:
                raise LayoutError(f"{key} and {other} both name column {value!r} of {csv.name}; each names its own "
                                  f"column (columns: {', '.join(columns[:12])}).")


def _check_id_column(directory: Path, csv: Path, frame: Any, folder: Path, keys: set, id_col: str,
                     others: list[str]) -> None:
    """Raise `LayoutError` when none of the given id column's values names an image (naming the column that does)."""
    values = frame[id_col].str.strip()
    stems = values.head(500).str.replace(r"\.[A-Za-z0-9]{2,5}$", "", regex=True)  # another extension: the reader says
    if values.head(500).isin(keys).any() or stems.isin(keys).any():
        return
    guess = choose_id_column(frame, keys, f"{folder.name}/", exclude=others)
    hint = f" (column {guess.value!r} does)" if guess.value is not None and guess.sure and guess.value != id_col else ""
    raise LayoutError(f"id_col={id_col!r}: none of its values ({', '.join(map(repr, values.head(3)))}, ...) names "
                      f"an image in {folder.relative_to(directory)}/{hint}; name the column of {csv.name} that "
                      "holds the image ids with --id-col (recipe: id_col).")


def _pixel_csv_reader(base: Path, csv: Path, rec: _Record, notes: list[str]):
    """Return `_train_reader`'s tuple for a CSV of pixels (and `test.csv` beside it as the test set, when there)."""
    test_csv = base / "test.csv"
    test = Reader("from_pixel_csv", {"csv": test_csv}) if test_csv.is_file() else None
    notes.append("images stored as pixels in CSVs; written once as PNGs beside them")
    rec.add("reader", "from_pixel_csv", f"{csv.name} has pixel0, pixel1, ... columns")
    rec.add("multilabel", False, "a pixel CSV has one label per row")
    rec.add("label_columns", ("label",), "the pixel CSV's label column")
    return _TrainSource("pixel-csv", Reader("from_pixel_csv", {"csv": csv}), base=base, test=test)


def _group_column(rec: _Record, frame: Any, candidates: list[str], given: str | None) -> str | None:
    """Return the group column: `given`, else one of `candidates` with a usual group name whose values repeat (said)."""
    if given is not None:
        rec.add("group_column", given, "set by group_col=")
        return given
    named = _find_column(candidates, GROUP_NAMES)
    if named is not None and frame[named].nunique() < len(frame):
        rec.add("group_column", named, f"column {named!r} has a usual group name and repeats ({frame[named].nunique()} groups)")
        return named
    return None


def _tag_separator(rec: _Record, notes: list[str], name: str, column: str, cells: Sequence[str], given: str | None) -> str:
    """Return what separates the tags of one cell: `given`, else a comma when the cells hold tags split by commas, else a space.

    A comma taken is said in `notes`; commas that do not look like tag separators are an ambiguity.
    """
    if given is not None:
        rec.add("tag_sep", given, "set by tag_sep=")
        return given
    with_commas = sorted({c.strip() for c in cells if "," in c})
    if not with_commas:
        return " "
    guess = label_kind([",".join(t.strip() for t in c.split(",")) for c in cells], ",")
    if guess.value and guess.sure:
        rec.add("tag_sep", ",", f"cells of {column!r} hold tags separated by commas: {guess.reason}")
        notes.append(f"{name}: the tags in column {column!r} are separated by commas (e.g. {with_commas[0]!r}): "
                     f"{guess.reason}; --tag-sep sets another separator")
        return ","
    rec.ambiguities.append(Ambiguity("tag_sep", f"{len(with_commas)} cells of {column!r} hold commas (e.g. "
                                                f"{with_commas[0]!r}) but do not look like tags split by commas; "
                                                "read as whole class names", "tag_sep"))
    return " "


def read_competition(directory: str | os.PathLike, **overrides: Any) -> tuple[LabelTable, LabelTable | None]:
    """Return (train table, test table or None) of a competition folder, as `detect` (with `overrides`) finds it."""
    return detect(directory, **overrides).read()
