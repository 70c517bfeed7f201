"""Time-driven training: the learning rate, the size switches and validation follow the share of training time spent.

With a time budget and no explicit epoch count, ``fine_tune`` (``epochs=None``) trains each
stage with a very large epoch count and lets the clock end it: a `Deadline` (or, for a
replay, a `StepClock`) reports the `fraction` of the training window spent, and `TimeDriven`,
a Keras callback, re-reads it before every step to

* set the learning rate (`budget_lr`: a short linear warm-up, then a linear decay that reaches
  zero where training ends; "Budgeted Training", Li, Yumer and Ramanan, ICLR 2020),
* end the stage when the fraction reaches the stage's end (`stage_ends`: progressive resizing
  switches at a share of the time, not after an epoch count),
* validate on a time cadence (`Cadence`: at most about `VALID_SHARE` of the time, and always
  after the last step of a stage, so the best checkpoint is always measured).

Epochs are then an outcome. The learning rate is set through ``optimizer.learning_rate`` (a
variable on every backend), so nothing is retraced. This module imports Keras.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import keras

#: Share of the training window spent warming the learning rate up (from peak / START_DIV to the peak).
WARMUP = 0.05
START_DIV = 25.0
#: The epoch count a time-driven stage is given: the clock ends it long before.
TIME_EPOCHS = 100_000
#: Validation takes at most about this share of the training time (it runs less often when it would take more).
VALID_SHARE = 0.08


def budget_lr(fraction: float, peak: float, warmup: float = WARMUP) -> float:
    """Return the learning rate at `fraction` (0..1) of the training time: linear warm-up, then linear decay to 0 at 1."""
    f = min(1.0, max(0.0, float(fraction)))
    if warmup > 0 and f < warmup:
        start = peak / START_DIV
        return start + (peak - start) * f / warmup
    return peak * (1.0 - f) / (1.0 - warmup) if warmup < 1 else 0.0


def stage_ends(plan: Sequence[dict], shares: Sequence[float] | None = None) -> list[float | None]:
    """Return, per stage of `plan`, the fraction of training time at which it ends (None: a stage counted in epochs).

    Time-driven stages (``epochs`` None in the stage, i.e. ``"until"`` to be set) share the time by `shares`
    (one per such stage), default in proportion to the pixels of their size (equal epochs at each size).
    """
    timed = [i for i, st in enumerate(plan) if st.get("timed")]
    if shares is None:
        area = [float(_side(plan[i]["size"])) ** 2 for i in timed]
        shares = [a / sum(area) for a in area] if timed and sum(area) > 0 else [1.0 / max(1, len(timed))] * len(timed)
    if len(shares) != len(timed):
        from .errors import ConfigError

        raise ConfigError(f"size_shares has {len(shares)} values for {len(timed)} time-driven stages; give one per size.")
    total, ends, acc = float(sum(shares)), [None] * len(plan), 0.0
    for i, share in zip(timed, shares):
        acc += float(share) / total
        ends[i] = acc
    if timed:
        ends[timed[-1]] = 1.0
    return ends


def _side(size: Any) -> float:
    if size is None:
        return 1.0
    if isinstance(size, (tuple, list)):
        return (float(size[0]) * float(size[1])) ** 0.5
    return float(size)


class StepClock:
    """A clock counted in training steps, for a replay: `fraction` is the steps done over `total` steps.

    `TimeDriven` ticks it after every step. Stage `i` ends after ``sum(steps[:i + 1])`` steps.
    """

    def __init__(self, steps: Sequence[int], done: int = 0) -> None:
        self.steps = [int(s) for s in steps]
        self.total = max(1, sum(self.steps))
        self.done = int(done)

    @property
    def fraction(self) -> float:
        """Return the share of the replayed steps done (0..1)."""
        return min(1.0, self.done / self.total)

    def ends(self) -> list[float]:
        """Return the fraction at which each stage ends (its last step)."""
        out, acc = [], 0
        for s in self.steps:
            acc += s
            out.append(acc / self.total)
        return out

    def tick(self) -> None:
        """Count one step trained."""
        self.done += 1


class Cadence(list):
    """``fit(validation_freq=...)``: validate when the stage is ending, else when enough time has passed.

    Keras asks ``epoch in validation_freq`` (1-based) for a list; this list answers from the clock:
    validation runs after the first epoch of a stage (to time it), after the epoch in which training
    stops, and otherwise once at least
    ``valid_s / VALID_SHARE`` seconds have passed since the last one. With `epochs` (a set of
    1-based epoch numbers) it answers from that set instead (a replay validates where the original did).
    `follow` turns each answer into the one every process gives (several processes: process 0's,
    `kagglekit.learner.multihost.from_writer`), since validation is a step they all take.
    """

    def __init__(self, driver: "TimeDriven", epochs: Sequence[int] | None = None,
                 follow: Callable[[bool], bool] | None = None) -> None:
        super().__init__([1])
        self.driver = driver
        self.follow = follow or (lambda due: due)
        self.fixed = set(int(e) for e in epochs) if epochs is not None else None
        self._last = time.monotonic()

    def __contains__(self, epoch: object) -> bool:
        if self.fixed is not None:
            return epoch in self.fixed or self.driver.stopping
        now = time.monotonic()
        due = self.follow(self._due(now))
        if due:
            self._last = now
        self.driver.validated_epochs.append(int(epoch)) if due else None
        return due

    def _due(self, now: float) -> bool:
        valid_s = float(getattr(self.driver.clock, "valid_s", 0.0) or 0.0)
        first = not self.driver.validated_epochs  # the first epoch of a fit: validation is timed (and traced) once
        return bool(first or self.driver.stopping or now - self._last >= valid_s / VALID_SHARE)


class TimeDriven(keras.callbacks.Callback):
    """Keras callback for one time-driven stage: the learning rate from the clock each step, the stage ended at `end`.

    Args:
        clock: a `Deadline` (its `fraction` of the training window) or a `StepClock`.
        peak_lr: the stage's peak learning rate (`budget_lr` scales it).
        end: the fraction of the training time at which this stage ends (1.0 for the last one).
        follow: makes each step's rate the one every process takes (several processes:
            `kagglekit.learner.multihost.from_writer`, process 0's); by default this process's own. The
            stop it sets is followed by `kagglekit.learner.multihost.Lockstep`.
    """

    def __init__(self, clock: Any, peak_lr: float, end: float, follow: Callable[[Any], Any] | None = None) -> None:
        super().__init__()
        self.clock, self.peak_lr, self.end = clock, float(peak_lr), float(end)
        self.follow = follow or (lambda value: value)  # several processes: process 0's rate for all
        self.steps = 0  # steps trained in this stage (this session)
        self.validated_epochs: list[int] = []
        self.lr = budget_lr(clock.fraction, self.peak_lr)

    @property
    def stopping(self) -> bool:
        """Return whether training stops after this epoch (the stage's end, or the deadline)."""
        return bool(self.model is not None and self.model.stop_training)

    def _done(self) -> bool:
        return self.clock.fraction >= self.end - 1e-9  # several processes: `multihost.Lockstep` follows the stop

    def on_train_begin(self, logs=None):
        if self._done():
            self.model.stop_training = True

    def on_train_batch_begin(self, batch, logs=None):
        self.lr = self.follow(budget_lr(self.clock.fraction, self.peak_lr))
        inner = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        inner.learning_rate = self.lr

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if hasattr(self.clock, "tick"):
            self.clock.tick()
        if self._done():
            self.model.stop_training = True


def replay_record(rows: Sequence[dict], n_stages: int) -> dict:
    """Return what a replay needs from a run's history rows: ``{"steps": per stage, "validated": per stage}``.

    `steps` are the training steps each stage actually ran; `validated` the (1-based) epochs of each stage
    after which it validated (time-driven runs validate on a time cadence).
    """
    steps, validated = [0] * n_stages, [[] for _ in range(n_stages)]
    for row in rows:
        i = int(row["stage_index"])
        steps[i] += int(row.get("steps") or 0)
        if any(k.startswith("val_") and math.isfinite(float(v)) for k, v in row.items() if isinstance(v, (int, float))):
            validated[i].append(int(row["stage_epoch"]) + 1)
    return {"steps": steps, "validated": validated}


# ---------------------------------------------------------------- the run's side (kagglekit.job)
def measured_reserve(plan: Any, n_valid: int, n_test: int, n_gallery: int = 0) -> dict:
    """Return the `Deadline` arguments that measure the reserve: image passes after training and the fixed seconds.

    After training the run predicts the validation images about twice per TTA view (choosing the views,
    then the score) and the test images once per view, and, with the nearest-neighbour head, embeds the
    `n_gallery` training images once; a validation pass during training times one image, so the reserve
    follows the real speed. The fixed part (writing, decoding the test images) stays the plan's estimate.
    """
    from .plan import PREDICT_SHARE

    views = max(1, int(plan.tta or 1))
    images = float(n_valid * 2 * views + n_test * views)
    fixed = max(0.0, float(plan.reserve_s) - images * float(plan.seconds_per_image) * PREDICT_SHARE)
    return {"reserve_images": images + n_gallery, "valid_images": int(n_valid), "reserve_fixed_s": fixed}


def read_replay(run_dir: str | Any) -> tuple[dict, dict]:
    """Return (the plan as saved, `replay_record`) of the earlier run in `run_dir`, for ``kagglekit run --replay``."""
    import json
    from pathlib import Path

    from .errors import ConfigError

    run_dir = Path(run_dir)
    try:
        steps = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["steps"]
        plan = steps["plan"]["result"]
        state = json.loads((run_dir / "train" / "state.json").read_text(encoding="utf-8"))
        rows = list(state["rows"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--replay {run_dir}: not a finished kagglekit run folder ({type(exc).__name__}: {exc}); "
                          "name the run folder of a trained run (its run.json and train/state.json).") from None
    n_stages = len(plan["sizes"]) * (2 if plan.get("weights") and plan.get("freeze_epochs") else 1)
    if any("steps" not in r for r in rows):
        raise ConfigError(f"--replay {run_dir}: that run did not record its steps (made by an older kagglekit); "
                          "train it again with this version to replay it.")
    return plan, replay_record(rows, n_stages)


def ended(epochs: int, planned: int, stopped: str, time_driven: bool) -> str:
    """Return the line saying how training ended: by its clock (time-driven) or before the epochs planned."""
    if time_driven:  # the plan's epochs were an estimate, not a count to reach
        return f"training ran {epochs} epoch(s), until its deadline ({stopped})"
    return f"training ended after {epochs} epoch(s) of the {planned} planned ({stopped})"


def trained_steps(history: Any) -> dict:
    """Return ``{"steps": [training steps per stage]}`` from a learner's history (rows with a ``steps`` column)."""
    if history is None or not len(history) or "steps" not in history:
        return {}
    steps = history.groupby("stage_index")["steps"].sum()
    n = int(history["stage_index"].max()) + 1
    return {"steps": [int(steps.get(i, 0)) for i in range(n)]}


def outside_share(deadline_path: Any, seconds: float) -> float | None:
    """Return the share of a run's `seconds` spent outside training steps (start-up, tracing, validation, TTA, writing).

    The seconds inside steps are the `Deadline`'s (``step_total_s`` in its saved state at `deadline_path`);
    None without one.
    """
    import json
    from pathlib import Path

    try:
        inside = float(json.loads(Path(deadline_path).read_text(encoding="utf-8")).get("step_total_s") or 0.0)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if seconds <= 0 or inside <= 0:
        return None
    return round(max(0.0, 1.0 - inside / seconds), 4)
