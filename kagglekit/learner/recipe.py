"""The fine-tuning recipe: frozen head, then per-group learning rates, at each size; resume; multi-device.

``fine_tune(table, backbone="resnet50", sizes=[128, 224], weights="imagenet")``
returns a :class:`~kagglekit.learner.model.Learner`. It plans the stages, then runs
each. For each size in `sizes` the plan holds

1. stage ``frozen``: the backbone frozen (BatchNorm in inference mode), the
   head trained for `freeze_epochs` (skipped when `weights` is None: a random
   backbone is not worth freezing);
2. stage ``unfrozen``: everything trained for `epochs`, with discriminative
   learning rates ``lr * lr_mult`` for the groups early, late, head
   (``(1/9, 1/3, 1)`` by default; all 1 when training from scratch).

Each stage follows a schedule (one-cycle by default, or SGDR). Every epoch the
weights, the optimizer state and ``state.json`` are written atomically into
`workdir` (see :mod:`.checkpoints`), so a run killed at any moment and started
again with the same arguments continues from its last completed epoch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import pandas as pd

from .. import backbones as bb
from ..errors import ConfigError
from ..logs import logger
from ..flips import flip_check
from ..plan import BASE_LR, SCRATCH_LR
from ..table import LabelTable
from ..timeline import TIME_EPOCHS, Cadence, StepClock, TimeDriven, budget_lr, replay_record, stage_ends  # noqa: F401
from .checkpoints import CHECKPOINT_EVERY_S, _Recorder, _Run, built_optimizer
from .data import _Data, default_augmentation, describe_data, validation
from .devices import _Strategy, jit_compile_setting, precision_policy
from .head import _can_fit_head_on_features, _fit_head_on_features
from .model import Learner
from .multihost import Lockstep, from_writer, is_writer, several, share, share_weights
from .optim import group_multipliers, make_optimizer, make_schedule


# ---------------------------------------------------------------- planning
def plan_stages(sizes: Sequence, pretrained: bool, freeze_epochs: int, epochs: int | None, lr: float,
                lr_mult: Sequence[float]) -> list[dict]:
    """Return the stages to run, in order: per size a ``frozen`` (pretrained only) and an ``unfrozen`` stage.

    Each stage is ``{"stage", "size", "epochs", "lr", "mult"}``; `mult` holds the
    learning-rate factors of the groups early, late, head. With `epochs` None the unfrozen
    stages are time-driven (``"timed": True``, `kagglekit.timeline`): the clock ends them.
    """
    timed = epochs is None
    if timed:
        epochs = TIME_EPOCHS
    plan = []
    for size in sizes:
        if pretrained and freeze_epochs > 0:
            plan.append({"stage": "frozen", "size": size, "epochs": int(freeze_epochs), "lr": lr,
                         "mult": [0.0, 0.0, 1.0]})
        if epochs > 0:
            plan.append({"stage": "unfrozen", "size": size, "epochs": int(epochs), "lr": lr,
                         "mult": list(lr_mult) if pretrained else [1.0, 1.0, 1.0], **({"timed": True} if timed else {})})
    if not plan:
        raise ConfigError("Nothing to train: give epochs >= 1 (or freeze_epochs >= 1 with pretrained weights).")
    return plan


def _sizes(sizes: Sequence[int] | int | None, entry: bb.Backbone, data: Any) -> list:
    """Return the sizes as a list: the backbone's default for a table, the arrays' own size (None) for arrays."""
    if sizes is None:
        sizes = [entry.default_size] if isinstance(data, LabelTable) else [None]
    elif np.isscalar(sizes):
        sizes = [sizes]
    return [s if s is None or np.isscalar(s) else tuple(s) for s in sizes]


def loss_and_metrics(multilabel: bool, label_smoothing: float) -> tuple[keras.losses.Loss, list, str]:
    """Return (loss, metrics, target kind for the data: "int", "onehot" or "multihot") for the task."""
    if multilabel:
        return (keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                [keras.metrics.BinaryAccuracy(name="binary_accuracy")], "multihot")
    if label_smoothing:
        return (keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                [keras.metrics.CategoricalAccuracy(name="accuracy")], "onehot")
    return (keras.losses.SparseCategoricalCrossentropy(),
            [keras.metrics.SparseCategoricalAccuracy(name="accuracy")], "int")


def class_weights(class_weight: str | dict | None, classes: Sequence[str], multilabel: bool,
                  train: Any) -> dict[int, float] | None:
    """Return Keras' ``{class index: weight}`` for `class_weight` ("balanced", a dict by name or index, or None).

    "balanced" is scikit-learn's ``compute_class_weight``: ``n / (n_classes * count)``
    over the classes present in `train`; classes absent from it weigh 1.
    """
    if class_weight is None:
        return None
    if multilabel:
        raise ConfigError("class_weight is not supported for multi-label tables; leave it None.")
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ConfigError(f"class_weight={class_weight!r}: use 'balanced', a dict or None.")
        from sklearn.utils.class_weight import compute_class_weight

        y = train.targets("int") if isinstance(train, LabelTable) else np.asarray(train[1])
        present = np.unique(y)
        weights = dict(zip(present.tolist(), compute_class_weight("balanced", classes=present, y=y)))
        return {i: float(weights.get(i, 1.0)) for i in range(len(classes))}
    index = {c: i for i, c in enumerate(classes)}
    return {index.get(str(k), k): float(v) for k, v in class_weight.items()}


# ---------------------------------------------------------------- running the stages
@dataclasses.dataclass
class _Feed:
    """The stages' data: the training and validation sources, and how they are served (batch, devices, targets)."""

    train: Any
    valid: Any
    n_classes: int
    target_kind: str
    batch: int
    replicas: int
    seed: int
    resize: str
    part: tuple[int, int] = (0, 1)  # (this process, processes): several processes each feed their share


    def at(self, size: Any, index: int) -> tuple[_Data, _Data | None]:
        """Return (training, validation) data at `size` for stage `index` (its training order seeded by the index)."""
        served = dict(batch_size=self.batch, targets=self.target_kind, replicas=self.replicas, resize=self.resize,
                      n_classes=self.n_classes, part=self.part)
        train = _Data(self.train, size, shuffle=True, seed=self.seed + index, **served)
        val = _Data(self.valid, size, shuffle=False, seed=self.seed, **served) if self.valid is not None else None
        return train, val


