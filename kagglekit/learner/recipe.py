"""The fine-tuning recipe: frozen head, then per-group learning rates, at each size; resume; multi-device.

``fine_tune(table, backbone="resnet50", sizes=[128, 224], weights="imagenet")``
returns a :class:`Learner`. For each size in `sizes` it runs

1. stage ``frozen``: the backbone frozen (BatchNorm in inference mode), the
   head trained for `freeze_epochs` (skipped when `weights` is None: a random
   backbone is not worth freezing);
2. stage ``unfrozen``: everything trained for `epochs`, with discriminative
   learning rates ``lr * lr_mult`` for the groups early, late, head
   (``(1/9, 1/3, 1)`` by default; all 1 when training from scratch).

Each stage follows a schedule (one-cycle by default, or SGDR). Every epoch the
weights, the optimizer state and ``state.json`` are written atomically into
`workdir`, so a run killed at any moment and started again with the same
arguments continues from its last completed epoch.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import pandas as pd
from keras import ops

from . import backbones as bb
from .errors import ConfigError, KaggleKitError
from .io import atomic_open, atomic_write_text
from .schedules import OneCycle, make_schedule  # noqa: F401  (OneCycle registered for loading)
from .table import LabelTable

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
    for name, mult in zip(GROUPS, mults):
        for layer in bb.layer_groups(model, backbone)[name]:
            for v in layer.trainable_weights:
                out[v.path] = float(mult)
    return out


# ---------------------------------------------------------------- devices
def _backend() -> str:
    return keras.backend.backend()


def accelerators() -> list[str]:
    """Return the names of the GPUs the current backend can use (empty on CPU)."""
    backend = _backend()
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform == "gpu"]
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_logical_devices("GPU")]
        if backend == "torch":
            import torch

            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no accelerator stack means CPU
        return []
    return []


def _auto_policy() -> str | None:
    """Return the mixed-precision policy for the first GPU (bfloat16 from Ampere on), or None on CPU."""
    if not accelerators():
        return None
    major = 0
    with contextlib.suppress(Exception):
        backend = _backend()
        if backend == "jax":
            import jax

            major = int(str(getattr(jax.devices()[0], "compute_capability", "0")).split(".")[0])
        elif backend == "torch":
            import torch

            major = torch.cuda.get_device_capability()[0]
        elif backend == "tensorflow":
            import tensorflow as tf

            gpu = tf.config.list_physical_devices("GPU")[0]
            major = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))[0]
    return "mixed_bfloat16" if major >= 8 else "mixed_float16"


class _Strategy:
    """Data-parallel training through the backend's own engine, or a no-op."""

    def __init__(self, distribute: bool | str) -> None:
        self.kind = "none"
        self.replicas = 1
        self._scope = contextlib.nullcontext
        backend = _backend()
        if distribute is False or distribute is None:
            return
        if distribute not in (True, "auto"):
            raise ConfigError(f"distribute={distribute!r}: use 'auto', True or False.")
        gpus = accelerators()
        if distribute == "auto" and len(gpus) < 2:
            return
        if backend == "tensorflow":
            import tensorflow as tf

            devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
                d.name for d in tf.config.list_logical_devices("CPU")
            ]
            if len(devices) < 2:
                return
            strategy = tf.distribute.MirroredStrategy(devices)
            self.kind, self.replicas, self._scope = "mirrored", strategy.num_replicas_in_sync, strategy.scope
        elif backend == "jax":
            devices = keras.distribution.list_devices("gpu") if gpus else keras.distribution.list_devices("cpu")
            if len(devices) < 2:
                return
            dist = keras.distribution.DataParallel(devices=devices)
            self.kind, self.replicas, self._scope = "data_parallel", len(devices), dist.scope
        else:
            import warnings

            warnings.warn(f"Data-parallel training is not wired for the {backend} backend; using one device.")

    def scope(self):
        return self._scope()


