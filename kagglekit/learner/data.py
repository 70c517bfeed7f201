"""Data for training: a table or (x, y) arrays described, split off for validation, and served at one size.

The split itself is the layout stage's (``kagglekit.layout.split`` for tables,
``split_arrays`` for arrays); this module only routes `valid` to it.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any

import keras
import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..images import resize_images
from ..layout import split, split_arrays
from ..table import LabelTable


def describe_data(data: Any) -> tuple[tuple[str, ...], bool, int, str]:
    """Return (classes, multilabel, n_rows, fingerprint) for a table or (x, y) arrays."""
    if isinstance(data, LabelTable):
        data.validate(check_files=False)
        digest = hashlib.md5(pd.util.hash_pandas_object(data.frame[["id", "path"]], index=False).values.tobytes())
        return data.classes, data.multilabel, len(data), digest.hexdigest()[:12]
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y):
            raise ConfigError(
                f"In-memory data must be (x, y) with x of shape (n, h, w, 3) and len(y) == n "
                f"(got x {x.shape}, y {y.shape}); convert grayscale with np.repeat(x[..., None], 3, -1)."
            )
        multilabel = y.ndim == 2
        n_classes = y.shape[1] if multilabel else int(y.max()) + 1
        digest = hashlib.md5(np.ascontiguousarray(y).tobytes() + str(x.shape).encode()).hexdigest()[:12]
        return tuple(str(i) for i in range(n_classes)), multilabel, len(x), digest
    raise ConfigError(
        f"fine_tune needs a LabelTable or an (x, y) pair of arrays, not {type(data).__name__}. "
        "Build a table with kagglekit.layout (from_csv, from_folders, from_filenames)."
    )


def validation(data: LabelTable | tuple, valid: float | LabelTable | tuple | None, classes: tuple[str, ...],
               seed: int) -> tuple[Any, Any]:
    """Return (training data, validation data or None) for `valid`: a fraction held out, a table, (x, y) or None.

    A fraction is held out by the layout stage's split (stratified; iterative for
    multi-label tables); a validation table is given `classes` as its vocabulary.
    """
    if isinstance(valid, float):
        if not 0.0 < valid < 1.0:
            raise ConfigError(f"valid={valid}: give a fraction in (0, 1), a table, (x, y) or None.")
        if isinstance(data, LabelTable):
            return split(data, valid=valid, seed=seed)
        return split_arrays(np.asarray(data[0]), np.asarray(data[1]), valid, seed)
    if isinstance(valid, LabelTable):
        return data, valid.with_classes(classes)
    if isinstance(valid, (tuple, list)):
        return data, (np.asarray(valid[0]), np.asarray(valid[1]))
    if valid is not None:
        raise ConfigError(f"valid={valid!r}: give a fraction in (0, 1), a LabelTable, (x, y) arrays or None.")
    return data, None


def default_augmentation(flip: bool = True) -> keras.layers.Layer:
    """Return the pipeline's default augmentation (flip, small rotation, zoom, contrast) as Keras layers."""
    from ..pipeline import augmentation

    return augmentation(flip="horizontal" if flip else None)


class _Data:
    """Training or validation data at one size: a PyDataset (tables) or arrays."""

    def __init__(self, source: Any, size: int | None, batch_size: int, shuffle: bool, seed: int,
                 targets: str, replicas: int, resize: str = "squash", n_classes: int | None = None,
                 part: tuple[int, int] = (0, 1)) -> None:
        self.batch_size = batch_size
        if isinstance(source, LabelTable):
            from ..pipeline import EpochOrder, ImageBatches, keras_input

            self.dataset = ImageBatches(source, size, batch_size=batch_size, targets=targets, shuffle=shuffle,
                                        seed=seed, resize=resize)
            if replicas > 1 and keras.backend.backend() == "jax":
                self.dataset = _EvenBatches(self.dataset, replicas, part)
            self.x, self.y = self.dataset, None
            self.steps = len(self.dataset)
            self.feed = keras_input(self.dataset)  # what fit/evaluate get (a tf.data pipeline on TensorFlow)
            self.callbacks = [EpochOrder(self.dataset)] if shuffle else []
        else:
            x, y = source
            if part[1] > 1:
                raise ConfigError(f"Training over {part[1]} processes reads images from a LabelTable, not arrays: "
                                  "give fine_tune a LabelTable (kagglekit.LabelTable.from_folders / from_csv).")
            if size is not None:
                x = resize_images(x, size)  # the one resize rule (kagglekit.images); a no-op at `size`
            if targets == "onehot" and y.ndim == 1:
                y = np.eye(int(n_classes or int(np.max(y)) + 1), dtype="float32")[y]
            if replicas > 1:
                n = (len(x) // replicas) * replicas
                x, y = x[:n], y[:n]
            self.dataset, self.x, self.y = None, x, y
            self.feed, self.callbacks = None, []
            self.steps = max(1, math.ceil(len(x) / batch_size))

    def fit_input(self, first_epoch: int, epochs: int) -> tuple[Any, dict, list]:
        """Return (what ``fit`` trains on, its extra keywords, the callbacks it needs) for epochs `first_epoch`..`epochs`-1.

        On TensorFlow: one tf.data pipeline for the whole fit, each epoch in its seeded order
        (`kagglekit.pipeline.keras_input` with `epochs`); elsewhere the PyDataset and `EpochOrder`.
        """
        from ..pipeline import keras_input

        if self.feed is None or self.feed is self.dataset:
            return self.feed, {}, self.callbacks
        return keras_input(self.dataset, epochs=(first_epoch, epochs)), {"steps_per_epoch": self.steps}, []


class _EvenBatches(keras.utils.PyDataset):
    """Serve a dataset with each batch cut to a multiple of the device count (JAX data parallel).

    With several processes (`part` = (this one, how many)) each serves its contiguous share of that
    cut batch: the processes' shares make up the global batch (``keras.distribution`` with
    auto-sharding off assembles it), so every row is read by one process only.
    """

    def __init__(self, inner, replicas: int, part: tuple[int, int] = (0, 1)) -> None:
        super().__init__()
        self.inner, self.replicas = inner, replicas
        self.part = (int(part[0]), int(part[1]))

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        item = self.inner[i]
        x = item[0] if isinstance(item, tuple) else item
        n = max(self.replicas, (len(x) // self.replicas) * self.replicas)
        index, count = self.part
        rows = slice(index * n // count, (index + 1) * n // count)
        return tuple(a[rows] for a in item) if isinstance(item, tuple) else item[rows]

    def on_epoch_end(self) -> None:
        if hasattr(self.inner, "on_epoch_end"):
            self.inner.on_epoch_end()

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)
