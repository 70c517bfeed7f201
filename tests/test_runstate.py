"""kagglekit.runstate: step records and what a changed input re-does, damaged state set aside, submissions made once."""
from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from kagglekit import kaggle
from kagglekit.runstate import RunState, remove_partial_files, submit_once
from kagglekit.testing.competitions import build_competition
from kagglekit.testing.kaggle_emulator import KaggleEmulator


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="kagglekit")
    return caplog


def _finish_all(state: RunState, metric: str = "accuracy") -> None:
    state.finish("layout", {"source": "comp"}, {"full": "a"})
    state.finish("split", {"valid": 0.2}, {"train": "b"})
    state.finish("train", {"epochs": 1}, {"fingerprint": "c"})
    state.finish("tune", {"metric": metric, "tta": 0}, {"score": 0.5})
    state.finish("predict", {"tune": {"score": 0.5}}, {"md5": "d"})
    state.finish("write", {"predictions": "d"}, {"md5": "e"})


def test_a_changed_input_redoes_its_step_and_every_later_one_and_says_why(tmp_path, logs):
    _finish_all(RunState(tmp_path))
    state = RunState(tmp_path)  # read back from run.json
    assert state.fresh("layout", {"source": "comp"}) and state.fresh("train", {"epochs": 1})
    assert not logs.text
    assert not state.fresh("tune", {"metric": "logloss", "tta": 0})
    assert ("metric changed from 'accuracy' to 'logloss': re-tuning, re-predicting and re-writing the submission"
            in logs.messages)
    again = RunState(tmp_path)
    assert set(again.state["steps"]) == {"layout", "split", "train"}  # forgotten on disk too
    assert not again.fresh("predict", {"tune": {"score": 0.5}})  # no record: done without a message
    assert len(logs.messages) == 1
    assert again.fresh("train", {"epochs": 1}) and not again.fresh("train", {"epochs": 2, "resize": "crop"})
    assert logs.messages[-1] == "epochs changed from 1 to 2, resize changed from (not recorded) to 'crop': re-training"


