"""The learning-rate finder: loss against a geometrically growing rate, and a suggested rate."""
from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np

from .. import backbones as bb
from ..plots import plot_lr_find
from ..table import LabelTable
from .data import _Data, describe_data
from .model import Learner
from .recipe import loss_and_metrics


class LRFind:
    """Result of :func:`lr_find`: `lrs`, smoothed `losses`, `suggestion` and :meth:`plot`."""

    def __init__(self, lrs: np.ndarray, losses: np.ndarray) -> None:
        self.lrs, self.losses = np.asarray(lrs), np.asarray(losses)
        self.suggestion = self._suggest()

    def _suggest(self) -> float:
        """Return the rate where the smoothed loss falls fastest, before its minimum (a non-finite tail ignored)."""
        finite = np.isfinite(self.losses)
        n = len(self.losses) if finite.all() else int(np.argmin(finite))  # up to the first nan / inf
        if n < 3:
            return float(self.lrs[0]) if len(self.lrs) else float("nan")
        stop = int(np.argmin(self.losses[:n])) + 1
        lrs, losses = self.lrs[:max(stop, 3)], self.losses[:max(stop, 3)]
        slope = np.gradient(losses, np.log10(lrs))
        return float(lrs[int(np.argmin(slope))])

    def plot(self, path: str | os.PathLike) -> Path:
        """Return `path` after drawing loss against learning rate (log scale) with the suggestion marked."""
        return plot_lr_find(self.lrs, self.losses, self.suggestion, path)


class _LRSweep(keras.callbacks.Callback):
    """Set the rate of each step of the sweep, record the smoothed loss, stop at the end rate or on an explosion.

    The sweep may span several epochs: the step count, the running average and its
    bias correction run over the whole sweep, while the batch's own loss is read
    back from Keras' per-epoch running mean (weighted by the batch sizes, as Keras
    weights it), which restarts every epoch.
    """

    def __init__(self, start: float, end: float, steps: int, rows: int, batch_size: int, beta: float = 0.9) -> None:
        super().__init__()
        self.factors = np.geomspace(start, end, steps)
        self.rows, self.batch_size = rows, batch_size
        self.beta, self.lrs, self.losses = beta, [], []
        self._avg, self._best = 0.0, np.inf
        self._prev_mean, self._seen = 0.0, 0  # Keras' running mean of this epoch and the samples behind it

    def on_epoch_begin(self, epoch, logs=None):
        self._prev_mean, self._seen = 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(float(self.factors[min(len(self.lrs), len(self.factors) - 1)]))

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        size = max(1, min(self.batch_size, self.rows - batch * self.batch_size))
        seen = self._seen + size
        loss = (seen * mean - self._seen * self._prev_mean) / size  # this batch's loss from the running mean
        self._prev_mean, self._seen = mean, seen
        step = len(self.lrs)
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** (step + 1))
        self.lrs.append(float(self.factors[min(step, len(self.factors) - 1)]))
        self.losses.append(smooth)
        self._best = min(self._best, smooth)
        if not np.isfinite(smooth) or smooth > 4 * self._best or len(self.lrs) >= len(self.factors):
            self.model.stop_training = True


def lr_find(
    data: LabelTable | tuple,
    backbone: str = "resnet50",
    size: int | None = None,
    weights: str | os.PathLike | None = "imagenet",
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    batch_size: int = 32,
    label_smoothing: float = 0.0,
    learner: Learner | None = None,
    plot: str | os.PathLike | None = "lr_find.png",
) -> LRFind:
    """Return loss against a geometrically growing learning rate, a suggested rate, and draw it to `plot`.

    Trains a fresh model (or a copy of `learner`'s weights, restored afterwards)
    for at most `steps` batches, stopping once the loss explodes.
    """
    classes, multilabel, rows, _ = describe_data(data)
    loss, _metrics, target_kind = loss_and_metrics(multilabel, label_smoothing)
    if learner is not None:
        model = learner.model
    else:
        model = bb.build_model(backbone, len(classes), multilabel, weights)
        if weights is not None:
            bb.backbone_of(model).trainable = False
    saved = model.get_weights()
    entry_size = size if size is not None else (bb.get(backbone).default_size if isinstance(data, LabelTable) else None)
    train = _Data(data, entry_size, batch_size=batch_size, shuffle=True, seed=0, targets=target_kind, replicas=1,
                  n_classes=len(classes))
    sweep = _LRSweep(start, end, steps, rows, batch_size)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=start), loss=loss)
    epochs = max(1, math.ceil(steps / train.steps))  # one fit: Keras stops after the batch that sets stop_training
    if train.feed is not None:
        model.fit(train.feed, shuffle=False, epochs=epochs, verbose=0, callbacks=[*train.callbacks, sweep])
    else:
        model.fit(train.x, train.y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[sweep])
    model.set_weights(saved)
    result = LRFind(np.array(sweep.lrs), np.array(sweep.losses))
    if plot is not None:
        result.plot(plot)
    return result
