"""Submission files in exactly the shape of the competition's `sample_submission.csv`.

The format is learnt from the sample (`read_format`): the id column (name, order,
ids kept as text so `1`, `2`, `10` and `00017` match as written), and one of five
shapes:

========== ============================== =====================================
kind       sample looks like              written
========== ============================== =====================================
label      ``id,label`` / ``3``           the most probable class name
label_id   ``id,label`` / ``0`` or ``1``  its index in the classes (names not numbers)
probability``id,label`` / ``0.5``         P(positive class), clipped by settings
per_class  ``id,cat,dog,...``             one probability column per class
labels     ``image_id,label_id`` / ``1 2``space-separated labels (thresholds, fallback)
========== ============================== =====================================

`write_submission` checks the frame with `validate_submission` and only then
writes it, atomically (zipped when large); `validate_submission` checks a file
or frame before you submit it. Every problem raises `SubmissionError` naming the
problem and the fix.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import SubmissionError, list_offenders
from .io import atomic_open, data_root, is_slug, notebook_input

KINDS = ("label", "label_id", "probability", "per_class", "labels")
ZIP_OVER_BYTES = 50 * 1024 * 1024
_POSITIVE_NAMES = ("dog", "dogs", "1", "true", "yes", "positive", "pos", "malignant", "fake", "ship", "iceberg")
_IMAGE_EXT = re.compile(r"\.(jpe?g|png|tiff?|bmp|gif|webp)$", re.IGNORECASE)
SAMPLE_NAMES = ("sample_submission.csv", "samplesubmission.csv", "sample_submission.csv.zip")


def find_sample_submission(where: str | os.PathLike) -> Path | None:
    """Return the sample submission CSV in folder `where` (or of competition slug `where`), if any.

    A slug is looked up in its notebook input folder, then in its download folder
    (``kagglekit.io.data_root() / slug``); the CSV may sit one folder down.
    """
    folders = []
    if Path(where).is_dir():
        folders.append(Path(where))
    elif is_slug(where):
        nb = notebook_input(str(where))
        folders += [f for f in (nb, data_root() / str(where)) if f is not None and f.is_dir()]
    for folder in folders:
        for depth in ("*", "*/*"):
            for path in sorted(folder.glob(depth)):
                low = path.name.lower()
                if path.is_file() and low.endswith(".csv") and (low in SAMPLE_NAMES or low.startswith(("sample_submission", "samplesubmission"))):
                    return path
    return None


@dataclass
class SubmissionFormat:
    """What a competition's sample submission says: columns, ids in order, and the kind of values."""

    columns: list[str]
    ids: list[str]
    kind: str
    classes: list[str] | None = None
    positive: str | None = None
    source: str = "sample_submission.csv"
    sample_values: list[str] = field(default_factory=list, repr=False)

    @property
    def id_column(self) -> str:
        return self.columns[0]

    @property
    def value_columns(self) -> list[str]:
        return self.columns[1:]


# The metric a submission format usually stands for: probabilities are scored by log
# loss, one label per row by accuracy, space-separated labels by F2 (iMaterialist).
METRIC_FOR_KIND = {"probability": "logloss", "per_class": "logloss", "label": "accuracy",
                   "label_id": "accuracy", "labels": "f2"}


def infer_metric(like: str | os.PathLike | pd.DataFrame, classes: Sequence[str] | None = None) -> str:
    """Return the metric name ("logloss", "accuracy" or "f2") that the sample submission's shape suggests."""
    return METRIC_FOR_KIND[read_format(like, classes=classes).kind]


# ------------------------------------------------------------------ reading
def _read_csv_text(source: str | os.PathLike) -> tuple[pd.DataFrame, str]:
    """Return (frame of strings, NaN kept as NaN) read from a CSV or a zip holding one CSV."""
    path = Path(source)
    if not path.is_file():
        raise SubmissionError(f"No file at {path}; check the path (write one with kagglekit.write_submission).")
    if path.stat().st_size == 0:
        raise SubmissionError(f"{path} is empty; write the submission again.")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")]
                if len(names) != 1:
                    raise SubmissionError(
                        f"{path} holds {len(names)} files ({list_offenders(names, 3)}); a zipped submission must hold exactly one CSV."
                    )
                data = zf.read(names[0])
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=True, na_values=[""])
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=True, na_values=[""])
    except SubmissionError:
        raise
    except (zipfile.BadZipFile, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path} is not a readable CSV ({exc}); write it again with kagglekit.write_submission.") from exc
    return frame, str(path)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _is_int(text: str) -> bool:
    try:
        return float(text) == int(float(text))
    except (TypeError, ValueError, OverflowError):
        return False


