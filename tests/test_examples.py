"""The scripts in examples/ end to end, at tiny sizes, against competitions the Kaggle emulator serves.

Each competition is made of real images in that competition's own layout, the
weights come from files the test writes (as Kaggle users attach *_notop.h5 files),
and the real `kaggle` client downloads, uploads and reads the score.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kagglekit.testing.competitions import build_competition
from kagglekit.testing.kaggle_emulator import KaggleEmulator, score_submission

ROOT = Path(__file__).resolve().parents[1]
DVC = "dogs-vs-cats-redux-kernels-edition"
IMAT = "imaterialist-challenge-fashion-2018"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    comps = {
        DVC: build_competition("dogs-vs-cats", root / DVC, n_train=96, n_test=24, size=48),
        IMAT: build_competition("imaterialist-fashion", root / IMAT, n_train=320, n_valid=64, n_test=64, size=48),
        "fashion-mnist": build_competition("fashion-mnist", root / "fashion-mnist", n_train=600, n_test=100),
    }
    with KaggleEmulator(comps) as emu:
        env = {**os.environ, **emu.environ(root / "home"), "KAGGLEKIT_DATA": str(root / "data"),
               "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        for k in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE"):
            env.pop(k, None)
        yield emu, env, root


def public_score(out: subprocess.CompletedProcess) -> float:
    """Return the public score the example printed (the emulator's score of the uploaded file)."""
    found = re.search(r"public score: ([-+0-9.eE]+)", out.stdout)
    assert found, out.stdout[-2000:]
    return float(found[1])


def best_constant_score(solution: Path, values: list[str], higher_is_better: bool) -> float:
    """Return the best public score of a submission that ignores the images: one value in every row (chance)."""
    answers = pd.read_csv(solution, dtype=str)
    scores = []
    for value in values:
        constant = answers.copy()
        constant[answers.columns[1]] = value
        scores.append(score_submission(solution, constant.to_csv(index=False).encode())[0])
    return max(scores) if higher_is_better else min(scores)


def notop_file(folder: Path, app: str, filename: str) -> Path:
    """Write an ImageNet-style *_notop.h5 file (random weights) the way keras.applications ships them."""
    path = folder / filename
    if not path.exists():
        code = (f"import keras; keras.applications.{app}(include_top=False, weights=None, "
                f"input_shape=(None, None, 3)).save({str(path)!r})")
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return path


def run_example(script: str, args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return out


@pytest.mark.parametrize("script", ["dogs_vs_cats.py", "imaterialist_fashion.py", "fashion_mnist.py"])
def test_example_help(script):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage:" in out.stdout and "--submit" in out.stdout


def test_dogs_vs_cats_example(served, tmp_path):
    emu, env, root = served
    weights = notop_file(root, "VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    out = run_example("dogs_vs_cats.py", ["--backbone", "vgg16", "--time", "30m", "--size", "32", "--weights", str(weights), "--batch-size", "16",
                                          "--out", str(tmp_path / "run"), "--submit"], env, tmp_path)
    counts = re.search(r"(\d+) training and (\d+) validation images; classes \('cats', 'dogs'\)", out.stdout)
    assert counts and int(counts[1]) + int(counts[2]) == 96 and int(counts[2]) in (19, 20), out.stdout[-2000:]
    assert "validation accuracy" in out.stdout and "log loss" in out.stdout
    sub = pd.read_csv(tmp_path / "run" / "submission.csv")
    sample = pd.read_csv(root / DVC / "sample_submission.csv")
    assert list(sub.columns) == ["id", "label"] and sub["id"].tolist() == sample["id"].tolist()
    assert sub["label"].between(0, 1).all()
    assert (tmp_path / "run" / "folders" / "cats").is_dir() and (tmp_path / "run" / "folders" / "dogs").is_dir()
    scored = emu.submissions[DVC][-1]
    assert public_score(out) == pytest.approx(scored.public, rel=1e-3)  # as printed
    # log loss (lower is better) below every constant P(dog): the model tells cats from dogs
    chance = best_constant_score(root / f"{DVC}.solution.csv", [f"{p:.2f}" for p in np.linspace(0.05, 0.95, 19)], False)
    assert scored.public < chance, (scored.public, chance)


def test_imaterialist_example(served, tmp_path):
    emu, env, root = served
    # A small from-scratch ResNet with progressive resizing (two sizes, two stages): the example's own steps (JSON
    # to tables, thresholds tuned for F2, the curve, the submission, the upload) at a fraction of ResNet50's cost;
    # ResNet50 and its *_notop.h5 file are tested in test_backbones.py. 320 mosaics of 2-4 digits, 10 labels.
    out = run_example("imaterialist_fashion.py", ["--backbone", "resnet_tiny", "--sizes", "32,48", "--epochs", "4",
                                                  "--weights", "none", "--batch-size", "32", "--tta", "2", "--time", "30m",
                                                  "--out", str(tmp_path / "run"), "--submit"], env, tmp_path)
    assert "320 train, 64 validation, 64 test images" in out.stdout
    assert "validation F2" in out.stdout and "stage 2/2 unfrozen at size 48" in out.stdout + out.stderr
    sub = pd.read_csv(tmp_path / "run" / "submission.csv", dtype=str)
    assert list(sub.columns) == ["image_id", "label_id"] and len(sub) == 64
    assert sub["label_id"].str.split().map(len).min() >= 1  # the at-least-one-label fallback
    assert (tmp_path / "run" / "threshold_f2.png").stat().st_size > 0
    scored = emu.submissions[IMAT][-1]
    assert public_score(out) == pytest.approx(scored.public, rel=1e-3)  # as printed
    # Above chance: better than every fixed label set (the k commonest labels of the answers themselves).
    solution = root / f"{IMAT}.solution.csv"
    answers = pd.read_csv(solution, dtype=str)
    common = pd.Series([t for v in answers["label_id"] for t in v.split()]).value_counts().index
    chance = best_constant_score(solution, [" ".join(common[:k]) for k in range(1, len(common) + 1)], True)
    assert scored.public > chance + 0.03, (scored.public, chance)


def test_fashion_mnist_example(served, tmp_path):
    emu, env, root = served
    # --time: no profile, kagglekit's own plan for the budget (backbone, size, batch), as kk.run(time_budget=...);
    # --epochs 6 (asked: it wins over the plan's 30) keeps the test short
    out = run_example("fashion_mnist.py", ["--slug", "fashion-mnist", "--time", "2m", "--epochs", "6",
                                           "--out", str(tmp_path / "run"), "--submit"], env, tmp_path)
    assert "validation accuracy:" in out.stdout
    assert "budget 2 min: asked" in out.stdout and "6 epochs, batch" in out.stdout, out.stdout[-3000:]
    score = public_score(out)  # the emulator scores test accuracy
    assert emu.submissions["fashion-mnist"][-1].public == pytest.approx(score, rel=1e-3)
    # accuracy well above the best constant label (chance)
    chance = best_constant_score(root / "fashion-mnist.solution.csv", [str(k) for k in range(10)], True)
    assert score > max(0.5, 2 * chance), (score, chance)
    sub = pd.read_csv(tmp_path / "run" / "run" / "submission.csv")
    assert list(sub.columns) == ["ImageId", "Label"] and sub["ImageId"].tolist() == list(range(1, 101))
