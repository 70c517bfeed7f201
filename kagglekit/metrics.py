"""Competition metrics and the post-processing tuned on validation.

Every metric Kaggle uses for image classification, looked up by name in
`METRICS` / `get_metric`; scikit-learn computes it where it has it:

============ =========================================== =========================== ======================
name         what                                        computed by                 post-processing tuned
============ =========================================== =========================== ======================
accuracy     share of right labels (multi-label: per     sklearn accuracy_score /    none (most probable
             decision)                                   1 - hamming_loss            class)
logloss      binary or multi-class log loss, clipped     sklearn log_loss            the clip
f1, f2       F-beta averaged over samples (Planet F2)    sklearn fbeta_score         per-class thresholds
             of label sets                               (average="samples")         + fallback
f1_micro,    micro F-beta: single label (Plant           sklearn f1_score /          none (single label);
f2_micro     Seedlings, equals accuracy) or label sets   fbeta_score (average=       per-class thresholds
             (iMaterialist 2018)                         "micro")                    + fallback (sets)
auc          ROC AUC of P(positive); mean column-wise    sklearn roc_auc_score       none: probabilities,
             ROC AUC for a probability matrix (Plant                                 never clipped (ties)
             Pathology 2020)                                                          nor hard labels
qwk          quadratic weighted kappa of ordinal grades  sklearn cohen_kappa_score   cut-points on the
             (APTOS)                                     (weights="quadratic")       expected grade
map@5        MAP@k of k ranked guesses (Humpback Whale)  own code (sklearn has no    the "new" class
                                                         MAP@k)                      threshold
============ =========================================== =========================== ======================

* `choose_clip` picks the probability clip that minimises validation log loss
  (Dogs vs. Cats Redux rewards not being confidently wrong).
* `search_threshold` / `search_thresholds` pick a global or per-class decision
  threshold that maximises F-beta, with the at-least-one-label fallback; the
  micro-F, QWK cut-point and MAP@k new-class searches are in
  `kagglekit.postprocess`.
* `tune` returns a settings dict (kept in `learner.settings`, saved with the
  model); `postprocess`, `decide` and `rank` apply those settings when
  predicting and writing the submission.

Arrays: `y` holds class indices (n,) or one/multi-hot rows (n, k); `p` holds
probabilities (n, k), or (n,) P(positive) for a binary problem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from . import postprocess as pp
from .errors import ConfigError
from .logs import logger

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DEFAULT_CLIPS: tuple[float, ...] = (0.0, 1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 0.02, 0.03, 0.05, 0.075, 0.1)
DEFAULT_THRESHOLDS: np.ndarray = np.round(np.arange(0.02, 0.99, 0.01), 2)


# --------------------------------------------------------------------- helpers
def _as_probs(p: object) -> np.ndarray:
    p = np.asarray(p, dtype="float64")
    if p.ndim not in (1, 2):
        raise ConfigError(f"Probabilities must be a 1-D or 2-D array (got shape {p.shape}); pass (n,) or (n, classes).")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ConfigError("Probabilities must lie in [0, 1] with no NaN; pass the model's probabilities, not logits.")
    return p


def _as_multihot(y: object, k: int) -> np.ndarray:
    """Return y as (n, k) 0/1 floats, from class indices or one/multi-hot rows."""
    y = np.asarray(y)
    if y.ndim == 1 and k > 1:
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ConfigError(f"Class indices must lie in 0..{k - 1} (got {y.min()}..{y.max()}).")
        out = np.zeros((len(y), k))
        out[np.arange(len(y)), y.astype(int)] = 1.0
        return out
    if y.ndim == 1:  # binary, k == 1
        return y.astype("float64")[:, None]
    if y.shape[1] != k:
        raise ConfigError(f"Targets have {y.shape[1]} columns but the probabilities have {k}; align both to the same classes.")
    return y.astype("float64")


def _check_lengths(y: np.ndarray, p: np.ndarray) -> None:
    if len(y) != len(p):
        raise ConfigError(f"Targets ({len(y)} rows) and probabilities ({len(p)} rows) differ in length; align them by id.")


# --------------------------------------------------------------------- metrics
def accuracy(y: object, p: object, threshold: float = 0.5) -> float:
    """Return the accuracy of the most probable class (single-label) or of each label at `threshold` (multi-label).

    Single-label: `y` is class indices or one-hot rows, `p` (n, k) probabilities,
    or (n,) P(positive) with 0/1 targets (`sklearn.metrics.accuracy_score`).
    Multi-label (`y` rows that are not one-hot): the fraction of (image, class)
    decisions that are right (1 - `sklearn.metrics.hamming_loss`).
    """
    from sklearn.metrics import accuracy_score, hamming_loss

    p = _as_probs(p)
    y = np.asarray(y)
    _check_lengths(y, p)
    if p.ndim == 1:
        return float(accuracy_score(y.astype(float) >= 0.5, p >= threshold))
    if y.ndim == 2 and not np.all(y.sum(axis=1) == 1):
        return float(1.0 - hamming_loss((y >= 0.5).astype(int), (p >= threshold).astype(int)))
    truth = y.argmax(axis=1) if y.ndim == 2 else y.astype(int)
    return float(accuracy_score(truth, p.argmax(axis=1)))


def clip_probs(p: object, clip: float) -> np.ndarray:
    """Return probabilities clipped to [clip, 1 - clip] (`log_loss` renormalises categorical rows, as Kaggle does)."""
    p = _as_probs(p)
    if not 0 <= clip < 0.5:
        raise ConfigError(f"clip must be in [0, 0.5) (got {clip}); e.g. 0.005 clips to [0.005, 0.995].")
    if clip == 0:
        return p
    return np.clip(p, clip, 1 - clip)


def log_loss(y: object, p: object, clip: float = 0.0, eps: float = 1e-15) -> float:
    """Return the mean log loss (binary when `p` is 1-D, else categorical; multi-hot `y` gives mean binary cross-entropy per label).

    `clip` bounds the probabilities to [clip, 1 - clip] first (a categorical row
    is renormalised afterwards, as Kaggle does); `eps` guards against log(0).
    The loss itself is `sklearn.metrics.log_loss`.
    """
    from sklearn.metrics import log_loss as sk_log_loss

    p = _as_probs(p)
    y = np.asarray(y)
    _check_lengths(y, p)
    p = clip_probs(p, clip) if clip else p
    if p.ndim == 1:
        return float(sk_log_loss(y.astype("float64"), np.clip(p, eps, 1 - eps), labels=[0, 1]))
    t = _as_multihot(y, p.shape[1])
    if np.all(t.sum(axis=1) == 1):  # categorical
        q = np.clip(p, eps, 1)
        q = q / q.sum(axis=1, keepdims=True)
        return float(sk_log_loss(t.argmax(axis=1), q, labels=list(range(p.shape[1]))))
    return float(sk_log_loss(t.ravel(), np.clip(p, eps, 1 - eps).ravel(), labels=[0, 1]))  # per (image, label)


def fbeta(
    y: object,
    p: object,
    beta: float = 2.0,
    threshold: float | Sequence[float] | np.ndarray = 0.5,
    fallback: bool = False,
    zero_division: float = 0.0,
) -> float:
    """Return the samples-averaged F-beta of multi-hot `y` against `p`.

    `p` is either 0/1 decisions or probabilities, turned into decisions with
    `threshold` (one value or one per class; a label is predicted when p >= it)
    and, with `fallback`, the most probable label for rows left with none; the
    score is `sklearn.metrics.fbeta_score(y, decisions, beta=beta, average="samples")`
    (an image with no true and no predicted label scores `zero_division`: 0 or 1).
    """
    from sklearn.metrics import fbeta_score

    p = _as_probs(p)
    if p.ndim == 1:
        p = p[:, None]
    t = _as_multihot(y, p.shape[1])
    _check_lengths(t, p)
    pred = apply_thresholds(p, threshold, fallback=fallback)
    if t.shape[1] == 1:  # one label: an all-zero second column changes no count and keeps scikit-learn multi-label
        t, pred = np.pad(t, ((0, 0), (0, 1))), np.pad(pred, ((0, 0), (0, 1)))
    return float(fbeta_score(t.astype(int), pred.astype(int), beta=beta, average="samples", zero_division=zero_division))


def f1(y: object, p: object, **kwargs) -> float:
    """Return the samples-averaged F1 (see `fbeta`)."""
    return fbeta(y, p, beta=1.0, **kwargs)


def f2(y: object, p: object, **kwargs) -> float:
    """Return the samples-averaged F2 (see `fbeta`), iMaterialist Fashion's metric."""
    return fbeta(y, p, beta=2.0, **kwargs)


