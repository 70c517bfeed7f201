"""`kagglekit blend RUN_DIR RUN_DIR ... [-o submission.csv]`: K-fold runs averaged, weights tuned on their OOF predictions.

Each run folder is one made with ``kagglekit run --folds K`` (it holds ``folds.json``, ``oof.csv`` and
``test_predictions.csv``: `kagglekit.folds`). Runs are blended only when they share their folds (the
same out-of-fold ids, each in the same fold) and their metric and classes; otherwise the blend refuses
with one line naming the runs that differ. The weights are found on the out-of-fold predictions by
greedy forward selection with replacement (Caruana et al., "Ensemble selection from libraries of
models", ICML 2004): starting from the best run, the run whose addition improves the OOF metric most is
added again and again (at most `STEPS` times); a run's weight is the share of the picks it got. The
metric's post-processing (clip, thresholds, cut-points, the "new" class threshold) is then tuned on
the blended OOF predictions, and the test probabilities, blended with the same weights, are
post-processed once and written in the sample submission's shape, validated.

The submission is never written over a file kagglekit did not write: the blend records what it wrote in
``<out>.blend.json`` (the runs, weights, scores and the file's MD5) and refuses to replace a file with
no such record or one changed since.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError
from .io import atomic_write_text
from .logs import logger, shown

STEPS = 25  # greedy selection steps: weights are multiples of 1/STEPS at the finest


@dataclass
class BlendResult:
    """What a blend produced: the runs and their weights, the blended CV score (and each run's), the submission."""

    runs: list[Path]
    weights: list[float]
    metric: str
    cv_score: float
    run_scores: list[float]
    submission: Path
    settings: dict = field(default_factory=dict)

    def __str__(self) -> str:
        parts = ", ".join(f"{r.name} {w:.2f}" for r, w in zip(self.runs, self.weights))
        return "\n".join([f"blend of {len(self.runs)} runs (weights {parts})",
                          f"CV {self.metric} (out-of-fold, blended): {self.cv_score:.4f} (runs alone: "
                          + ", ".join(f"{s:.4f}" for s in self.run_scores) + ")",
                          f"submission: {self.submission}"])


def _load_run(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Return (folds.json, oof.csv, test_predictions.csv) of one K-fold run folder, or raise naming what is missing."""
    from .folds import FOLDS_FILE, read_oof
    from .predict import read_predictions

    record_path = folder / FOLDS_FILE
    if not record_path.is_file():
        raise ConfigError(f"{folder} holds no {FOLDS_FILE}: blend needs run folders made with "
                          "`kagglekit run --folds K` (finished).")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        oof = read_oof(folder / record.get("oof", "oof.csv"))
        test = read_predictions(folder / record.get("test_predictions", "test_predictions.csv"))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{folder}: its K-fold results cannot be read ({exc}); run `kagglekit run --folds K` "
                          "there again to rewrite them.") from None
    return record, oof, test


def _check_same(folders: list[Path], records: list[dict], oofs: list[pd.DataFrame]) -> None:
    """Raise a one-line `ConfigError` when the runs differ in metric, classes or their folds (OOF ids and fold of each)."""
    first, base = records[0], oofs[0].set_index("id")["fold"].astype(int)
    for folder, record, oof in zip(folders[1:], records[1:], oofs[1:]):
        for key in ("metric", "classes", "multilabel"):
            if record.get(key) != first.get(key):
                raise ConfigError(f"cannot blend {folders[0]} and {folder}: their {key} differ "
                                  f"({first.get(key)!r} vs {record.get(key)!r}).")
        other = oof.set_index("id")["fold"].astype(int)
        if set(other.index) != set(base.index):
            n = len(set(other.index) ^ set(base.index))
            raise ConfigError(f"cannot blend {folders[0]} and {folder}: their out-of-fold ids differ ({n} ids in one "
                              "only); blend runs made on the same data with the same --folds and --seed.")
        moved = int((other.loc[base.index] != base).sum())
        if moved:
            raise ConfigError(f"cannot blend {folders[0]} and {folder}: their folds differ ({moved} of {len(base)} "
                              "images in another fold); blend runs made with the same --folds and --seed.")


def _weights(y: np.ndarray, probs: list[np.ndarray], metric: Any) -> list[float]:
    """Return one weight per run (summing to 1) by greedy forward selection with replacement on the OOF metric."""
    from . import metrics

    def score(p: np.ndarray) -> float:
        s = float(metrics.score(y, p, metric))
        return s if metric.greater_is_better else -s

    counts = np.zeros(len(probs))
    total = np.zeros_like(probs[0])
    best = -np.inf
    for step in range(STEPS):
        trial = [score((total + p) / (step + 1)) for p in probs]
        j = int(np.argmax(trial))  # ties: the earlier run
        if step and trial[j] <= best + 1e-12:
            break
        best, counts[j], total = trial[j], counts[j] + 1, total + probs[j]
    return [float(c) for c in counts / counts.sum()]


def _check_out(out: Path) -> None:
    """Raise `ConfigError` when `out` exists and is not a file this blend wrote (no record, or changed since)."""
    from .io import file_digest

    if not out.exists():
        return
    record_path = out.with_name(out.name + ".blend.json")
    try:
        md5 = json.loads(record_path.read_text(encoding="utf-8"))["md5"]
    except (OSError, ValueError, KeyError, TypeError):
        md5 = None
    if md5 is None or not out.is_file() or file_digest(out) != md5:
        raise ConfigError(f"{out} exists and kagglekit blend did not write it (or it changed since); "
                          "give another file with -o, or move it away.")


def blend(runs: Sequence[str | os.PathLike], out: str | os.PathLike = "submission.csv",
          log: Callable[[str], None] | bool | None = print) -> BlendResult:
    """Return the `BlendResult` after blending K-fold runs that share their folds and writing the validated submission to `out`."""
    with shown(log):
        return _blend([Path(r) for r in runs], Path(out))


def _blend(folders: list[Path], out: Path) -> BlendResult:
    """Return the `BlendResult` of `blend` (its body; messages go to the kagglekit logger)."""
    from . import metrics, submission
    from .folds import _average, oof_score
    from .io import file_digest
    from .predict import _binary_view
    from .table import LabelTable

    if len(folders) < 2:
        raise ConfigError("blend needs at least two run folders (each made with `kagglekit run --folds K`).")
    loaded = [_load_run(f) for f in folders]
    records, oofs, tests = [x[0] for x in loaded], [x[1] for x in loaded], [x[2] for x in loaded]
    _check_same(folders, records, oofs)
    _check_out(out)
    first = records[0]
    classes, multilabel, m = list(first["classes"]), bool(first["multilabel"]), metrics.get_metric(first["metric"])
    ids = oofs[0]["id"].tolist()
    oofs = [o.set_index("id").loc[ids].reset_index() for o in oofs]
    label_col = "label" if "label" not in classes else "true_label"
    table = LabelTable.from_records(ids, ids, [str(x) for x in oofs[0][label_col]], classes=classes, multilabel=multilabel)
    y = table.targets("multihot" if multilabel else "int")
    probs = [_binary_view(o[classes].to_numpy(dtype="float64"), m, multilabel) for o in oofs]
    weights = _weights(y, probs, m)
    blended = oofs[0][["id", "fold"]].copy()
    mixed = sum(w * o[classes].to_numpy(dtype="float64") for w, o in zip(weights, oofs))
    blended[classes] = mixed
    settings = metrics.tune(y, _binary_view(mixed, m, multilabel), m, multilabel=multilabel, classes=classes)
    settings["tuned_for"] = m.name
    run_scores = [float(r.get("cv_score", oof_score(o, classes, multilabel, m.name, r.get("settings"))))
                  for r, o in zip(records, oofs)]
    score = float(settings["valid_score"])
    logger.info("blend weights (greedy selection on the OOF " + m.name + "): "
                + ", ".join(f"{f} {w:.2f}" for f, w in zip(folders, weights)))
    logger.info(f"CV {m.name} (out-of-fold, blended, post-processing tuned on the blend): {score:.4f}; runs alone "
                + ", ".join(f"{s:.4f}" for s in run_scores))
    sample = first.get("sample")
    if not sample or not Path(sample).is_file():
        raise ConfigError(f"the sample submission {sample} recorded by {folders[0]} is not there; run "
                          f"`kagglekit run --folds K` there again (it records where the sample is).")
    test = _average(tests, classes, multilabel, settings, weights)
    written = submission.write_submission(test, like=sample, path=out, settings=settings, positive=first.get("positive"),
                                          kind=first.get("kind"), metric=m.name)
    atomic_write_text(written.with_name(written.name + ".blend.json"), json.dumps(
        {"runs": [str(f.resolve()) for f in folders], "weights": weights, "metric": m.name, "cv_score": score,
         "run_scores": run_scores, "settings": settings, "md5": file_digest(written)}, indent=1, default=str))
    logger.info(f"submission: {written} (validated against {Path(sample).name})")
    return BlendResult(folders, weights, m.name, score, run_scores=run_scores, submission=Path(written),
                       settings=settings)