def _infer_positive(classes: Sequence[str], column: str, positive: str | None) -> str:
    if positive is not None:
        if positive not in classes:
            raise SubmissionError(f"positive={positive!r} is not a class ({list(classes)}); pass one of them.")
        return positive
    if column in classes:
        return column
    for name in _POSITIVE_NAMES:
        for c in classes:
            if c.lower() == name:
                return c
    return classes[-1]


def read_format(
    like: str | os.PathLike | pd.DataFrame | SubmissionFormat,
    classes: Sequence[str] | None = None,
    multilabel: bool | None = None,
    positive: str | None = None,
    kind: str | None = None,
) -> SubmissionFormat:
    """Return the `SubmissionFormat` a sample submission describes (kind inferred unless given).

    `classes` (the model's vocabulary) settles ambiguous cases: a single column
    named after one of two classes holds that class's probability; integer
    samples with non-numeric class names hold class indices. `positive` names the
    class whose probability a single probability column holds (default: the
    column's name if it is a class, a usual positive name such as "dog", else the
    last class).
    """
    if isinstance(like, SubmissionFormat):
        return like
    if hasattr(like, "sample_submission") and not isinstance(like, (str, os.PathLike, pd.DataFrame)):
        sample = like.sample_submission
        if sample is None:
            raise SubmissionError(
                f"{getattr(like, 'path', like)} has no sample_submission.csv, so the submission shape is unknown; "
                "download it from the competition's Data page and pass like=<its path>."
            )
        like = sample
    if isinstance(like, pd.DataFrame):
        frame, source = _frame_as_text(like), "the sample frame"
    else:
        frame, source = _read_csv_text(like)
    columns = [str(c) for c in frame.columns]
    if len(columns) < 2:
        raise SubmissionError(f"The sample {source} has columns {columns}; a submission needs an id column and at least one value column.")
    ids = frame.iloc[:, 0].astype(str).tolist()
    values = frame.iloc[:, 1].fillna("").astype(str).tolist() if len(columns) == 2 else []
    classes = [str(c) for c in classes] if classes is not None else None
    if kind is None:
        if len(columns) > 2:
            kind = "per_class"
        elif any(len(v.split()) > 1 for v in values) or multilabel:
            kind = "labels"
        elif values and all(_is_number(v) for v in values) and any(not _is_int(v) for v in values):
            kind = "probability"
        elif classes is not None and len(classes) == 2 and columns[1] in classes:
            kind = "probability"
        elif (
            classes is not None
            and values
            and all(_is_int(v) for v in values)
            and not all(_is_number(c) for c in classes)
            and not set(values) <= set(classes)
        ):
            kind = "label_id"
        else:
            kind = "label"
    if kind not in KINDS:
        raise SubmissionError(f"Unknown submission kind {kind!r}; choose one of {KINDS}.")
    if kind == "per_class" and classes is not None:
        missing = [c for c in columns[1:] if c not in classes]
        if missing:
            raise SubmissionError(
                f"The sample has class columns the model does not know: {list_offenders(missing)} "
                f"(model classes: {list_offenders(classes)}). Train on the competition's classes, with the same names."
            )
    fmt = SubmissionFormat(columns=columns, ids=ids, kind=kind, classes=classes, source=source, sample_values=values)
    if kind == "probability" and classes is not None:
        if len(classes) != 2:
            raise SubmissionError(
                f"The sample has one probability column ({columns[1]!r}) but the model has {len(classes)} classes; "
                "a single probability column needs a two-class model (or pass kind='label')."
            )
        fmt.positive = _infer_positive(classes, columns[1], positive)
    return fmt


# ------------------------------------------------------------------ writing
def _norm_id(text: str) -> str:
    text = _IMAGE_EXT.sub("", str(text).strip())
    if text.isdigit():
        return str(int(text))
    return text


def _match_ids(pred_ids: list[str], sample_ids: list[str]) -> list[int]:
    """Return, for each sample id, the row of its prediction; exact text first, then normalised ids (1 == 0001 == 1.jpg)."""
    exact = {i: k for k, i in enumerate(pred_ids)}
    if all(s in exact for s in sample_ids):
        rows, extra_ids = [exact[s] for s in sample_ids], set(pred_ids) - set(sample_ids)
    else:
        norm: dict[str, int] = {}
        clashes = set()
        for k, i in enumerate(pred_ids):
            key = _norm_id(i)
            if key in norm:
                clashes.add(key)
            norm[key] = k
        missing = [s for s in sample_ids if _norm_id(s) not in norm or _norm_id(s) in clashes]
        if missing:
            raise SubmissionError(
                f"{len(missing)} ids of the sample submission have no prediction: {list_offenders(missing)} "
                f"(predictions have {len(pred_ids)} rows, e.g. {list_offenders(pred_ids, 3)}). Predict on the full test "
                "set the sample lists, with ids as the sample writes them; images the pipeline could not read are reported there."
            )
        rows = [norm[_norm_id(s)] for s in sample_ids]
        extra_ids = {pred_ids[k] for k in set(range(len(pred_ids))) - set(rows)}
    if extra_ids:
        extra = sorted(extra_ids)
        raise SubmissionError(
            f"{len(extra)} predicted ids are not in the sample submission: {list_offenders(extra)}. "
            "Predict on the competition's test set only (or drop those rows)."
        )
    return rows


