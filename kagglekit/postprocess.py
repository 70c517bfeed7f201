"""The post-processing searches that need their own code: QWK cut-points, the MAP@k new-class threshold, micro F-beta thresholds.

Pure numpy over arrays (no pandas, no kagglekit imports but errors), used by
`kagglekit.metrics.tune`. Each search scores candidates with a fast exact count
of the metric; the reported score is then recomputed with scikit-learn (or
`metrics.map_at_k`) by the caller.

* Ordinal grades (quadratic weighted kappa, APTOS): the expected grade
  ``E = sum_j j * p_j`` (class j of the vocabulary is grade j) is cut at k - 1
  cut-points; `search_cuts` tunes them by coordinate ascent from 0.5, 1.5, ...
* Top-k guesses (MAP@k, Humpback Whale): `rank_top_k` lists the k most probable
  classes, the "new" class (``new_whale``) scored ``max(p_new, t)`` so it is
  inserted before every guess less probable than t; `search_new_threshold` tunes
  t (t = 0 is the plain ranking).
* Micro F-beta over label sets (iMaterialist 2018): `search_threshold_micro` /
  `search_thresholds_micro`, global or per class, the at-least-one-label
  fallback included, every candidate scored exactly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ConfigError

NEW_CLASS_PREFIXES = ("new_", "new-", "new ")


# ------------------------------------------------------------- ordinal grades
def expected_grade(p: np.ndarray) -> np.ndarray:
    """Return the expected grade sum_j j * p_j of each row of class probabilities (n, k), class j being grade j."""
    p = np.asarray(p, dtype="float64")
    total = p.sum(axis=1)
    return (p @ np.arange(p.shape[1])) / np.where(total > 0, total, 1.0)


def default_cuts(k: int) -> list[float]:
    """Return the untuned cut-points 0.5, 1.5, ..., k - 1.5 (round the expected grade)."""
    return [i + 0.5 for i in range(k - 1)]


def grades(p: np.ndarray, cuts: Sequence[float] | None = None) -> np.ndarray:
    """Return the grade (class index) of each row: the expected grade cut at `cuts`, or the most probable class when cuts is None."""
    p = np.asarray(p, dtype="float64")
    if cuts is None:
        return p.argmax(axis=1)
    cuts = np.asarray(cuts, dtype="float64")
    if cuts.shape != (p.shape[1] - 1,) or np.any(np.diff(cuts) < 0):
        raise ConfigError(f"cuts must be {p.shape[1] - 1} increasing cut-points between the {p.shape[1]} grades (got {cuts.tolist()}).")
    return np.searchsorted(cuts, expected_grade(p), side="right")


def quadratic_kappa(y: np.ndarray, pred: np.ndarray) -> float:
    """Return Cohen's quadratic weighted kappa of integer grades, computed as scikit-learn does (weights over the labels present)."""
    y, pred = np.asarray(y, dtype=int), np.asarray(pred, dtype=int)
    labels = np.unique(np.concatenate([y, pred]))
    m = len(labels)
    if m < 2:
        return 0.0 if not np.array_equal(y, pred) else 1.0
    a, b = np.searchsorted(labels, y), np.searchsorted(labels, pred)
    observed = np.bincount(a * m + b, minlength=m * m).reshape(m, m).astype("float64")
    expected = np.outer(observed.sum(1), observed.sum(0)) / len(y)
    w = (np.arange(m)[:, None] - np.arange(m)[None, :]) ** 2.0
    den = (w * expected).sum()
    return float(1.0 - (w * observed).sum() / den) if den > 0 else 0.0