def _single_truth(y: np.ndarray, k: int) -> np.ndarray | None:
    """Return class indices when `y` is single-label (indices or one-hot rows), else None (multi-hot)."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y.astype(int)
    if y.shape[1] == k and np.all(y.sum(axis=1) == 1):
        return y.argmax(axis=1)
    return None


def fbeta_micro(
    y: object,
    p: object,
    beta: float = 1.0,
    threshold: float | Sequence[float] | np.ndarray = 0.5,
    fallback: bool = True,
) -> float:
    """Return the micro-averaged F-beta: of the most probable class (single-label `y`) or of label sets decided by `threshold` (multi-hot `y`).

    Single-label micro-F1 equals accuracy (Plant Seedlings); label sets are
    iMaterialist 2018's metric. `sklearn.metrics.fbeta_score(average="micro")`.
    """
    from sklearn.metrics import fbeta_score

    p = _as_probs(p)
    p = p[:, None] if p.ndim == 1 else p
    truth = _single_truth(y, p.shape[1]) if p.shape[1] > 1 else None
    _check_lengths(np.asarray(y), p)
    if truth is not None:
        return float(fbeta_score(truth, p.argmax(axis=1), beta=beta, average="micro"))
    t = _as_multihot(y, p.shape[1])
    pred = apply_thresholds(p, threshold, fallback=fallback)
    return float(fbeta_score(t.astype(int), pred.astype(int), beta=beta, average="micro", zero_division=0))


def f1_micro(y: object, p: object, **kwargs) -> float:
    """Return the micro-averaged F1 (see `fbeta_micro`)."""
    return fbeta_micro(y, p, beta=1.0, **kwargs)


def f2_micro(y: object, p: object, **kwargs) -> float:
    """Return the micro-averaged F2 (see `fbeta_micro`)."""
    return fbeta_micro(y, p, beta=2.0, **kwargs)


def _one_truth_and_probs(y: object, p: object, not_2d: str, multilabel: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (true class index per row, probabilities (n, k)) for metrics scoring one class per image; `not_2d`/`multilabel` are the errors."""
    p = _as_probs(p)
    if p.ndim != 2:
        raise ConfigError(not_2d)
    truth = _single_truth(y, p.shape[1])
    if truth is None:
        raise ConfigError(multilabel)
    _check_lengths(truth, p)
    return truth, p


