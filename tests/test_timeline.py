"""Time-driven training: the schedule follows the share of the training time spent, epochs are an outcome.

The runs here are tiny (sklearn's 8x8 digits at 16 px, resnet_micro, a budget of seconds). Their
assertions read the `Deadline`'s own clock (the share of the training window spent, the reason it
stopped), never a stopwatch: how many steps fit depends on the machine, where training ends does not.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from kagglekit.errors import ConfigError
from kagglekit.learner.recipe import plan_stages, replay_record
from kagglekit.timeline import (TIME_EPOCHS, WARMUP, StepClock, budget_lr, measured_reserve, outside_share, stage_ends,
                                trained_steps)


def test_budget_lr_warms_up_then_decays_to_zero_at_the_budget():
    peak = 1e-3
    assert budget_lr(0.0, peak) == pytest.approx(peak / 25)
    assert budget_lr(WARMUP, peak) == pytest.approx(peak)
    assert budget_lr(1.0, peak) == 0.0 and budget_lr(1.5, peak) == 0.0 and budget_lr(-1, peak) == budget_lr(0, peak)
    decay = [budget_lr(f, peak) for f in np.linspace(WARMUP, 1.0, 50)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert budget_lr(0.5, peak) == pytest.approx(peak * 0.5 / (1 - WARMUP))  # linear (Li, Yumer, Ramanan 2020)


def test_sizes_share_the_time_by_pixels_and_the_last_ends_at_the_deadline():
    plan = plan_stages([16, 32], False, 0, None, 3e-3, (1, 1, 1))
    assert [st["epochs"] for st in plan] == [TIME_EPOCHS] * 2 and all(st["timed"] for st in plan)
    assert stage_ends(plan) == pytest.approx([0.2, 1.0])  # 16^2 / (16^2 + 32^2): equal epochs at each size
    assert stage_ends(plan, [1, 3]) == pytest.approx([0.25, 1.0])
    with pytest.raises(ConfigError, match="one per size"):
        stage_ends(plan, [1.0])
    pretrained = stage_ends(plan_stages([64, 128], True, 1, None, 1e-3, (1 / 9, 1 / 3, 1)))
    assert pretrained[0] is None and pretrained[2] is None  # the frozen head stages count epochs
    assert pretrained[1] == pytest.approx(0.2) and pretrained[3] == 1.0
    assert stage_ends(plan_stages([32], False, 0, 5, 3e-3, (1, 1, 1))) == [None]  # explicit epochs: as before


def test_replay_record_counts_steps_and_validations_per_stage():
    rows = [{"stage_index": 0, "stage_epoch": 0, "steps": 10, "val_accuracy": 0.5},
            {"stage_index": 0, "stage_epoch": 1, "steps": 10, "val_accuracy": float("nan")},  # not validated
            {"stage_index": 1, "stage_epoch": 0, "steps": 4, "val_loss": 0.3, "loss": 0.2}]
    record = replay_record(rows, 2)
    assert record == {"steps": [20, 4], "validated": [[1], [1]]}
    clock = StepClock(record["steps"])
    assert clock.ends() == pytest.approx([20 / 24, 1.0]) and clock.fraction == 0.0
    for _ in range(20):
        clock.tick()
    assert clock.fraction == pytest.approx(20 / 24)
    import pandas as pd

    assert trained_steps(pd.DataFrame(rows)) == {"steps": [20, 4]} and trained_steps(pd.DataFrame()) == {}


def test_reserve_is_measured_from_validation_and_outside_share_from_the_state(tmp_path):
    from kagglekit.plan import PREDICT_SHARE, Plan

    plan = Plan("resnet_micro", None, [32], 10, 0, 64, 120.0, 12.0, 60.0, 0.002, "cpu", tta=2)
    got = measured_reserve(plan, n_valid=300, n_test=100)
    assert got["reserve_images"] == 300 * 2 * 2 + 100 * 2 and got["valid_images"] == 300
    assert got["reserve_fixed_s"] == pytest.approx(12.0 - 1400 * 0.002 * PREDICT_SHARE)
    knn = measured_reserve(plan, n_valid=300, n_test=100, n_gallery=1500)  # the nearest-neighbour head embeds them
    assert knn["reserve_images"] == got["reserve_images"] + 1500 and knn["reserve_fixed_s"] == got["reserve_fixed_s"]
    state = tmp_path / "deadline.json"
    state.write_text(json.dumps({"step_total_s": 75.0}))
    assert outside_share(state, 100.0) == pytest.approx(0.25)
    assert outside_share(tmp_path / "none.json", 100.0) is None


def _digits(n: int = 400):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.repeat(np.kron(d.images[:n], np.ones((2, 2)))[..., None], 3, -1) * (255 / 16)
    return x.astype("uint8"), d.target[:n]


def test_fine_tune_without_epochs_needs_a_clock(tmp_path):
    from kagglekit.learner import fine_tune

    with pytest.raises(ConfigError, match="Deadline"):
        fine_tune(_digits(64), backbone="resnet_micro", weights=None, epochs=None, workdir=tmp_path, verbose=0)


def _time_driven(x, y, deadline, workdir, **kwargs):
    from kagglekit.learner import fine_tune

    return fine_tune((x, y), backbone="resnet_micro", weights=None, epochs=None, sizes=[16], batch_size=32,
                     augment=False, dropout=0.0, workdir=workdir, verbose=0, callbacks=[deadline], **kwargs)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_training_ends_at_its_deadline_whatever_the_cost_model_says(scale, tmp_path, monkeypatch):
    from kagglekit.hardware import Hardware
    from kagglekit.plan import ImageStats, make_plan

    x, y = _digits()
    monkeypatch.setenv("KAGGLEKIT_COST_SCALE", str(scale))
    plan = make_plan(len(x), ImageStats.from_sizes([(16, 16)] * 8, count=len(x)), Hardware.probe(), "55s",
                     weights=None, backbone="resnet_micro", sizes=[16], n_valid=80, n_test=50, tta=1, spent_s=20)
    assert any(f"cost model scaled {scale:g}x" in r for r in plan.reasons)
    deadline = plan.deadline(spent_s=20, state_path=tmp_path / "deadline.json")
    learner = _time_driven(x, y, deadline, tmp_path / "train", valid=0.2)
    rows = learner.history
    assert deadline.fraction >= 0.97, (deadline.to_state(), rows)  # it trained until the end of its window
    assert deadline.spent_s <= 1.03 * deadline.budget_s  # and left (most of) its reserve: inside issue 17's window
    assert rows["lr"].iloc[-1] <= budget_lr(0.5, 3e-3), rows  # the last steps ran in the second half of the decay
    assert rows["steps"].sum() > 0 and rows["val_accuracy"].notna().iloc[-1]  # the last weights were validated
    assert json.loads((tmp_path / "deadline.json").read_text())["step_total_s"] > 0


def test_a_time_driven_stage_checkpoints_every_few_seconds_and_when_it_ends(tmp_path, monkeypatch):
    """Short epochs are not each written (weights, optimizer, state.json, history.csv); the last one and the best are."""
    from kagglekit.deadline import Deadline
    from kagglekit.learner import checkpoints, recipe

    written = []
    write = checkpoints._Run.checkpoint
    monkeypatch.setattr(checkpoints._Run, "checkpoint", lambda run, *a: written.append(len(run.rows)) or write(run, *a))
    monkeypatch.setattr(recipe, "CHECKPOINT_EVERY_S", 3.0)
    x, y = _digits()
    learner = _time_driven(x, y, Deadline(15.0, state_path=tmp_path / "deadline.json"), tmp_path / "train", valid=0.2)
    rows = learner.history
    assert 2 <= len(written) < len(rows), (written, len(rows))  # every 3 s, not every epoch
    assert written[0] == 1 and written[-1] == len(rows)  # the first epoch (a resume point at once) and the last
    state = json.loads((tmp_path / "train" / "state.json").read_text())
    assert len(state["rows"]) == len(rows) and state["stage_epochs_done"] == int(rows["stage_epoch"].iloc[-1]) + 1
    monitored = rows[state["monitor"]].to_numpy()  # the best epoch, whether or not it was a checkpoint:
    ties = np.flatnonzero(monitored == (np.nanmax(monitored) if "acc" in state["monitor"] else np.nanmin(monitored)))
    best = int(ties[np.argmin(rows["val_loss"].to_numpy()[ties])])  # of equal ones, the lowest validation loss
    assert state["best"]["epoch"] == best and learner.settings["best"] == state["best"]
    saved = checkpoints.load_arrays(tmp_path / "train" / state["best"]["file"])
    assert all(np.array_equal(a, b) for a, b in zip(saved, learner.model.get_weights()))  # restored from it
    assert sorted(p.name for p in (tmp_path / "train").glob("*.npz")) == sorted(
        [state["weights"], state["optimizer"], state["best"]["file"]])  # earlier checkpoints tidied away


class _Kill(Exception):
    """Stands for a kill in the middle of training."""


@pytest.mark.slow
def test_a_run_killed_at_60_percent_ends_where_an_uninterrupted_one_would_and_replays(tmp_path):
    import keras

    from kagglekit.deadline import Deadline
    from kagglekit.learner import fine_tune

    class KillAt(keras.callbacks.Callback):
        def __init__(self, clock):
            super().__init__()
            self.clock = clock

        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

        def on_train_batch_end(self, batch, logs=None):
            if self.clock.fraction >= 0.6 and self.epochs:  # at 60%, once an epoch is checkpointed
                raise _Kill(f"killed at {self.clock.fraction:.0%}")

    x, y = _digits()
    state = tmp_path / "deadline.json"
    first = Deadline(30.0, state_path=state)
    with pytest.raises(_Kill):
        fine_tune((x, y), backbone="resnet_micro", weights=None, epochs=None, sizes=[16], batch_size=32, augment=False,
                  dropout=0.0, workdir=tmp_path / "train", verbose=0, callbacks=[first, KillAt(first)])
    saved = json.loads(state.read_text())
    before = len(json.loads((tmp_path / "train" / "state.json").read_text())["rows"])  # epochs checkpointed
    resumed = Deadline.load(state)
    assert saved["train_start_s"] is not None and 0.5 <= resumed.fraction < 1.0, saved  # saved every 2 s of training
    assert resumed.train_start_s == saved["train_start_s"]  # the same schedule goes on
    learner = _time_driven(x, y, resumed, tmp_path / "train")
    rows = learner.history
    assert resumed.fraction >= 0.97, (resumed.to_state(), rows)  # ended at the deadline, as one run would
    assert len(rows) > before, rows  # (on a loaded machine, restarting and tracing may take the rest of the window)
    assert rows["lr"].iloc[before] < 0.5 * 3e-3  # the schedule went on from 60% (a fresh one would be near its peak)
    # --replay: the same steps per stage, validated after the same epochs, with no deadline at all
    record = replay_record(rows.to_dict("records"), 1)
    replayed = fine_tune((x, y), backbone="resnet_micro", weights=None, epochs=None, sizes=[16], batch_size=32,
                         augment=False, dropout=0.0, workdir=tmp_path / "replay", verbose=0, replay=record)
    assert replay_record(replayed.history.to_dict("records"), 1) == record
    assert replayed.history["lr"].iloc[-1] <= budget_lr(0.9, 3e-3)  # steps, not seconds: the last step is at the end
