"""Write predictions in the sample's exact shape, validated, atomically (zipped when large)."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError, PositiveClassError, SubmissionError, list_offenders
from ..io import atomic_open
from ..logs import logger

from .format import ZIP_OVER_BYTES, _IMAGE_EXT, SubmissionFormat, read_format
from .validate import validate_submission


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
    from .. import metrics

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
        from ..metrics import get_metric

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


