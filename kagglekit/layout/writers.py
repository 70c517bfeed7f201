"""Writers: a `LabelTable` written out as class folders or a multi-hot CSV (atomically; sources never touched).

Neither writer replaces a file it did not write: an existing file is replaced only when
nothing is lost by it (a link to the same image, a copy with the same bytes, a CSV with the
same content), unless ``overwrite=True`` (``kagglekit organise --overwrite``). Writing onto
the competition's own files (its images, the CSV it was read from) is refused even then.
"""
from __future__ import annotations

import filecmp
import os
import shutil
from typing import Collection
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, LayoutError, list_offenders
from ..io import atomic_open
from ..logs import logger
from ..table import LabelTable
from .readers import _safe_name

_MODES = ("symlink", "hardlink", "copy")


def _replaceable(source: str, target: Path) -> bool:
    """Return whether replacing the existing `target` by `source` loses nothing: a link to the same file, or the same bytes."""
    if os.path.islink(target):
        return os.path.exists(target) and os.path.samefile(target, source)
    return target.is_file() and (os.path.samefile(target, source) or filecmp.cmp(target, source, shallow=False))


def _place(source: str, target: Path, mode: str, overwrite: bool = False) -> bool:
    """Create `target` from `source` unless it is already right; return True when something was written.

    An existing `target` that is not a link to `source` nor a copy of its bytes is a `LayoutError`
    (never replaced) unless `overwrite`.
    """
    if os.path.lexists(target):
        if os.path.islink(target):
            if mode == "symlink" and os.readlink(target) == source:
                return False
        elif os.path.exists(target) and os.path.samefile(target, source):
            return False  # the source itself, or a hard link to it
        elif mode == "copy":
            s, t = os.stat(source), os.stat(target)
            if s.st_size == t.st_size and int(s.st_mtime) == int(t.st_mtime):
                return False
        if not overwrite and not _replaceable(source, target):
            raise LayoutError(f"{target} already exists and is not a copy of or a link to {source}; kagglekit never "
                              "replaces a file it did not write. Fix: choose an empty output folder, or pass "
                              "--overwrite (overwrite=True) to replace it.")
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
    table: LabelTable, out_dir: str | os.PathLike, mode: str = "symlink", progress: bool = True, overwrite: bool = False
) -> LabelTable:
    """Return the table of the files written as ``out_dir/<class>/<id><ext>`` (one folder per class).

    Symlinks by default (absolute targets), hard links or copies on request. The source files
    are never modified; files already right are left alone, so re-running is idempotent.
    Reading the result back with ``from_folders(out_dir, ids="stem")`` gives the same ids and
    labels. Multi-label and unlabelled tables are refused (a file can sit in one folder only).
    A file already at a target that is neither a link to its image nor a copy of its bytes is a
    `LayoutError` unless `overwrite` (then replaced); a source image is never a target.
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
    from ..io import why_not_writable

    why = why_not_writable(out_dir)
    if why is not None:
        raise LayoutError(f"The class folders cannot be written into {out_dir} ({why}); name a folder (new or "
                          "existing) for them.")
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
        _place(source, target, mode, overwrite)
        rows.append((image_id, str(target), labels))
    return LabelTable.from_records(*zip(*rows), classes=table.classes, multilabel=False)


def write_multihot_csv(
    table: LabelTable,
    path: str | os.PathLike,
    wide: bool | None = False,
    id_col: str = "image",
    label_col: str = "labels",
    sep: str = " ",
    overwrite: bool = False,
    inputs: Collection[str | os.PathLike] = (),
) -> Path:
    """Return `path` after writing the labels atomically as ``image,labels`` (`sep`-separated) or, with `wide`, ``image,<class>...`` 0/1 columns.

    Class names holding `sep` ("Ankle boot") are kept whole: a single-label table writes
    one whole name per cell; a multi-label table cannot separate such names, so it is
    written wide (said in the log). Both forms read back with `from_csv`
    (``from_csv(path, multilabel=table.multilabel)`` settles the kind for tiny tables).

    An existing file at `path` with other content is a `LayoutError` unless `overwrite`; `path`
    being one of `inputs` (the files the table was read from) or one of its images is refused always.
    """
    table._check_vocabulary()
    spaced = [c for c in table.classes if sep and sep in c]
    if not wide and spaced and table.multilabel:
        logger.info("write_multihot_csv: class names %s hold %r, so %s is written wide (one 0/1 column per class)",
                    list_offenders(spaced), sep, Path(path).name)
        wide = True
    if wide:
        clash = [c for c in table.classes if c == id_col]
        if clash:
            raise LayoutError(f"A class is named {id_col!r} like the id column; pass id_col= another name.")
        frame = pd.DataFrame(table.targets("multihot").astype("int8"), columns=list(table.classes))
        frame.insert(0, id_col, table.ids)
    else:
        frame = pd.DataFrame({id_col: table.ids, label_col: [sep.join(x) for x in table.labels]})
    _check_csv_target(Path(path), [*inputs, *table.paths])
    text = frame.to_csv(index=False)
    if Path(path).is_file() and not overwrite and Path(path).read_bytes() != text.encode("utf-8"):
        raise LayoutError(f"{path} already exists with other content; kagglekit never replaces a file it did not "
                          "write. Fix: name a new file, or pass --overwrite (overwrite=True) to replace it.")
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)


def check_outside(out: str | os.PathLike, competition: str | os.PathLike) -> Path:
    """Return `out` when it lies outside the `competition` folder; inside it (its own input) is a `LayoutError`, whatever --overwrite says."""
    out_real, comp_real = Path(os.path.realpath(out)), Path(os.path.realpath(competition))
    if out_real == comp_real or comp_real in out_real.parents:
        raise LayoutError(f"{out} lies inside the competition folder {competition}; organise never writes into its own "
                          "input (new files there would change what detection reads). Fix: name an output outside it.")
    return Path(out)


def _check_csv_target(path: Path, inputs: list) -> None:
    """Raise `LayoutError` when `path` is one of `inputs` (the competition's own files) or a folder."""
    if path.is_dir():
        raise LayoutError(f"{path} is a folder; name the CSV file to write, e.g. {path / 'labels.csv'}.")
    if not path.exists():
        return
    for f in inputs:
        if os.path.exists(f) and os.path.samefile(path, f):
            raise LayoutError(f"{path} is one of the competition's own files (read to make this table); kagglekit never "
                              "writes onto its input, even with --overwrite. Fix: name a new file outside it.")
