"""Submission files in exactly the shape of the competition's `sample_submission.csv`.

The format is learnt from the sample (`read_format`): the id column (name, order,
ids kept as text so `1`, `2`, `10` and `00017` match as written), and one of five
shapes:

========== ============================== =====================================
kind       sample looks like              written
========== ============================== =====================================
label      ``id,label`` / ``3``           the most probable class name (QWK: the
                                          grade cut from the expected grade)
label_id   ``id,label`` / ``0`` or ``1``  its index in the classes (names not numbers)
probability``id,label`` / ``0.5``         P(positive class), clipped by settings
per_class  ``id,cat,dog,...``             one probability column per class, in
                                          the sample's column order
labels     ``image_id,label_id`` / ``1 2``space-separated labels (thresholds, fallback)
ranked     ``Image,Id`` / ``new_whale w_1 top-k guesses, best first, the "new" class
           w_2 w_3 w_4`` (one label per   inserted by its tuned threshold (MAP@k)
           image)
========== ============================== =====================================

What the sample cannot settle is inferred, stated with its reason in
`SubmissionFormat.notes` (and logged), and overridable: a binary sample holding
one constant in every row (Histopathologic's ``0``, Aerial Cactus's ``0.5``) is a
placeholder, so a probability column is written unless the metric scores labels
(``--metric accuracy``); the metric (`infer_metric`, an explicit metric always
wins) settles the rest: probability metrics (log loss, AUC) never get hard labels.
A single probability column holds P(positive): the class given as ``positive=``,
else one the data name (a column named after a class or ``has_<x>``, 0/1 or
yes/no classes: `kagglekit.layout.infer.positive_class`), else ``dog`` for cat/dog
classes (Dogs vs. Cats scores P(dog)), else writing refuses (`PositiveClassError`,
naming ``--positive``).

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
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, PositiveClassError, SubmissionError, list_offenders
from .io import atomic_open, data_root, is_slug, notebook_input
from .logs import logger

KINDS = ("label", "label_id", "probability", "per_class", "labels", "ranked")
ZIP_OVER_BYTES = 50 * 1024 * 1024
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
    """What a competition's sample submission says: columns, ids in order, the kind of values, and what was inferred (with reasons)."""

    columns: list[str]
    ids: list[str]
    kind: str
    classes: list[str] | None = None
    positive: str | None = None
    source: str = "sample_submission.csv"
    sample_values: list[str] = field(default_factory=list, repr=False)
    k: int | None = None  # guesses per row ("ranked")
    positive_reason: str = ""
    notes: list[str] = field(default_factory=list)  # each inference and its reason, as a user reads it

    @property
    def id_column(self) -> str:
        return self.columns[0]

    @property
    def value_columns(self) -> list[str]:
        return self.columns[1:]


class MetricChoice(str):
    """A metric name (it is the str) that also says why: `reason`, and `inferred` (False when given explicitly)."""

    reason: str
    inferred: bool

    def __new__(cls, name: str, reason: str = "", inferred: bool = True) -> "MetricChoice":
        obj = super().__new__(cls, name)
        obj.reason, obj.inferred = reason, inferred
        return obj

    def describe(self) -> str:
        """Return one line for a user: the metric, inferred or given, and why."""
        how = "inferred" if self.inferred else "given"
        return f"metric: {self} ({how}: {self.reason})"


def _binary_pair(classes: Sequence[str] | None) -> bool:
    """Return True for two classes that mean no/yes (0/1, false/true, no/yes): a detection question."""
    if classes is None or len(classes) != 2:
        return False
    return {str(c).lower() for c in classes} in ({"0", "1"}, {"false", "true"}, {"no", "yes"}, {"n", "y"}, {"-1", "1"})


def _consecutive_ints(classes: Sequence[str] | None) -> bool:
    try:
        values = [int(str(c)) for c in classes or []]
    except ValueError:
        return False
    return len(values) >= 3 and values == list(range(values[0], values[0] + len(values)))