def _fmt_float(values: np.ndarray) -> list[str]:
    return [f"{v:.6g}" for v in values]


def to_frame(
    predictions: pd.DataFrame,
    like: str | os.PathLike | pd.DataFrame | SubmissionFormat,
    settings: Mapping | None = None,
    positive: str | None = None,
    kind: str | None = None,
) -> pd.DataFrame:
    """Return the submission as a DataFrame of strings in the sample's shape and id order (not yet validated or written)."""
    from . import metrics

    if not isinstance(predictions, pd.DataFrame) or "id" not in predictions.columns:
        raise SubmissionError(
            "Predictions must be a DataFrame with an 'id' column and one probability column per class, "
            "as kagglekit.predict.predict returns."
        )
    classes = [str(c) for c in predictions.attrs.get("classes") or [c for c in predictions.columns if c != "id"]]
    absent = [c for c in classes if c not in predictions.columns]
    if absent:
        raise SubmissionError(f"Predictions lack the class columns {list_offenders(absent)}; pass predict()'s frame unchanged.")
    settings = dict(predictions.attrs.get("settings") or {}) if settings is None else dict(settings)
    multilabel = settings.get("multilabel", predictions.attrs.get("multilabel"))
    fmt = read_format(like, classes=classes, multilabel=multilabel, positive=positive or settings.get("positive"), kind=kind)
    probs = predictions[classes].to_numpy(dtype="float64")
    if np.isnan(probs).any():
        bad = predictions["id"][np.isnan(probs).any(axis=1)].astype(str).tolist()
        raise SubmissionError(f"{len(bad)} predictions are NaN: {list_offenders(bad)}. Check the model and its inputs (NaN weights, empty images).")
    rows = _match_ids(predictions["id"].astype(str).tolist(), fmt.ids)
    probs = probs[rows]
    out = pd.DataFrame({fmt.id_column: fmt.ids})
    if fmt.kind == "per_class":
        clipped = metrics.postprocess(probs, settings)
        for col in fmt.value_columns:
            out[col] = _fmt_float(clipped[:, classes.index(col)])
    elif fmt.kind == "probability":
        clipped = metrics.postprocess(probs, settings)
        out[fmt.value_columns[0]] = _fmt_float(clipped[:, classes.index(fmt.positive)])
    else:
        decisions = metrics.decide(probs, settings, multilabel=(fmt.kind == "labels"))
        if fmt.kind == "labels":
            text = [" ".join(classes[j] for j in np.flatnonzero(row)) for row in decisions]
        elif fmt.kind == "label_id":
            text = [str(int(j)) for j in decisions.argmax(axis=1)]
        else:
            text = [classes[int(j)] for j in decisions.argmax(axis=1)]
        out[fmt.value_columns[0]] = text
    out.attrs.update(format=fmt)
    return out


def write_submission(
    predictions: pd.DataFrame,
    like: str | os.PathLike | pd.DataFrame | SubmissionFormat,
    path: str | os.PathLike = "submission.csv",
    settings: Mapping | None = None,
    positive: str | None = None,
    kind: str | None = None,
    zip: bool | None = None,  # noqa: A002 - the natural name for the option
    zip_over: int = ZIP_OVER_BYTES,
) -> Path:
    """Return the path written: `predictions` in exactly the shape of the sample submission `like`, validated, written atomically.

    Args:
        predictions: `predict()`'s frame (`id` + one probability column per class).
        like: the competition's sample_submission.csv (path, frame, `SubmissionFormat`,
            or a fetched `Competition`, whose `.sample_submission` is used).
        path: where to write; a path ending in ".zip" is zipped.
        settings: post-processing (clip, thresholds, fallback); default the
            predictions' own (`learner.settings`, carried in `predictions.attrs`).
        positive: the class a single probability column holds (see `read_format`).
        kind: force a shape ("label", "label_id", "probability", "per_class", "labels").
        zip: True always zips, False never; None zips when the CSV exceeds
            `zip_over` bytes (then ".zip" is appended to the path).
    """
    frame = to_frame(predictions, like, settings=settings, positive=positive, kind=kind)
    fmt: SubmissionFormat = frame.attrs["format"]
    validate_submission(frame, like=fmt)
    text = frame.to_csv(index=False, lineterminator="\n")
    path = Path(path)
    data = text.encode("utf-8")
    zipped = zip if zip is not None else (path.suffix.lower() == ".zip" or len(data) > zip_over)
    if zipped:
        if path.suffix.lower() != ".zip":
            path = path.with_name(path.name + ".zip")
        inner = path.name[: -len(".zip")]
        inner = inner if inner.lower().endswith(".csv") else inner + ".csv"
        with atomic_open(path, "wb") as fh:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(inner, data)
    else:
        with atomic_open(path, "wb") as fh:
            fh.write(data)
    return path


