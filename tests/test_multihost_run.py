"""`kagglekit run` over two JAX processes on this machine (CPU collectives): one run, one writer, one model.

The same command runs as process 0 and process 1 of a multi-host job (Keras' ``KERAS_DISTRIBUTION_*``
variables, as a TPU pod slice sets JAX's). Process 0 is the run: its run folder, ledger and submission;
process 1 feeds its share of every batch and follows process 0's clock, writing only into its own
scratch folder. Both must have trained the same steps with the same losses (one model, not two).
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kagglekit.testing.competitions import build_competition


def _start(env: dict, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kagglekit", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _history(run_folder: Path) -> pd.DataFrame:
    found = sorted(run_folder.rglob("history.csv"))
    assert len(found) == 1, found
    return pd.read_csv(found[0])


@pytest.mark.slow
def test_two_processes_train_one_model_and_only_process_0_writes(tmp_path, jax_process_env):
    pytest.importorskip("jax")
    comp = build_competition("dogs-vs-cats", tmp_path / "dogs-vs-cats", n_train=160, n_test=40, size=32, zipped=False)
    run_dir, ledger = tmp_path / "runs" / "dogs", tmp_path / "runs" / "ledger.csv"
    args = ["run", str(comp), "--workdir", str(run_dir), "--ledger", str(ledger), "--time", "60s",
            "--backbone", "resnet_tiny", "--weights", "none", "--sizes", "32", "--batch-size", "16", "--tta", "1"]
    scratch = [tmp_path / "scratch0", tmp_path / "scratch1"]
    for folder in scratch:
        folder.mkdir()
    procs = [_start(jax_process_env(i, TMPDIR=str(scratch[i]), KAGGLEKIT_KEEP_SCRATCH="1"), args) for i in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, (out[-2000:], err[-6000:])
        outs.append(out)

    # process 0 is the run: it says how the processes share it, writes the submission and one ledger row
    assert "processes: 2 (multi-host JAX)" in outs[0] and "submission:" in outs[0]
    assert "process 1 of 2: trained in step with process 0" in outs[1]
    sub = pd.read_csv(run_dir / "submission.csv")
    assert list(sub.columns) == ["id", "label"] and len(sub) == 40 and sub["label"].between(0, 1).all()
    with open(ledger, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 1

    # process 1 wrote nothing of the user's: its files are in its own scratch folder
    follower = [p for p in scratch[1].iterdir() if p.name.startswith("kagglekit-process1-")]
    assert len(follower) == 1 and not list(scratch[0].glob("kagglekit-process*"))

    # one model: both processes trained the same epochs with the same (global) losses
    mine, theirs = _history(run_dir / "train"), _history(follower[0] / "run" / "train")
    assert len(mine) == len(theirs) >= 1 and mine["steps"].sum() >= 1
    assert mine["steps"].tolist() == theirs["steps"].tolist()
    assert mine["loss"].tolist() == theirs["loss"].tolist() and mine["lr"].tolist() == theirs["lr"].tolist()


def test_a_followers_scratch_folder_is_removed_unless_kept(tmp_path, monkeypatch):
    from kagglekit.job.processes import KEEP_SCRATCH_ENV, Role

    scratch = tmp_path / "kagglekit-process1-x"
    (scratch / "run").mkdir(parents=True)
    role = Role(1, 2, str(scratch))
    assert role.places("runs/mine", True, "ledger.csv") == (str(scratch / "run"), False, False)  # never the user's
    assert Role().places("runs/mine", True, "ledger.csv") == ("runs/mine", True, "ledger.csv")
    monkeypatch.setenv(KEEP_SCRATCH_ENV, "1")
    role.cleanup()
    assert scratch.is_dir()
    monkeypatch.delenv(KEEP_SCRATCH_ENV)
    role.cleanup()
    assert not scratch.exists()


def test_several_processes_refuse_k_folds_and_make_auto_one():
    from kagglekit.errors import ConfigError
    from kagglekit.job.processes import Role, check_folds

    with pytest.raises(ConfigError, match="--folds 5 trains 5 models.*Fix: --folds 1"):
        check_folds(Role(0, 2), 5, 5)
    assert check_folds(Role(0, 2), 5, "auto") == 1
    assert check_folds(Role(), 5, 5) == 5  # one process: as asked


def test_several_processes_need_the_jax_backend(monkeypatch):
    import keras

    from kagglekit.errors import ConfigError
    from kagglekit.job import processes

    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    with pytest.raises(ConfigError, match="names 2 processes.*JAX only.*Fix: KERAS_BACKEND=jax"):
        processes.join()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
    assert processes.join() == processes.Role()
