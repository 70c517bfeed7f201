"""Learning-rate schedules for the recipe: one-cycle and SGDR (cosine with warm restarts).

Both are ``keras.optimizers.schedules.LearningRateSchedule`` objects driven by
the optimizer's step counter, so a resumed run (same step) gets the same rate.
"""
from __future__ import annotations

import math

import keras
from keras import ops

from .errors import ConfigError


@keras.saving.register_keras_serializable(package="kagglekit")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle policy (Smith; fastai's ``fit_one_cycle``), cosine in both phases.

    The rate starts at ``max_lr / div_factor`` (step 0), rises to ``max_lr`` at
    step ``round(pct_start * total_steps)`` and falls to
    ``max_lr / final_div_factor`` at step ``total_steps`` (and stays there).
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.25,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        if total_steps < 1:
            raise ConfigError(f"OneCycle needs total_steps >= 1 (got {total_steps}); train for at least one step.")
        if not 0.0 <= pct_start < 1.0:
            raise ConfigError(f"pct_start must be in [0, 1) (got {pct_start}).")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    @property
    def warmup_steps(self) -> int:
        """Return the step at which the rate peaks."""
        return max(1, int(round(self.pct_start * self.total_steps)))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(self.warmup_steps)
        start, peak = self.max_lr / self.div_factor, self.max_lr
        end = self.max_lr / self.final_div_factor
        p1 = ops.clip(step / warm, 0.0, 1.0)
        p2 = ops.clip((step - warm) / max(1.0, self.total_steps - warm), 0.0, 1.0)
        up = peak + (start - peak) / 2.0 * (1.0 + ops.cos(math.pi * p1))
        down = end + (peak - end) / 2.0 * (1.0 + ops.cos(math.pi * p2))
        return ops.where(step < warm, up, down)

    def get_config(self) -> dict:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


def sgdr(
    lr: float,
    steps_per_epoch: int,
    cycle_len: float = 1,
    cycle_mult: float = 1,
    min_lr: float = 0.0,
) -> keras.optimizers.schedules.CosineDecayRestarts:
    """Return SGDR (Loshchilov & Hutter): cosine from `lr` to `min_lr` over `cycle_len` epochs, restarting.

    Each cycle is `cycle_mult` times longer than the one before; the rate is
    back at `lr` at the start of every cycle (epochs 0, c, c + c*m, ...).
    """
    if cycle_len <= 0 or cycle_mult < 1 or steps_per_epoch < 1:
        raise ConfigError(
            f"sgdr needs cycle_len > 0, cycle_mult >= 1 and steps_per_epoch >= 1 "
            f"(got {cycle_len}, {cycle_mult}, {steps_per_epoch})."
        )
    return keras.optimizers.schedules.CosineDecayRestarts(
        initial_learning_rate=float(lr),
        first_decay_steps=max(1, int(round(cycle_len * steps_per_epoch))),
        t_mul=float(cycle_mult),
        m_mul=1.0,
        alpha=float(min_lr) / float(lr) if lr else 0.0,
    )


def make_schedule(
    name: str,
    lr: float,
    steps_per_epoch: int,
    epochs: int,
    cycle_len: float = 1,
    cycle_mult: float = 1,
):
    """Return the learning-rate schedule `name` ("one_cycle", "sgdr" or "constant") for one stage."""
    if name == "one_cycle":
        return OneCycle(lr, max(1, steps_per_epoch * epochs))
    if name == "sgdr":
        return sgdr(lr, steps_per_epoch, cycle_len, cycle_mult)
    if name == "constant":
        return float(lr)
    raise ConfigError(f"Unknown schedule {name!r}; use 'one_cycle', 'sgdr' or 'constant'.")
