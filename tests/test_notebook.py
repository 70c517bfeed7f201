"""`kagglekit run` inside a Kaggle notebook: a fake /kaggle/input tree, a code competition's public run,
the re-run Kaggle makes with the hidden test set in a fresh /kaggle/working, and the two-notebook
pattern (a learner saved by an earlier run attached as a dataset, used with --model)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kagglekit as kk
from kagglekit.predict import read_predictions
from kagglekit.testing import zoo

SLUG = "cassava-leaf-disease-classification"
QUICK = {"backbone": "resnet_tiny", "sizes": [32], "weights": "none", "epochs": 10, "lr": 3e-3, "batch_size": 16,
         "tta": 0, "seed": 0}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Return (public input root, hidden-test input root, the public and re-run `ZooCompetition`s)."""
    base = tmp_path_factory.mktemp("kaggle")
    comp = zoo.build(SLUG, base / "public" / SLUG, n_train=160, n_test=40, image_size=32, rerun=True)
    rerun = comp.extra["rerun"]
    hidden = base / "hidden"
    hidden.mkdir()
    (hidden / SLUG).symlink_to(rerun.path, target_is_directory=True)  # the same slug, the hidden test set in place
    return base / "public", hidden, comp, rerun


def _notebook(monkeypatch, tmp_path: Path, input_root: Path, working: Path) -> None:
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(input_root))
    monkeypatch.setenv("KAGGLEKIT_WORKING", str(working))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-credentials"))  # the Kaggle API is never needed
    monkeypatch.chdir(tmp_path)


def test_public_run_rerun_with_hidden_test_set_and_model_only_run(inputs, tmp_path, monkeypatch):
    public_root, hidden_root, comp, rerun = inputs

    # 1. The public run: the one public test image, everything under /kaggle/working.
    work1 = tmp_path / "working1"
    _notebook(monkeypatch, tmp_path, public_root, work1)
    lines: list[str] = []
    first = kk.run(SLUG, log=lines.append, **QUICK)
    assert first.submission == work1 / "submission.csv" and first.workdir == work1 / "runs" / SLUG
    sub = pd.read_csv(first.submission, dtype=str)
    assert sub.columns.tolist() == ["image_id", "label"] and sub["image_id"].tolist() == [zoo.zoo_tables.CASSAVA_PUBLIC_TEST]
    assert not (tmp_path / "runs").exists()  # nothing written outside the working folder
    assert any("1 test (from test_images/)" in line for line in lines), lines
    public_probs = read_predictions(first.workdir / "test_predictions.csv")

    # 2. Kaggle's re-run: a fresh working folder, the full hidden test set; the same call trains and predicts it all.
    work2 = tmp_path / "working2"
    _notebook(monkeypatch, tmp_path, hidden_root, work2)
    second = kk.run(SLUG, log=None, **QUICK)
    sub2 = pd.read_csv(work2 / "submission.csv", dtype=str)
    assert sorted(sub2["image_id"]) == sorted(rerun.answers["image_id"]) and len(sub2) == 40
    # Every hidden image is scored from the model's own prediction: the label written is its most probable
    # class (beating chance is asserted on this competition in tests/test_zoo_run.py).
    hidden_probs = read_predictions(second.workdir / "test_predictions.csv")
    classes = list(public_probs.attrs["classes"])
    best = dict(zip(hidden_probs["id"].astype(str), np.asarray(classes)[hidden_probs[classes].to_numpy().argmax(1)]))
    assert [best[i] for i in sub2["image_id"]] == sub2["label"].tolist()
    # Deterministic for a seed: the public image gets the same probabilities in both runs.
    row = hidden_probs.loc[hidden_probs["id"].astype(str) == str(public_probs["id"][0]), classes].to_numpy()
    np.testing.assert_allclose(row[0], public_probs[classes].to_numpy()[0], atol=1e-4)

    # 3. The two-notebook pattern: the learner of run 2 attached as a dataset; --model predicts only.
    work3 = tmp_path / "working3"
    env = {**os.environ, "KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLEKIT_INPUT_ROOT": str(hidden_root),
           "KAGGLEKIT_WORKING": str(work3), "KAGGLE_CONFIG_DIR": str(tmp_path / "no-credentials"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    model = second.workdir / "learner"
    out = subprocess.run([sys.executable, "-m", "kagglekit.cli", "run", SLUG, "--model", str(model), "--batch-size", "16"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Epoch" not in out.stdout and f"model: loaded from {model}" in out.stdout
    assert "validation accuracy: not measured" in out.stdout
    sub3 = pd.read_csv(work3 / "submission.csv", dtype=str)
    pd.testing.assert_frame_equal(sub3, sub2)


def test_model_folder_must_hold_a_learner(inputs, tmp_path, monkeypatch):
    public_root, _, _, _ = inputs
    _notebook(monkeypatch, tmp_path, public_root, tmp_path / "working")
    with pytest.raises(kk.errors.ConfigError, match="no saved learner there"):
        kk.run(SLUG, log=None, model=tmp_path / "nothing", **QUICK)