def auc(y: object, p: object) -> float:
    """Return the ROC AUC of (n,) P(positive) against 0/1 `y`, or the mean column-wise ROC AUC of a probability matrix (n, k).

    A two-column matrix with class indices is scored on its second column. Columns
    whose class is all present or all absent have no AUC: they are left out of
    the mean with a warning (Kaggle would not score them either). `sklearn.metrics.roc_auc_score`.
    """
    from sklearn.metrics import roc_auc_score

    p = _as_probs(p)
    y = np.asarray(y)
    _check_lengths(y, p)
    if p.ndim == 2 and p.shape[1] == 2 and y.ndim == 1:
        p = p[:, 1]
    if p.ndim == 1:
        t = y.astype("float64") if y.ndim == 1 else y[:, -1].astype("float64")
        if len(np.unique(t)) < 2:
            raise ConfigError("ROC AUC needs both classes among the targets; validate on a split holding positives and negatives.")
        return float(roc_auc_score(t, p))
    t = _as_multihot(y, p.shape[1])
    scored = [j for j in range(p.shape[1]) if 0 < t[:, j].sum() < len(t)]
    if not scored:
        raise ConfigError("No column holds both positives and negatives, so no ROC AUC can be computed; validate on more images.")
    if len(scored) < p.shape[1]:
        logger.warning(f"ROC AUC: {p.shape[1] - len(scored)} of {p.shape[1]} columns have a single class in these targets "
                       "and are left out of the mean")
    return float(np.mean([roc_auc_score(t[:, j], p[:, j]) for j in scored]))