@dataclasses.dataclass
class _Fitting:
    """How the stages train: the loss and metrics, class weights, the optimizer and its schedule."""

    loss: keras.losses.Loss
    metrics: list
    class_weight: dict | None
    optimizer: str
    schedule: str
    cycle_len: float
    cycle_mult: float
    weight_decay: float


@dataclasses.dataclass
class _Timing:
    """Time-driven stages' clock: a Deadline (or a replay's StepClock) giving the fraction spent; all None otherwise."""

    clock: Any = None
    ends: list | None = None  # per stage: the fraction of the training time it ends at (None: counted in epochs)
    validated: list | None = None  # a replay: per stage, the (1-based) epochs the original validated after

    def over(self, index: int) -> bool:
        """Return whether stage `index` is time-driven and its share of the time is already spent."""
        end = self.ends[index] if self.ends else None
        return from_writer(end is not None and self.clock.fraction >= end - 1e-9)


@dataclasses.dataclass
class _Stages:
    """What every stage of one :func:`fine_tune` call shares: the model, the run's files, data, training and timing."""

    model: keras.Model
    run: _Run
    backbone: str
    feed: _Feed
    fitting: _Fitting
    timing: _Timing
    verbose: int | str
    callbacks: Sequence[keras.callbacks.Callback]
    head_on_features: bool

    def data(self, index: int) -> tuple[_Data, _Data | None]:
        """Return (training, validation) data at stage `index`'s size."""
        return self.feed.at(self.run.plan[index]["size"], index)

    def compile(self, index: int, steps_per_epoch: int) -> None:
        """Freeze or thaw the backbone for stage `index`, then compile with its per-group rates and schedule."""
        stage, f = self.run.plan[index], self.fitting
        bb.backbone_of(self.model).trainable = stage["stage"] != "frozen"
        mults = group_multipliers(self.model, stage["mult"], self.backbone)
        if stage.get("timed"):  # the rate follows the clock (TimeDriven sets it before every step)
            sched = from_writer(budget_lr(self.timing.clock.fraction, stage["lr"]))
        else:
            sched = make_schedule(f.schedule, stage["lr"], steps_per_epoch, stage["epochs"], f.cycle_len, f.cycle_mult)
        self.model.compile(optimizer=make_optimizer(f.optimizer, sched, mults, f.weight_decay), loss=f.loss,
                           metrics=[m.__class__.from_config(m.get_config()) for m in f.metrics],
                           jit_compile=jit_compile_setting(self.feed.replicas))


