"""k-fold cross-validation and fold ensembles: `kagglekit run --folds K` (recipe ``[train] folds``, ``kk.run(folds=K)``).

The labelled images (train and validation of the single-split run together) are cut into K folds
by `kagglekit.layout.kfold` (stratified, iterative multi-label or group-aware, as `split`). Fold i
trains on the other K - 1 folds and predicts fold i (its out-of-fold rows) and the test images.
Each fold keeps its own state in ``RUN/fold_<i>/`` (run.json, its split tables, learner, training
checkpoints, predictions), so a run killed in fold 3 goes on in fold 3: finished folds are loaded,
never retrained. The run folder then holds:

* ``oof.csv``: one row per labelled image: ``id``, ``fold``, one probability column per class,
  ``label`` (the truth; space-separated for multi-label);
* ``test_predictions.csv``: the fold models' test probabilities averaged (before post-processing);
* ``folds.json``: K, the seed, the metric, the CV score, the per-fold scores, the settings tuned,
  and what `kagglekit.blend` needs (the sample submission, the positive class, the submission kind);
* the submission, post-processed once with the settings tuned on ALL out-of-fold predictions
  (clip, thresholds, ordinal cut-points, the "new" class threshold: `kagglekit.metrics.tune`).

The time budget is shared: each fold's plan (`kagglekit.plan.make_plan`) gets an equal share of
what is left when it starts, so time a fold does not use goes to the next. ``--folds auto``
(`resolve`) picks 5 when a fifth of the budget affords the plan's target epochs, else 1, and says why.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError
from .io import atomic_write_text
from .logs import logger
from .runfolder import RunResult
from .runstate import RunState, file_hash, load_learner, read_saved, table_digest, unchanged
from .table import LabelTable

AUTO_FOLDS = 5
FOLDS_FILE = "folds.json"
OOF_FILE = "oof.csv"
TEST_FILE = "test_predictions.csv"


def parse_folds(value: Any) -> int | str:
    """Return `value` as a number of folds (1 = the single split) or "auto"; anything else is a `ConfigError`."""
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        k = int(str(value).strip()) if not isinstance(value, (bool, float)) else None
    except ValueError:
        k = None
    if k is None or k < 1:
        raise ConfigError(f"folds={value!r} is not a number of folds; give --folds K (K >= 2 trains K models, "
                          "1 a single split) or --folds auto (recipe: train.folds).")
    return k


def resolve(value: Any, n_images: int, train: LabelTable, n_test: int, cfg: dict, budget_s: float | None
            ) -> tuple[int, str]:
    """Return (K, the reason): the folds asked, or for "auto" 5 when a fifth of the budget affords the plan's target epochs."""
    from .hardware import Hardware
    from .plan import DEFAULT_BUDGET_S, TARGET_EPOCHS, ImageStats, PlanError, make_plan
    from .durations import format_duration

    k = parse_folds(value)
    if k != "auto":
        return k, "asked" if k > 1 else "a single train/validation split"
    if n_images < 2 * AUTO_FOLDS:
        return 1, f"only {n_images} labelled images, too few for {AUTO_FOLDS} folds; --folds K forces folds"
    hw = Hardware.probe()
    if budget_s is None and cfg.get("epochs") is not None:
        return AUTO_FOLDS, (f"no --time and {cfg['epochs']} epochs asked: time does not limit the folds, each "
                            f"trains the epochs asked")
    total = float(budget_s if budget_s is not None else DEFAULT_BUDGET_S[hw.kind])
    pretrained = cfg.get("weights") is not None
    want = TARGET_EPOCHS[pretrained]
    try:
        plan = make_plan(n_images * (AUTO_FOLDS - 1) // AUTO_FOLDS, ImageStats.from_table(train), hw,
                         total / AUTO_FOLDS, weights=cfg.get("weights"), backbone=cfg.get("backbone"),
                         sizes=cfg.get("sizes"), batch_size=cfg.get("batch_size"),
                         n_valid=n_images // AUTO_FOLDS, n_test=n_test)
    except PlanError as exc:
        return 1, f"a fifth of the {format_duration(total)} budget cannot train a fold ({exc}); --folds K forces folds"
    share = f"a fifth of the {format_duration(total)} budget affords {plan.epochs} epoch(s) of {plan.backbone} per fold"
    if plan.epochs >= want:
        return AUTO_FOLDS, f"{share} (at least {want} wanted)"
    return 1, f"{share}, fewer than the {want} worth training; one model instead (--folds K forces folds)"


@dataclass
class FoldJob:
    """What `kagglekit.job.run` hands over to `run_folds`: its settings, tables, inferred plan and clock."""

    workdir: Path
    state: RunState
    comp: Any
    name: str
    cfg: dict
    k: int
    train: LabelTable
    valid: LabelTable
    test: LabelTable
    inference: Any  # job.Inference: what the run inferred (metric, submission kind, positive class)
    sample: Path | None
    out_path: Path | None
    budget_given: float | None
    started: float
    extra: dict  # the [fine_tune] arguments (callbacks popped into `callbacks`)
    callbacks: list
    layout_recipe: dict
    submit: bool = False
    message: str | None = None
    ledger_path: Any = None
    notebook: bool = False
    spent_before: float = 0.0

    def spent(self) -> float:
        """Return the seconds this run has spent, earlier sessions included."""
        return self.spent_before + time.time() - self.started


def _full_table(train: LabelTable, valid: LabelTable) -> LabelTable:
    """Return train and validation as one table (the images the folds share out), the vocabulary kept."""
    frame = pd.concat([train.frame, valid.frame], ignore_index=True)
    return LabelTable(frame, train.classes, train.multilabel)


def prepare(state: RunState, workdir: Path, k: int, budget_given: float | None, cfg: dict) -> float:
    """Return the seconds earlier sessions of this K-fold run spent (0 after recording a new one: other folds, budget or settings)."""
    inputs = {"folds": k, "time_budget": budget_given, "split": state.result("split"),
              **{key: cfg[key] for key in ("backbone", "sizes", "epochs", "batch_size", "weights", "seed")}}
    if not state.fresh("plan", inputs):
        state.put("time_spent_s", 0.0)
        for old in workdir.glob("fold_*/deadline.json"):  # an older run's clock is not this one's
            old.unlink(missing_ok=True)
        state.finish("plan", inputs, {"folds": k})
    return _spent_before(state, workdir, k)


def _spent_before(job_state: RunState, workdir: Path, k: int) -> float:
    """Return the seconds earlier sessions spent: the run's record, or a killed fold's deadline state when later."""
    spent = float(job_state.get("time_spent_s") or 0.0)
    for i in range(k):
        try:
            saved = json.loads((workdir / f"fold_{i}" / "deadline.json").read_text(encoding="utf-8"))
            spent = max(spent, float(saved.get("run_spent_s", 0.0)))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return spent


@dataclass
class FoldsResult(RunResult):
    """What a K-fold run produced (a `RunResult` plus the CV facts); `valid_score` is the out-of-fold score."""

    folds: int = 1
    cv_std: float = float("nan")
    fold_scores: list = field(default_factory=list)
    oof: Path | None = None

    def __str__(self) -> str:
        lines = [f"CV {self.metric} ({self.folds} folds, out-of-fold): {self.valid_score:.4f} "
                 f"(per fold {np.nanmean(self.fold_scores):.4f} ± {self.cv_std:.4f})",
                 f"out-of-fold predictions: {self.oof}", f"submission: {self.submission}"]
        if self.public_score is not None:
            lines.append(f"public score: {self.public_score}")
        return "\n".join(lines)


def run_folds(job: FoldJob) -> FoldsResult:
    """Return the `FoldsResult` of a K-fold run: K models trained (resuming per fold), OOF tuned and scored, one submission."""
    from . import layout
    from .durations import format_duration

    full = _full_table(job.train, job.valid)
    fold_of = layout.kfold(full, job.k, seed=int(job.cfg["seed"]))
    sizes = np.bincount(fold_of[fold_of >= 0], minlength=job.k)
    logger.info(f"folds: {job.k} ({len(full)} labelled images, {' / '.join(map(str, sizes))} per fold); each fold "
                f"trains on the others and predicts its own images and the test set (run folder {job.workdir}/fold_<i>)")
    if (fold_of < 0).any():
        logger.warning(f"folds: {int((fold_of < 0).sum())} images of classes too rare to hold out (all their images "
                       f"in one fold) are trained in every fold and left out of oof.csv and the CV score")
    if job.cfg["tta"] == "auto":
        logger.info("TTA: off with folds (the fold models are averaged instead); --tta N predicts each with N views")
    total = _total_budget(job)
    oofs, tests, facts = [], [], []
    for i in range(job.k):
        left = job.k - i
        share = None if total is None else max(0.0, (total - job.spent())) / left
        oof, test_probs, fact = _fold(job, i, full.take(np.flatnonzero(fold_of != i)),
                                      full.take(np.flatnonzero(fold_of == i)), share)
        oofs.append(oof.assign(fold=i))
        tests.append(test_probs)
        facts.append(fact)
        job.state.put("time_spent_s", round(job.spent(), 3))
    metric = job.inference.metric
    oof = pd.concat(oofs, ignore_index=True)
    settings, score, per_fold = _tune(oof, full, metric)
    std = float(np.nanstd(per_fold)) if per_fold else float("nan")
    _write_oof(oof, full, job.workdir / OOF_FILE)
    logger.info(f"CV {metric} (out-of-fold, {len(oof)} images, tuned on all of them): {score:.4f}; per fold "
                f"{np.nanmean(per_fold):.4f} ± {std:.4f} ({', '.join(f'{s:.4f}' for s in per_fold)})"
                + (f"; settings {_described(settings)}" if _described(settings) else ""))
    test_avg = _average(tests, list(full.classes), full.multilabel, settings)
    from .predict import save_predictions

    save_predictions(test_avg, job.workdir / TEST_FILE)
    out = _write(job, test_avg, settings, metric)
    record = {"folds": job.k, "seed": int(job.cfg["seed"]), "metric": metric, "classes": list(full.classes),
              "multilabel": bool(full.multilabel), "cv_score": score, "cv_std": std, "fold_scores": per_fold,
              "settings": settings, "sample": str(Path(job.sample).resolve()) if job.sample else None,
              "positive": job.inference.positive, "kind": job.inference.submission_kind,
              "oof": OOF_FILE, "test_predictions": TEST_FILE, "submission": str(out),
              "backbones": sorted({f["backbone"] for f in facts})}
    atomic_write_text(job.workdir / FOLDS_FILE, json.dumps(record, indent=1, default=str))
    result = FoldsResult(workdir=job.workdir, metric=metric, valid_score=score, submission=Path(out),
                         settings=settings, seconds=job.spent(), inference=job.inference, folds=job.k, cv_std=std,
                         fold_scores=per_fold, oof=job.workdir / OOF_FILE)
    _submit_and_record(job, result, facts, total)
    logger.info(f"folds: done in {format_duration(result.seconds)}")
    return result


def _total_budget(job: FoldJob) -> float | None:
    """Return the whole run's budget in seconds (None: explicit epochs and no --time, so no deadline)."""
    from .hardware import Hardware
    from .plan import DEFAULT_BUDGET_S

    if job.budget_given is not None:
        return float(job.budget_given)
    if job.cfg.get("epochs") is not None:
        return None
    return float(DEFAULT_BUDGET_S[Hardware.probe().kind])


def _fold_plan(job: FoldJob, st: RunState, i: int, tr: LabelTable, va: LabelTable, share: float | None):
    """Return fold i's `Plan` (made for its share of the budget when the fold starts; saved, so a resume keeps it)."""
    from .hardware import Hardware
    from .plan import ImageStats, Plan, make_plan

    cfg = job.cfg
    inputs = {"time_budget": job.budget_given, "folds": job.k, "split": st.result("split"),
              **{key: cfg[key] for key in ("backbone", "sizes", "epochs", "batch_size", "weights")}}
    if st.fresh("plan", inputs):
        return Plan.from_dict(st.result("plan"))
    spent = job.spent()
    tta = max(1, 0 if cfg["tta"] == "auto" else int(cfg["tta"]))  # the views each fold predicts with (auto: none)
    plan = make_plan(len(tr), ImageStats.from_table(tr), Hardware.probe(),
                     None if share is None else spent + share, weights=cfg["weights"], backbone=cfg["backbone"],
                     epochs=cfg["epochs"], sizes=cfg["sizes"], batch_size=cfg["batch_size"], n_valid=len(va),
                     n_test=len(job.test), tta=tta, spent_s=spent if share is not None else 0.0)
    logger.info(f"fold {i + 1}/{job.k}: " + plan.describe(time_driven=cfg["epochs"] is None).splitlines()[0].removeprefix("plan: "))
    st.finish("plan", inputs, plan.to_dict())
    return plan


def _train_inputs(job: FoldJob, st: RunState) -> dict:
    """Return what determines a fold's model: the settings, its plan, the [fine_tune] arguments and its split."""
    return {**{key: job.cfg[key] for key in ("seed", "lr", "flip")}, "plan": st.result("plan"),
            "resize": job.extra.get("resize", "squash"), "fine_tune": job.extra, "layout_recipe": job.layout_recipe,
            "data": st.result("split")}


def _fold_train(job: FoldJob, st: RunState, i: int, tr: LabelTable, va: LabelTable, plan: Any) -> Any:
    """Return fold i's learner: loaded when the fold finished training with the same inputs, else trained (resuming)."""
    from .learner import fine_tune
    from .timeline import ended

    cfg, fdir = job.cfg, job.workdir / f"fold_{i}"
    inputs = _train_inputs(job, st)
    if st.fresh("train", inputs):
        learner = load_learner(st, fdir / "learner")
        if learner is not None:
            logger.info(f"fold {i + 1}/{job.k}: trained earlier, loaded from {fdir / 'learner'}")
            return learner
    callbacks = list(job.callbacks)
    deadline = None
    if plan.budget_given or cfg["epochs"] is None:
        deadline = _FoldDeadline.make(plan, job, fdir / "deadline.json")
        callbacks.insert(0, deadline)
    kwargs = {**plan.fine_tune_kwargs(), "seed": int(cfg["seed"]) + i, **({"lr": cfg["lr"]} if cfg["lr"] else {}),
              **({"flip": cfg["flip"]} if cfg["flip"] is not None else {}),
              # time-driven, as one model is (kagglekit.timeline): the fold trains until its share's deadline
              **({"epochs": None} if deadline is not None and cfg["epochs"] is None else {}), **job.extra}
    learner = fine_tune(tr, valid=va, workdir=fdir / "train", callbacks=callbacks, **kwargs)
    learner.save(fdir / "learner")
    if deadline is not None:
        deadline.save()
        if deadline.stopped:
            logger.info(f"fold {i + 1}/{job.k}: " + ended(len(learner.history), plan.total_epochs, deadline.stopped,
                                                            cfg["epochs"] is None))  # time-driven, as trained above
    st.finish("train", inputs, {"fingerprint": learner.settings.get("fingerprint"), "best": learner.settings.get("best"),
                                "epochs": len(learner.history)})
    return learner


class _FoldDeadline:
    """Builds fold deadlines: the run's clock, stopping at the fold's share; its state also records the run's seconds."""

    @staticmethod
    def make(plan: Any, job: FoldJob, path: Path) -> Any:
        """Return a `Deadline` for one fold: the run's seconds so far, the fold plan's budget and reserve."""
        from .deadline import Deadline

        class FoldDeadline(Deadline):
            def to_state(self) -> dict:
                return {**super().to_state(), "run_spent_s": round(job.spent(), 3)}

        return FoldDeadline(plan.budget_s, spent_s=job.spent(), reserve_s=plan.reserve_s, batch_size=plan.batch_size,
                            size=plan.sizes[-1], valid_s=plan.valid_s, state_path=path)


def _fold(job: FoldJob, i: int, tr: LabelTable, va: LabelTable, share: float | None
          ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return fold i's (out-of-fold predictions, test predictions, facts), trained and predicted unless already done."""
    from . import predict

    fdir = job.workdir / f"fold_{i}"
    fdir.mkdir(parents=True, exist_ok=True)
    st = RunState(fdir)
    split_inputs = {"folds": job.k, "fold": i, "seed": int(job.cfg["seed"]), "train": table_digest(tr),
                    "valid": table_digest(va)}
    if not st.fresh("split", split_inputs):
        tr.to_csv(fdir / "train.table.csv")
        va.to_csv(fdir / "valid.table.csv")
        st.finish("split", split_inputs, {"rows": [len(tr), len(va)], "valid": table_digest(va)})
    plan = _fold_plan(job, st, i, tr, va, share)
    tta = 0 if job.cfg["tta"] == "auto" else int(job.cfg["tta"])
    paths = (fdir / "oof_predictions.csv", fdir / TEST_FILE)
    inputs = {"train": st.result("train"), "test": table_digest(job.test), "tta": tta}
    found = None
    if st.fresh("train", _train_inputs(job, st)) and st.fresh("predict", inputs):
        found = [read_saved(st, "predict", p, predict.read_predictions) for p in paths]
        found = None if any(f is None for f in found) else found
    if found is None:
        learner = _fold_train(job, st, i, tr, va, plan)
        inputs["train"] = st.result("train")
        found = [predict.predict(learner, table, tta=tta, batch_size=plan.batch_size, progress=False)
                 for table in (va, job.test)]
        for frame, path in zip(found, paths):
            predict.save_predictions(frame, path)
        st.finish("predict", inputs, {"md5": [file_hash(p) for p in paths]})
    else:
        logger.info(f"fold {i + 1}/{job.k}: trained and predicted earlier (read from {fdir})")
    return found[0], found[1], {"backbone": plan.backbone, "epochs": plan.epochs, "batch_size": plan.batch_size,
                                "sizes": plan.sizes, "weights": plan.weights, "hardware": plan.hardware,
                                "epochs_done": (st.result("train") or {}).get("epochs")}


def _tune(oof: pd.DataFrame, full: LabelTable, metric: str) -> tuple[dict, float, list[float]]:
    """Return (post-processing settings tuned on all out-of-fold predictions, the OOF score, each fold's score with them)."""
    from . import metrics
    from .predict import _binary_view, align

    classes = [c for c in oof.columns if c not in ("id", "fold")]
    probs = oof[["id", *classes]]
    y, p = align(probs, full)
    m = metrics.get_metric(metric)
    p = _binary_view(p, m, full.multilabel)
    settings = metrics.tune(y, p, m, multilabel=full.multilabel, classes=classes)
    settings["tuned_for"] = m.name
    folds = oof["fold"].to_numpy()
    per_fold = []
    for f in sorted(set(folds.tolist())):
        mask = folds == f
        try:
            per_fold.append(float(metrics.score(y[mask], p[mask], m, settings)))
        except (ValueError, ConfigError):  # e.g. AUC of a fold holding one class
            per_fold.append(float("nan"))
    return settings, float(settings["valid_score"]), per_fold


def _truth_text(table: LabelTable) -> list[str]:
    """Return each row's labels as text: the class name, space-separated names for multi-label."""
    return [" ".join(labels) for labels in table.labels]


def _write_oof(oof: pd.DataFrame, full: LabelTable, path: Path) -> Path:
    """Return `path` after writing the OOF predictions in the full table's row order: id, fold, classes..., label."""
    classes = [c for c in oof.columns if c not in ("id", "fold")]
    label_col = "label" if "label" not in classes else "true_label"
    order = {i: k for k, i in enumerate(full.ids)}
    frame = oof.assign(_row=oof["id"].astype(str).map(order)).sort_values("_row")
    truth = dict(zip(full.ids, _truth_text(full)))
    out = pd.DataFrame({"id": frame["id"].astype(str), "fold": frame["fold"].astype(int)})
    for c in classes:
        out[c] = frame[c].to_numpy()
    out[label_col] = out["id"].map(truth)
    return atomic_write_text(path, out.to_csv(index=False, float_format="%.8g"))


def read_oof(path: str | Path) -> pd.DataFrame:
    """Return an ``oof.csv`` (ids as text) written by a K-fold run."""
    return pd.read_csv(path, dtype={"id": str}, keep_default_na=False)


def _average(frames: list[pd.DataFrame], classes: list[str], multilabel: bool, settings: dict,
             weights: list[float] | None = None) -> pd.DataFrame:
    """Return the (weighted) mean of prediction frames over the same ids, as `predict` returns them (attrs set)."""
    ids = frames[0]["id"].astype(str).tolist()
    weights = weights or [1.0 / len(frames)] * len(frames)
    total = np.zeros((len(ids), len(classes)))
    for frame, w in zip(frames, weights):
        frame = frame.assign(id=frame["id"].astype(str)).set_index("id")
        missing = set(ids) - set(frame.index)
        if missing or len(frame) != len(ids):
            raise ConfigError(f"The test predictions to average differ in their ids ({len(missing)} missing); "
                              "predict every model on the same test table.")
        total += w * frame.loc[ids, classes].to_numpy(dtype="float64")
    out = pd.DataFrame(total, columns=classes)
    out.insert(0, "id", pd.Series(ids, dtype=object))
    out.attrs.update(classes=classes, multilabel=bool(multilabel), settings=dict(settings), tta=0)
    return out


def _described(settings: dict) -> str:
    """Return the tuned settings a user reads (clip, thresholds, cuts, new-class threshold) as one line."""
    keys = ("clip", "threshold", "cuts", "new_threshold")
    return ", ".join(f"{k}={settings[k]}" for k in keys if settings.get(k) is not None)


def _write(job: FoldJob, test_avg: pd.DataFrame, settings: dict, metric: str) -> Path:
    """Return the submission written from the averaged test predictions (post-processed once), or raise when there is no sample."""
    from . import submission

    if job.sample is None:
        raise ConfigError(f"{job.comp.path} has no sample_submission.csv, so the submission's shape is unknown; "
                          f"the averaged test predictions are in {job.workdir / TEST_FILE}.")
    inputs = {"predictions": file_hash(job.workdir / TEST_FILE), "sample": file_hash(job.sample),
              "settings": settings, "positive": job.inference.positive, "kind": job.inference.submission_kind,
              "path": str(job.out_path)}
    out = job.out_path
    if not (job.state.fresh("write", inputs) and unchanged(job.state, out)):
        out = submission.write_submission(test_avg, like=job.sample, path=job.out_path, settings=settings,
                                          positive=job.inference.positive, kind=job.inference.submission_kind,
                                          metric=metric, **({"zip": False} if job.notebook else {}))
        job.state.finish("write", inputs, {"file": Path(out).name, "md5": file_hash(out)})
    logger.info(f"submission: {out} (the {job.k} fold models' test probabilities averaged, post-processed once; "
                f"validated against {Path(job.sample).name})")
    return Path(out)


def _submit_and_record(job: FoldJob, result: FoldsResult, facts: list[dict], total: float | None) -> None:
    """Submit when asked, write result.json and add the run's ledger row (the CV score next to the public score)."""
    from . import ledger as run_ledger
    from . import runfolder
    from .durations import format_duration
    from .runstate import submit_once

    state, first = job.state, facts[0]
    run_id = runfolder.run_id_for(state, file_hash(result.submission), run_ledger.new_run_id)  # new submission: new id
    submitted = None
    if job.submit:
        slug = getattr(job.comp, "slug", None) or job.name
        text = job.message or f"kagglekit {first['backbone']} x{job.k} folds CV {result.metric}={result.valid_score:.4f} [{run_id}]"
        answer = submit_once(state, slug, result.submission, text, like=job.sample)
        result.public_score = getattr(answer, "public_score", None)
        submitted = {"public_score": result.public_score, "submission_ref": getattr(answer, "ref", None),
                     "message": text}
    result.seconds = job.spent()
    state.put("time_spent_s", round(result.seconds, 3))
    atomic_write_text(job.workdir / "result.json", json.dumps(asdict(result), indent=1, default=str))
    done = [f["epochs_done"] for f in facts if f.get("epochs_done") is not None]
    row = runfolder.record(state, job.workdir, {
        "competition": getattr(job.comp, "slug", None) or job.name, "backbone": first["backbone"],
        "weights": first["weights"] or "none", "sizes": first["sizes"], "epochs": first["epochs"],
        "epochs_done": sum(done) if done else None, "batch_size": first["batch_size"], "budget_s": total,
        "seconds": round(result.seconds, 1), "hardware": first["hardware"], "metric": result.metric,
        "valid_score": result.valid_score, "cv_score": result.valid_score,
        "tta": 0 if job.cfg["tta"] == "auto" else job.cfg["tta"], "submission": result.submission,
        "extra": {"folds": job.k, "cv_std": result.cv_std, "fold_scores": result.fold_scores,
                  "budget_given": job.budget_given, "epochs_done_per_fold": done},
    }, job.ledger_path, submitted)
    if row is not None:
        logger.info(f"ledger: run {row['run_id']} recorded in {row['path']} ({format_duration(result.seconds)} spent"
                    + (f" of a {format_duration(total)} budget)" if total else ")"))


def oof_score(oof: pd.DataFrame, classes: list[str], multilabel: bool, metric: str, settings: dict | None = None) -> float:
    """Return `metric` of an ``oof.csv`` frame's probabilities against its ``label`` column (with `settings` applied)."""
    from . import metrics
    from .predict import _binary_view

    label_col = "label" if "label" not in classes else "true_label"
    table = LabelTable.from_records(oof["id"], oof["id"], [str(x) for x in oof[label_col]], classes=classes,
                                    multilabel=multilabel)
    y = table.targets("multihot" if multilabel else "int")
    m = metrics.get_metric(metric)
    p = _binary_view(oof[classes].to_numpy(dtype="float64"), m, multilabel)
    return float(metrics.score(y, p, m, settings or {}))


__all__ = ["AUTO_FOLDS", "FOLDS_FILE", "OOF_FILE", "TEST_FILE", "FoldJob", "FoldsResult", "oof_score", "parse_folds",
           "read_oof", "resolve", "run_folds"]
