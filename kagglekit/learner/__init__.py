"""Training: the fine-tuning recipe and what it is made of.

``kagglekit.learner`` re-exports the public names of its modules, each concept in one home:

* :mod:`.recipe`: :func:`fine_tune` (plan the stages, then run each), the stage plan, losses, class weights;
* :mod:`.model`: :class:`Learner`, the trained classifier, saved and loaded;
* :mod:`.optim`: :class:`GroupAdamW`, :class:`GroupSGD` (a learning rate per layer group), the schedules
  :class:`OneCycle`, :func:`sgdr`, :func:`make_schedule`;
* :mod:`.devices`: :func:`accelerators`, the mixed-precision policy, data-parallel distribution;
* :mod:`.data`: tables or arrays served at one size, validation routed to the layout stage's split;
* :mod:`.head`: the frozen stage trained on the backbone's cached features;
* :mod:`.checkpoints`: per-epoch checkpoints and the resume state;
* :mod:`.lr_find`: :func:`lr_find` and its :class:`LRFind` result.
"""
from __future__ import annotations

from ..images import resize_images
from ..plots import plot_history
from .checkpoints import load_arrays, restore_optimizer, save_arrays
from .data import default_augmentation, describe_data, validation
from .devices import accelerators, precision_policy
from .head import HEAD_FEATURE_BYTES, HEAD_STEPS
from .lr_find import LRFind, lr_find
from .model import Learner
from .optim import GROUPS, GroupAdamW, GroupSGD, OneCycle, current_lr, group_multipliers, make_optimizer, make_schedule, sgdr
from .recipe import class_weights, fine_tune, loss_and_metrics, plan_stages

__all__ = [
    "GROUPS", "GroupAdamW", "GroupSGD", "HEAD_FEATURE_BYTES", "HEAD_STEPS", "LRFind", "Learner", "OneCycle",
    "accelerators", "class_weights", "current_lr", "default_augmentation", "describe_data", "fine_tune",
    "group_multipliers", "load_arrays", "loss_and_metrics", "lr_find", "make_optimizer", "make_schedule",
    "plan_stages", "plot_history", "precision_policy", "resize_images", "restore_optimizer", "save_arrays", "sgdr",
    "validation",
]