# ---------------------------------------------------------------- data
class _Data:
    """Training or validation data at one size: a PyDataset (tables) or arrays."""

    def __init__(self, source: Any, size: int | None, batch_size: int, shuffle: bool, seed: int,
                 targets: str, replicas: int, fit: str = "squash", n_classes: int | None = None) -> None:
        self.batch_size = batch_size
        if isinstance(source, LabelTable):
            from .pipeline import EpochOrder, ImageBatches, keras_input

            self.dataset = ImageBatches(source, size, batch_size=batch_size, targets=targets, shuffle=shuffle,
                                        seed=seed, fit=fit)
            if replicas > 1 and _backend() == "jax":
                self.dataset = _EvenBatches(self.dataset, replicas)
            self.x, self.y = self.dataset, None
            self.steps = len(self.dataset)
            self.feed = keras_input(self.dataset)  # what fit/evaluate get (a tf.data pipeline on TensorFlow)
            self.callbacks = [EpochOrder(self.dataset)] if shuffle else []
        else:
            x, y = source
            if size is not None and tuple(x.shape[1:3]) != _pair(size):
                x = resize_images(x, size)
            if targets == "onehot" and y.ndim == 1:
                y = np.eye(int(n_classes or int(np.max(y)) + 1), dtype="float32")[y]
            if replicas > 1:
                n = (len(x) // replicas) * replicas
                x, y = x[:n], y[:n]
            self.dataset, self.x, self.y = None, x, y
            self.feed, self.callbacks = None, []
            self.steps = max(1, math.ceil(len(x) / batch_size))


class _EvenBatches(keras.utils.PyDataset):
    """Serve a dataset with each batch cut to a multiple of the device count (JAX data parallel)."""

    def __init__(self, inner, replicas: int) -> None:
        super().__init__()
        self.inner, self.replicas = inner, replicas

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        item = self.inner[i]
        x = item[0] if isinstance(item, tuple) else item
        n = max(self.replicas, (len(x) // self.replicas) * self.replicas)
        return tuple(a[:n] for a in item) if isinstance(item, tuple) else item[:n]

    def on_epoch_end(self) -> None:
        if hasattr(self.inner, "on_epoch_end"):
            self.inner.on_epoch_end()

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def resize_images(x: np.ndarray, size: int | Sequence[int], chunk: int = 512) -> np.ndarray:
    """Return the image array `x` (n, h, w, c) resized to `size` (bilinear), with its dtype kept."""
    h, w = _pair(size)
    out = np.empty((len(x), h, w, x.shape[-1]), dtype=x.dtype)
    for i in range(0, len(x), chunk):
        part = ops.image.resize(ops.convert_to_tensor(x[i:i + chunk].astype("float32")), (h, w))
        part = ops.convert_to_numpy(part)
        if np.issubdtype(x.dtype, np.integer):
            part = np.clip(np.rint(part), 0, 255)
        out[i:i + chunk] = part.astype(x.dtype)
    return out


def _split_arrays(x: np.ndarray, y: np.ndarray, valid: float, seed: int):
    from sklearn.model_selection import train_test_split

    strat = y if y.ndim == 1 else None
    xt, xv, yt, yv = train_test_split(x, y, test_size=valid, random_state=seed, stratify=strat)
    return (xt, yt), (xv, yv)


def _split_table(table: LabelTable, valid: float, seed: int) -> tuple[LabelTable, LabelTable]:
    try:
        from .layout import split
    except ImportError:  # layout not installed yet: stratified split by scikit-learn
        from sklearn.model_selection import train_test_split

        rows = np.arange(len(table))
        strat = None if table.multilabel else table.targets("int")
        tr, va = train_test_split(rows, test_size=valid, random_state=seed, stratify=strat)
        return table.take(np.sort(tr)), table.take(np.sort(va))
    return split(table, valid=valid, seed=seed)


def _describe(data: Any) -> tuple[tuple[str, ...], bool, int, str]:
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


# ---------------------------------------------------------------- the learner
class Learner:
    """A trained classifier with what prediction needs: classes, kind, input size and settings.

    Attributes:
        model: the ``keras.Model`` (raw 0..255 pixels in, probabilities out).
        classes: class names in output-column order.
        multilabel: True when outputs are independent sigmoids.
        size: the input size (height, width) the model was last trained at.
        settings: a JSON-able dict saved with the model (backbone, recipe
            arguments, and post-processing choices such as thresholds).
        history: one row per epoch (stage, size, lr, losses and metrics).
    """

    def __init__(self, model: keras.Model, classes: Sequence[str], multilabel: bool = False,
                 size: int | Sequence[int] | None = None, settings: dict | None = None,
                 history: pd.DataFrame | None = None) -> None:
        self.model = model
        self.classes = tuple(str(c) for c in classes)
        self.multilabel = bool(multilabel)
        self.size = _pair(size) if size is not None else None
        self.settings = dict(settings or {})
        self.history = history if history is not None else pd.DataFrame()

    def __repr__(self) -> str:
        return (f"Learner({self.settings.get('backbone', self.model.name)}, {len(self.classes)} classes, "
                f"{'multi' if self.multilabel else 'single'}-label, size={self.size})")

    def save(self, path: str | os.PathLike) -> Path:
        """Return the folder written: ``model.keras`` plus ``learner.json`` (classes, kind, size, settings)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / ".model.part.keras"
        self.model.save(tmp)
        os.replace(tmp, path / "model.keras")
        meta = {"classes": list(self.classes), "multilabel": self.multilabel,
                "size": list(self.size) if self.size else None, "settings": self.settings}
        atomic_write_text(path / "learner.json", json.dumps(meta, indent=2, default=str))
        if len(self.history):
            with atomic_open(path / "history.csv") as fh:
                self.history.to_csv(fh, index=False)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Learner":
        """Return the learner saved by :meth:`save` in folder `path`."""
        path = Path(path)
        if not (path / "model.keras").is_file() or not (path / "learner.json").is_file():
            raise KaggleKitError(f"{path} holds no saved learner (model.keras + learner.json); save one with Learner.save(dir).")
        meta = json.loads((path / "learner.json").read_text(encoding="utf-8"))
        model = keras.saving.load_model(path / "model.keras", compile=False)
        history = pd.read_csv(path / "history.csv") if (path / "history.csv").is_file() else None
        return cls(model, meta["classes"], meta["multilabel"], meta["size"], meta["settings"], history)

    def save_backbone(self, path: str | os.PathLike) -> Path:
        """Return `path` after saving the backbone alone (``.weights.h5`` or ``.keras``) for ``weights=path``."""
        path = Path(path)
        base = bb.backbone_of(self.model)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".weights.h5"):
            base.save_weights(path)
        elif path.suffix == ".keras":
            base.save(path)
        else:
            raise ConfigError(f"Save a backbone as '*.weights.h5' or '*.keras', not {path.name!r}.")
        return path

    def predict(self, table: LabelTable, tta: int = 0, batch_size: int = 32) -> pd.DataFrame:
        """Return a DataFrame ``id`` + one probability column per class (see ``kagglekit.predict.predict``)."""
        from .predict import predict

        return predict(self, table, tta=tta, batch_size=batch_size)


# ---------------------------------------------------------------- callbacks
class _Recorder(keras.callbacks.Callback):
    """Cheap per-epoch bookkeeping: history row, best/last checkpoints, atomic state file."""

    def __init__(self, run: "_Run", stage_index: int) -> None:
        super().__init__()
        self.run, self.stage_index = run, stage_index
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        run = self.run
        stage = run.plan[self.stage_index]
        row = {"epoch": len(run.rows), "stage_index": self.stage_index, "stage": stage["stage"],
               "size": stage["size"], "stage_epoch": epoch,
               "lr": _current_lr(self.model.optimizer), "seconds": round(time.perf_counter() - self._t0, 3)}
        row.update({k: float(v) for k, v in (logs or {}).items() if np.isscalar(v) or np.ndim(v) == 0})
        run.rows.append(row)
        run.checkpoint(self.model, self.stage_index, epoch + 1, row)


def _current_lr(optimizer) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(ops.convert_to_numpy(inner.learning_rate))


class _Run:
    """Files of one run in `workdir`: state.json, checkpoints, history.csv, curves.png."""

    def __init__(self, workdir: Path, fingerprint: str, plan: list[dict], monitor: str, mode: str) -> None:
        self.workdir, self.fingerprint, self.plan = workdir, fingerprint, plan
        self.monitor, self.mode = monitor, mode
        self.rows: list[dict] = []
        self.best: dict | None = None
        self.state: dict | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    def load_state(self) -> dict | None:
        if not self.state_path.is_file():
            return None
        state = json.loads(self.state_path.read_text(encoding="utf-8"))
        if state.get("fingerprint") != self.fingerprint:
            return None
        self.rows, self.best, self.state = state["rows"], state.get("best"), state
        return state

    def _better(self, value: float) -> bool:
        if self.best is None or not np.isfinite(self.best["value"]):
            return bool(np.isfinite(value))
        return value > self.best["value"] if self.mode == "max" else value < self.best["value"]

    def checkpoint(self, model: keras.Model, stage_index: int, stage_epochs_done: int, row: dict) -> None:
        """Write weights and optimizer state under new names, then commit them in state.json, then tidy."""
        n = len(self.rows)
        weights = f"epoch{n:04d}.weights.npz"
        save_arrays(self.workdir / weights, model.get_weights())
        opt_file = f"epoch{n:04d}.optimizer.npz"
        save_arrays(self.workdir / opt_file, [ops.convert_to_numpy(v) for v in model.optimizer.variables])
        value = row.get(self.monitor, float("nan"))
        if self._better(value):
            best_file = f"best{n:04d}.weights.npz"
            save_arrays(self.workdir / best_file, model.get_weights())
            old = self.best["file"] if self.best else None
            self.best = {"value": value, "epoch": n - 1, "size": row["size"], "file": best_file}
        else:
            old = None
        previous = self.state or {}
        self.state = {"fingerprint": self.fingerprint, "stage_index": stage_index,
                      "stage_epochs_done": stage_epochs_done, "weights": weights, "optimizer": opt_file,
                      "best": self.best, "rows": self.rows, "monitor": self.monitor}
        atomic_write_text(self.state_path, json.dumps(self.state, default=float))
        with atomic_open(self.workdir / "history.csv") as fh:
            pd.DataFrame(self.rows).to_csv(fh, index=False)
        for stale in (previous.get("weights"), previous.get("optimizer"), old):
            if stale and stale not in (weights, opt_file, self.best["file"] if self.best else None):
                with contextlib.suppress(FileNotFoundError):
                    (self.workdir / stale).unlink()

    def plot(self) -> Path | None:
        """Return the PNG of loss/metric/lr curves per epoch (None without rows)."""
        if not self.rows:
            return None
        return plot_history(pd.DataFrame(self.rows), self.workdir / "curves.png")


def plot_history(history: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Return `path` after drawing loss, metric and learning rate per epoch to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    x = history["epoch"] + 1
    for ax, key in zip(axes[:2], ("loss", "accuracy" if "accuracy" in history else "binary_accuracy")):
        for col in (key, f"val_{key}"):
            if col in history:
                ax.plot(x, history[col], marker="o", label=col)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    axes[2].plot(x, history["lr"], marker="o")
    axes[2].set_yscale("log")
    axes[2].set_title("learning rate (end of epoch)")
    for i, row in history.drop_duplicates("stage_index").iterrows():
        for ax in axes:
            ax.axvline(row["epoch"] + 0.5, color="grey", lw=0.5)
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=80)
    return Path(path)


# ---------------------------------------------------------------- recipe
def _class_weights(class_weight, classes, multilabel, targets) -> dict | None:
    if class_weight is None:
        return None
    if multilabel:
        raise ConfigError("class_weight is not supported for multi-label tables; leave it None.")
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ConfigError(f"class_weight={class_weight!r}: use 'balanced', a dict or None.")
        counts = np.bincount(targets, minlength=len(classes)).astype(float)
        counts[counts == 0] = 1.0
        weights = counts.sum() / (len(classes) * counts)
        return {i: float(w) for i, w in enumerate(weights)}
    index = {c: i for i, c in enumerate(classes)}
    return {index.get(str(k), k): float(v) for k, v in class_weight.items()}


def _plan(sizes: Sequence, pretrained: bool, freeze_epochs: int, epochs: int, lr: float,
          lr_mult: Sequence[float]) -> list[dict]:
    plan = []
    for size in sizes:
        if pretrained and freeze_epochs > 0:
            plan.append({"stage": "frozen", "size": size, "epochs": int(freeze_epochs), "lr": lr,
                         "mult": [0.0, 0.0, 1.0]})
        if epochs > 0:
            plan.append({"stage": "unfrozen", "size": size, "epochs": int(epochs), "lr": lr,
                         "mult": list(lr_mult) if pretrained else [1.0, 1.0, 1.0]})
    if not plan:
        raise ConfigError("Nothing to train: give epochs >= 1 (or freeze_epochs >= 1 with pretrained weights).")
    return plan


def _configure(model: keras.Model, stage: dict) -> None:
    base = bb.backbone_of(model)
    base.trainable = stage["stage"] != "frozen"


def _make_optimizer(name: str, schedule, mults: dict, weight_decay: float):
    if name == "adamw":
        return GroupAdamW(learning_rate=schedule, weight_decay=weight_decay, lr_multipliers=mults)
    if name == "sgd":
        return GroupSGD(learning_rate=schedule, momentum=0.9, nesterov=True, lr_multipliers=mults)
    raise ConfigError(f"optimizer={name!r}: use 'adamw' or 'sgd'.")


def _loss_and_metrics(multilabel: bool, label_smoothing: float):
    if multilabel:
        return (keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                [keras.metrics.BinaryAccuracy(name="binary_accuracy")], "multihot")
    if label_smoothing:
        return (keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                [keras.metrics.CategoricalAccuracy(name="accuracy")], "onehot")
    return (keras.losses.SparseCategoricalCrossentropy(),
            [keras.metrics.SparseCategoricalAccuracy(name="accuracy")], "int")


HEAD_STEPS = 300  # at least this many optimizer steps for a head trained on cached features
HEAD_FEATURE_BYTES = 2 << 30  # features of the training images kept in memory up to this size


def _features(model: keras.Model, data: "_Data") -> tuple[np.ndarray, np.ndarray]:
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


def _fit_head_on_features(model: keras.Model, train: "_Data", val: "_Data | None", stage: dict, loss, metrics,
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


def fine_tune(
    data: LabelTable | tuple,
    backbone: str = "resnet50",
    sizes: Sequence[int] | int | None = None,
    weights: str | os.PathLike | None = "imagenet",
    valid: float | LabelTable | tuple | None = 0.2,
    epochs: int = 3,
    freeze_epochs: int = 1,
    lr: float = 1e-3,
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
    mixed_precision: str | bool = "auto",
    distribute: bool | str = "auto",
    workdir: str | os.PathLike | None = None,
    resume: bool = True,
    restore_best: bool = True,
    monitor: str | None = None,
    seed: int = 0,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    fit: str = "squash",
    head_on_features: bool = True,
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
        valid: a fraction held out (stratified), a table / (x, y), or None.
        epochs, freeze_epochs: epochs of the unfrozen and frozen stage per size.
        lr, lr_mult: peak learning rate and the factors for early, late, head.
        schedule: "one_cycle", "sgdr" (with `cycle_len`, `cycle_mult` in epochs) or "constant".
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
    classes, multilabel, n_rows, data_digest = _describe(data)
    entry = bb.get(backbone)
    if sizes is None:
        sizes = [entry.default_size] if isinstance(data, LabelTable) else [None]
    elif np.isscalar(sizes):
        sizes = [sizes]
    sizes = [s if s is None or np.isscalar(s) else tuple(s) for s in sizes]
    pretrained = weights is not None
    plan = _plan(sizes, pretrained, freeze_epochs, epochs, lr, lr_mult)

    # validation data
    train_src, valid_src = data, None
    if isinstance(valid, float):
        if not 0.0 < valid < 1.0:
            raise ConfigError(f"valid={valid}: give a fraction in (0, 1), a table, (x, y) or None.")
        if isinstance(data, LabelTable):
            train_src, valid_src = _split_table(data, valid, seed)
        else:
            train_src, valid_src = _split_arrays(np.asarray(data[0]), np.asarray(data[1]), valid, seed)
    elif isinstance(valid, LabelTable):
        valid_src = valid.with_classes(classes)
    elif isinstance(valid, (tuple, list)):
        valid_src = (np.asarray(valid[0]), np.asarray(valid[1]))
    elif valid is not None:
        raise ConfigError(f"valid={valid!r}: give a fraction in (0, 1), a LabelTable, (x, y) arrays or None.")
    if monitor is None:
        monitor = ("val_loss" if multilabel else "val_accuracy") if valid_src is not None else "loss"
    mode = "min" if "loss" in monitor else "max"

    loss, metrics, target_kind = _loss_and_metrics(multilabel, label_smoothing)
    int_targets = (train_src.targets("int") if isinstance(train_src, LabelTable) else np.asarray(train_src[1])) \
        if class_weight is not None and not multilabel else None
    cw = _class_weights(class_weight, classes, multilabel, int_targets)

    args = {"backbone": entry.name, "sizes": [list(s) if isinstance(s, tuple) else s for s in sizes],
            "weights": str(weights), "valid": valid if isinstance(valid, float) else type(valid).__name__,
            "epochs": epochs, "freeze_epochs": freeze_epochs, "lr": lr, "lr_mult": list(lr_mult),
            "batch_size": batch_size, "schedule": schedule, "cycle_len": cycle_len, "cycle_mult": cycle_mult,
            "optimizer": optimizer, "weight_decay": weight_decay, "label_smoothing": label_smoothing,
            "class_weight": str(class_weight), "dropout": dropout, "augment": str(augment), "seed": seed,
            "head_on_features": bool(head_on_features),
            "classes": list(classes), "multilabel": multilabel, "rows": n_rows, "data": data_digest}
    fingerprint = hashlib.md5(json.dumps(args, sort_keys=True, default=str).encode()).hexdigest()[:10]
    workdir = Path(workdir) if workdir is not None else Path("kagglekit-runs") / f"{entry.name}-{fingerprint}"
    run = _Run(workdir, fingerprint, plan, monitor, mode)
    state = run.load_state() if resume else None

    strategy = _Strategy(distribute)
    policy = _auto_policy() if mixed_precision == "auto" else (
        ("mixed_bfloat16" if _backend() == "jax" else "mixed_float16") if mixed_precision is True else
        (mixed_precision or None))
    keras.utils.set_random_seed(seed)
    if augment is True:
        augment_layer = default_augmentation()
    else:
        augment_layer = augment or None

    previous_policy = keras.config.dtype_policy()
    with strategy.scope():
        try:
            if policy:
                keras.config.set_dtype_policy(policy)
            # On resume the checkpoint overwrites all weights: skip fetching pretrained ones.
            model = bb.build_model(entry, len(classes), multilabel, None if state else weights,
                                   dropout=dropout, augment=augment_layer)
        finally:
            keras.config.set_dtype_policy(previous_policy)
        if state:
            model.set_weights(load_arrays(workdir / state["weights"]))
        start_stage = 0
        start_epoch = 0
        if state:
            start_stage, start_epoch = state["stage_index"], state["stage_epochs_done"]
            if start_epoch >= plan[start_stage]["epochs"]:
                start_stage, start_epoch = start_stage + 1, 0
        settings = {"backbone": entry.name, "weights": str(weights), "sizes": args["sizes"],
                    "preprocess": entry.preprocess, "policy": policy, "workdir": str(workdir),
                    "recipe": args, "fingerprint": fingerprint, "distribution": strategy.kind}
        batch = batch_size
        if strategy.replicas > 1 and batch % strategy.replicas:
            batch = (batch // strategy.replicas + 1) * strategy.replicas
        for index in range(start_stage, len(plan)):
            stage = plan[index]
            size = stage["size"]
            train = _Data(train_src, size, batch, True, seed + index, target_kind, strategy.replicas, fit,
                          len(classes))
            val = _Data(valid_src, size, batch, False, seed, target_kind, strategy.replicas, fit, len(classes)) \
                if valid_src is not None else None
            _configure(model, stage)
            mults = group_multipliers(model, stage["mult"], entry.name)
            sched = make_schedule(schedule, stage["lr"], train.steps, stage["epochs"], cycle_len, cycle_mult)
            model.compile(optimizer=_make_optimizer(optimizer, sched, mults, weight_decay), loss=loss,
                          metrics=[m.__class__.from_config(m.get_config()) for m in metrics])
            initial_epoch = 0
            if state and index == start_stage and start_epoch > 0:
                _restore_optimizer(model, workdir / state["optimizer"])
                initial_epoch = start_epoch
            fit_kwargs = dict(epochs=stage["epochs"], initial_epoch=initial_epoch, verbose=verbose,
                              class_weight=cw, callbacks=[*train.callbacks, _Recorder(run, index), *callbacks])
            if val is not None:
                fit_kwargs["validation_data"] = val.feed if val.feed is not None else (val.x, val.y)
            if (head_on_features and stage["stage"] == "frozen" and initial_epoch == 0
                    and _can_fit_head_on_features(model, train.steps * batch, strategy.replicas)):
                t0 = time.perf_counter()
                # the stage counts as its `epochs` epochs done: one history row, one checkpoint
                hooks = keras.callbacks.CallbackList([_Recorder(run, index), *callbacks], model=model)
                last = stage["epochs"] - 1
                hooks.on_train_begin()
                hooks.on_epoch_begin(last)
                logs, head_epochs = _fit_head_on_features(model, train, val, stage, loss, metrics, cw, weight_decay,
                                                          seed + index)
                if verbose:
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items())
                    print(f"kagglekit: stage {index + 1}/{len(plan)} frozen at size {size}: head trained on the "
                          f"backbone's cached features, {head_epochs} epochs, lr {stage['lr']:g} "
                          f"({time.perf_counter() - t0:.0f} s): {shown}")
                hooks.on_epoch_end(last, logs)
                hooks.on_train_end(logs)
                run.plot()
                continue
            if verbose:
                print(f"kagglekit: stage {index + 1}/{len(plan)} {stage['stage']} at size {size}, "
                      f"{stage['epochs']} epochs, lr {stage['lr']:g} x {[round(m, 3) for m in stage['mult']]}")
            if train.feed is not None:  # already shuffled per epoch by its seed
                model.fit(train.feed, shuffle=False, **fit_kwargs)
            else:
                model.fit(train.x, train.y, batch_size=batch, shuffle=True, **fit_kwargs)
            run.plot()
        final_size = plan[-1]["size"]
        if restore_best and run.best is not None and (workdir / run.best["file"]).is_file():
            model.set_weights(load_arrays(workdir / run.best["file"]))
            final_size = run.best["size"]
            settings["best"] = run.best
    bb.backbone_of(model).trainable = True
    if final_size is None and not isinstance(data, LabelTable):
        final_size = tuple(np.asarray(data[0]).shape[1:3])
    return Learner(model, classes, multilabel, final_size, settings, pd.DataFrame(run.rows))


def save_arrays(path: str | os.PathLike, arrays: Sequence[np.ndarray]) -> Path:
    """Return `path` after writing `arrays` (in order) to an ``.npz`` file atomically."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, *arrays)
    return Path(path)


def load_arrays(path: str | os.PathLike) -> list[np.ndarray]:
    """Return the arrays written by :func:`save_arrays`, in order."""
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _restore_optimizer(model: keras.Model, path: Path) -> None:
    opt = model.optimizer
    inner = getattr(opt, "inner_optimizer", opt)
    if not inner.built:
        opt.build(model.trainable_variables)
    values = load_arrays(path)
    if len(values) != len(opt.variables):
        raise KaggleKitError(
            f"The optimizer state in {path} has {len(values)} arrays, the new optimizer {len(opt.variables)}; "
            "delete the run folder to start over."
        )
    for var, value in zip(opt.variables, values):
        var.assign(value)


def default_augmentation() -> keras.layers.Layer:
    """Return the pipeline's default augmentation (flip, small rotation, zoom, contrast) as Keras layers."""
    try:
        from .pipeline import augmentation
    except ImportError:
        augmentation = None
    if augmentation is not None:
        return augmentation()
    return keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.05),
                             keras.layers.RandomZoom(0.1), keras.layers.RandomContrast(0.1, value_range=(0, 255))],
                            name="augment")


# ---------------------------------------------------------------- lr_find
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
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.plot(self.lrs, self.losses)
        ax.axvline(self.suggestion, color="red", ls="--", label=f"suggestion {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss (smoothed)")
        ax.legend()
        fig.tight_layout()
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=80)
        return Path(path)


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
    classes, multilabel, _, _ = _describe(data)
    loss, metrics, target_kind = _loss_and_metrics(multilabel, label_smoothing)
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