def test_a_damaged_run_json_is_set_aside_not_deleted(tmp_path, logs):
    (tmp_path / "run.json").write_text('{"steps": {"layout": {"inpu')
    state = RunState(tmp_path)
    kept = list(tmp_path.glob("run.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"steps": {"layout": {"inpu'
    assert not (tmp_path / "run.json").exists() and state.result("layout") is None
    assert "cannot be read (JSONDecodeError" in logs.text and kept[0].name in logs.text
    state.finish("layout", {"source": "x"}, 1)
    assert json.loads((tmp_path / "run.json").read_text())["steps"]["layout"]["result"] == 1


def test_old_run_json_is_read_as_no_records(tmp_path, logs):
    (tmp_path / "run.json").write_text(json.dumps({"fingerprint": {}, "done": {"layout": True}}))
    assert RunState(tmp_path).result("layout") is None and "older version" in logs.text


def test_unfinished_temporary_files_are_removed(tmp_path):
    (tmp_path / "learner").mkdir()
    leftovers = [tmp_path / ".run.json.abc123de.part", tmp_path / "learner" / ".model.part.keras",
                 tmp_path / "learner" / ".learner.json.x_9k2mpq.part", tmp_path / ".cache.npy.4242.1397.part"]
    for p in leftovers:
        p.write_text("half")
    (tmp_path / "keep.csv").write_text("id\n")
    assert sorted(remove_partial_files(tmp_path)) == sorted(leftovers)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["keep.csv"]


def test_damaged_training_state_is_set_aside_and_training_starts_over(tmp_path, logs):
    from kagglekit.learner.checkpoints import _Run

    (tmp_path / "state.json").write_text("{not json")
    run = _Run(tmp_path, "fp", [{"stage": "unfrozen", "size": 32, "epochs": 1}], "val_loss", "min")
    assert run.load_state() is None and run.state is None
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1 and "JSONDecodeError" in logs.text
    (tmp_path / "state.json").write_text(json.dumps({"fingerprint": "fp", "rows": [], "weights": "epoch0001.weights.npz",
                                                     "optimizer": "x.npz", "stage_index": 0, "stage_epochs_done": 1}))
    assert run.load_state() is None and "weights file epoch0001.weights.npz is missing" in logs.text



def test_a_tie_on_the_monitored_value_goes_to_the_lower_validation_loss(tmp_path):
    """Validation accuracy saturates on easy sets (the 5-minute zoo's Aerial Cactus: 1.0 from its 7th epoch of 223,
    whose weights scored test ROC AUC 0.9994 against the last epoch's 1.0): the best epoch is then the one with
    the lowest validation loss, not the first to reach the ceiling."""
    import numpy as np

    from kagglekit.learner.checkpoints import _Run

    class Model:  # what observe reads of a model
        epoch = -1

        def get_weights(self):
            return [np.full(1, self.epoch)]

    def observe(run, history):
        model = Model()
        for model.epoch, (acc, loss) in enumerate(history):
            row = {"size": 32, "val_accuracy": acc, "val_loss": loss}
            run.rows.append(row)
            run.observe(model, row)
        return run.best

    history = [(0.9, 0.3), (1.0, 0.05), (1.0, 0.01), (float("nan"), float("nan")), (1.0, 0.02), (0.99, 0.001)]
    best = observe(_Run(tmp_path / "a", "fp", [], "val_accuracy", "max"), history)
    assert (best["epoch"], best["value"], best["loss"]) == (2, 1.0, 0.01)
    assert observe(_Run(tmp_path / "b", "fp", [], "val_loss", "min"), history)["epoch"] == 5  # the loss itself: no tie-break
    resumed = _Run(tmp_path / "c", "fp", [], "val_accuracy", "max")
    resumed.best = {"value": 1.0, "epoch": 1, "size": 32, "file": "best0002.weights.npz"}  # saved before the tie-break
    assert observe(resumed, [(1.0, 0.5)])["epoch"] == 0 and resumed.best["loss"] == 0.5

# ---------------------------------------------------------------- submissions, against the emulator
@pytest.fixture(scope="module")
def competition(tmp_path_factory):
    return build_competition("digits", tmp_path_factory.mktemp("comp") / "digits", n_train=20, n_test=10)


@pytest.fixture
def emu(competition, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "no-input"))
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    with KaggleEmulator({"digits": competition}, pending_polls=1, daily_limit=50) as emulator:
        with emulator.activate(tmp_path / "home"):
            yield emulator


@pytest.fixture
def answer(competition, tmp_path):
    path = tmp_path / "run" / "submission.csv"
    path.parent.mkdir()
    pd.read_csv(competition.parent / "digits.solution.csv", dtype=str).to_csv(path, index=False)
    return path


def _submit(tmp_path, answer, competition):
    return submit_once(RunState(tmp_path / "run"), "digits", answer, "kagglekit test (file x)",
                       like=competition / "sample_submission.csv", poll=0.05, timeout=30)


class Killed(BaseException):
    """What a kill -9 would have been: nothing after it runs."""


def test_a_file_is_submitted_once_per_run_folder(emu, answer, competition, tmp_path, logs):
    first = _submit(tmp_path, answer, competition)
    assert first.public_score == pytest.approx(1.0)
    again = _submit(tmp_path, answer, competition)
    assert again.ref == first.ref and again.public_score == pytest.approx(1.0)
    assert emu.calls("CreateSubmission") == 1
    assert "was submitted from this run folder before" in logs.text


@pytest.mark.parametrize("where", ["after the upload, before its ref was saved", "while waiting for the score"])
def test_a_run_killed_after_the_upload_waits_for_that_submission(emu, answer, competition, tmp_path, monkeypatch, logs, where):
    real_submit, real_wait = kaggle.submit, kaggle.wait_for_score

    def submit_then_die(*args, **kwargs):
        real_submit(*args, **kwargs)
        raise Killed

    def die_waiting(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(kaggle, "submit" if where.startswith("after") else "wait_for_score",
                        submit_then_die if where.startswith("after") else die_waiting)
    with pytest.raises(Killed):
        _submit(tmp_path, answer, competition)
    assert emu.calls("CreateSubmission") == 1
    monkeypatch.setattr(kaggle, "submit", real_submit)
    monkeypatch.setattr(kaggle, "wait_for_score", real_wait)
    scored = _submit(tmp_path, answer, competition)
    assert scored.public_score == pytest.approx(1.0)
    assert emu.calls("CreateSubmission") == 1  # found again, not uploaded again
    expected = "stopped before its score" if where.startswith("after") else "by an earlier run (ref"
    assert expected in logs.text


def test_a_run_killed_before_kaggle_got_the_file_uploads_it(emu, answer, competition, tmp_path, monkeypatch, logs):
    real_submit = kaggle.submit

    def die_before(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(kaggle, "submit", die_before)
    with pytest.raises(Killed):
        _submit(tmp_path, answer, competition)
    monkeypatch.setattr(kaggle, "submit", real_submit)
    assert _submit(tmp_path, answer, competition).public_score == pytest.approx(1.0)
    assert emu.calls("CreateSubmission") == 1
    assert "has no such submission, so uploading it now" in logs.text