def qwk(y: object, p: object, cuts: Sequence[float] | None = None) -> float:
    """Return the quadratic weighted kappa of grades from `p` (n, k) against grades `y`: class j of the vocabulary is grade j.

    Grades are the most probable class, or with `cuts` the expected grade
    sum_j j * p_j cut at the k - 1 cut-points (`kagglekit.postprocess.grades`).
    `sklearn.metrics.cohen_kappa_score(weights="quadratic")`.
    """
    from sklearn.metrics import cohen_kappa_score

    truth, p = _one_truth_and_probs(
        y, p, "Quadratic weighted kappa needs class probabilities (n, grades), one column per grade.",
        "Quadratic weighted kappa scores one grade per image; the targets are multi-label.")
    return float(cohen_kappa_score(truth, pp.grades(p, cuts), weights="quadratic"))


def map_at_k(y: object, p: object, k: int = 5, new_index: int | None = None, new_threshold: float | None = None) -> float:
    """Return the mean average precision at `k` of the k most probable classes (Humpback Whale's MAP@5): mean of 1/rank of the truth.

    `new_index`/`new_threshold` insert the "new" class (``new_whale``) with the
    score max(p_new, threshold) (`kagglekit.postprocess.rank_top_k`); own code,
    as scikit-learn has no MAP@k over one true class.
    """
    truth, p = _one_truth_and_probs(y, p, "MAP@k needs class probabilities (n, classes).",
                                    "MAP@k scores one true class per image; the targets are multi-label.")
    return float(pp.average_precision_at_k(truth, pp.rank_top_k(p, k, new_index, new_threshold)).mean())


# -------------------------------------------------------------------- registry
TUNES = ("none", "clip", "threshold", "cuts", "new_class")
OUTPUTS = ("probability", "decision", "ranked")


@dataclass(frozen=True)
class Metric:
    """A competition metric: `fn(y, p, **options)`, its direction, what it tunes and what the submission must hold.

    `output`: "probability" (the file holds probabilities: never hard labels),
    "decision" (labels: one per row, or label sets) or "ranked" (k guesses).
    """

    name: str
    fn: Callable[..., float]
    greater_is_better: bool
    tunes: str  # one of TUNES
    beta: float | None = None
    output: str = "decision"
    k: int | None = None  # guesses per row (MAP@k)
    average: str = "samples"  # how an F-beta averages: "samples" or "micro"

    def __call__(self, y: object, p: object, **kwargs) -> float:
        return self.fn(y, p, **kwargs)


METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", accuracy, True, "none"),
    "logloss": Metric("logloss", log_loss, False, "clip", output="probability"),
    "f1": Metric("f1", f1, True, "threshold", beta=1.0),
    "f2": Metric("f2", f2, True, "threshold", beta=2.0),
    "f1_micro": Metric("f1_micro", f1_micro, True, "threshold", beta=1.0, average="micro"),
    "f2_micro": Metric("f2_micro", f2_micro, True, "threshold", beta=2.0, average="micro"),
    "auc": Metric("auc", auc, True, "none", output="probability"),
    "qwk": Metric("qwk", qwk, True, "cuts"),
    "map@5": Metric("map@5", lambda y, p, **kw: map_at_k(y, p, k=5, **kw), True, "new_class", output="ranked", k=5),
}
_ALIASES = {
    "acc": "accuracy", "log_loss": "logloss", "neg_log_loss": "logloss", "multiclass_log_loss": "logloss",
    "binary_log_loss": "logloss", "fbeta": "f2", "f2_samples": "f2", "f1_samples": "f1",
    "micro_f1": "f1_micro", "micro_f1_labels": "f1_micro", "f1_score_micro": "f1_micro", "micro_f2": "f2_micro",
    "roc_auc": "auc", "rocauc": "auc", "mean_column_roc_auc": "auc", "mean_column_auc": "auc", "auc_mean": "auc",
    "mean_auc": "auc", "qwk": "qwk", "kappa": "qwk", "quadratic_kappa": "qwk", "quadratic_weighted_kappa": "qwk",
    "cohen_kappa": "qwk",
}
_MAP_AT = re.compile(r"^map(?:@|_at_|_?)(\d+)$")


