"""`kagglekit run` in time: the plan printed before training, the deadline kept, resume, the ledger and its commands."""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import pandas as pd
import pytest

import kagglekit as kk
from kagglekit.table import LabelTable
from kagglekit import ledger
from kagglekit.cli import main
from kagglekit.deadline import Deadline
from kagglekit.demo import build_digits
from kagglekit.submission import validate_submission

BUDGET_S = 60.0


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """The demo's real-digits competition (1500 train, 297 test images of 32 px)."""
    return build_digits(tmp_path_factory.mktemp("budget") / "digits")


@pytest.fixture(scope="module")
def timed_run(digits, tmp_path_factory):
    """One from-scratch run with a 60 s budget and no other setting: (result, messages, wall seconds)."""
    out = tmp_path_factory.mktemp("timed")
    got: list[str] = []
    t0 = time.time()
    result = kk.run(digits, workdir=out / "run", time_budget="60s", weights="none", log=got.append)
    return result, got, time.time() - t0


def test_plan_is_printed_before_training_from_images_and_hardware(timed_run):
    result, got, _ = timed_run
    text = "\n".join(got)
    plan_at = next(i for i, line in enumerate(got) if line.startswith("plan: "))
    assert plan_at < next(i for i, line in enumerate(got) if line.startswith("validation ")), text
    assert "from scratch" in got[plan_at] and "of a 60 s budget" in got[plan_at], got[plan_at]
    assert "trained until the deadline" in got[plan_at] and "epochs: as many as fit" in text  # time-driven: no count
    assert "ends early" not in text
    ended = [line for line in got if line.startswith("deadline: training ")]  # by its clock, not short of a count
    assert ended and all("until its deadline" in line and "planned" not in line for line in ended), ended
    assert "hardware: " in text and "images: 1200 images, median 32x32" in text
    assert "size 32: images are 32x32" in text  # the digits are never upscaled to a photo size
    saved = json.loads((result.workdir / "run.json").read_text())["steps"]["plan"]["result"]
    assert saved["budget_s"] == BUDGET_S and saved["sizes"] == [32] and saved["weights"] is None


def test_whole_run_stays_inside_its_budget(timed_run, digits):
    result, _, wall = timed_run
    validate_submission(result.submission, like=digits / "sample_submission.csv")
    valid = LabelTable.read_csv(result.workdir / "valid.table.csv")
    majority = float(valid.counts().max()) / len(valid)  # the accuracy of always answering the commonest digit
    assert result.metric == "accuracy" and result.valid_score > 2 * majority, (result.valid_score, majority)
    state = json.loads((result.workdir / "deadline.json").read_text())
    assert Deadline.from_state(state).fraction >= 0.97, state  # time-driven: it trained until its deadline
    rows = ledger.read(result.workdir.parent / "ledger.csv")
    assert len(rows) == 1 and rows.loc[0, "budget_s"] == BUDGET_S and rows.loc[0, "seconds"] == round(result.seconds, 1)
    assert rows.loc[0, "epochs_done"] >= 1 and rows.loc[0, "competition"] == "digits"
    assert 0.0 < rows.loc[0, "outside_share"] < 1.0 and rows.loc[0, "outside_share"] == result.outside_share
    steps = json.loads((result.workdir / "run.json").read_text())["steps"]["train"]["result"]["steps"]
    assert steps[0] > 0  # the steps trained, for --replay


def test_ledger_one_row_per_run_and_runs_command_prints_it(timed_run, capsys):
    result, _, _ = timed_run
    path = result.workdir.parent / "ledger.csv"
    assert main(["runs", "--ledger", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["time", "competition", "backbone", "sizes"] and len(lines) == 2, out
    assert "digits" in lines[1] and "submission.csv" in lines[1] and f"{result.valid_score:.4f}" in lines[1]
    assert main(["runs", "--ledger", str(path.with_name("none.csv"))]) == 0
    assert "No runs recorded yet" in capsys.readouterr().out


class _Interrupt(Exception):
    """Stands for a kill in the middle of training."""


class _KillAfterFirstEpoch(keras.callbacks.Callback):
    """Raises once the first epoch is checkpointed (kagglekit's own callbacks, and the Deadline, run first)."""

    def on_epoch_end(self, epoch, logs=None):
        raise _Interrupt(f"killed after epoch {epoch + 1}")


def test_resume_spends_only_what_is_left(digits, tmp_path):
    work = tmp_path / "run"
    t0 = time.time()
    with pytest.raises(_Interrupt):
        kk.run(digits, workdir=work, time_budget="60s", weights="none", log=None,
               fine_tune={"callbacks": [_KillAfterFirstEpoch()]})
    first = time.time() - t0
    state = json.loads((work / "deadline.json").read_text())
    assert 0 < state["spent_s"] <= first and not (work / "ledger.csv").exists()
    got: list[str] = []
    result = kk.run(digits, workdir=work, time_budget="60s", weights="none", log=got.append)
    assert any(line.startswith("plan (made earlier;") for line in got), got  # not planned again
    assert result.seconds >= state["spent_s"]  # both sessions counted
    ended = json.loads((work / "deadline.json").read_text())
    assert ended["train_start_s"] == state["train_start_s"]  # the same schedule went on
    assert Deadline.from_state(ended).fraction >= 0.97, ended  # and ended at the deadline
    history = pd.read_csv(work / "learner" / "history.csv")
    assert len(history) >= 1 and (work / "train" / "state.json").is_file()  # the first epoch kept, not trained again
    rows = ledger.read(tmp_path / "ledger.csv")
    assert len(rows) == 1 and rows.loc[0, "seconds"] == pytest.approx(result.seconds, abs=0.2)
    # Running the finished run again trains nothing and adds no row.
    kk.run(digits, workdir=work, time_budget="60s", weights="none", log=None)
    assert len(ledger.read(tmp_path / "ledger.csv")) == 1


def test_bad_time_is_one_line_before_any_work(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nowhere"), "--time", "ten minutes"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kagglekit run: ") and len(err.strip().splitlines()) == 1 and "ten minutes" in err


def test_a_warning_before_submitting_when_none_are_left_today():
    import types

    from kagglekit.job import _warn_when_no_submissions_left
    from kagglekit.logs import shown

    got: list[str] = []
    with shown(got.append):
        _warn_when_no_submissions_left(types.SimpleNamespace(submission_limits=lambda slug: {"remaining_today": 0}), "x")
        _warn_when_no_submissions_left(types.SimpleNamespace(submission_limits=lambda slug: {"remaining_today": 3}), "x")
        _warn_when_no_submissions_left(types.SimpleNamespace(submission_limits=lambda slug: 1 / 0), "x")  # cannot tell
    assert len(got) == 1 and "0 submissions remaining today for x" in got[0]
