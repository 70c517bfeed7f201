"""The frozen stage on cached features: the head trained on the frozen backbone's pooled features (linear probing)."""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from .data import _Data
from .optim import OneCycle


HEAD_STEPS = 300  # at least this many optimizer steps for a head trained on cached features
HEAD_FEATURE_BYTES = 2 << 30  # features of the training images kept in memory up to this size


def _features(model: keras.Model, data: _Data) -> tuple[np.ndarray, np.ndarray]:
    """Return (pooled backbone features float32, targets) of every image of `data`, in inference mode."""
    extract = keras.Model(model.inputs, model.get_layer("pool").output)
    if data.dataset is None:
        feats = extract.predict(data.x, batch_size=data.batch_size, verbose=0)
        return np.asarray(feats, dtype="float32"), np.asarray(data.y)
    batches = data.dataset
    if hasattr(batches, "set_epoch"):
        batches.set_epoch(0)
    feats, targets = [], []
    for i in range(len(batches)):
        x, y = batches[i][:2]
        feats.append(np.asarray(ops.convert_to_numpy(extract(x, training=False)), dtype="float32"))
        targets.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(targets)


def _can_fit_head_on_features(model: keras.Model, n_images: int, replicas: int) -> bool:
    names = {layer.name for layer in model.layers}
    if "pool" not in names or "predictions" not in names or replicas > 1:
        return False
    width = int(model.get_layer("pool").output.shape[-1])
    return n_images * width * 4 <= HEAD_FEATURE_BYTES


def _fit_head_on_features(model: keras.Model, train: _Data, val: _Data | None, stage: dict, loss, metrics,
                          class_weight, weight_decay: float, seed: int) -> tuple[dict, int]:
    """Train the output layer of `model` on its frozen backbone's cached features.

    The backbone is frozen (BatchNorm in inference mode), so its features do not
    change during the stage: one forward pass gives them, and the head then trains
    for at least HEAD_STEPS steps at almost no cost, instead of a few steps of a
    full pass per epoch (linear probing, then fine-tuning: LP-FT, Kumar et al.
    2022). The head trains on standardised features (backbones' pooled features
    are small and of unequal scale, which a few hundred Adam steps cannot make up
    for); the standardisation is then folded into the Dense layer's weights.
    Return (logs of the last epoch, with `val_*` entries, and the head epochs).
    """
    x, y = _features(model, train)
    mean, std = x.mean(axis=0), x.std(axis=0)
    live = std > 1e-6 * max(float(std.max()), 1e-12)  # constant features carry nothing: weight 0
    scale = np.where(live, std, 1.0).astype("float32")
    output = model.get_layer("predictions")
    inputs = keras.Input((x.shape[1],), name="features")
    dense = keras.layers.Dense(output.units, activation=output.activation, dtype="float32", name="predictions")
    head = keras.Model(inputs, dense(inputs), name="head")
    steps = max(1, math.ceil(len(x) / train.batch_size))
    epochs = max(int(stage["epochs"]), math.ceil(HEAD_STEPS / steps))
    head.compile(optimizer=keras.optimizers.AdamW(learning_rate=OneCycle(stage["lr"], steps * epochs),
                                                  weight_decay=weight_decay),
                 loss=loss, metrics=[m.__class__.from_config(m.get_config()) for m in metrics])
    x = (x - mean) / scale
    keras.utils.set_random_seed(seed)
    if x.nbytes * epochs <= HEAD_FEATURE_BYTES:  # all epochs as one pass: no per-epoch overhead on small data
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])
        history = head.fit(x[order], y[order], batch_size=train.batch_size, epochs=1, shuffle=False, verbose=0,
                           class_weight=class_weight)
    else:
        history = head.fit(x, y, batch_size=train.batch_size, epochs=epochs, shuffle=True, verbose=0,
                           class_weight=class_weight)
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    if val is not None:
        xv, yv = _features(model, val)
        scores = head.evaluate((xv - mean) / scale, yv, batch_size=train.batch_size, verbose=0, return_dict=True)
        logs.update({f"val_{k}": float(v) for k, v in scores.items()})
    kernel, bias = (np.asarray(ops.convert_to_numpy(w), dtype="float64") for w in dense.weights)
    kernel = np.where(live[:, None], kernel / scale[:, None], 0.0)
    bias = bias - mean @ kernel
    output.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return logs, epochs
