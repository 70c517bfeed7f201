"""Check a submission file or frame against the sample before it is written or submitted."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import SubmissionError, list_offenders

from ..table import is_int, is_number
from .format import SubmissionFormat, _frame_as_text, _read_csv_text, read_format


def validate_submission(
    submission: str | os.PathLike | pd.DataFrame,
    like: str | os.PathLike | pd.DataFrame | SubmissionFormat | None = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return the submission as a DataFrame (ids as text) after checking it can be scored; raise `SubmissionError` otherwise.

    Checks the header, no NaN/empty cell, unique ids and, with `like` (the sample
    submission), the same columns in the same order, the same row count and id
    set, probabilities in [0, 1] and labels in the vocabulary (`classes`, or the
    format's). Accepts a CSV, a zip holding one CSV, or a DataFrame.
    """
    if isinstance(submission, pd.DataFrame):
        frame, name = _frame_as_text(submission), "the submission"
    else:
        frame, name = _read_csv_text(submission)
    fmt = read_format(like, classes=classes) if like is not None else None
    if fmt is not None and classes is not None and fmt.classes is None:
        fmt.classes = [str(c) for c in classes]
    columns = [str(c) for c in frame.columns]
    _check_header(columns, fmt, name)
    ids = _check_rows(frame, columns, name)
    if fmt is not None:
        _check_ids_against_sample(ids, fmt, name)
    kind = fmt.kind if fmt is not None else None
    vocab = [str(c) for c in (classes if classes is not None else (fmt.classes if fmt is not None else None) or [])] or None
    _check_probabilities(frame, ids, kind, name)
    if kind in ("label", "labels") and vocab is not None:
        _check_labels(frame[columns[1]], ids, kind, vocab, name)
    if kind == "label_id":
        _check_label_ids(frame[columns[1]], ids, vocab, name)
    return frame.reset_index(drop=True)


def _capital(name: str) -> str:
    return f"{name[:1].upper()}{name[1:]}"


def _check_header(columns: list[str], fmt: SubmissionFormat | None, name: str) -> None:
    """Raise SubmissionError unless the header has an id and a value column and, with a sample, the sample's columns."""
    if len(columns) < 2:
        raise SubmissionError(f"{_capital(name)} has the columns {columns}; a submission needs an id column and at least one value column (write it with write_submission).")
    if fmt is None or columns == fmt.columns:
        return
    missing = [c for c in fmt.columns if c not in columns]
    extra = [c for c in columns if c not in fmt.columns]
    what = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
    if not what:
        what.append(f"order {columns} instead of {fmt.columns}")
    raise SubmissionError(
        f"The header of {name} does not match the sample ({', '.join(what)}). "
        f"Write the columns exactly as the sample: {','.join(fmt.columns)}."
    )


def _check_rows(frame: pd.DataFrame, columns: list[str], name: str) -> pd.Series:
    """Return the ids as text (set back into `frame`) after checking every row has an id, values and a unique id."""
    id_col = columns[0]
    ids = frame[id_col]
    if ids.isna().any():
        raise SubmissionError(f"{int(ids.isna().sum())} rows of {name} have no id (rows {list_offenders(np.flatnonzero(ids.isna()).tolist())}); every row needs the sample's id.")
    ids = ids.astype(str)
    frame[id_col] = ids
    na = frame[columns[1:]].isna()
    if na.to_numpy().any():
        bad_rows = ids[na.any(axis=1)].tolist()
        bad_cols = [c for c in columns[1:] if na[c].any()]
        raise SubmissionError(
            f"{len(bad_rows)} rows of {name} have empty or NaN values (columns {bad_cols}): ids {list_offenders(bad_rows)}. "
            "Every row needs a value: predict every test image; for labels keep at least one (the fallback does)."
        )
    dupes = ids[ids.duplicated()].unique().tolist()
    if dupes:
        raise SubmissionError(f"{len(dupes)} ids appear more than once in {name}: {list_offenders(dupes)}. Keep one row per id.")
    return ids


