"""Ordered prediction with test-time augmentation; ids travel with the probabilities.

`predict(learner, table)` returns a DataFrame: an `id` column, then one
probability column per class in `learner.classes` order. Each row is keyed by
its id, never by file order, so the same call serves validation (score it with
`score`, tune post-processing with `tune_settings`) and the test set (write it
with `kagglekit.submission.write_submission`).

TTA views (`tta=n` uses the first n, probabilities averaged):

    full, full+flip, centre crop, centre crop+flip, 4 corner crops, 4 flipped corner crops

Crops keep `crop` (0.875) of each side and are resized back to the model's
input size. `flip=False` drops the flipped views (digits, text: things a mirror
changes). `tta=0` or `tta=1` is the plain prediction, and the default unless
`learner.settings["tta"]` says otherwise: `choose_tta` (or
`tune_settings(..., tta="auto")`) measures on validation which count helps and
stores it there, since crops can hurt small or tightly framed images.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, ImageError, TableError, list_offenders
from .images import as_size, resize_images
from .logs import logger
from .table import LabelTable

_CROPS = ("centre", "top-left", "top-right", "bottom-left", "bottom-right")
DEFAULT_CROP = 0.875


def tta_views(n: int, flip: bool = True) -> list[str]:
    """Return the names of the first `n` TTA views ("full", "full+flip", "centre", ...); n <= 1 gives ["full"]."""
    order = ["full"] + (["full+flip"] if flip else []) + ["centre"] + (["centre+flip"] if flip else [])
    order += list(_CROPS[1:]) + ([f"{c}+flip" for c in _CROPS[1:]] if flip else [])
    n = int(n)
    if n < 0:
        raise ConfigError(f"tta must be 0 or more (got {n}); 0 or 1 means no augmentation.")
    if n > len(order):
        raise ConfigError(
            f"tta={n} asks for more views than there are ({len(order)} with flip={flip}): "
            f"{', '.join(order)}. Use tta <= {len(order)}."
        )
    return order[: max(1, n)]


def augment_view(x: np.ndarray, view: str, crop: float = DEFAULT_CROP) -> np.ndarray:
    """Return the batch `x` (n, h, w, 3) seen through one TTA `view`, float32 0..255, same h and w."""
    x = np.asarray(x)
    h, w = x.shape[1:3]
    base, _, flip = view.partition("+")
    if base != "full":
        if base not in _CROPS:
            raise ConfigError(f"Unknown TTA view {view!r}; see kagglekit.predict.tta_views().")
        if not 0.3 <= crop < 1:
            raise ConfigError(f"crop must be in [0.3, 1) (got {crop}); it is the share of each side kept.")
        ch, cw = max(1, int(round(h * crop))), max(1, int(round(w * crop)))
        top = {"centre": (h - ch) // 2, "top-left": 0, "top-right": 0, "bottom-left": h - ch, "bottom-right": h - ch}[base]
        left = {"centre": (w - cw) // 2, "top-left": 0, "top-right": w - cw, "bottom-left": 0, "bottom-right": w - cw}[base]
        x = resize_images(x[:, top : top + ch, left : left + cw], (h, w), dtype="float32")
    if flip:
        x = x[:, :, ::-1]
    return np.ascontiguousarray(x, dtype="float32")


def _model_probs(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    out = model.predict_on_batch(x)
    if isinstance(out, (list, tuple)):
        out = out[0]
    import keras

    p = np.asarray(keras.ops.convert_to_numpy(out), dtype="float64")
    p = p.reshape(len(x), -1)
    if p.size and (np.isnan(p).any() or p.min() < -1e-6 or p.max() > 1 + 1e-6):
        raise ConfigError(
            "The model outputs values outside [0, 1] (logits?); predict needs probabilities. "
            "End the model with a softmax (single-label) or sigmoid (multi-label) activation."
        )
    p = np.clip(p, 0.0, 1.0)
    if p.shape[1] == 1 and n_classes == 2:  # one sigmoid unit for the second class
        p = np.concatenate([1 - p, p], axis=1)
    if p.shape[1] != n_classes:
        raise ConfigError(
            f"The model gives {p.shape[1]} outputs but the learner has {n_classes} classes; "
            "rebuild the head for these classes or pass the matching learner."
        )
    return p


def predict_views(model: Any, x: np.ndarray, n_classes: int, views: Sequence[str], crop: float = DEFAULT_CROP) -> np.ndarray:
    """Return (len(views), n, n_classes) probabilities for one batch of pixels, one slice per TTA view."""
    # one call per view: on CPU, faster than one call on all views stacked
    return np.stack([_model_probs(model, np.asarray(x) if v == "full" else augment_view(x, v, crop), n_classes) for v in views])


def predict_batch(model: Any, x: np.ndarray, n_classes: int, tta: int = 0, flip: bool = True, crop: float = DEFAULT_CROP) -> np.ndarray:
    """Return (n, n_classes) probabilities for one batch of pixels, averaged over the first `tta` views."""
    return predict_views(model, x, n_classes, tta_views(tta, flip), crop).mean(axis=0)


def _learner_size(learner: Any, data: object) -> tuple[int, int]:
    size = getattr(learner, "size", None)
    if size is None:
        shape = getattr(learner.model, "input_shape", None)
        if shape is not None and len(shape) == 4 and shape[1] and shape[2]:
            return int(shape[1]), int(shape[2])
        if isinstance(data, np.ndarray) and data.ndim == 4:
            return int(data.shape[1]), int(data.shape[2])
        raise ConfigError("The learner has no input size (learner.size is None); set learner.size = (height, width).")
    return as_size(size)


def resize_mode(settings: dict) -> str:
    """Return how a learner's training brought images to size ("squash", "crop" or "pad") from its `settings`.

    Learners saved before the setting was called ``resize`` carry it as ``fit``.
    """
    recipe = settings.get("recipe") or {}
    return str(settings.get("resize") or settings.get("fit") or recipe.get("resize") or recipe.get("fit") or "squash")


def _batches(learner: Any, data: object, batch_size: int, ids: Sequence[object] | None, resize: str, cache: object):
    """Return (ids, number of batches, iterator of (ids, pixels), the batches or None) for a LabelTable, an image array, or batches with .table.

    A LabelTable keeps every row: an image that cannot be decoded is served black (every test id needs a row).
    """
    size = _learner_size(learner, data)
    if isinstance(data, LabelTable):
        from .pipeline import ImageBatches

        data = ImageBatches(data, size, batch_size=batch_size, targets=None, shuffle=False, resize=resize, cache=cache,
                            unreadable="black")
    if isinstance(data, np.ndarray):
        if data.ndim != 4 or data.shape[-1] != 3:
            raise ConfigError(f"Images must be an array (n, height, width, 3) (got shape {data.shape}).")
        row_ids = [str(i) for i in (ids if ids is not None else range(len(data)))]
        if len(row_ids) != len(data):
            raise ConfigError(f"Got {len(row_ids)} ids for {len(data)} images; give one id per image.")
        chunks = [(row_ids[i : i + batch_size], resize_images(data[i : i + batch_size], size, dtype="float32")) for i in range(0, len(data), batch_size)]
        return row_ids, len(chunks), iter(chunks), None
    table = getattr(data, "table", None)
    if table is None or not hasattr(data, "__getitem__"):
        raise ConfigError(
            f"Cannot predict on {type(data).__name__}; pass a LabelTable, an image array (n, h, w, 3) with ids, "
            "or kagglekit.pipeline.ImageBatches(table, size, targets=None)."
        )
    if getattr(data, "shuffle", False):
        raise ConfigError("The batches are shuffled, so rows would not follow the table; build them with shuffle=False.")
    row_ids = [str(i) for i in table.ids]

    def gen():
        start = 0
        for b in range(len(data)):
            item = data[b]
            x = item[0] if isinstance(item, tuple) else item
            x = resize_images(x, size, dtype="float32")  # only cast at the served size
            yield row_ids[start : start + len(x)], x
            start += len(x)
        if start != len(row_ids):
            raise TableError(f"The batches served {start} images but their table has {len(row_ids)} rows; rebuild the batches.")

    return row_ids, len(data), gen(), data


def predict(
    learner: Any,
    table: LabelTable | np.ndarray | object,
    tta: int | None = None,
    batch_size: int = 32,
    flip: bool | None = None,
    crop: float | None = None,
    ids: Sequence[object] | None = None,
    progress: bool = True,
    resize: str | None = None,
    cache: str | os.PathLike | None = "auto",
) -> pd.DataFrame:
    """Return a DataFrame: `id` then one probability column per class (in `learner.classes` order), one row per image.

    Args:
        learner: anything with `.model` (a keras.Model taking 0..255 pixels),
            `.classes`, `.multilabel`, `.size` and `.settings` (a dict).
        table: a `LabelTable` (images read by `kagglekit.pipeline.ImageBatches`;
            every row kept: an image that cannot be decoded is predicted from a
            black image and its id named in a warning), an image array
            (n, h, w, 3) with `ids`, or prebuilt unshuffled batches with `.table`.
        tta: number of test-time views averaged (see `tta_views`); default
            `learner.settings["tta"]`, else 0 (plain prediction).
        flip: include horizontally flipped views; default `learner.settings["tta_flip"]`, else True.
        crop: share of each side kept by crop views; default `learner.settings["tta_crop"]`, else 0.875.
        ids: the ids of the rows of an image array (default "0", "1", ...).
        progress: show a tqdm bar.
        resize: how a LabelTable's images are brought to size ("squash", "crop",
            "pad"); default what training used (`resize_mode(learner.settings)`).
        cache: the pipeline's resized-image cache ("auto", a folder, or None).

    The frame's `attrs` carry `classes`, `multilabel` and `settings` (a copy of
    `learner.settings`), which `write_submission` uses, and the TTA used
    (`tta`, `tta_flip`, `tta_crop`).
    """
    settings = dict(getattr(learner, "settings", None) or {})
    tta = int(settings.get("tta", 0) if tta is None else tta)
    flip = bool(settings.get("tta_flip", True) if flip is None else flip)
    crop = float(settings.get("tta_crop", DEFAULT_CROP) if crop is None else crop)
    row_ids, views, black = _predict_views(learner, table, tta_views(tta, flip), batch_size, crop, ids, progress, resize, cache)
    return _frame(learner, row_ids, views.mean(axis=0), settings, tta=tta, tta_flip=flip, tta_crop=crop, unreadable=black)


def _predict_views(learner, table, views, batch_size, crop, ids, progress, resize, cache) -> tuple[list[str], np.ndarray, list[str]]:
    """Return (ids, probabilities (views, n, classes), ids predicted from a black image) for every image, one slice per TTA view."""
    from tqdm.auto import tqdm

    settings = dict(getattr(learner, "settings", None) or {})
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1 (got {batch_size}).")
    classes = [str(c) for c in learner.classes]
    if "id" in classes:
        raise ConfigError("A class is named 'id', which clashes with the id column; rename that class.")
    resize = str(resize or resize_mode(settings))
    _, n_batches, chunks, batches = _batches(learner, table, batch_size, ids, resize, cache)
    out_ids: list[str] = []
    parts: list[np.ndarray] = []
    for chunk_ids, x in tqdm(chunks, total=n_batches, desc=f"predict ({len(views)} views)", disable=not progress, leave=False):
        parts.append(predict_views(learner.model, x, len(classes), views, crop))
        out_ids.extend(chunk_ids)
    probs = np.concatenate(parts, axis=1) if parts else np.zeros((len(views), 0, len(classes)))
    black = list(getattr(batches, "served_black", None) or [])
    _warn_black(black, len(out_ids))
    counts = pd.Series(out_ids, dtype=object).value_counts()
    dupes = sorted(counts[counts > 1].index.tolist())
    if dupes:
        raise TableError(f"{len(dupes)} ids appear more than once: {list_offenders(dupes)}; ids must be unique to key predictions.")
    return out_ids, probs, [str(b[0]) for b in black]


def _warn_black(black: Sequence[tuple[str, str, str]], n: int) -> None:
    """Log which ids were predicted from a black image because their file cannot be decoded (their rows are kept)."""
    if black:
        ids, paths = [str(b[0]) for b in black], [b[1] for b in black]
        logger.warning(f"kagglekit: {len(ids)} of {n} images cannot be decoded, so their rows were predicted from a "
                       f"black image (test rows are kept: Kaggle needs a row for every id; validation scores and tuning leave them out): ids {list_offenders(ids)}. "
                       f"Replace or re-download {list_offenders(paths, 3)} and predict again.")


def _frame(learner: Any, ids: list[str], probs: np.ndarray, settings: dict, **tta: Any) -> pd.DataFrame:
    classes = [str(c) for c in learner.classes]
    frame = pd.DataFrame(probs, columns=classes)
    frame.insert(0, "id", pd.Series(ids, dtype=object))
    frame.attrs.update(classes=classes, multilabel=bool(learner.multilabel), settings=settings, **tta)
    return frame


def choose_tta(
    learner: Any,
    valid: LabelTable,
    metric: str = "accuracy",
    max_tta: int = 4,
    flip: bool | None = None,
    crop: float | None = None,
    batch_size: int = 32,
    progress: bool = True,
    resize: str | None = None,
    cache: str | os.PathLike | None = "auto",
) -> tuple[int, dict[int, float]]:
    """Return (best tta, {tta: validation score}) for tta = 1..max_tta, from one pass over the views.

    Each candidate is scored after tuning its post-processing (clip or
    thresholds) for `metric`; the smallest tta wins ties. Flipped views follow
    `flip` (default `learner.settings["tta_flip"]`, else True): say False where a
    mirror changes the class (digits, text).
    """
    from . import metrics

    settings = dict(getattr(learner, "settings", None) or {})
    flip = bool(settings.get("tta_flip", True) if flip is None else flip)
    crop = float(settings.get("tta_crop", DEFAULT_CROP) if crop is None else crop)
    m = metrics.get_metric(metric)
    views = tta_views(max(1, int(max_tta)), flip)
    ids, probs, black = _predict_views(learner, valid, views, batch_size, crop, None, progress, resize, cache)
    if ids and len(set(black)) == len(ids):
        raise ImageError(f"None of the {len(ids)} validation images can be decoded, so no TTA can be chosen; "
                         "replace or re-download them (the warning above names them).")
    scores: dict[int, float] = {}
    for n in range(1, len(views) + 1):
        frame = readable(_frame(learner, ids, probs[:n].mean(axis=0), settings, unreadable=black))
        y, p = align(frame, valid)
        p = _binary_view(p, m, valid.multilabel)
        scores[n] = metrics.tune(y, p, m, multilabel=valid.multilabel, classes=list(learner.classes))["valid_score"]
    pick = max if m.greater_is_better else min
    best_score = pick(scores.values())
    best = min(n for n, v in scores.items() if v == best_score)
    return (0 if best == 1 else best), scores


_PRED_HEADER = "#kagglekit-predictions "


def save_predictions(predictions: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Return the path written: the predictions as CSV, their attrs (classes, kind, settings, TTA) in the first line, atomically."""
    import json

    from .io import atomic_write_text

    meta = {k: v for k, v in predictions.attrs.items()
            if k in ("classes", "multilabel", "settings", "tta", "tta_flip", "tta_crop", "unreadable")}
    text = _PRED_HEADER + json.dumps(meta, default=str) + "\n" + predictions.to_csv(index=False, float_format="%.8g")
    return atomic_write_text(Path(path), text)


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Return predictions saved by `save_predictions` (ids as text, attrs restored); a plain `id,<class>...` CSV also works."""
    import json

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No predictions file at {path}; write one with kagglekit.predict.save_predictions.")
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    meta = json.loads(first[len(_PRED_HEADER):]) if first.startswith(_PRED_HEADER) else {}
    frame = pd.read_csv(path, skiprows=1 if meta else 0, dtype={"id": str})
    if "id" not in frame.columns:
        raise ConfigError(f"{path} has no 'id' column; predictions are 'id' then one probability column per class.")
    frame.columns = [str(c) for c in frame.columns]
    frame.attrs.update(meta)
    return frame


def readable(predictions: pd.DataFrame) -> pd.DataFrame:
    """Return the predictions without the rows predicted from a black image (ids in `attrs["unreadable"]`), attrs kept.

    Validation scores and tuning use these only: a row whose file cannot be
    decoded says nothing about the model, and its black-image guess would pull
    the clip or thresholds towards it. (Test rows keep theirs: every id needs one.)
    """
    black = set(str(i) for i in predictions.attrs.get("unreadable") or ())
    if not black:
        return predictions
    keep = ~predictions["id"].astype(str).isin(black).to_numpy()
    out = predictions.loc[keep].reset_index(drop=True)
    out.attrs.update(predictions.attrs)
    out.attrs["unreadable"] = []
    out.attrs["left_out"] = int((~keep).sum())
    return out


def align(predictions: pd.DataFrame, table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """Return (targets, probabilities) matched by id: targets from `table` in the predictions' row order."""
    classes = [c for c in predictions.columns if c != "id"]
    if list(table.classes) != classes:
        table = table.with_classes(classes)
    pos = {i: k for k, i in enumerate(table.ids)}
    pred_ids = predictions["id"].astype(str).tolist()
    missing = [i for i in pred_ids if i not in pos]
    if missing:
        raise TableError(
            f"{len(missing)} predicted ids are not in the table: {list_offenders(missing)}. "
            "Score predictions against the table they were made from."
        )
    rows = table.take([pos[i] for i in pred_ids])
    y = rows.targets("multihot" if table.multilabel else "int")
    return y, predictions[classes].to_numpy(dtype="float64")


