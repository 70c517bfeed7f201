"""Score a submission as Kaggle would: an implementation of each competition's metric independent of kagglekit's.

`score(name_or_metric, submission, answers)` parses the submission in the competition's
format (one label, space-separated labels, a probability, probability columns, five
ranked guesses), aligns it to the answers by id (the answers' first column) and applies
the metric, built on scikit-learn where it has it. A missing, extra or repeated id, a
missing column or an empty value is an error, never a silent drop. kagglekit's own
`metrics` module is deliberately not used.

Metrics (name: what it computes):

* ``accuracy``: share of exact labels (Cassava, Digit Recognizer).
* ``micro_f1``: micro-averaged F1 of single labels (Plant Seedlings).
* ``micro_f1_labels``: micro-averaged F1 of space-separated label sets (iMaterialist 2018).
* ``f2_samples``: F-beta (beta 2) of space-separated label sets, averaged over samples (Planet).
* ``log_loss``: binary log loss of P(positive), clipped to [1e-15, 1 - 1e-15] (Dogs vs. Cats).
* ``multiclass_log_loss``: rows rescaled to sum 1, clipped at 1e-15, log loss (State Farm).
* ``roc_auc``: ROC AUC of one probability column (Aerial Cactus, Histopathology).
* ``mean_column_roc_auc``: mean ROC AUC over the probability columns (Plant Pathology 2020).
* ``quadratic_kappa``: Cohen's kappa with quadratic weights (APTOS 2019).
* ``map_at_5``: mean average precision at 5 of up to five space-separated guesses (Humpback Whale).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, cohen_kappa_score, f1_score, fbeta_score, log_loss,
                             roc_auc_score)
from sklearn.preprocessing import MultiLabelBinarizer

__all__ = ["COMPETITION_METRICS", "METRICS", "HIGHER_IS_BETTER", "SubmissionError", "metric_for", "score"]

COMPETITION_METRICS: dict[str, str] = {
    "dogs-vs-cats-redux-kernels-edition": "log_loss",
    "planet-understanding-the-amazon-from-space": "f2_samples",
    "imaterialist-challenge-fashion-2018": "micro_f1_labels",
    "plant-seedlings-classification": "micro_f1",
    "aerial-cactus-identification": "roc_auc",
    "histopathologic-cancer-detection": "roc_auc",
    "aptos2019-blindness-detection": "quadratic_kappa",
    "humpback-whale-identification": "map_at_5",
    "cassava-leaf-disease-classification": "accuracy",
    "state-farm-distracted-driver-detection": "multiclass_log_loss",
    "plant-pathology-2020-fgvc7": "mean_column_roc_auc",
    "digit-recognizer": "accuracy",
}
EPS = 1e-15


class SubmissionError(ValueError):
    """A submission that Kaggle would reject: wrong columns, missing/extra/repeated ids, empty or unparsable values."""


def _key(value: object) -> str:
    """Return an id or label as the string Kaggle compares (1, 1.0 and "1" are the same id)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value).strip()


def _aligned(submission: pd.DataFrame, answers: pd.DataFrame, columns: list[str] | None = None,
             allow_empty: bool = False) -> pd.DataFrame:
    """Return the submission's rows in the answers' order, checked: same id set, no repeats, needed columns, no blanks.

    With `allow_empty` (label-set metrics, where predicting no label is allowed) blanks become "".
    """
    id_col = answers.columns[0]
    columns = list(answers.columns[1:]) if columns is None else columns
    missing_cols = [c for c in [id_col, *columns] if c not in submission.columns]
    if missing_cols:
        raise SubmissionError(f"submission lacks column(s) {missing_cols}; expected {[id_col, *columns]}, got {list(submission.columns)}")
    sub_ids = submission[id_col].map(_key)
    ans_ids = answers[id_col].map(_key)
    repeats = sub_ids[sub_ids.duplicated()].unique().tolist()
    if repeats:
        raise SubmissionError(f"submission repeats {len(repeats)} id(s), e.g. {repeats[:5]}")
    missing = sorted(set(ans_ids) - set(sub_ids))
    extra = sorted(set(sub_ids) - set(ans_ids))
    if missing or extra:
        raise SubmissionError(f"submission ids differ from the test set: {len(missing)} missing (e.g. {missing[:5]}), "
                              f"{len(extra)} unexpected (e.g. {extra[:5]})")
    out = submission.assign(_id=sub_ids.values).set_index("_id").loc[ans_ids.values, columns]
    if allow_empty:
        out = out.fillna("")
    if out.isna().any().any():
        bad = out.index[out.isna().any(axis=1)].tolist()
        raise SubmissionError(f"submission has empty values for {len(bad)} id(s), e.g. {bad[:5]}")
    return out.reset_index(drop=True)


def _probabilities(frame: pd.DataFrame) -> np.ndarray:
    try:
        values = frame.to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise SubmissionError(f"probabilities must be numbers: {exc}") from None
    if not np.isfinite(values).all():
        raise SubmissionError("probabilities must be finite numbers")
    return values


def _label_sets(series: pd.Series) -> list[set[str]]:
    return [set(str(v).split()) for v in series]


def _single(submission: pd.DataFrame, answers: pd.DataFrame) -> tuple[list[str], list[str]]:
    col = answers.columns[1]
    sub = _aligned(submission, answers, [col])
    return [_key(v) for v in answers[col]], [_key(v) for v in sub[col]]