def infer_metric(
    like: str | os.PathLike | pd.DataFrame | SubmissionFormat,
    classes: Sequence[str] | None = None,
    multilabel: bool | None = None,
    metric: str | None = None,
) -> MetricChoice:
    """Return the metric (a `MetricChoice`: a str with `.reason`) the sample submission's shape suggests; an explicit `metric` always wins.

    Rules (each reason names ``--metric`` as the override): ranked guesses ->
    map@k; space-separated label sets -> f2 (samples); probability columns per
    class -> logloss; one probability column -> auc when the classes are a
    no/yes pair (0/1) and the sample holds one constant (a placeholder:
    Histopathologic, Aerial Cactus), else logloss (Dogs vs. Cats); one label per
    row -> accuracy (micro-F1 equals it; ordinal grades need qwk).
    """
    from . import metrics

    if metric is not None:
        m = metrics.get_metric(metric)
        given = f" (as {metric!r})" if str(metric) != m.name else ""
        return MetricChoice(m.name, f"set by --metric{given}", inferred=False)
    fmt = read_format(like, classes=classes, multilabel=multilabel)
    classes = fmt.classes
    override = "; another metric: --metric NAME"
    constant = len(set(fmt.sample_values)) == 1 and fmt.sample_values != [""]
    if fmt.kind == "ranked":
        return MetricChoice(f"map@{fmt.k}", f"{fmt.source} lists {fmt.k} space-separated guesses per row for a single-label "
                                            f"problem: mean average precision at {fmt.k} (Humpback Whale){override}")
    if fmt.kind == "labels":
        return MetricChoice("f2", f"{fmt.source} holds space-separated labels: F2 averaged over samples (Planet); "
                                  "micro-F1 competitions (iMaterialist 2018) need --metric f1_micro")
    if fmt.kind == "per_class":
        return MetricChoice("logloss", f"{fmt.source} holds one probability column per class: multi-class log loss "
                                       "(State Farm); column-wise ROC AUC competitions (Plant Pathology 2020) need --metric auc")
    if fmt.kind == "probability":
        question = _binary_pair(classes) or (classes is None and re.match(r"^(has|is)_", fmt.columns[1], re.I) is not None)
        if question and constant:
            return MetricChoice("auc", f"the classes are a yes/no question and {fmt.source} holds {fmt.sample_values[0]!r} in "
                                       "every row, a placeholder: probabilities ranked by ROC AUC (Histopathologic, Aerial "
                                       "Cactus); log-loss competitions (Statoil Iceberg) need --metric logloss, label ones "
                                       "--metric accuracy")
        return MetricChoice("logloss", f"{fmt.source} holds a probability per row: log loss of P({fmt.positive or 'positive'}) "
                                       "(Dogs vs. Cats); ROC AUC competitions need --metric auc")
    hint = "; ordered grades (APTOS) need --metric qwk" if _consecutive_ints(classes) else ""
    return MetricChoice("accuracy", f"{fmt.source} holds one label per row: accuracy (micro-F1 equals it for one label "
                                    f"per row){hint}{override}")


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


def _infer_positive(classes: Sequence[str], columns: Sequence[str], positive: str | None,
                    values: Sequence[str] = ()) -> tuple[str | None, str]:
    """Return (the class a single probability column holds, the reason), or (None, why not) when nothing says which."""
    if positive is not None:
        if positive not in classes:
            raise SubmissionError(f"positive={positive!r} is not a class ({list(classes)}); pass one of them.")
        return positive, "set by positive= (--positive)"
    from .layout.infer import positive_class

    guess = positive_class(classes, (), tuple(columns), tuple(values))
    if guess.value is not None:
        return str(guess.value), str(guess.reason)
    lowered = {str(c).lower(): c for c in classes}
    if set(lowered) == {"cat", "dog"}:  # a documented inference: Dogs vs. Cats (Redux) scores P(dog), its label 1 is dog
        return lowered["dog"], ("cat/dog classes: Dogs vs. Cats scores the probability that the image is a dog "
                                "(pass positive='cat' / --positive cat otherwise)")
    return None, str(guess.reason)