def _announce(message: str) -> None:
    """Log a stage's header; where no application shows kagglekit's log, show it as Keras shows its progress.

    The header belongs to the training display that `verbose` turns on, so without a
    handler on the kagglekit logger (``kagglekit.logs.to_stream``, as the command line
    attaches) it goes through Keras' own channel for progress messages
    (``keras.utils.io_utils.print_msg``: stdout, or absl logging when interactive
    logging is off), never twice.
    """
    logger.info(message)
    if not any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
        from keras.src.utils.io_utils import print_msg

        print_msg(message)


def _timing(plan: list[dict], callbacks: Sequence[Any], replay: dict | None, size_shares: Sequence[float] | None,
            rows: list[dict]) -> _Timing:
    """Return the clock, stage ends and validated epochs per stage of time-driven stages (all None when there are none).

    The clock is a callback with a ``fraction`` (a kagglekit `Deadline`) or, replaying an earlier run
    (`replay`: `replay_record`'s dict), a `StepClock` over its steps (the steps already in `rows` done).
    """
    if not any(st.get("timed") for st in plan):
        return _Timing()
    if replay is not None:
        steps = [int(n) if st.get("timed") else 0 for st, n in zip(plan, replay["steps"])]
        if len(replay["steps"]) != len(plan):
            raise ConfigError(f"The replayed run had {len(replay['steps'])} stages, this plan {len(plan)}; "
                              "replay it with the same sizes and weights.")
        clock = StepClock(steps, done=sum(int(r.get("steps") or 0) for r in rows if plan[r["stage_index"]].get("timed")))
        ends = [e if st.get("timed") else None for st, e in zip(plan, clock.ends())]
        return _Timing(clock=clock, ends=ends, validated=replay.get("validated"))
    clock = next((cb for cb in callbacks if hasattr(cb, "fraction")), None)
    if clock is None:
        raise ConfigError("epochs=None trains until a deadline: pass a kagglekit Deadline in callbacks "
                          "(kagglekit.plan.Plan.deadline()), replay=..., or give epochs.")
    clock.whole_epochs = False  # time-driven: it stops between steps, never before an epoch
    return _Timing(clock=clock, ends=stage_ends(plan, size_shares))


def _out_of_time(callbacks: Sequence[Any]) -> bool:
    """Return whether a callback says no training time is left (``exhausted``, or a ``Deadline`` that has ``stopped``)."""
    out = any(getattr(cb, "exhausted", False) or getattr(cb, "stopped", None) for cb in callbacks
              if hasattr(cb, "exhausted"))
    return from_writer(bool(out))  # several processes: process 0's clock decides for all