def register_metric(name: str, fn: Callable[..., float], greater_is_better: bool = True, tunes: str = "none",
                    beta: float | None = None, output: str = "decision") -> Metric:
    """Return the new `Metric` after registering `fn(y, p)` under `name` (tunes: "none", "clip" or "threshold")."""
    if tunes not in ("none", "clip", "threshold"):
        raise ConfigError(f"tunes={tunes!r} is not supported; use 'none', 'clip' or 'threshold'.")
    if tunes == "threshold" and beta is None:
        raise ConfigError("A threshold-tuned metric needs beta= (the F-beta it is tuned as).")
    if output not in OUTPUTS:
        raise ConfigError(f"output={output!r} is not supported; use one of {OUTPUTS}.")
    metric = Metric(str(name).lower(), fn, bool(greater_is_better), tunes, beta, output)
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str | Metric) -> Metric:
    """Return the registered `Metric` called `name` (e.g. "accuracy", "logloss", "f2", "auc", "qwk", "map@5")."""
    if isinstance(name, Metric):
        return name
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    at = _MAP_AT.match(key)
    if at and key not in METRICS:
        k = int(at.group(1))
        if k < 1:
            raise ConfigError(f"MAP@k needs k >= 1 (got {name!r}).")
        key = f"map@{k}"
        METRICS[key] = Metric(key, lambda y, p, k=k, **kw: map_at_k(y, p, k=k, **kw), True, "new_class", output="ranked", k=k)
    if key not in METRICS:
        raise ConfigError(f"Unknown metric {name!r}; choose one of {sorted(METRICS)} (or add one with kagglekit.metrics.register_metric).")
    return METRICS[key]


def score(y: object, p: object, metric: str | Metric = "accuracy", settings: Mapping | None = None) -> float:
    """Return `metric` of `p` against `y` after applying `settings` (clip, thresholds, fallback, cuts, new-class threshold)."""
    m = get_metric(metric)
    settings = dict(settings or {})
    if m.tunes == "clip":
        return m(y, p, clip=float(settings.get("clip", 0.0)))
    if m.tunes == "threshold":
        return m(y, p, threshold=settings.get("threshold", 0.5), fallback=bool(settings.get("fallback", True)))
    if m.tunes == "cuts":
        return m(y, p, cuts=settings.get("cuts"))
    if m.tunes == "new_class":
        return m(y, p, new_index=settings.get("new_index"), new_threshold=settings.get("new_threshold"))
    return m(y, p)


# ---------------------------------------------------------------- tuning: clip
def choose_clip(y: object, p: object, candidates: Sequence[float] = DEFAULT_CLIPS) -> float:
    """Return the clip c (probabilities bounded to [c, 1 - c]) that minimises log loss of `p` on validation."""
    losses = [log_loss(y, p, clip=c) for c in candidates]
    return float(candidates[int(np.argmin(losses))])


# ---------------------------------------------------------- tuning: thresholds
def apply_thresholds(p: object, threshold: float | Sequence[float] | np.ndarray = 0.5, fallback: bool = True) -> np.ndarray:
    """Return 0/1 decisions (n, k): p >= threshold (global or per class); with `fallback`, rows with no label get their most probable one."""
    p = _as_probs(p)
    if p.ndim == 1:
        p = p[:, None]
    thr = np.asarray(threshold, dtype="float64")
    if thr.ndim == 1 and len(thr) != p.shape[1]:
        raise ConfigError(f"Got {len(thr)} thresholds for {p.shape[1]} classes; give one threshold or one per class.")
    pred = (p >= thr).astype("float64")
    if fallback and len(p):
        empty = pred.sum(axis=1) == 0
        pred[np.flatnonzero(empty), p[empty].argmax(axis=1)] = 1.0
    return pred