def _all(values: Sequence[str], test) -> bool:
    return bool(values) and all(test(v) for v in values)


def read_format(
    like: str | os.PathLike | pd.DataFrame | SubmissionFormat,
    classes: Sequence[str] | None = None,
    multilabel: bool | None = None,
    positive: str | None = None,
    kind: str | None = None,
    metric: str | None = None,
) -> SubmissionFormat:
    """Return the `SubmissionFormat` a sample submission describes (kind inferred unless given; each inference in `.notes`).

    `classes` (the model's vocabulary), `multilabel` and `metric` settle what the
    sample alone cannot: values that are whole class names ("Sugar beet") are one
    label; several words per row are label sets (multi-label) or ranked guesses
    (single-label, or a MAP@k metric); a metric scored on probabilities (log
    loss, AUC) gets a probability column, one scored on labels gets labels; a
    binary sample holding one number in every row (``0``, ``0.5``) is a
    placeholder for a probability unless the metric scores labels. `positive`
    names the class a single probability column holds (see `_infer_positive`);
    when nothing names it, `.positive` is None and writing refuses.
    """
    if isinstance(like, SubmissionFormat):
        return like
    frame, source = _sample_frame(like)
    columns = [str(c) for c in frame.columns]
    if len(columns) < 2:
        raise SubmissionError(f"The sample {source} has columns {columns}; a submission needs an id column and at least one value column.")
    ids = frame.iloc[:, 0].astype(str).tolist()
    values = frame.iloc[:, 1].fillna("").astype(str).tolist() if len(columns) == 2 else []
    classes = [str(c) for c in classes] if classes is not None else None
    m = None
    if metric is not None:
        from . import metrics

        m = metrics.get_metric(metric)
    sample = _Sample(source, columns, values, classes, m)
    notes: list[str] = []
    if kind is not None:
        notes.append(f"kind {kind!r}: set by kind=")
        k = None
    else:
        kind, k = _infer_kind(sample, multilabel, notes)
    k = _check_kind(sample, kind, k)
    fmt = SubmissionFormat(columns=columns, ids=ids, kind=kind, classes=classes, source=source, sample_values=values, k=k, notes=notes)
    if kind == "probability" and classes is not None:
        if len(classes) != 2:
            raise SubmissionError(
                f"The sample has one probability column ({columns[1]!r}) but the model has {len(classes)} classes; "
                "a single probability column needs a two-class model (or pass kind='label')."
            )
        fmt.positive, fmt.positive_reason = _infer_positive(classes, columns, positive, values)
        if fmt.positive is not None and positive is None:
            notes.append(f"{columns[1]!r} holds P({fmt.positive}): {fmt.positive_reason}")
    return fmt


def _sample_frame(like: Any) -> tuple[pd.DataFrame, str]:
    """Return (the sample submission as text cells, how to name it) from a path, a frame or a competition."""
    if hasattr(like, "sample_submission") and not isinstance(like, (str, os.PathLike, pd.DataFrame)):
        sample = like.sample_submission
        if sample is None:
            raise SubmissionError(
                f"{getattr(like, 'path', like)} has no sample_submission.csv, so the submission shape is unknown; "
                "download it from the competition's Data page and pass like=<its path>."
            )
        like = sample
    if isinstance(like, pd.DataFrame):
        return _frame_as_text(like), "the sample frame"
    return _read_csv_text(like)


@dataclass
class _Sample:
    """What `read_format` knows of a sample submission while it infers the kind."""

    source: str
    columns: list[str]
    values: list[str]
    classes: list[str] | None
    metric: Any  # kagglekit.metrics.Metric or None

    @property
    def out(self) -> str | None:
        return self.metric.output if self.metric is not None else None

    @property
    def tokens(self) -> int:
        return max((len(v.split()) for v in self.values), default=0)

    def binary_numbers(self) -> bool:
        return self.classes is not None and len(self.classes) == 2 and _all(self.values, _is_number)


