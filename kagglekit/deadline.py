"""`Deadline`: a Keras callback that keeps training inside a time budget and records the time spent.

Made by ``kagglekit.plan.Plan.deadline()`` (or directly) and passed to ``fine_tune(callbacks=[...])``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
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


class _In:
    """A `Deadline` attribute kept in one of its records: reading and writing it reads and writes the record's field."""

    def __init__(self, record: str) -> None:
        self.record = record
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self.record), self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(getattr(obj, self.record), self.name, value)


def _now() -> float:
    return time.monotonic()  # read through the module, so a test's virtual clock (kagglekit.deadline.time) applies


@dataclass
class Budget:
    """The run's time budget on the monotonic clock: the seconds spent of it, and those training may still use.

    `spent_s` is `spent_before_s` (earlier sessions of a resumed run, the steps before training) plus the
    seconds since `start` (a ``time.monotonic()`` reading, taken when the record is made). Training may
    reach `limit_s`, the budget less `reserve_s` (kept for prediction and writing). With `reserve_images`
    and `valid_images`, `measure_reserve` replaces the reserve by the one a timed validation pass implies.
    """

    budget_s: float
    reserve_s: float = 0.0
    spent_before_s: float = 0.0
    start: float = field(default_factory=_now)
    reserve_images: float = 0.0  # image passes predicted after training (TTA views included)
    valid_images: int = 0  # images one validation pass predicts
    reserve_fixed_s: float = 0.0  # seconds of the reserve that do not depend on the images

    @property
    def spent_s(self) -> float:
        """Return the seconds spent of the budget so far (earlier sessions included)."""
        return self.spent_before_s + _now() - self.start

    @property
    def limit_s(self) -> float:
        """Return the seconds training may reach: the budget less the reserve."""
        return self.budget_s - self.reserve_s

    @property
    def remaining_s(self) -> float:
        """Return the seconds training may still use (negative when past the limit)."""
        return self.limit_s - self.spent_s

    def measure_reserve(self, valid_s: float) -> float:
        """Return the reserve after a validation pass of `valid_s` seconds (measured when images are given, else kept)."""
        if self.reserve_images > 0 and self.valid_images > 0:
            self.reserve_s = self.reserve_fixed_s + self.reserve_images * valid_s / self.valid_images
        return self.reserve_s


@dataclass
class Timings:
    """What a `Deadline` measured; all but `step_s` go into its saved state, so a resumed run goes on from them."""

    step_s: float | None = None  # median seconds per training step (this fit)
    epoch_s: float | None = None  # seconds per epoch: steps, validation, checkpoint
    valid_s: float = 0.0  # seconds of the last validation pass (an estimate until measured)
    tail_s: float = 0.0  # seconds an epoch spends after validation (checkpoints), as last measured
    seconds_per_image: float | None = None  # measured training seconds per image (needs batch_size)
    train_start_s: float | None = None  # spent_s when training first began (all sessions)
    step_total_s: float = 0.0  # seconds inside training steps (all sessions)
    resumed_epoch_s: float | None = None  # the epoch length saved before an interruption (first fit only)


@dataclass
class _Stopwatch:
    """The fit in progress: the latest step and validation times, and the clock readings the hooks take."""

    in_fit: bool = False
    steps: list[float] = field(default_factory=list)  # the first step of this fit, then the latest _WINDOW ones
    n_steps: int = 0
    test_steps: list[float] = field(default_factory=list)
    epoch: int = 0
    first_epoch: bool = True
    t_batch: float = 0.0
    t_epoch: float = 0.0
    t_test: float = 0.0
    t_test_batch: float = 0.0
    t_phase_end: float = field(default_factory=_now)  # the end of the last step or validation
    saved_at: float = field(default_factory=_now)