def _run_stage(s: _Stages, index: int, initial_epoch: int) -> None:
    """Run stage `index` of the plan from `initial_epoch` (> 0: resumed, optimizer state restored), then draw the curves."""
    stage = s.run.plan[index]
    train, val = s.data(index)
    s.compile(index, train.steps)
    if initial_epoch > 0:
        _restore_optimizer(s)
    if (s.head_on_features and stage["stage"] == "frozen" and initial_epoch == 0
            and _can_fit_head_on_features(s.model, train.steps * s.feed.batch, s.feed.replicas)):
        _run_head_stage(s, index, train, val)
    else:
        _fit_stage(s, index, train, val, initial_epoch)
    s.run.plot()


def _fit_stage(s: _Stages, index: int, train: _Data, val: _Data | None, initial_epoch: int) -> None:
    """Train the whole model for the stage's epochs with Keras' ``fit`` (progress bar, checkpoints)."""
    stage, t = s.run.plan[index], s.timing
    timed = [TimeDriven(t.clock, stage["lr"], t.ends[index], follow=from_writer)] if stage.get("timed") else []
    feed, feed_kwargs, feed_callbacks = train.fit_input(initial_epoch, stage["epochs"])
    fit_kwargs = dict(epochs=stage["epochs"], initial_epoch=initial_epoch, verbose=s.verbose,
                      class_weight=s.fitting.class_weight, **feed_kwargs,
                      callbacks=[*feed_callbacks, _Recorder(s.run, index, CHECKPOINT_EVERY_S if timed else 0.0), *timed,
                                 *s.callbacks, *([Lockstep()] if several() else [])])
    if val is not None:
        fit_kwargs["validation_data"] = val.feed if val.feed is not None else (val.x, val.y)
        if timed:
            fit_kwargs["validation_freq"] = Cadence(timed[0], t.validated[index] if t.validated else None,
                                                    follow=from_writer)
    if s.verbose:
        length = (f"until {t.ends[index]:.0%} of the training {'steps' if isinstance(t.clock, StepClock) else 'time'}"
                  if timed else f"{stage['epochs']} epochs")
        _announce(f"kagglekit: stage {index + 1}/{len(s.run.plan)} {stage['stage']} at size {stage['size']}, "
                  f"{length}, lr {stage['lr']:g} x {[round(m, 3) for m in stage['mult']]}")
    if feed is not None:  # already shuffled per epoch by its seed
        s.model.fit(feed, shuffle=False, **fit_kwargs)
    else:
        s.model.fit(train.x, train.y, batch_size=s.feed.batch, shuffle=True, **fit_kwargs)


def _restore_optimizer(s: _Stages) -> None:
    """Load the saved optimizer state (several processes: process 0 reads it, the others receive it)."""
    if is_writer():
        s.run.restore_optimizer(s.model)
    if several():
        share_weights(list(built_optimizer(s.model).variables))


def _run_head_stage(s: _Stages, index: int, train: _Data, val: _Data | None) -> None:
    """Train the head on the frozen backbone's cached features; the stage counts as its epochs: one row, one checkpoint."""
    stage = s.run.plan[index]
    t0 = time.perf_counter()
    hooks = keras.callbacks.CallbackList([_Recorder(s.run, index), *s.callbacks], model=s.model)
    last = stage["epochs"] - 1
    hooks.on_train_begin()
    hooks.on_epoch_begin(last)
    f = s.fitting
    logs, head_epochs = _fit_head_on_features(s.model, train, val, stage, f.loss, f.metrics, f.class_weight,
                                              f.weight_decay, s.feed.seed + index)
    if s.verbose:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items())
        _announce(f"kagglekit: stage {index + 1}/{len(s.run.plan)} frozen at size {stage['size']}: head trained "
                  f"on the backbone's cached features, {head_epochs} epochs, lr {stage['lr']:g} "
                  f"({time.perf_counter() - t0:.0f} s): {shown}")
    hooks.on_epoch_end(last, logs)
    hooks.on_train_end(logs)