def _infer_kind(s: _Sample, multilabel: bool | None, notes: list[str]) -> tuple[str, int | None]:
    """Return (kind, k) that the sample's values say, adding each inference's reason to `notes`."""
    classes, values, columns, tokens = s.classes, s.values, s.columns, s.tokens
    if len(columns) > 2:
        return "per_class", None
    if s.out == "ranked":
        notes.append(f"{s.metric.k} ranked guesses per row: the metric {s.metric.name} scores them")
        return "ranked", s.metric.k
    if s.out == "probability" and s.binary_numbers():
        notes.append(f"one probability column: the metric {s.metric.name} scores probabilities, never hard labels")
        return "probability", None
    if s.binary_numbers() and len(set(values)) == 1 and s.out is None and _binary_pair(classes):
        notes.append(f"{s.source} holds {values[0]!r} in every row of {columns[1]!r}, a placeholder, for a two-class (no/yes) "
                     "problem: a probability column is written, ranked by AUC (pass --metric accuracy to write 0/1 labels)")
        return "probability", None
    if _all(values, _is_number) and any(not _is_int(v) for v in values):
        return "probability", None
    if classes is not None and len(classes) == 2 and columns[1] in classes:
        return "probability", None
    if classes is not None and _all(values, lambda v: v.strip() in classes) and not multilabel:
        if tokens > 1:
            notes.append(f"{s.source}'s values are whole class names with spaces (e.g. {values[0]!r}): one label per row, written whole")
        return "label", None
    if tokens > 1 or multilabel:
        if multilabel is False and s.out != "probability":
            notes.append(f"{s.source} lists {tokens} space-separated guesses per row and the model has one label per image: "
                         f"{tokens} guesses, best first (kind='labels' for label sets)")
            return "ranked", tokens
        return "labels", None
    if (classes is not None and values and all(_is_int(v) for v in values)
            and not all(_is_number(c) for c in classes) and not set(values) <= set(classes)):
        notes.append(f"{s.source} holds integers for the named classes {list_offenders(classes, 3)}: class indices are written")
        return "label_id", None
    return "label", None


