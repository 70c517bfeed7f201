"""What a sample submission says: its columns, ids and kind, the metric, the positive class."""
from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import SubmissionError, list_offenders
from ..io import data_root, is_slug, notebook_input
from ..table import IMAGE_EXTENSIONS, is_int, is_number

KINDS = ("label", "label_id", "probability", "per_class", "labels", "ranked")
ZIP_OVER_BYTES = 50 * 1024 * 1024
_IMAGE_EXT = re.compile("(" + "|".join(re.escape(e) for e in sorted(IMAGE_EXTENSIONS)) + ")$", re.IGNORECASE)
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
    from .. import metrics

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


def _infer_positive(classes: Sequence[str], columns: Sequence[str], positive: str | None,
                    values: Sequence[str] = ()) -> tuple[str | None, str]:
    """Return (the class a single probability column holds, the reason), or (None, why not) when nothing says which."""
    if positive is not None:
        if positive not in classes:
            raise SubmissionError(f"positive={positive!r} is not a class ({list(classes)}); pass one of them.")
        return positive, "set by positive= (--positive)"
    from ..layout.infer import positive_class

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
        from .. import metrics

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
        return self.classes is not None and len(self.classes) == 2 and _all(self.values, is_number)


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
    if _all(values, is_number) and any(not is_int(v) for v in values):
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
    if (classes is not None and values and all(is_int(v) for v in values)
            and not all(is_number(c) for c in classes) and not set(values) <= set(classes)):
        notes.append(f"{s.source} holds integers for the named classes {list_offenders(classes, 3)}: class indices are written")
        return "label_id", None
    return "label", None


def _check_kind(s: _Sample, kind: str, k: int | None) -> int | None:
    """Return k (the guesses per row of a ranked kind); raise SubmissionError when the kind cannot serve."""
    if kind not in KINDS:
        raise SubmissionError(f"Unknown submission kind {kind!r}; choose one of {KINDS}.")
    if s.out == "probability" and kind in ("label", "label_id", "labels", "ranked"):
        raise SubmissionError(f"The metric {s.metric.name} scores probabilities but the sample {s.source} holds {kind}s "
                              f"(e.g. {s.values[0] if s.values else ''!r}); give a label metric (--metric accuracy), or check the sample is the "
                              "competition's (read_format(kind='probability') forces probabilities from Python).")
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


def _frame_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        out[col] = [np.nan if (not isinstance(v, str) and pd.isna(v)) else (v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)) for v in out[col].to_numpy(dtype=object)]
    return out


