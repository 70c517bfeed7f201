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
        if len(self.lrs) < 3:
            return float(self.lrs[0]) if len(self.lrs) else float("nan")
        stop = int(np.argmin(self.losses)) + 1
        lrs, losses = self.lrs[:max(stop, 3)], self.losses[:max(stop, 3)]
        slope = np.gradient(losses, np.log10(lrs))
        return float(lrs[int(np.argmin(slope))])

    def plot(self, path: str | os.PathLike) -> Path:
        """Return `path` after drawing loss against learning rate (log scale) with the suggestion marked."""
        return plot_lr_find(self.lrs, self.losses, self.suggestion, path)


class _LRSweep(keras.callbacks.Callback):
    def __init__(self, start: float, end: float, steps: int, beta: float = 0.9) -> None:
        super().__init__()
        self.factors = np.geomspace(start, end, steps)
        self.beta, self.lrs, self.losses = beta, [], []
        self._avg, self._prev_mean, self._best = 0.0, 0.0, np.inf

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(float(self.factors[min(batch, len(self.factors) - 1)]))

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        loss = (batch + 1) * mean - batch * self._prev_mean  # this batch's loss from Keras' running mean
        self._prev_mean = mean
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** (batch + 1))
        self.lrs.append(float(self.factors[min(batch, len(self.factors) - 1)]))
        self.losses.append(smooth)
        self._best = min(self._best, smooth)
        if not np.isfinite(smooth) or smooth > 4 * self._best or batch + 1 >= len(self.factors):
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
    classes, multilabel, _, _ = describe_data(data)
    loss, _metrics, target_kind = loss_and_metrics(multilabel, label_smoothing)
    if learner is not None:
        model = learner.model
    else:
        model = bb.build_model(backbone, len(classes), multilabel, weights)
        if weights is not None:
            bb.backbone_of(model).trainable = False
    saved = model.get_weights()
    entry_size = size if size is not None else (bb.get(backbone).default_size if isinstance(data, LabelTable) else None)
    train = _Data(data, entry_size, batch_size, True, 0, target_kind, 1, n_classes=len(classes))
    sweep = _LRSweep(start, end, steps)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=start), loss=loss)
    epochs = max(1, math.ceil(steps / train.steps))
    for _ in range(epochs):
        if train.feed is not None:
            model.fit(train.feed, shuffle=False, epochs=1, verbose=0, callbacks=[*train.callbacks, sweep])
        else:
            model.fit(train.x, train.y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[sweep])
        if len(sweep.lrs) >= steps or model.stop_training:
            break
        sweep._prev_mean = 0.0
        sweep.factors = sweep.factors[len(sweep.lrs):]
    model.set_weights(saved)
    result = LRFind(np.array(sweep.lrs), np.array(sweep.losses))
    if plot is not None:
        result.plot(plot)
    return result