@dataclass
class _Schedule:
    """The epochs a fit plans and expects to reach, and whether (and why) training stopped."""

    planned_epochs: int | None = None
    expected_epochs: int | None = None  # the epochs of this fit it expects to complete
    stopped: str | None = None  # why it stopped training, None while it has not
    whole_epochs: bool = True  # stop before an epoch that would not finish (False: time-driven, stop between steps)
    logged: int | None = None  # the lowest expected_epochs logged so far


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

    Its state lives in four small records: `budget` (a `Budget`: the clock, spent and remaining
    seconds, the reserve), `timings` (the `Timings` measured), `schedule` (the epochs planned and
    expected, why it stopped) and the current fit's stopwatch. The attributes listed under the
    constructor read and write their record's fields (``deadline.reserve_s`` is ``deadline.budget.reserve_s``).
    """

    def __init__(self, budget_s: float | str, spent_s: float = 0.0, reserve_s: float = 0.0,
                 batch_size: int | None = None, size: int | None = None, calibrate_steps: int = 5,
                 valid_s: float = 0.0, state_path: str | os.PathLike | None = None, reserve_images: float = 0.0,
                 valid_images: int = 0, reserve_fixed_s: float = 0.0) -> None:
        super().__init__()
        self.budget = Budget(parse_duration(budget_s), reserve_s=float(reserve_s), spent_before_s=float(spent_s),
                             reserve_images=float(reserve_images), valid_images=int(valid_images),
                             reserve_fixed_s=float(reserve_fixed_s))
        self.timings = Timings(valid_s=float(valid_s))
        self.schedule = _Schedule()
        self._watch = _Stopwatch()
        self.batch_size, self.size = batch_size, size
        self.calibrate_steps = int(calibrate_steps)
        self.state_path = Path(state_path) if state_path is not None else None

    # the attributes kept in the records, read and written as the Deadline's own
    budget_s = _In("budget")
    reserve_s = _In("budget")
    reserve_images = _In("budget")
    valid_images = _In("budget")
    reserve_fixed_s = _In("budget")
    step_s = _In("timings")
    epoch_s = _In("timings")
    valid_s = _In("timings")
    seconds_per_image = _In("timings")
    train_start_s = _In("timings")
    step_total_s = _In("timings")
    planned_epochs = _In("schedule")
    expected_epochs = _In("schedule")
    stopped = _In("schedule")
    whole_epochs = _In("schedule")

    # ---------------------------------------------------------- time
    @property
    def spent_s(self) -> float:
        """Return the seconds spent of the budget so far (earlier sessions included)."""
        return self.budget.spent_s

    @property
    def limit_s(self) -> float:
        """Return the seconds training may reach: the budget less the reserve."""
        return self.budget.limit_s

    @property
    def remaining_s(self) -> float:
        """Return the seconds training may still use (negative when past the limit)."""
        return self.budget.remaining_s

    @property
    def fraction(self) -> float:
        """Return the share (0..1) of the training window spent: from the first step to the limit less the last validation."""
        if self.train_start_s is None:
            return 0.0
        end = self.limit_s - self.valid_s - self.timings.tail_s
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
                "step_total_s": round(self.step_total_s, 3), "valid_s": self.valid_s, "tail_s": self.timings.tail_s}

    def save(self) -> Path | None:
        """Return `state_path` after writing `to_state()` to it (None when there is no state path)."""
        self._watch.saved_at = _now()
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
        deadline.timings.resumed_epoch_s = state.get("epoch_s")  # the epoch length measured before the interruption
        deadline.train_start_s = state.get("train_start_s")
        deadline.step_total_s = float(state.get("step_total_s") or 0.0)
        if state.get("valid_s"):
            deadline.valid_s = float(state["valid_s"])
        deadline.timings.tail_s = float(state.get("tail_s") or 0.0)
        return deadline

    def _stop(self, why: str) -> None:
        if self.model is not None:
            self.model.stop_training = True
        if self.stopped is None:
            self.stopped = why
            logger.info(f"deadline: stopping training: {why}")

    # ---------------------------------------------------------- Keras hooks
    def on_train_begin(self, logs=None):
        watch = self._watch
        watch.in_fit, watch.steps, watch.n_steps, watch.first_epoch = True, [], 0, True
        self.step_s, self.schedule.logged = None, None
        self.planned_epochs = (self.params or {}).get("epochs")
        if self.train_start_s is None:
            self.train_start_s = self.spent_s
        resumed_epoch_s, self.timings.resumed_epoch_s = self.timings.resumed_epoch_s, None  # only for the first fit after resuming
        if self.stopped:  # a later stage (fine_tune's next size): no time for it either
            self._stop(self.stopped)
        elif self.exhausted:
            self._stop(f"the budget is spent ({format_duration(self.spent_s)} of {format_duration(self.budget_s)}, "
                       f"{format_duration(self.reserve_s)} kept for prediction)")
        elif self.whole_epochs and resumed_epoch_s and resumed_epoch_s > self.remaining_s:
            self._stop(f"resumed with {format_duration(self.remaining_s)} left, less than an epoch "
                       f"(~{format_duration(resumed_epoch_s)} before the interruption)")

    def on_train_end(self, logs=None):
        self._watch.in_fit = False
        self.save()

    def on_epoch_begin(self, epoch, logs=None):
        self._watch.epoch, self._watch.t_epoch = epoch, _now()
        if self.exhausted:
            self._stop(f"the budget is spent before epoch {epoch + 1}")

    def on_train_batch_begin(self, batch, logs=None):
        self._watch.t_batch = _now()

    def on_train_batch_end(self, batch, logs=None):
        now, watch = _now(), self._watch
        watch.steps.append(now - watch.t_batch)
        self.step_total_s += now - watch.t_batch
        watch.t_phase_end = now
        if now - watch.saved_at >= SAVE_EVERY_S:
            self.save()
        watch.n_steps += 1
        if len(watch.steps) > _WINDOW:
            del watch.steps[1:len(watch.steps) - _WINDOW + 1]  # keep the first (tracing) and the latest ones
        if watch.n_steps > 1:
            measured = sorted(watch.steps[1:])
            self.step_s = measured[len(measured) // 2]
        if watch.n_steps == self.calibrate_steps + 1:
            self._replan()
        if self.step_s is not None and self.spent_s + self.step_s + self.valid_s + self.timings.tail_s > self.limit_s:
            self._stop(f"one more step and validation would pass the limit "
                       f"({format_duration(self.limit_s)}) inside epoch {self._watch.epoch + 1}")

    def on_test_begin(self, logs=None):
        self._watch.t_test, self._watch.test_steps = _now(), []

    def on_test_batch_begin(self, batch, logs=None):
        self._watch.t_test_batch = _now()

    def on_test_batch_end(self, batch, logs=None):
        self._watch.test_steps.append(_now() - self._watch.t_test_batch)

    def on_test_end(self, logs=None):
        if not self._watch.in_fit:
            return
        took, steps = _now() - self._watch.t_test, self._watch.test_steps
        if len(steps) > 1:  # the first batch of the first validation traces the model: count it as a median one
            typical = sorted(steps[1:])[len(steps[1:]) // 2]
            took -= max(0.0, steps[0] - typical)
        self.valid_s = took
        self._watch.t_phase_end = _now()
        if len(steps) > 1:
            self.budget.measure_reserve(took)

    def on_epoch_end(self, epoch, logs=None):
        watch = self._watch
        took = _now() - watch.t_epoch
        steps = (self.params or {}).get("steps")
        if self.stopped and self.epoch_s is not None:  # cut short: its length says nothing about an epoch
            self.save()
            return
        if watch.first_epoch and self.step_s is not None and steps:  # the first epoch also traced the model
            estimate = steps * self.step_s + self.valid_s
            self.epoch_s = min(took, estimate * 1.1) if took > estimate else took
        else:
            self.epoch_s = took
        if not watch.first_epoch and watch.t_phase_end > watch.t_epoch:  # checkpoints: after the last step or validation
            self.timings.tail_s = max(0.0, _now() - watch.t_phase_end)
        watch.first_epoch = False
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
        if done is None:  # inside epoch self._watch.epoch: it ends after the rest of its time
            rest = max(0.0, epoch_s - (_now() - self._watch.t_epoch))
            after = self.remaining_s - rest
            reach = self._watch.epoch + (1 + int(after // epoch_s) if after >= 0 else 0)
        else:
            reach = done + int(max(0.0, self.remaining_s) // epoch_s)
        reach = min(self.planned_epochs, reach)
        if self.expected_epochs != reach:
            self.expected_epochs = reach
            if reach < self.planned_epochs and (self.schedule.logged is None or reach < self.schedule.logged):  # each new low, once
                self.schedule.logged = reach
                logger.info(f"deadline: {self.step_s or 0:.3f} s a step, ~{format_duration(epoch_s)} an epoch: "
                            f"expects to reach epoch {reach} of {self.planned_epochs} in the "
                            f"{format_duration(self.remaining_s)} left")