def _row_fbeta(tp, npred, fn, y_top, n_true, beta: float, fallback: bool) -> np.ndarray:
    """Return per-row F-beta from per-row counts (any shape, rows first), the fallback applied to empty rows."""
    fp = npred - tp
    if fallback:
        extra = (slice(None),) + (None,) * (np.ndim(tp) - 1)
        yt, nt = y_top[extra], n_true[extra]
        empty = npred == 0
        tp = np.where(empty, yt, tp)
        fp = np.where(empty, 1 - yt, fp)
        fn = np.where(empty, nt - yt, fn)
    b2 = beta * beta
    num = (1 + b2) * tp
    den = num + b2 * fn + fp
    return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _prepare(y: object, p: object, grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _as_probs(p)
    p = p[:, None] if p.ndim == 1 else p
    t = _as_multihot(y, p.shape[1])
    _check_lengths(t, p)
    grid = np.sort(np.asarray(grid, dtype="float64"))
    if grid.ndim != 1 or not len(grid):
        raise ConfigError("grid must be a non-empty list of thresholds, e.g. numpy.arange(0.05, 0.95, 0.01).")
    return t, p, grid


def search_threshold(
    y: object,
    p: object,
    beta: float = 2.0,
    grid: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    fallback: bool = True,
) -> tuple[float, float]:
    """Return (threshold, F-beta): the one global threshold that maximises samples F-beta on validation.

    Every candidate in `grid` is scored exactly, all at once: per-row label counts
    at each threshold come from one histogram of the probabilities.
    """
    t, p, grid = _prepare(y, p, grid)
    n, g = len(p), len(grid)
    if n == 0:
        raise ConfigError("No validation rows to search thresholds on.")
    bins = np.searchsorted(grid, p, side="right")  # label predicted at grid[i] iff i < bins
    rows = np.repeat(np.arange(n), p.shape[1])
    flat = rows * (g + 1) + bins.ravel()
    hist_all = np.bincount(flat, minlength=n * (g + 1)).reshape(n, g + 1)
    hist_tp = np.bincount(flat, weights=t.ravel(), minlength=n * (g + 1)).reshape(n, g + 1)
    # counts predicted at grid[i]: entries whose bin is above i (reverse cumulative sum, shifted)
    npred = np.cumsum(hist_all[:, ::-1], axis=1)[:, ::-1][:, 1:]
    tp = np.cumsum(hist_tp[:, ::-1], axis=1)[:, ::-1][:, 1:]
    top = p.argmax(axis=1)
    y_top, n_true = t[np.arange(n), top], t.sum(axis=1)
    scores = _row_fbeta(tp, npred, n_true[:, None] - tp, y_top, n_true, beta, fallback).mean(axis=0)
    best = int(np.argmax(scores))
    return float(grid[best]), float(scores[best])


def search_thresholds(
    y: object,
    p: object,
    beta: float = 2.0,
    grid: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    fallback: bool = True,
    start: float | None = None,
    passes: int = 2,
    min_support: int = 1,
) -> tuple[np.ndarray, float]:
    """Return (per-class thresholds, F-beta) maximising samples F-beta on validation.

    Starts from the best global threshold (or `start`) and improves one class at
    a time against the full metric (coordinate ascent, `passes` sweeps), scoring
    every candidate exactly, the at-least-one-label fallback included: with the
    other classes fixed, each row's F-beta takes one of two values (class j on
    or off), so all candidates for class j are scored from one sort. Classes
    with fewer than `min_support` positive validation images keep the global
    threshold (too little evidence to tune them).
    """
    t, p, grid = _prepare(y, p, grid)
    if start is None:
        start, _ = search_threshold(t, p, beta=beta, grid=grid, fallback=fallback)
    n, k = p.shape
    thr = np.full(k, float(start))
    top = p.argmax(axis=1)
    y_top, n_true = t[np.arange(n), top], t.sum(axis=1)
    support = t.sum(axis=0)
    pred = (p >= thr).astype("float64")
    tp_all, np_all, fn_all = (pred * t).sum(1), pred.sum(1), ((1 - pred) * t).sum(1)  # running per-row counts
    best_score = float(np.mean(_row_fbeta(tp_all, np_all, fn_all, y_top, n_true, beta, fallback)))
    for _ in range(max(1, passes)):
        improved = False
        for j in range(k):
            if support[j] < min_support:
                continue
            pj, tj = pred[:, j], t[:, j]
            tp_o, np_o, fn_o = tp_all - pj * tj, np_all - pj, fn_all - (1 - pj) * tj
            f_off = _row_fbeta(tp_o, np_o, fn_o + tj, y_top, n_true, beta, fallback)
            f_on = _row_fbeta(tp_o + tj, np_o + 1, fn_o, y_top, n_true, beta, fallback)
            order = np.argsort(p[:, j], kind="stable")
            gain = np.concatenate([[0.0], np.cumsum((f_on - f_off)[order][::-1])])  # gain of the top m rows
            on_count = n - np.searchsorted(p[order, j], grid, side="left")  # rows with p >= grid[i]
            scores = (f_off.sum() + gain[on_count]) / n
            g = int(np.argmax(scores))
            if scores[g] > best_score + 1e-12:
                best_score = float(scores[g])
                thr[j] = grid[g]
                new = (p[:, j] >= grid[g]).astype("float64")
                pred[:, j] = new
                tp_all, np_all, fn_all = tp_o + new * tj, np_o + new, fn_o + (1 - new) * tj
                improved = True
        if not improved:
            break
    return thr, best_score


# ------------------------------------------------------------ settings in/out
def tune(
    y: object,
    p: object,
    metric: str | Metric,
    multilabel: bool | None = None,
    per_class: bool = True,
    fallback: bool = True,
    classes: Sequence[str] | None = None,
    new_class: str | None = None,
) -> dict:
    """Return the post-processing settings that score best on validation for `metric`.

    logloss -> {"clip"}; F-beta (samples or micro, label sets) -> {"threshold"
    (global float or per-class list), "fallback"}; qwk -> {"cuts"} (cut-points on
    the expected grade, or None when the most probable grade scores better);
    map@k -> {"top_k", "new_class", "new_index", "new_threshold"} (the "new" class
    is `new_class`, else inferred from `classes`: a class named new_<x>, with the
    reason in "new_class_reason"); accuracy, single-label micro-F and auc -> nothing
    to tune. Keys "metric", "valid_score" and "valid_score_raw" (before tuning) are
    always set. Store the result in `learner.settings` so it is saved with the
    model and applied when writing the submission.
    """
    m = get_metric(metric)
    p = _as_probs(p)
    settings: dict = {"metric": m.name}
    if multilabel is not None:
        settings["multilabel"] = bool(multilabel)
    if m.tunes == "clip":
        settings["valid_score_raw"] = log_loss(y, p)
        settings["clip"] = choose_clip(y, p)
    elif m.tunes == "threshold" and m.average == "micro" and (p.ndim == 1 or _single_truth(y, p.shape[1]) is not None):
        settings["valid_score_raw"] = m(y, p)  # one label per row: the most probable class, nothing to tune
    elif m.tunes == "threshold":
        settings["valid_score_raw"] = m(y, p, threshold=0.5, fallback=False)
        settings["fallback"] = bool(fallback)
        if m.average == "micro":
            t, q, grid = _prepare(y, p, DEFAULT_THRESHOLDS)
            thr, _ = pp.search_threshold_micro(t, q, m.beta, grid, fallback=fallback)
            if per_class and q.shape[1] > 1:
                thr = [float(x) for x in pp.search_thresholds_micro(t, q, m.beta, grid, thr, fallback=fallback)[0]]
            settings["threshold"] = thr
        elif per_class and p.ndim == 2 and p.shape[1] > 1:
            thr, _ = search_thresholds(y, p, beta=m.beta, fallback=fallback)
            settings["threshold"] = [float(x) for x in thr]
        else:
            settings["threshold"], _ = search_threshold(y, p, beta=m.beta, fallback=fallback)
    elif m.tunes == "cuts":
        truth = _single_truth(y, p.shape[1]) if p.ndim == 2 else None
        if truth is None:
            raise ConfigError("Quadratic weighted kappa needs one grade per image and probabilities (n, grades).")
        settings["valid_score_raw"] = m(y, p)
        if p.shape[1] >= 3:
            cuts, _ = pp.search_cuts(truth, p)
            settings["cuts"] = cuts if m(y, p, cuts=cuts) > settings["valid_score_raw"] else None
        else:
            settings["cuts"] = None
    elif m.tunes == "new_class":
        settings["valid_score_raw"] = m(y, p)
        settings["top_k"] = m.k
        names = [str(c) for c in classes] if classes is not None else None
        if new_class is not None:
            reason = "set by new_class="
        elif names is not None:
            new_class, reason = pp.infer_new_class(names)
        else:
            reason = "no classes given, so no 'new' class: plain top-k guesses"
        settings["new_class"], settings["new_class_reason"] = new_class, reason
        if new_class is not None:
            if names is None:
                raise ConfigError("new_class= needs classes= (the predictions' column order) to find its column.")
            index = names.index(new_class) if new_class in names else len(names)
            truth = _single_truth(y, p.shape[1])
            settings["new_index"] = index
            settings["new_threshold"], _ = pp.search_new_threshold(truth, p, index, k=m.k)
    else:
        settings["valid_score_raw"] = m(y, p)
    settings["valid_score"] = score(y, p, m, settings)
    return settings


def postprocess(probs: "np.ndarray | pd.DataFrame", settings: Mapping | None = None) -> "np.ndarray | pd.DataFrame":
    """Return the probabilities with `settings` applied (currently the "clip"), same type as given.

    Accepts an array or a predictions DataFrame (`id` + one column per class);
    thresholds are applied by `decide`, which turns probabilities into labels.
    """
    settings = dict(settings or {})
    clip = float(settings.get("clip", 0.0) or 0.0)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(probs, pd.DataFrame):
        out = probs.copy()
        cols = [c for c in out.columns if c != "id"]
        if clip:
            out[cols] = clip_probs(out[cols].to_numpy(), clip)
        return out
    return clip_probs(probs, clip) if clip else _as_probs(probs)


def decide(probs: object, settings: Mapping | None = None, multilabel: bool | None = None) -> np.ndarray:
    """Return 0/1 decisions (n, k): the most probable class per row, or the grade cut from the expected grade by settings["cuts"] (single-label), or thresholds + fallback (multi-label)."""
    settings = dict(settings or {})
    p = _as_probs(probs)
    p = p[:, None] if p.ndim == 1 else p
    if multilabel is None:
        multilabel = bool(settings.get("multilabel", "threshold" in settings))
    if not multilabel:
        out = np.zeros_like(p)
        if len(p):
            chosen = pp.grades(p, settings.get("cuts")) if p.shape[1] > 1 else np.zeros(len(p), dtype=int)
            out[np.arange(len(p)), chosen] = 1.0
        return out
    return apply_thresholds(p, settings.get("threshold", 0.5), fallback=bool(settings.get("fallback", True)))


def rank(probs: object, settings: Mapping | None = None, classes: Sequence[str] | None = None, k: int | None = None) -> list[list[str]]:
    """Return each row's guesses, most probable first: `k` (default settings["top_k"], else 5) class names, the "new" class inserted by its threshold.

    The "new" class (settings["new_class"]) may be a class of the model or not
    (then it is guessed with the score settings["new_threshold"] alone).
    """
    settings = dict(settings or {})
    p = _as_probs(probs)
    p = p[:, None] if p.ndim == 1 else p
    names = [str(c) for c in (classes if classes is not None else range(p.shape[1]))]
    k = int(k or settings.get("top_k") or 5)
    new_class, threshold = settings.get("new_class"), settings.get("new_threshold")
    index = None
    if new_class is not None and threshold:
        index = names.index(new_class) if new_class in names else len(names)
        if index == len(names):
            names = [*names, str(new_class)]
    order = pp.rank_top_k(p, min(k, len(names)), index, threshold)
    return [[names[j] for j in row] for row in order]