def search_cuts(y: np.ndarray, p: np.ndarray, step: float = 0.01, passes: int = 4) -> tuple[list[float], float]:
    """Return (cut-points, QWK): the k - 1 cuts on the expected grade that maximise quadratic weighted kappa on validation.

    Coordinate ascent from the rounding cuts (0.5, 1.5, ...): each cut in turn
    takes the best value between its neighbours on a grid of `step`.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype="float64")
    k = p.shape[1]
    if k < 3:
        raise ConfigError(f"Cut-points need at least 3 grades (got {k} classes); for two classes use a threshold.")
    e = expected_grade(p)
    cuts = np.asarray(default_cuts(k))
    best = quadratic_kappa(y, np.searchsorted(cuts, e, side="right"))
    for _ in range(max(1, passes)):
        improved = False
        for i in range(k - 1):
            lo = cuts[i - 1] if i > 0 else 0.0
            hi = cuts[i + 1] if i < k - 2 else float(k - 1)
            for c in np.arange(lo + step, hi, step):
                trial = cuts.copy()
                trial[i] = c
                s = quadratic_kappa(y, np.searchsorted(trial, e, side="right"))
                if s > best + 1e-12:
                    best, cuts, improved = s, trial, True
        if not improved:
            break
    return [round(float(c), 6) for c in cuts], float(best)


# ------------------------------------------------------------- top-k guesses
def infer_new_class(classes: Sequence[str]) -> tuple[str | None, str]:
    """Return (the "new" class or None, the reason): a class named new_<something> (Humpback's ``new_whale``)."""
    found = [c for c in classes if str(c).lower().startswith(NEW_CLASS_PREFIXES)]
    if len(found) == 1:
        return str(found[0]), f"the class {found[0]!r} stands for an unseen individual: its guess is inserted by a tuned threshold"
    if found:
        return None, f"several classes look like a 'new' class ({found[:3]}); pass new_class= to tune its threshold"
    return None, "no class is named new_<something>: plain top-k guesses"


def _scores(p: np.ndarray, new_index: int | None, new_threshold: float | None) -> np.ndarray:
    s = np.asarray(p, dtype="float64")
    if new_index is None or not new_threshold:
        return s
    if new_index == s.shape[1]:  # the new class is not a model class: a column of its own
        s = np.concatenate([s, np.zeros((len(s), 1))], axis=1)
    else:
        s = s.copy()
    s[:, new_index] = np.maximum(s[:, new_index], float(new_threshold))
    return s


def rank_top_k(p: np.ndarray, k: int = 5, new_index: int | None = None, new_threshold: float | None = None) -> np.ndarray:
    """Return (n, k) class indices, most probable first, the new class scored max(p_new, new_threshold); ties keep class order.

    `new_index` may equal the number of classes: the new class is then not a
    model output and gets the score `new_threshold` alone.
    """
    s = _scores(p, new_index, new_threshold)
    return np.argsort(-s, axis=1, kind="stable")[:, : int(k)]


def average_precision_at_k(y: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """Return per-row 1/rank of the true class among the guesses (0 when it is not guessed)."""
    y = np.asarray(y, dtype=int)
    hit = ranked == y[:, None]
    first = hit.argmax(axis=1)
    return np.where(hit.any(axis=1), 1.0 / (first + 1), 0.0)


def search_new_threshold(y: np.ndarray, p: np.ndarray, new_index: int, k: int = 5,
                         grid: Sequence[float] | np.ndarray | None = None) -> tuple[float, float]:
    """Return (threshold, MAP@k): the new-class threshold t that maximises MAP@k on validation (t = 0: plain ranking; ties: smallest t).

    Exact for distinct probabilities: a true known class keeps its rank among
    the other known classes and moves down one place when max(p_new, t) exceeds
    it; a true new class ranks after the known classes more probable than it.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype="float64")
    n, m = p.shape
    known = p.copy()
    p_new = p[:, new_index] if new_index < m else np.zeros(n)
    if new_index < m:
        known[:, new_index] = -np.inf
    top = -np.sort(-known, axis=1)[:, :k]  # the k most probable known classes, descending
    if grid is None:
        best_known = top[:, 0]
        grid = np.concatenate([[0.0], np.linspace(0.01, 0.99, 99), np.quantile(best_known, np.linspace(0, 1, 101))])
    grid = np.unique(np.clip(np.asarray(grid, dtype="float64"), 0.0, 1.0))
    is_new = y == new_index
    rows = np.arange(n)
    p_true = np.where(is_new, 0.0, p[rows, np.where(is_new, 0, y)])  # P(true class) of rows whose truth is known
    r0 = 1 + (known > p_true[:, None]).sum(axis=1)  # rank of a true known class among the known ones
    s_new = np.maximum(p_new[:, None], grid[None, :])  # (n, G)
    rank_known = r0[:, None] + (s_new > p_true[:, None])
    rank_new = 1 + (top[:, :, None] > s_new[:, None, :]).sum(axis=1)
    rank = np.where(is_new[:, None], rank_new, rank_known)
    score = np.where(rank <= k, 1.0 / rank, 0.0).mean(axis=0)
    best = int(np.argmax(score))  # first maximum: the smallest threshold
    return float(grid[best]), float(score[best])


# --------------------------------------------------------- micro F-beta sets
def _micro(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    num = (1 + b2) * tp
    den = num + b2 * fn + fp
    return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def micro_counts(t: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Return (tp, fp, fn) summed over every (image, label) decision."""
    tp = float((pred * t).sum())
    return tp, float(pred.sum() - tp), float(t.sum() - tp)


def search_threshold_micro(t: np.ndarray, p: np.ndarray, beta: float, grid: np.ndarray, fallback: bool = True) -> tuple[float, float]:
    """Return (threshold, micro F-beta): the one global threshold maximising micro F-beta, with the fallback."""
    top = p.argmax(axis=1)
    rows = np.arange(len(p))
    best_g, best = float(grid[0]), -1.0
    for g in grid:
        pred = (p >= g).astype("float64")
        if fallback and len(p):
            empty = pred.sum(axis=1) == 0
            pred[rows[empty], top[empty]] = 1.0
        s = float(_micro(*micro_counts(t, pred), beta))
        if s > best + 1e-12:
            best_g, best = float(g), s
    return best_g, best


def search_thresholds_micro(t: np.ndarray, p: np.ndarray, beta: float, grid: np.ndarray, start: float,
                            fallback: bool = True, passes: int = 2, min_support: int = 1) -> tuple[np.ndarray, float]:
    """Return (per-class thresholds, micro F-beta) by coordinate ascent from `start`, each candidate scored exactly.

    With the other classes fixed, each row contributes one (tp, fp, fn) when
    class j is on and another when it is off (the fallback applied to a row left
    empty), so every threshold for class j is scored from one sort.
    """
    n, k = p.shape
    thr = np.full(k, float(start))
    top = p.argmax(axis=1)
    rows = np.arange(n)
    y_top, n_true = t[rows, top], t.sum(axis=1)
    support = t.sum(axis=0)
    pred = (p >= thr).astype("float64")

    def totals(pr: np.ndarray) -> float:
        q = pr.copy()
        if fallback:
            empty = q.sum(axis=1) == 0
            q[rows[empty], top[empty]] = 1.0
        return float(_micro(*micro_counts(t, q), beta))

    best = totals(pred)
    for _ in range(max(1, passes)):
        improved = False
        for j in range(k):
            if support[j] < min_support:
                continue
            others = pred.copy()
            others[:, j] = 0.0
            np_o, tp_o = others.sum(axis=1), (others * t).sum(axis=1)
            empty = (np_o == 0) & fallback
            tp_off = np.where(empty, y_top, tp_o)
            fp_off = np.where(empty, 1 - y_top, np_o - tp_o)
            tp_on, fp_on = tp_o + t[:, j], np_o - tp_o + (1 - t[:, j])
            order = np.argsort(-p[:, j], kind="stable")
            d_tp = np.concatenate([[0.0], np.cumsum((tp_on - tp_off)[order])])
            d_fp = np.concatenate([[0.0], np.cumsum((fp_on - fp_off)[order])])
            on_count = (p[:, j][:, None] >= grid[None, :]).sum(axis=0)
            tp = tp_off.sum() + d_tp[on_count]
            fp = fp_off.sum() + d_fp[on_count]
            fn = n_true.sum() - tp
            scores = _micro(tp, fp, fn, beta)
            g = int(np.argmax(scores))
            if scores[g] > best + 1e-12:
                best, thr[j], improved = float(scores[g]), float(grid[g]), True
                pred[:, j] = (p[:, j] >= grid[g]).astype("float64")
        if not improved:
            break
    return thr, best