def _accuracy(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    y_true, y_pred = _single(submission, answers)
    return float(accuracy_score(y_true, y_pred))


def _micro_f1(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    y_true, y_pred = _single(submission, answers)
    return float(f1_score(y_true, y_pred, average="micro"))


def _binarized(submission: pd.DataFrame, answers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    col = answers.columns[1]
    sub = _aligned(submission, answers, [col], allow_empty=True)
    truth, pred = _label_sets(answers[col]), _label_sets(sub[col])
    mlb = MultiLabelBinarizer().fit(truth + pred)
    return mlb.transform(truth), mlb.transform(pred)


def _micro_f1_labels(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    y_true, y_pred = _binarized(submission, answers)
    return float(f1_score(y_true, y_pred, average="micro", zero_division=0))


def _f2_samples(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    y_true, y_pred = _binarized(submission, answers)
    return float(fbeta_score(y_true, y_pred, beta=2, average="samples", zero_division=0))


def _binary_truth(answers: pd.DataFrame, col: str) -> np.ndarray:
    return answers[col].astype(float).astype(int).to_numpy()


def _log_loss(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    col = answers.columns[1]
    p = np.clip(_probabilities(_aligned(submission, answers, [col]))[:, 0], EPS, 1 - EPS)
    return float(log_loss(_binary_truth(answers, col), p, labels=[0, 1]))


def _multiclass_log_loss(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    cols = list(answers.columns[1:])
    p = _probabilities(_aligned(submission, answers, cols))
    if (p < 0).any():
        raise SubmissionError("probabilities must not be negative")
    sums = p.sum(axis=1, keepdims=True)
    p = np.where(sums > 0, p / np.where(sums > 0, sums, 1), 1.0 / len(cols))  # Kaggle rescales each row to sum 1
    p = np.clip(p, EPS, 1 - EPS)
    p = p / p.sum(axis=1, keepdims=True)  # the clip moves sums by at most 1e-14; keep scikit-learn's check quiet
    y = answers[cols].to_numpy(dtype="float64").argmax(axis=1)
    return float(log_loss(y, p, labels=list(range(len(cols)))))


def _roc_auc(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    col = answers.columns[1]
    p = _probabilities(_aligned(submission, answers, [col]))[:, 0]
    return float(roc_auc_score(_binary_truth(answers, col), p))


def _mean_column_roc_auc(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    cols = list(answers.columns[1:])
    p = _probabilities(_aligned(submission, answers, cols))
    return float(np.mean([roc_auc_score(_binary_truth(answers, c), p[:, k]) for k, c in enumerate(cols)]))


def _quadratic_kappa(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    col = answers.columns[1]
    sub = _aligned(submission, answers, [col])
    try:
        pred = sub[col].astype(float).to_numpy()
    except (TypeError, ValueError) as exc:
        raise SubmissionError(f"{col} must be integers: {exc}") from None
    if not np.equal(np.mod(pred, 1), 0).all():
        raise SubmissionError(f"{col} must be integers, not fractions")
    return float(cohen_kappa_score(answers[col].astype(int).to_numpy(), pred.astype(int), weights="quadratic"))


def _map_at_5(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """Mean over images of 1/k, k the rank (1..5) of the first guess equal to the true id, 0 when none is."""
    col = answers.columns[1]
    sub = _aligned(submission, answers, [col], allow_empty=True)
    total = 0.0
    for truth, guesses in zip(answers[col], sub[col]):
        guesses = str(guesses).split()
        if len(guesses) > 5:
            raise SubmissionError(f"at most 5 guesses per image, got {len(guesses)}: {' '.join(guesses)}")
        for rank, guess in enumerate(guesses, start=1):
            if guess == _key(truth):
                total += 1.0 / rank
                break
    return total / len(answers)


METRICS: dict[str, Callable[[pd.DataFrame, pd.DataFrame], float]] = {
    "accuracy": _accuracy,
    "micro_f1": _micro_f1,
    "micro_f1_labels": _micro_f1_labels,
    "f2_samples": _f2_samples,
    "log_loss": _log_loss,
    "multiclass_log_loss": _multiclass_log_loss,
    "roc_auc": _roc_auc,
    "mean_column_roc_auc": _mean_column_roc_auc,
    "quadratic_kappa": _quadratic_kappa,
    "map_at_5": _map_at_5,
}
HIGHER_IS_BETTER: dict[str, bool] = {m: m not in ("log_loss", "multiclass_log_loss") for m in METRICS}


def metric_for(name_or_metric: str) -> str:
    """Return the metric name for a competition slug or a metric name."""
    if name_or_metric in METRICS:
        return name_or_metric
    if name_or_metric in COMPETITION_METRICS:
        return COMPETITION_METRICS[name_or_metric]
    raise ValueError(f"Unknown competition or metric {name_or_metric!r}; metrics: {', '.join(METRICS)}; "
                     f"competitions: {', '.join(COMPETITION_METRICS)}.")


def score(name_or_metric: str, submission_df: pd.DataFrame, answers_df: pd.DataFrame) -> float:
    """Return the submission's score under the competition's (or the named) metric.

    `answers_df` is in the submission's shape, id column first (as `ZooCompetition.answers`);
    rows are matched by id. Raises `SubmissionError` for a submission Kaggle would reject.
    """
    metric = METRICS[metric_for(name_or_metric)]
    if len(answers_df) == 0:
        raise ValueError("no answers to score against")
    return metric(submission_df, answers_df)
