"""Optimizers with a learning rate per layer group, and the schedules they follow.

* :class:`GroupAdamW` and :class:`GroupSGD` multiply the rate of each variable by
  its group's factor (early, late, head: discriminative learning rates);
  :func:`group_multipliers` gives the factors, :func:`make_optimizer` builds one.
* :class:`OneCycle` and :func:`sgdr` (cosine with warm restarts) are
  ``keras.optimizers.schedules.LearningRateSchedule`` objects driven by the
  optimizer's step counter, so a resumed run (same step) gets the same rate;
  :func:`make_schedule` picks one by name.
"""
from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import ops

from .. import backbones as bb
from ..errors import ConfigError

GROUPS = ("early", "late", "head")


# ---------------------------------------------------------------- optimizers with per-group LRs
class _GroupLR:
    """Mixin: multiply the learning rate of each variable by ``lr_multipliers[variable.path]``.

    Works on every backend because it only changes the rate handed to
    ``update_step`` (the per-variable update all Keras optimizers share).
    """

    def __init__(self, *args, lr_multipliers: dict[str, float] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}
        self._multiplier_list: list[float] = []

    def build(self, variables):
        super().build(variables)
        self._multiplier_list = [self.lr_multipliers.get(v.path, 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        mult = self._multiplier_list[self._get_variable_index(variable)] if self._multiplier_list else 1.0
        if mult != 1.0:
            learning_rate = ops.multiply(ops.cast(learning_rate, variable.dtype), ops.cast(mult, variable.dtype))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "lr_multipliers": dict(self.lr_multipliers)}


@keras.saving.register_keras_serializable(package="kagglekit")
class GroupAdamW(_GroupLR, keras.optimizers.AdamW):
    """AdamW with a learning-rate multiplier per variable (``lr_multipliers``: path -> factor)."""


@keras.saving.register_keras_serializable(package="kagglekit")
class GroupSGD(_GroupLR, keras.optimizers.SGD):
    """SGD with a learning-rate multiplier per variable (``lr_multipliers``: path -> factor)."""


def group_multipliers(model: keras.Model, mults: Sequence[float], backbone: str | None = None) -> dict[str, float]:
    """Return ``{variable.path: factor}`` giving the groups early, late, head the factors `mults`."""
    out: dict[str, float] = {}
    groups = bb.layer_groups(model, backbone)
    for name, mult in zip(GROUPS, mults):
        for layer in groups[name]:
            for v in layer.trainable_weights:
                out[v.path] = float(mult)
    return out


def make_optimizer(name: str, schedule: "keras.optimizers.schedules.LearningRateSchedule | float", mults: dict[str, float], weight_decay: float) -> keras.optimizers.Optimizer:
    """Return the optimizer `name` ("adamw" or "sgd" with Nesterov momentum) following `schedule`, rates scaled by `mults`."""
    if name == "adamw":
        return GroupAdamW(learning_rate=schedule, weight_decay=weight_decay, lr_multipliers=mults)
    if name == "sgd":
        return GroupSGD(learning_rate=schedule, momentum=0.9, nesterov=True, lr_multipliers=mults)
    raise ConfigError(f"optimizer={name!r}: use 'adamw' or 'sgd'.")


def current_lr(optimizer: keras.optimizers.Optimizer) -> float:
    """Return the learning rate `optimizer` uses now (its schedule at the current step), through a loss-scale wrapper."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(ops.convert_to_numpy(inner.learning_rate))


# ---------------------------------------------------------------- schedules


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
) -> keras.optimizers.schedules.LearningRateSchedule | float:
    """Return the learning-rate schedule `name` ("one_cycle", "sgdr" or "constant") for one stage."""
    if name == "one_cycle":
        return OneCycle(lr, max(1, steps_per_epoch * epochs))
    if name == "sgdr":
        return sgdr(lr, steps_per_epoch, cycle_len, cycle_mult)
    if name == "constant":
        return float(lr)
    raise ConfigError(f"Unknown schedule {name!r}; use 'one_cycle', 'sgdr' or 'constant'.")
