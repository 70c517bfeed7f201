"""`Deadline`: a Keras callback that keeps training inside a time budget and records the time spent.

Made by ``kagglekit.plan.Plan.deadline()`` (or directly) and passed to ``fine_tune(callbacks=[...])``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import keras

from .io import atomic_write_text
from .logs import logger
from .durations import format_duration, parse_duration

_WINDOW = 64  # steps the median step time is taken over
SAVE_EVERY_S = 2.0  # seconds of training between two writes of the state (a kill loses at most this)


class Deadline(keras.callbacks.Callback):
    """Keep training inside a time budget: measure, re-plan, stop before an epoch that would not finish.

    The clock starts when the callback is made (make it just before training) and adds to
    `spent_s`, the seconds already spent (earlier sessions of a resumed run, the steps before
    training). Training may use ``budget_s - reserve_s`` in all; the reserve is for predicting
    and writing afterwards. After `calibrate_steps` steps of each ``fit`` (the first, which
    traces the model, is left out) it knows the time per step, logs the epochs it expects to
    reach (`expected_epochs`) and from then on sets ``model.stop_training``:

    * at the end of an epoch, when the next one (its steps, validation and checkpoint, as
      measured) would not finish inside the limit;
    * inside an epoch, when one more step and the validation would not;
    * at the start of a ``fit``, when the limit is already reached (Keras then runs one step).

    The learner keeps the best checkpoint, so stopping early loses nothing already learnt.
    `to_state()` / `from_state()` carry the spent time and the measured speed across sessions.
    Works for several ``fit`` calls in a row (fine_tune's stages): the clock goes on.

    Args:
        budget_s: the whole run's budget (seconds or a duration text such as "10m").
        spent_s: seconds of it already spent before this callback was made.
        reserve_s: seconds kept back for what follows training (prediction, TTA, writing).
        batch_size, size: let it report `seconds_per_image` at `size` (for a later `make_plan`).
        calibrate_steps: training steps measured (after the first) before it re-plans.
        valid_s: an estimate of the first validation pass until one is measured (``Plan.valid_s``).
        state_path: a JSON file `to_state()` is written to (atomically) after every epoch, at the
            end of each ``fit`` and every `SAVE_EVERY_S` seconds of training, so even a killed run knows
            the time it spent (read it with `load`).
        reserve_images, valid_images, reserve_fixed_s: measure the reserve instead of trusting the
            estimate: once a validation pass over `valid_images` images is timed, the reserve becomes
            ``reserve_fixed_s + reserve_images * (seconds per validated image)`` (`reserve_images`: the
            image passes predicted after training, TTA views included). 0: the reserve stays as given.

    Time-driven training (`kagglekit.timeline`) reads `fraction`, the share of the training window
    spent: from the first training step of the run (`train_start_s`, kept in the state so a resumed
    run goes on with the same schedule) to the limit less the last validation. It sets
    ``whole_epochs = False``: training then stops only between steps, not before an epoch.
    """

    def __init__(self, budget_s: float | str, spent_s: float = 0.0, reserve_s: float = 0.0,
                 batch_size: int | None = None, size: int | None = None, calibrate_steps: int = 5,
                 valid_s: float = 0.0, state_path: str | os.PathLike | None = None, reserve_images: float = 0.0,
                 valid_images: int = 0, reserve_fixed_s: float = 0.0) -> None:
        super().__init__()
        self.budget_s = parse_duration(budget_s)
        self.reserve_s = float(reserve_s)
        self.batch_size, self.size = batch_size, size
        self.calibrate_steps = int(calibrate_steps)
        self.state_path = Path(state_path) if state_path is not None else None
        self._spent0 = float(spent_s)
        self._t0 = time.monotonic()
        self.step_s: float | None = None  # median seconds per training step (this fit)
        self.epoch_s: float | None = None  # seconds per epoch: steps, validation, checkpoint
        self.valid_s: float = float(valid_s)  # seconds of the last validation pass (an estimate until measured)
        self.expected_epochs: int | None = None  # the epochs of this fit it expects to complete
        self.planned_epochs: int | None = None
        self.stopped: str | None = None  # why it stopped training, None while it has not
        self.seconds_per_image: float | None = None  # measured training seconds per image (needs batch_size)
        self._steps: list[float] = []  # the first step of this fit, then the latest _WINDOW ones
        self._n_steps = 0
        self._t_batch = self._t_epoch = self._t_test = self._t_test_batch = 0.0
        self._test_steps: list[float] = []
        self._in_fit = False
        self._resumed_epoch_s: float | None = None
        self._logged: int | None = None
        self._tail_s = 0.0  # seconds an epoch spends after validation (checkpoints), as last measured
        self._epoch = 0
        self._first_epoch = True
        self.reserve_images, self.valid_images = float(reserve_images), int(valid_images)
        self.reserve_fixed_s = float(reserve_fixed_s)
        self.train_start_s: float | None = None  # spent_s when training first began (all sessions)
        self.step_total_s = 0.0  # seconds inside training steps (all sessions)
        self.whole_epochs = True  # stop before an epoch that would not finish (False: time-driven, stop between steps)
        self._saved_at = self._t_phase_end = time.monotonic()

    # ---------------------------------------------------------- time
    @property
    def spent_s(self) -> float:
        """Return the seconds spent of the budget so far (earlier sessions included)."""
        return self._spent0 + time.monotonic() - self._t0

    @property
    def limit_s(self) -> float:
        """Return the seconds training may reach: the budget less the reserve."""
        return self.budget_s - self.reserve_s

    @property
    def remaining_s(self) -> float:
        """Return the seconds training may still use (negative when past the limit)."""
        return self.limit_s - self.spent_s

    @property
    def fraction(self) -> float:
        """Return the share (0..1) of the training window spent: from the first step to the limit less the last validation."""
        if self.train_start_s is None:
            return 0.0
        end = self.limit_s - self.valid_s - self._tail_s
        window = end - self.train_start_s
        if window <= 0:
            return 1.0
        return min(1.0, max(0.0, (self.spent_s - self.train_start_s) / window))

    @property
    def exhausted(self) -> bool:
        """Return True when no training time is left (check it before starting a stage)."""
        return self.remaining_s <= 0

    def to_state(self) -> dict:
        """Return the dict to keep in the run state, so a resumed run spends only what is left."""
        return {"budget_s": self.budget_s, "spent_s": round(self.spent_s, 3), "reserve_s": self.reserve_s,
                "seconds_per_image": self.seconds_per_image, "epoch_s": self.epoch_s, "size": self.size,
                "stopped": self.stopped, "train_start_s": self.train_start_s,
                "step_total_s": round(self.step_total_s, 3), "valid_s": self.valid_s, "tail_s": self._tail_s}

    def save(self) -> Path | None:
        """Return `state_path` after writing `to_state()` to it (None when there is no state path)."""
        self._saved_at = time.monotonic()
        if self.state_path is None:
            return None
        return atomic_write_text(self.state_path, json.dumps(self.to_state(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike, budget_s: float | str | None = None, extra_s: float = 0.0,
             **kwargs: Any) -> "Deadline":
        """Return a Deadline that goes on from the state saved at `path` (plus `extra_s` seconds spent since).

        Without a saved state it starts afresh with `budget_s` (which is then required).
        """
        path = Path(path)
        if path.is_file():
            state = json.loads(path.read_text(encoding="utf-8"))
            state["spent_s"] = float(state.get("spent_s", 0.0)) + float(extra_s)
            return cls.from_state(state, budget_s=budget_s, state_path=path, **kwargs)
        if budget_s is None:
            raise ValueError(f"No deadline state at {path}; pass budget_s to start one.")
        return cls(budget_s, spent_s=extra_s, state_path=path, **kwargs)

    @classmethod
    def from_state(cls, state: dict, budget_s: float | str | None = None, **kwargs: Any) -> "Deadline":
        """Return a Deadline that goes on from `to_state()`'s dict (a new `budget_s` may replace the saved one)."""
        budget = state["budget_s"] if budget_s is None else budget_s
        kwargs.setdefault("reserve_s", state.get("reserve_s", 0.0))
        kwargs.setdefault("size", state.get("size"))
        deadline = cls(budget, spent_s=float(state.get("spent_s", 0.0)), **kwargs)
        deadline._resumed_epoch_s = state.get("epoch_s")  # the epoch length measured before the interruption
        deadline.train_start_s = state.get("train_start_s")
        deadline.step_total_s = float(state.get("step_total_s") or 0.0)
        if state.get("valid_s"):
            deadline.valid_s = float(state["valid_s"])
        deadline._tail_s = float(state.get("tail_s") or 0.0)
        return deadline

    def _stop(self, why: str) -> None:
        if self.model is not None:
            self.model.stop_training = True
        if self.stopped is None:
            self.stopped = why
            logger.info(f"deadline: stopping training: {why}")

    # ---------------------------------------------------------- Keras hooks
    def on_train_begin(self, logs=None):
        self._in_fit, self._steps, self.step_s, self._first_epoch, self._logged = True, [], None, True, None
        self._n_steps = 0
        self.planned_epochs = (self.params or {}).get("epochs")
        if self.train_start_s is None:
            self.train_start_s = self.spent_s
        resumed_epoch_s, self._resumed_epoch_s = self._resumed_epoch_s, None  # only for the first fit after resuming
        if self.stopped:  # a later stage (fine_tune's next size): no time for it either
            self._stop(self.stopped)
        elif self.exhausted:
            self._stop(f"the budget is spent ({format_duration(self.spent_s)} of {format_duration(self.budget_s)}, "
                       f"{format_duration(self.reserve_s)} kept for prediction)")
        elif self.whole_epochs and resumed_epoch_s and resumed_epoch_s > self.remaining_s:
            self._stop(f"resumed with {format_duration(self.remaining_s)} left, less than an epoch "
                       f"(~{format_duration(resumed_epoch_s)} before the interruption)")

    def on_train_end(self, logs=None):
        self._in_fit = False
        self.save()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._t_epoch = epoch, time.monotonic()
        if self.exhausted:
            self._stop(f"the budget is spent before epoch {epoch + 1}")

    def on_train_batch_begin(self, batch, logs=None):
        self._t_batch = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        self._steps.append(now - self._t_batch)
        self.step_total_s += now - self._t_batch
        self._t_phase_end = now
        if now - self._saved_at >= SAVE_EVERY_S:
            self.save()
        self._n_steps += 1
        if len(self._steps) > _WINDOW:
            del self._steps[1:len(self._steps) - _WINDOW + 1]  # keep the first (tracing) and the latest ones
        if self._n_steps > 1:
            measured = sorted(self._steps[1:])
            self.step_s = measured[len(measured) // 2]
        if self._n_steps == self.calibrate_steps + 1:
            self._replan()
        if self.step_s is not None and self.spent_s + self.step_s + self.valid_s + self._tail_s > self.limit_s:
            self._stop(f"one more step and validation would pass the limit "
                       f"({format_duration(self.limit_s)}) inside epoch {self._epoch + 1}")

    def on_test_begin(self, logs=None):
        self._t_test, self._test_steps = time.monotonic(), []

    def on_test_batch_begin(self, batch, logs=None):
        self._t_test_batch = time.monotonic()

    def on_test_batch_end(self, batch, logs=None):
        self._test_steps.append(time.monotonic() - self._t_test_batch)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            return
        took, steps = time.monotonic() - self._t_test, self._test_steps
        if len(steps) > 1:  # the first batch of the first validation traces the model: count it as a median one
            typical = sorted(steps[1:])[len(steps[1:]) // 2]
            took -= max(0.0, steps[0] - typical)
        self.valid_s = took
        self._t_phase_end = time.monotonic()
        if self.reserve_images > 0 and self.valid_images > 0 and len(steps) > 1:
            self.reserve_s = self.reserve_fixed_s + self.reserve_images * took / self.valid_images

    def on_epoch_end(self, epoch, logs=None):
        took = time.monotonic() - self._t_epoch
        steps = (self.params or {}).get("steps")
        if self.stopped and self.epoch_s is not None:  # cut short: its length says nothing about an epoch
            self.save()
            return
        if self._first_epoch and self.step_s is not None and steps:  # the first epoch also traced the model
            estimate = steps * self.step_s + self.valid_s
            self.epoch_s = min(took, estimate * 1.1) if took > estimate else took
        else:
            self.epoch_s = took
        if not self._first_epoch and self._t_phase_end > self._t_epoch:  # checkpoints: after the last step or validation
            self._tail_s = max(0.0, time.monotonic() - self._t_phase_end)
        self._first_epoch = False
        self._replan(done=epoch + 1)
        if (self.whole_epochs and self.spent_s + self.epoch_s > self.limit_s
                and not (self.planned_epochs and epoch + 1 >= self.planned_epochs)):
            self._stop(f"epoch {epoch + 2} (~{format_duration(self.epoch_s)}) would not finish by "
                       f"{format_duration(self.limit_s)}; {format_duration(self.spent_s)} spent")
        self.save()

    # ---------------------------------------------------------- re-planning
    def _replan(self, done: int | None = None) -> None:
        """Update `expected_epochs` and `seconds_per_image` from what was measured."""
        steps = (self.params or {}).get("steps")
        if self.step_s is not None and self.batch_size:
            self.seconds_per_image = self.step_s / self.batch_size
        epoch_s = self.epoch_s or ((steps * self.step_s + self.valid_s) if steps and self.step_s else None)
        if not epoch_s or not self.planned_epochs or not self.whole_epochs:
            return
        if done is None:  # inside epoch self._epoch: it ends after the rest of its time
            rest = max(0.0, epoch_s - (time.monotonic() - self._t_epoch))
            after = self.remaining_s - rest
            reach = self._epoch + (1 + int(after // epoch_s) if after >= 0 else 0)
        else:
            reach = done + int(max(0.0, self.remaining_s) // epoch_s)
        reach = min(self.planned_epochs, reach)
        if self.expected_epochs != reach:
            self.expected_epochs = reach
            if reach < self.planned_epochs and (self._logged is None or reach < self._logged):  # each new low, once
                self._logged = reach
                logger.info(f"deadline: {self.step_s or 0:.3f} s a step, ~{format_duration(epoch_s)} an epoch: "
                            f"expects to reach epoch {reach} of {self.planned_epochs} in the "
                            f"{format_duration(self.remaining_s)} left")