# --------------------------------------------------------------- validation
def _frame_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        out[col] = [np.nan if (not isinstance(v, str) and pd.isna(v)) else (v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)) for v in out[col].to_numpy(dtype=object)]
    return out


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
    if len(columns) < 2:
        raise SubmissionError(f"{name[:1].upper()}{name[1:]} has the columns {columns}; a submission needs an id column and at least one value column (write it with write_submission).")
    if fmt is not None and columns != fmt.columns:
        missing = [c for c in fmt.columns if c not in columns]
        extra = [c for c in columns if c not in fmt.columns]
        what = []
        if missing:
            what.append(f"missing {missing}")
        if extra:
            what.append(f"unexpected {extra}")
        if not what:
            what.append(f"order {columns} instead of {fmt.columns}")
        raise SubmissionError(
            f"The header of {name} does not match the sample ({', '.join(what)}). "
            f"Write the columns exactly as the sample: {','.join(fmt.columns)}."
        )
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
    if fmt is not None:
        if len(frame) != len(fmt.ids):
            note = f"{name} has {len(frame)} rows but the sample has {len(fmt.ids)}"
        else:
            note = None
        sample, given = set(fmt.ids), set(ids)  # built once: linear in the rows (test sets reach 100,000)
        missing = [i for i in fmt.ids if i not in given]
        extra = [i for i in ids if i not in sample]
        if missing or extra or note:
            parts = [note] if note else []
            if missing:
                parts.append(f"{len(missing)} sample ids are missing: {list_offenders(missing)}")
            if extra:
                parts.append(f"{len(extra)} ids are not in the sample: {list_offenders(extra)}")
            raise SubmissionError(
                f"The ids do not match the sample submission ({'; '.join(parts)}). "
                "Write one row for each id of the sample, with the id exactly as the sample writes it."
            )
    kind = fmt.kind if fmt is not None else None
    vocab = [str(c) for c in (classes if classes is not None else (fmt.classes if fmt is not None else None) or [])] or None
    value_cols = columns[1:]
    numeric_cols = value_cols if kind in ("probability", "per_class") else []
    if kind is None:  # no sample: numeric columns that hold fractions must be probabilities
        numeric_cols = [c for c in value_cols if frame[c].map(_is_number).all() and not frame[c].map(_is_int).all()]
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
    if kind in ("label", "labels") and vocab is not None:
        col = value_cols[0]
        tokens = frame[col].str.split() if kind == "labels" else frame[col].map(lambda v: [v.strip()])
        vset = set(vocab)
        unknown = sorted({t for row in tokens for t in row if t not in vset})
        if unknown:
            rows = [i for i, row in zip(ids, tokens) if any(t not in vset for t in row)]
            raise SubmissionError(
                f"{name[:1].upper()}{name[1:]} has labels outside the vocabulary: {list_offenders(unknown)} (ids {list_offenders(rows, 3)}). "
                f"Use the competition's labels: {list_offenders(vocab, 8)}."
            )
        empty = [i for i, row in zip(ids, tokens) if not row]
        if empty:
            raise SubmissionError(f"{len(empty)} rows have no label: {list_offenders(empty)}. Keep at least one label per row (fallback=True).")
    if kind == "label_id":
        col = value_cols[0]
        k = len(vocab) if vocab else None
        bad = [i for i, v in zip(ids, frame[col]) if not _is_int(v) or (k is not None and not 0 <= int(float(v)) < k)]
        if bad:
            raise SubmissionError(
                f"Column {col!r} of {name} must hold class indices{f' 0..{k - 1}' if k else ''} but has {len(bad)} other values: ids {list_offenders(bad)}. "
                "Write the index of the predicted class."
            )
    return frame.reset_index(drop=True)
