"""`kagglekit run --folds K` and `kagglekit blend` on zoo competitions in the real shipping formats.

Out-of-fold predictions are re-scored here with scikit-learn straight from ``oof.csv`` (not with kagglekit's
metrics); submissions are checked against the sample and scored by the independent zoo scorer. Tiny on
purpose: resnet_micro at 32 px, from scratch, 1 epoch, 40 images, 2 folds (each fold ~15-20 s on 2 shared
cores, most of it building and tracing the model). One epoch on 40 images learns next to nothing, so these
tests check bookkeeping and scoring, not quality (the zoo benchmark measures that).
"""
from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import fbeta_score, log_loss

import kagglekit as kk
from kagglekit import folds as kfolds
from kagglekit import job, layout, ledger, predict, submission
from kagglekit.errors import ConfigError
from kagglekit.runstate import RunState
from kagglekit.testing import scoring, zoo

QUICK = {"backbone": "resnet_micro", "sizes": [32], "weights": "none", "epochs": 1, "batch_size": 16, "tta": 0,
         "seed": 0, "folds": 2}
DOGS = "dogs-vs-cats-redux-kernels-edition"
PLANET = "planet-understanding-the-amazon-from-space"


class Killed(Exception):
    """What the kill callback raises: the process stopping in the middle of a fold."""


class KillSecondFold(keras.callbacks.Callback):
    """Lets the first fold train, then stops the run as the second fold starts training."""

    def __init__(self) -> None:
        super().__init__()
        self.fits = 0

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == 2:
            raise Killed("killed in fold 2")


@pytest.fixture(scope="module")
def dogs(tmp_path_factory):
    return zoo.build(DOGS, tmp_path_factory.mktemp("zoo") / "dogs", n_train=40, n_test=16, image_size=32)


@pytest.fixture(scope="module")
def dogs_run(dogs, tmp_path_factory):
    """A 2-fold run killed as its second fold starts, then run again: (workdir, result, what the first fold left, log)."""
    workdir = tmp_path_factory.mktemp("runs") / "a"
    with pytest.raises(Killed):
        kk.run(dogs.path, workdir=workdir, log=None, fine_tune={"callbacks": [KillSecondFold()]}, **QUICK)
    first = RunState(workdir / "fold_0").state["steps"]
    left = {"fold_0": json.loads(json.dumps(first)), "fold_1": sorted(RunState(workdir / "fold_1").state["steps"]),
            "model_mtime": (workdir / "fold_0" / "learner" / "model.keras").stat().st_mtime_ns}
    lines: list[str] = []
    result = kk.run(dogs.path, workdir=workdir, log=lines.append, **QUICK)
    return workdir, result, left, lines