def _check_ids_against_sample(ids: pd.Series, fmt: SubmissionFormat, name: str) -> None:
    """Raise SubmissionError unless the ids are the sample's, one row each."""
    note = f"{name} has {len(ids)} rows but the sample has {len(fmt.ids)}" if len(ids) != len(fmt.ids) else None
    sample, given = set(fmt.ids), set(ids)  # built once: linear in the rows (test sets reach 100,000)
    missing = [i for i in fmt.ids if i not in given]
    extra = [i for i in ids if i not in sample]
    if not (missing or extra or note):
        return
    parts = [note] if note else []
    if missing:
        parts.append(f"{len(missing)} sample ids are missing: {list_offenders(missing)}")
    if extra:
        parts.append(f"{len(extra)} ids are not in the sample: {list_offenders(extra)}")
    raise SubmissionError(
        f"The ids do not match the sample submission ({'; '.join(parts)}). "
        "Write one row for each id of the sample, with the id exactly as the sample writes it."
    )


def _check_probabilities(frame: pd.DataFrame, ids: pd.Series, kind: str | None, name: str) -> None:
    """Convert the probability columns of `frame` to floats after checking they hold numbers in [0, 1]."""
    value_cols = [str(c) for c in frame.columns[1:]]
    numeric_cols = value_cols if kind in ("probability", "per_class") else []
    if kind is None:  # no sample: numeric columns that hold fractions must be probabilities
        numeric_cols = [c for c in value_cols if frame[c].map(is_number).all() and not frame[c].map(is_int).all()]
    for col in numeric_cols:
        vals = pd.to_numeric(frame[col], errors="coerce")
        bad = ids[vals.isna()].tolist()
        if bad:
            raise SubmissionError(f"Column {col!r} of {name} must hold numbers but has text in {len(bad)} rows: ids {list_offenders(bad)}. Write probabilities.")
        out_of = ids[(vals < 0) | (vals > 1)].tolist()
        if out_of:
            raise SubmissionError(
                f"Column {col!r} of {name} has {len(out_of)} values outside [0, 1]: ids {list_offenders(out_of)}. "
                "Write probabilities (apply softmax/sigmoid to logits), not scores."
            )
        frame[col] = vals.astype("float64")


def _check_labels(column: pd.Series, ids: pd.Series, kind: str, vocab: list[str], name: str) -> None:
    """Raise SubmissionError when a row has a label outside `vocab` or no label at all."""
    tokens = column.str.split() if kind == "labels" else column.map(lambda v: [v.strip()])
    vset = set(vocab)
    unknown = sorted({t for row in tokens for t in row if t not in vset})
    if unknown:
        rows = [i for i, row in zip(ids, tokens) if any(t not in vset for t in row)]
        raise SubmissionError(
            f"{_capital(name)} has labels outside the vocabulary: {list_offenders(unknown)} (ids {list_offenders(rows, 3)}). "
            f"Use the competition's labels: {list_offenders(vocab, 8)}."
        )
    empty = [i for i, row in zip(ids, tokens) if not row]
    if empty:
        raise SubmissionError(f"{len(empty)} rows have no label: {list_offenders(empty)}. Keep at least one label per row (fallback=True).")


def _check_label_ids(column: pd.Series, ids: pd.Series, vocab: list[str] | None, name: str) -> None:
    """Raise SubmissionError when a row holds anything but a class index."""
    k = len(vocab) if vocab else None
    bad = [i for i, v in zip(ids, column) if not is_int(v) or (k is not None and not 0 <= int(float(v)) < k)]
    if bad:
        raise SubmissionError(
            f"Column {column.name!r} of {name} must hold class indices{f' 0..{k - 1}' if k else ''} but has {len(bad)} other values: ids {list_offenders(bad)}. "
            "Write the index of the predicted class."
        )