def _build(entry: bb.Backbone, n_classes: int, multilabel: bool, weights: Any, dropout: float,
           augment: keras.layers.Layer | None, policy: str | None) -> keras.Model:
    """Return the classifier built under the dtype `policy` (the global policy is put back afterwards)."""
    previous_policy = keras.config.dtype_policy()
    try:
        if policy:
            keras.config.set_dtype_policy(policy)
        return bb.build_model(entry, n_classes, multilabel, weights, dropout=dropout, augment=augment)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _judged_flip(flip: bool | None, augment: bool | keras.layers.Layer, train: Any, *, seed: int,
                 verbose: int | str) -> bool | None:
    """Return `flip`, or (None, with the default augmentation) whether `train`'s images allow flips, said once."""
    if flip is None and augment is True:  # judged from the images, said once
        check = flip_check(train, seed=seed)
        flip = check.flip
        (_announce if verbose else logger.info)(f"kagglekit: augmentation: {check.reason}")
    return flip


def _open_run(args: dict, plan: list[dict], *, name: str, workdir: str | os.PathLike | None, monitor: str,
              resume: bool) -> _Run:
    """Return the run's files in `workdir` (default: named by `name` and a fingerprint of `args`), resumed if asked."""
    fingerprint = hashlib.md5(json.dumps(args, sort_keys=True, default=str).encode()).hexdigest()[:10]
    workdir = Path(workdir) if workdir is not None else Path("kagglekit-runs") / f"{name}-{fingerprint}"
    run = _Run(workdir, fingerprint, plan, monitor, "min" if "loss" in monitor else "max")
    if resume:
        run.load_state()
    return run


def _settings(args: dict, *, entry: bb.Backbone, run: _Run, policy: str | None, distribution: str,
              flip: bool | None) -> dict:
    """Return the Learner's settings: the recipe `args`, and how predict prepares images as training did."""
    return {"backbone": entry.name, "weights": args["weights"], "sizes": args["sizes"],
            "preprocess": entry.preprocess, "policy": policy, "workdir": str(run.workdir),
            "recipe": args, "fingerprint": run.fingerprint, "distribution": distribution,
            "resize": args["resize"],  # how images were brought to size: predict prepares them the same way
            **({"tta_flip": bool(flip)} if flip is not None else {})}  # TTA flips only where training flipped