def _check_kind(s: _Sample, kind: str, k: int | None) -> int | None:
    """Return k (the guesses per row of a ranked kind); raise SubmissionError when the kind cannot serve."""
    if kind not in KINDS:
        raise SubmissionError(f"Unknown submission kind {kind!r}; choose one of {KINDS}.")
    if s.out == "probability" and kind in ("label", "label_id", "labels", "ranked"):
        raise SubmissionError(f"The metric {s.metric.name} scores probabilities but the sample {s.source} holds {kind}s "
                              f"(e.g. {s.values[0] if s.values else ''!r}); pass kind='probability' or a label metric (--metric accuracy).")
    if kind == "ranked" and k is None:
        k = max(1, s.tokens)
    if kind == "per_class" and s.classes is not None:
        missing = [c for c in s.columns[1:] if c not in s.classes]
        if missing:
            raise SubmissionError(
                f"The sample has class columns the model does not know: {list_offenders(missing)} "
                f"(model classes: {list_offenders(s.classes)}). Train on the competition's classes, with the same names."
            )
        extra = [c for c in s.classes if c not in s.columns[1:]]
        if extra:
            raise SubmissionError(
                f"The model has classes the sample has no column for: {list_offenders(extra)} (sample columns: "
                f"{list_offenders(s.columns[1:])}); their probability would be dropped. Train on the competition's classes."
            )
    return k


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
    metric: str | None = None,
) -> pd.DataFrame:
    """Return the submission as a DataFrame of strings in the sample's shape and id order (not yet validated or written).

    The format's inferences (kind, positive class) are logged with their reasons
    and kept in ``frame.attrs["format"].notes``.
    """
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
    if metric is None and settings.get("metric") is not None:
        from .metrics import get_metric

        try:
            metric = get_metric(settings["metric"]).name
        except ConfigError:  # tuned for a metric registered elsewhere: the sample alone decides the shape
            logger.info(f"submission: the settings' metric {settings['metric']!r} is not registered here; the shape follows the sample")
    try:
        fmt = read_format(like, classes=classes, multilabel=multilabel, positive=positive or settings.get("positive"),
                          kind=kind, metric=metric)
    except ConfigError as exc:  # an unknown metric name
        raise SubmissionError(str(exc)) from None
    probs = predictions[classes].to_numpy(dtype="float64")
    if np.isnan(probs).any():
        bad = predictions["id"][np.isnan(probs).any(axis=1)].astype(str).tolist()
        raise SubmissionError(f"{len(bad)} predictions are NaN: {list_offenders(bad)}. Check the model and its inputs (NaN weights, empty images).")
    if fmt.kind == "probability" and fmt.positive is None:
        raise PositiveClassError(
            f"The sample's column {fmt.value_columns[0]!r} holds one probability per row, and the classes "
            f"{', '.join(map(repr, classes))} do not say which one it is the probability of: "
            f"pass positive=CLASS (--positive CLASS), e.g. positive={classes[-1]!r}."
        )
    if fmt.kind in ("labels", "ranked"):
        spaced = [c for c in classes if len(c.split()) != 1]
        if spaced:
            raise SubmissionError(f"Class names {list_offenders(spaced)} hold spaces, so space-separated {fmt.kind} would split "
                                  "them; rename those classes (the competition's labels have no spaces in this format).")
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
    elif fmt.kind == "ranked":
        if not settings.get("new_threshold") and any(c.lower().startswith(("new_", "new-")) for c in classes):
            fmt.notes.append("no new-class threshold was tuned (tune for map@5 on validation to insert the new class): plain top-k")
        out[fmt.value_columns[0]] = [" ".join(g) for g in metrics.rank(probs, settings, classes, k=fmt.k)]
    else:
        decisions = metrics.decide(probs, settings, multilabel=(fmt.kind == "labels"))
        if fmt.kind == "labels":
            text = [" ".join(classes[j] for j in np.flatnonzero(row)) for row in decisions]
        elif fmt.kind == "label_id":
            text = [str(int(j)) for j in decisions.argmax(axis=1)]
        else:
            text = [classes[int(j)] for j in decisions.argmax(axis=1)]
        out[fmt.value_columns[0]] = text
        if settings.get("cuts"):
            fmt.notes.append(f"grades cut from the expected grade at {settings['cuts']} (tuned for quadratic weighted kappa)")
    for note in fmt.notes:
        logger.info(f"submission: {note}")
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
    metric: str | None = None,
) -> Path:
    """Return the path written: `predictions` in exactly the shape of the sample submission `like`, validated, written atomically.

    Args:
        predictions: `predict()`'s frame (`id` + one probability column per class).
        like: the competition's sample_submission.csv (path, frame, `SubmissionFormat`,
            or a fetched `Competition`, whose `.sample_submission` is used).
        path: where to write; a path ending in ".zip" is zipped.
        settings: post-processing (clip, thresholds, fallback); default the
            predictions' own (`learner.settings`, carried in `predictions.attrs`).
        positive: the class a single probability column holds (the CLI's ``--positive``); when
            None it is inferred where the data name it (see `read_format`), else writing
            refuses with `PositiveClassError`.
        kind: force a shape ("label", "label_id", "probability", "per_class", "labels", "ranked").
        zip: True always zips, False never; None zips when the CSV exceeds
            `zip_over` bytes (then ".zip" is appended to the path).
        metric: the competition metric (default settings["metric"], which tuning sets):
            it settles the shape where the sample cannot (probabilities for log loss
            and AUC, labels for accuracy, ranked guesses for MAP@k).
    """
    frame = to_frame(predictions, like, settings=settings, positive=positive, kind=kind, metric=metric)
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
    bad = [i for i, v in zip(ids, column) if not _is_int(v) or (k is not None and not 0 <= int(float(v)) < k)]
    if bad:
        raise SubmissionError(
            f"Column {column.name!r} of {name} must hold class indices{f' 0..{k - 1}' if k else ''} but has {len(bad)} other values: ids {list_offenders(bad)}. "
            "Write the index of the predicted class."
        )