def score(predictions: pd.DataFrame, table: LabelTable, metric: str = "accuracy", settings: Mapping | None = None) -> float:
    """Return `metric` ("accuracy", "logloss", "f2", "auc", "qwk", "map@5", ...) of predictions against a labelled table, matched by id.

    `settings` (default: the predictions' own) applies the tuned clip or thresholds.
    Rows predicted from a black image (their file cannot be decoded) are left out (`readable`).
    """
    from . import metrics

    y, p = align(readable(predictions), table)
    if settings is None:
        settings = predictions.attrs.get("settings", {})
    return metrics.score(y, _binary_view(p, metrics.get_metric(metric), table.multilabel), metric, settings)


def _left_out(predictions: pd.DataFrame) -> pd.DataFrame:
    """Return `readable(predictions)`, logging how many validation rows were left out of tuning and scoring."""
    out = readable(predictions)
    n = out.attrs.get("left_out", 0)
    if n:
        if not len(out):
            raise ImageError(f"None of the {n} validation images can be decoded, so nothing can be tuned or scored; "
                             "replace or re-download them (the warning above names them).")
        logger.warning(f"kagglekit: validation: {n} of {n + len(out)} images cannot be decoded: left out of the "
                       f"validation score and of tuning (scored on the {len(out)} readable ones)")
    return out