def _replica_batch(batch_size: int, replicas: int) -> int:
    """Return `batch_size` rounded up to a multiple of `replicas` (every device gets an equal share)."""
    if replicas > 1 and batch_size % replicas:
        return (batch_size // replicas + 1) * replicas
    return batch_size


def _run_stages(stages: _Stages) -> None:
    """Run the stages from where the run left off, past those whose time is spent, while training time is left."""
    plan = stages.run.plan
    start_stage, start_epoch = stages.run.resume(stages.model)
    if several():  # only process 0 reads the run folder: the others continue from its point and weights
        start_stage, start_epoch = share([start_stage, start_epoch])
        if (start_stage, start_epoch) != (0, 0):
            share_weights(list(stages.model.variables))
    for index in range(start_stage, len(plan)):
        if stages.timing.over(index):
            continue
        if _out_of_time(stages.callbacks):  # e.g. a kagglekit Deadline: the frozen head stage has no per-step hooks
            logger.info(f"stage {index + 1}/{len(plan)} ({plan[index]['stage']} at size {plan[index]['size']}) "
                        f"and the rest skipped: no training time left")
            break
        _run_stage(stages, index, start_epoch if index == start_stage else 0)


def _learner(model: keras.Model, run: _Run, best: dict | None, *, data: LabelTable | tuple, classes: Sequence[str],
             multilabel: bool, settings: dict) -> Learner:
    """Return the Learner of the trained `model` at the size it ended on (the `best` epoch's, when restored)."""
    final_size = run.plan[-1]["size"]
    if best is not None:
        final_size = best["size"]
        settings["best"] = best
    bb.backbone_of(model).trainable = True
    if final_size is None and not isinstance(data, LabelTable):
        final_size = tuple(np.asarray(data[0]).shape[1:3])
    return Learner(model, classes, multilabel, final_size, settings, pd.DataFrame(run.rows))


# ---------------------------------------------------------------- the recipe
def fine_tune(
    data: LabelTable | tuple,
    backbone: str = "resnet50",
    sizes: Sequence[int] | int | None = None,
    weights: str | os.PathLike | None = "imagenet",
    valid: float | LabelTable | tuple | None = 0.2,
    epochs: int | None = 3,
    freeze_epochs: int = 1,
    lr: float | None = None,
    lr_mult: Sequence[float] = (1 / 9, 1 / 3, 1.0),
    batch_size: int = 32,
    schedule: str = "one_cycle",
    cycle_len: float = 1,
    cycle_mult: float = 1,
    optimizer: str = "adamw",
    weight_decay: float = 1e-4,
    label_smoothing: float = 0.0,
    class_weight: str | dict | None = None,
    dropout: float = 0.25,
    augment: bool | keras.layers.Layer = True,
    flip: bool | None = None,
    mixed_precision: str | bool = "auto",
    distribute: bool | str = "auto",
    workdir: str | os.PathLike | None = None,
    resume: bool = True,
    restore_best: bool = True,
    monitor: str | None = None,
    seed: int = 0,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    resize: str = "squash",
    head_on_features: bool = True,
    size_shares: Sequence[float] | None = None,
    replay: dict | None = None,
) -> Learner:
    """Return a :class:`Learner` fine-tuned on `data` with the frozen/unfrozen recipe at each size.

    Args:
        data: a ``LabelTable`` (normal case) or in-memory ``(x, y)``: x uint8/float
            (n, h, w, 3) pixels 0..255, y int labels (n,) or multi-hot (n, k).
        backbone: a registry name (``kagglekit.backbones.names()``).
        sizes: input sizes, one pass of the stages per size (progressive
            resizing, weights carried over); default the backbone's size
            (or the arrays' own size).
        weights: "imagenet", a weights file (``*_notop.h5``, ``*.weights.h5``,
            ``*.keras``) or None (from scratch: no frozen stage, equal LRs).
        valid: a fraction held out (by ``kagglekit.layout.split`` / ``split_arrays``:
            stratified), a table / (x, y), or None.
        epochs, freeze_epochs: epochs of the unfrozen and frozen stage per size. ``epochs=None``:
            time-driven (`kagglekit.timeline`): each unfrozen stage trains until its share of the
            time a `Deadline` in `callbacks` gives (`size_shares`, default in proportion to each
            size's pixels), the learning rate warms up and decays to zero at the deadline, and
            validation runs on a time cadence. Epochs are then an outcome.
        size_shares: time-driven: the share of the training time of each size.
        replay: time-driven, without a deadline: train the steps an earlier run trained
            (`replay_record` of its history rows), validating after the same epochs.
        lr, lr_mult: peak learning rate (default 1e-3 fine-tuning pretrained weights, 3e-3 from scratch:
            ``kagglekit.plan.BASE_LR``, ``SCRATCH_LR``) and the factors for early, late, head.
        schedule: "one_cycle", "sgdr" (with `cycle_len`, `cycle_mult` in epochs) or "constant".
        class_weight: "balanced" (scikit-learn's rule), ``{class: weight}`` or None.
        augment: True: the default augmentation (flip, small rotation, zoom, contrast); False:
            none; or Keras layers of your own.
        flip: horizontal flips in the default augmentation and in TTA; None: judged from the
            training images (`kagglekit.flips.flip_check`: off where a mirrored image loses its label: digits, text).
        mixed_precision: "auto" (on when a GPU is present), True, False, or a policy name.
        distribute: "auto" (data-parallel over 2+ GPUs), True (all devices, CPU included), False.
        workdir: where checkpoints, state.json, history.csv and curves.png go;
            default ``kagglekit-runs/<backbone>-<fingerprint of the arguments>``.
        resume: continue an interrupted run found in `workdir` with the same arguments.
        restore_best: end with the weights of the best epoch by `monitor`
            (default ``val_accuracy``, or ``val_loss`` when multi-label or no ``val_*``).
        callbacks: extra Keras callbacks, run after kagglekit's own.
        head_on_features: in a frozen stage, compute the frozen backbone's features
            once and train the head on them for at least HEAD_STEPS steps (fast, and
            the head is trained before the backbone thaws, also on small data); the
            frozen stage then sees unaugmented images. False: fit the whole model
            for `freeze_epochs` epochs (also used with several devices, or when the
            features would not fit in HEAD_FEATURE_BYTES).
    """
    # 1. check the arguments against the data; plan the stages
    classes, multilabel, n_rows, data_digest = describe_data(data)
    entry = bb.get(backbone)
    sizes = _sizes(sizes, entry, data)
    if lr is None:
        lr = BASE_LR if weights is not None else SCRATCH_LR
    plan = plan_stages(sizes, weights is not None, freeze_epochs, epochs, lr, lr_mult)
    train_src, valid_src = validation(data, valid, classes, seed)
    if monitor is None:
        monitor = ("val_loss" if multilabel else "val_accuracy") if valid_src is not None else "loss"
    loss, metrics, target_kind = loss_and_metrics(multilabel, label_smoothing)
    cw = class_weights(class_weight, classes, multilabel, train_src)
    flip = _judged_flip(flip, augment, train_src, seed=seed, verbose=verbose)

    # 2. the run: its identity (the arguments and the data), its files, its clock
    args = {"backbone": entry.name, "sizes": [list(s) if isinstance(s, tuple) else s for s in sizes],
            "weights": str(weights), "valid": valid if isinstance(valid, float) else type(valid).__name__,
            "epochs": epochs, "freeze_epochs": freeze_epochs, "lr": lr, "lr_mult": list(lr_mult),
            "batch_size": batch_size, "schedule": schedule, "cycle_len": cycle_len, "cycle_mult": cycle_mult,
            "optimizer": optimizer, "weight_decay": weight_decay, "label_smoothing": label_smoothing,
            "class_weight": str(class_weight), "dropout": dropout, "augment": str(augment), "flip": flip, "seed": seed,
            "head_on_features": bool(head_on_features), "resize": resize, **({"replay": replay} if replay else {}),
            "classes": list(classes), "multilabel": multilabel, "rows": n_rows, "data": data_digest}
    run = _open_run(args, plan, name=entry.name, workdir=workdir, monitor=monitor, resume=resume)
    timing = _timing(plan, callbacks, replay, size_shares, run.rows)

    # 3. devices, precision, the model (on resume the checkpoint overwrites all weights: no pretrained ones fetched)
    strategy = _Strategy(distribute)
    policy = precision_policy(mixed_precision)
    keras.utils.set_random_seed(seed)
    augment_layer = default_augmentation(flip is not False) if augment is True else (augment or None)
    settings = _settings(args, entry=entry, run=run, policy=policy, distribution=strategy.kind, flip=flip)
    with strategy.scope():
        model = _build(entry, len(classes), multilabel, None if run.state else weights, dropout, augment_layer, policy)

        # 4. the stages (their data, training and timing): resume, run each, then end on the best epoch
        feed = _Feed(train=train_src, valid=valid_src, n_classes=len(classes), target_kind=target_kind, seed=seed, resize=resize,
                     batch=_replica_batch(batch_size, strategy.replicas), replicas=strategy.replicas, part=strategy.part)
        fitting = _Fitting(loss=loss, metrics=metrics, class_weight=cw, optimizer=optimizer, schedule=schedule,
                           cycle_len=cycle_len, cycle_mult=cycle_mult, weight_decay=weight_decay)
        stages = _Stages(model=model, run=run, backbone=entry.name, feed=feed, fitting=fitting, timing=timing,
                         verbose=verbose, callbacks=callbacks, head_on_features=head_on_features)
        _run_stages(stages)
        best = run.restore_best(model) if restore_best else None
    return _learner(model, run, best, data=data, classes=classes, multilabel=multilabel, settings=settings)