def test_kfold_rules_put_every_image_in_one_fold():
    ids = [f"i{i}" for i in range(60)]
    single = kk.LabelTable.from_records(ids, ids, ["a" if i % 3 else "b" for i in range(60)])
    fold = layout.kfold(single, 3, seed=1)
    assert sorted(np.bincount(fold)) == [20, 20, 20] and (layout.kfold(single, 3, seed=1) == fold).all()
    for f in range(3):  # stratified: each fold holds a third of each class
        assert (np.array([lab[0] for lab in single.labels])[fold == f] == "b").sum() == 20 // 3 + (f < 20 % 3)
    multi = kk.LabelTable.from_records(ids, ids, ["a b" if i % 4 else "c" for i in range(60)], multilabel=True)
    assert np.bincount(layout.kfold(multi, 3)).min() >= 19
    grouped = single.with_groups([str(i // 6) for i in range(60)])
    gfold = layout.kfold(grouped, 3)
    assert all(len(set(gfold[np.array(grouped.groups) == g])) == 1 for g in set(grouped.groups))
    with pytest.raises(ConfigError, match="needs at least 12 groups"):
        layout.kfold(grouped, 12)
    with pytest.raises(ConfigError, match="folds=1 must be"):
        layout.kfold(single, 1)
    with pytest.raises(ConfigError, match=r"--folds K"):
        kfolds.parse_folds("five")


def test_oof_csv_has_every_training_image_once_and_its_score_is_sklearns(dogs, dogs_run):
    workdir, result, _, lines = dogs_run
    oof = pd.read_csv(workdir / "oof.csv", dtype={"id": str})
    assert list(oof.columns) == ["id", "fold", "cat", "dog", "label"]
    labelled = [i for s in ("train", "valid") for i in kk.LabelTable.read_csv(workdir / f"{s}.table.csv").ids]
    assert len(oof) == len(labelled) == 40 and oof["id"].is_unique and set(oof["id"]) == set(labelled)
    for f in (0, 1):  # each fold's held-out images are exactly its rows, and it never trained on them
        held = set(kk.LabelTable.read_csv(workdir / f"fold_{f}" / "valid.table.csv").ids)
        trained = set(kk.LabelTable.read_csv(workdir / f"fold_{f}" / "train.table.csv").ids)
        assert held == set(oof.loc[oof["fold"] == f, "id"]) and not held & trained
    record = json.loads((workdir / "folds.json").read_text())
    clip = record["settings"]["clip"]
    p = np.clip(oof["dog"].to_numpy(), clip, 1 - clip)
    truth = (oof["label"] == "dog").to_numpy()
    expected = log_loss(truth, p, labels=[False, True])
    assert result.valid_score == pytest.approx(expected, abs=1e-6) and record["cv_score"] == pytest.approx(expected, abs=1e-6)
    per_fold = [log_loss(truth[oof["fold"] == f], p[oof["fold"] == f], labels=[False, True]) for f in (0, 1)]
    assert result.fold_scores == pytest.approx(per_fold, abs=1e-6) and result.cv_std == pytest.approx(np.std(per_fold), abs=1e-6)
    assert any(f"CV logloss (out-of-fold, 40 images, tuned on all of them): {expected:.4f}" in x for x in lines)
    assert any(f"{np.mean(per_fold):.4f} ± {np.std(per_fold):.4f}" in x for x in lines)
    rows = ledger.read(workdir.parent / "ledger.csv")
    assert len(rows) == 1 and rows["cv_score"].iloc[0] == pytest.approx(expected, abs=1e-5)
    table = ledger.format_runs(rows).splitlines()  # `kagglekit runs`: the CV score beside the public one
    assert "cv" in table[0].split() and f"{expected:.4f}" in table[1]


def test_submission_is_the_fold_average_post_processed_once_and_validates(dogs, dogs_run):
    workdir, result, _, _ = dogs_run
    folds = [predict.read_predictions(workdir / f"fold_{f}" / "test_predictions.csv") for f in (0, 1)]
    assert (folds[0]["id"] == folds[1]["id"]).all()
    mean_dog = (folds[0]["dog"] + folds[1]["dog"]) / 2
    clip = result.settings["clip"]
    sub = submission.validate_submission(result.submission, like=dogs.path / dogs.sample_submission)
    got = dict(zip(sub["id"], sub["label"].astype(float)))
    assert np.allclose([got[i] for i in folds[0]["id"]], np.clip(mean_dog, clip, 1 - clip), atol=1e-5)
    assert np.isfinite(scoring.score(DOGS, pd.read_csv(result.submission, dtype=str), dogs.answers))


def test_a_killed_run_resumes_in_the_fold_it_stopped_in(dogs_run):
    workdir, _, left, lines = dogs_run
    assert {"split", "plan", "train", "predict"} <= set(left["fold_0"]) and "train" not in left["fold_1"]
    now = RunState(workdir / "fold_0").state["steps"]
    assert now["train"] == left["fold_0"]["train"] and now["predict"] == left["fold_0"]["predict"]  # not redone
    assert (workdir / "fold_0" / "learner" / "model.keras").stat().st_mtime_ns == left["model_mtime"]
    assert "train" in RunState(workdir / "fold_1").state["steps"]
    assert any("fold 1/2: trained and predicted earlier" in x for x in lines)


def test_blend_writes_a_validated_submission_and_refuses_other_folds(dogs, dogs_run, tmp_path, capsys):
    from kagglekit.cli import main

    workdir, result, _, _ = dogs_run
    other = tmp_path / "b"
    shutil.copytree(workdir, other)  # the same fold models predicted again with 2 TTA views: another run, same folds
    kk.run(dogs.path, workdir=other, log=None, ledger=False, **{**QUICK, "tta": 2})
    out = tmp_path / "blend.csv"
    assert main(["blend", str(workdir), str(other), "-o", str(out)]) == 0
    submission.validate_submission(out, like=dogs.path / dogs.sample_submission)
    record = json.loads(out.with_name("blend.csv.blend.json").read_text())
    assert sum(record["weights"]) == pytest.approx(1.0)
    assert record["cv_score"] <= min(record["run_scores"]) + 1e-9  # greedy selection starts from the best run
    assert "blend of 2 runs" in capsys.readouterr().out
    moved = tmp_path / "c"
    shutil.copytree(other, moved)
    oof = pd.read_csv(moved / "oof.csv", dtype={"id": str})
    oof.loc[0, "fold"] = 1 - oof.loc[0, "fold"]
    oof.to_csv(moved / "oof.csv", index=False)
    assert main(["blend", str(workdir), str(moved), "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "their folds differ (1 of 40 images in another fold)" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()
    foreign = tmp_path / "mine.csv"
    foreign.write_text("not kagglekit's\n")
    assert main(["blend", str(workdir), str(other), "-o", str(foreign)]) == 2
    assert foreign.read_text() == "not kagglekit's\n"


def test_multilabel_folds_tune_thresholds_on_all_oof_predictions(tmp_path):
    comp = zoo.build(PLANET, tmp_path / "planet", n_train=40, n_test=12, image_size=32)
    with pytest.warns(UserWarning, match="trained in every fold and get no out-of-fold prediction"):
        result = kk.run(comp.path, workdir=tmp_path / "run", log=None, ledger=False, **QUICK)
    oof = pd.read_csv(tmp_path / "run" / "oof.csv", dtype={"id": str}, keep_default_na=False)
    record = json.loads((tmp_path / "run" / "folds.json").read_text())
    classes = record["classes"]
    full = [t for s in ("train", "valid") for t in zip(*[getattr(kk.LabelTable.read_csv(tmp_path / "run" / f"{s}.table.csv"), a)
                                                          for a in ("ids", "labels")])]
    counts = pd.Series([lab for _, labels in full for lab in labels]).value_counts()
    lonely = {i for i, labels in full if any(counts[lab] == 1 for lab in labels)}  # trained in every fold, never held out
    assert len(full) == 40 and set(oof["id"]) == {i for i, _ in full} - lonely
    assert result.metric == "f2" and oof["id"].is_unique and set(oof["fold"]) == {0, 1}
    truth = np.array([[c in str(labels).split() for c in classes] for labels in oof["label"]], dtype=int)
    p = oof[classes].to_numpy()
    decided = (p >= np.asarray(record["settings"]["threshold"])).astype(int)
    empty = decided.sum(axis=1) == 0  # the at-least-one-label fallback: the most probable label
    decided[np.flatnonzero(empty), p[empty].argmax(axis=1)] = 1
    expected = fbeta_score(truth, decided, beta=2, average="samples", zero_division=0)
    assert result.valid_score == pytest.approx(expected, abs=1e-6)
    submission.validate_submission(result.submission, like=comp.path / comp.sample_submission)
    assert np.isfinite(scoring.score(PLANET, pd.read_csv(result.submission, dtype=str), comp.answers))


def test_folds_auto_states_its_reason(dogs):
    train, _ = layout.read_competition(dogs.path)
    cfg = {**job.DEFAULTS, **QUICK, "epochs": None, "weights": None}
    k, why = kfolds.resolve("auto", 400, train, 100, cfg, 3600.0)
    assert k == 5 and "a fifth of the 60 min budget affords" in why
    k, why = kfolds.resolve("auto", 8, train, 16, cfg, 3600.0)
    assert k == 1 and "too few" in why
    k, why = kfolds.resolve("auto", 4000, train, 100, {**cfg, "backbone": "resnet_tiny", "sizes": [128]}, 60.0)
    assert k == 1 and "--folds K forces folds" in why


def test_dry_run_states_the_folds_and_bad_folds_fail_first(dogs, tmp_path, capsys):
    from kagglekit.cli import main

    lines: list[str] = []
    kk.run(dogs.path, workdir=tmp_path / "run", dry_run=True, log=lines.append, time_budget="10m",
           **{**QUICK, "epochs": None, "folds": "auto"})
    assert any(x.startswith("folds: ") and "(" in x for x in lines) and "dry run: stopped before training" in lines[-1]
    with pytest.raises(ConfigError, match=r"run\(folds='many'\) is refused: folds takes a whole number from 1 to 20 or 'auto'"):
        kk.run(dogs.path, workdir=tmp_path / "bad", log=None, **{**QUICK, "folds": "many"})
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    assert main(["run", str(dogs.path), "--workdir", str(tmp_path / "cli"), "--folds", "0"]) == 2
    assert "--folds 0 is refused: folds takes a whole number from 1 to 20" in capsys.readouterr().err