def _binary_view(p: np.ndarray, metric: Any, multilabel: bool) -> np.ndarray:
    """Return P(second class) (n,) for a two-class single-label problem scored on probabilities (log loss, AUC), else `p`.

    Both metrics are symmetric in the classes, so the validation score does not
    depend on which class is positive; the submission writes P(positive).
    """
    if metric.output == "probability" and p.ndim == 2 and p.shape[1] == 2 and not multilabel:
        return p[:, 1]
    return p


def tune_settings(
    learner: Any,
    valid: LabelTable | pd.DataFrame,
    metric: str,
    table: LabelTable | None = None,
    per_class: bool = True,
    new_class: str | None = None,
    **predict_kwargs: Any,
) -> dict:
    """Return `learner.settings` after tuning post-processing for `metric` on validation (and storing it there).

    `valid` is a labelled validation table (predicted here, with `predict_kwargs`
    such as tta) or validation predictions already made, with their `table`.
    Log loss tunes the clip; F-beta tunes (per-class) thresholds with the
    at-least-one-label fallback; quadratic weighted kappa tunes cut-points on the
    expected grade; MAP@k tunes the threshold that inserts the "new" class
    (`new_class`, else a class named new_<x>); AUC and accuracy tune nothing
    (see `kagglekit.metrics.tune`); rows predicted from a black image (an
    unreadable file) are left out and their count logged; the TTA used is recorded (`tta`, `tta_flip`,
    `tta_crop`) so test predictions repeat it. `tta="auto"` first picks the
    number of views with `choose_tta` (up to `max_tta`, default 4).
    """
    from . import metrics

    if isinstance(valid, pd.DataFrame):
        if table is None:
            raise ConfigError("Pass table= (the labelled validation table) with validation predictions.")
        predictions = valid
    else:
        table = valid
        if predict_kwargs.get("tta") == "auto":
            keep = {k: v for k, v in predict_kwargs.items() if k in ("flip", "crop", "batch_size", "progress", "resize", "cache")}
            predict_kwargs["tta"], _ = choose_tta(learner, valid, metric, max_tta=int(predict_kwargs.pop("max_tta", 4)), **keep)
        predict_kwargs.pop("max_tta", None)
        predictions = predict(learner, valid, **predict_kwargs)
    predictions = _left_out(predictions)
    y, p = align(predictions, table)
    p = _binary_view(p, metrics.get_metric(metric), table.multilabel)
    classes = [c for c in predictions.columns if c != "id"]
    tuned = metrics.tune(y, p, metric, multilabel=table.multilabel, per_class=per_class, classes=classes, new_class=new_class)
    if learner.settings is None:
        learner.settings = {}
    learner.settings.update(tuned)
    for key in ("tta", "tta_flip", "tta_crop"):
        if key in predictions.attrs:
            learner.settings[key] = predictions.attrs[key]
    return learner.settings
