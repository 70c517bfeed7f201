"""Backbone registry: name -> constructor, preprocessing, default size, layer groups, weights.

Every entry builds a headless Keras model with a flexible spatial input
``(None, None, 3)``. :func:`build_model` puts kagglekit's :class:`Preprocess`
layer in front (so models take raw 0..255 pixels, uint8 or float, on any
backend) and a classification head behind (pooling, dropout, a float32 Dense
with softmax or sigmoid).

Weights are ``"imagenet"`` (the Keras cache, then ``/kaggle/input/**``, then a
download when online), a local file (``*_notop.h5`` as ``keras.applications``
ships them, ``*.weights.h5``, ``*.keras``) or ``None``.
"""
from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Callable, Sequence

import keras
from keras import layers, ops

from .errors import ConfigError, WeightsError

#: Where Kaggle mounts attached datasets; searched for standard weight files.
#: Override with the ``KAGGLEKIT_INPUT`` environment variable or by assigning this.
INPUT_ROOT: str = os.environ.get("KAGGLEKIT_INPUT", "/kaggle/input")
#: Seconds a weights download may wait on the network (connect or read) before giving up.
DOWNLOAD_TIMEOUT: float = 15.0

_MEANS = {
    "caffe": (103.939, 116.779, 123.68),  # BGR
    "torch": (0.485 * 255, 0.456 * 255, 0.406 * 255),
}
_STDS = {"torch": (0.229 * 255, 0.224 * 255, 0.225 * 255)}
PREPROCESS_MODES = ("none", "caffe", "tf", "torch", "unit")


@keras.saving.register_keras_serializable(package="kagglekit")
class Preprocess(layers.Layer):
    """Turn raw 0..255 pixels (uint8 or float) into what a backbone expects.

    Modes follow ``keras.applications.imagenet_utils.preprocess_input``:
    ``caffe`` (RGB->BGR, subtract the ImageNet mean), ``tf`` (scale to -1..1),
    ``torch`` (0..1 then ImageNet mean/std), ``unit`` (0..1) and ``none``
    (cast only; EfficientNet and ConvNeXt normalise inside themselves).
    """

    def __init__(self, mode: str = "none", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ConfigError(f"Unknown preprocessing mode {mode!r}; use one of {PREPROCESS_MODES}.")
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(_MEANS["caffe"], dtype=self.compute_dtype)
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        elif self.mode == "torch":
            mean = ops.convert_to_tensor(_MEANS["torch"], dtype=self.compute_dtype)
            std = ops.convert_to_tensor(_STDS["torch"], dtype=self.compute_dtype)
            x = (x - mean) / std
        elif self.mode == "unit":
            x = x / 255.0
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One registry entry.

    Attributes:
        name: registry key.
        constructor: ``f(input_shape, weights) -> keras.Model`` without a top;
            ``weights`` is None or a path to an ``.h5`` file it should load.
        preprocess: a :class:`Preprocess` mode applied inside the model.
        default_size: the input size the backbone was trained at.
        split: name prefix of the first layer of the ``late`` group (layers
            before it form ``early``); None splits the layers in half.
        weights_file: the standard ``keras.applications`` no-top file name for
            ImageNet weights (None: no ImageNet weights exist).
        min_size: the smallest input the backbone accepts.
    """

    name: str
    constructor: Callable[..., keras.Model]
    preprocess: str = "none"
    default_size: int = 224
    split: str | None = None
    weights_file: str | None = None
    min_size: int = 32


_REGISTRY: dict[str, Backbone] = {}


def register(
    name: str,
    constructor: Callable[..., keras.Model],
    preprocess: str = "none",
    default_size: int = 224,
    split: str | None = None,
    weights_file: str | None = None,
    min_size: int = 32,
    overwrite: bool = False,
) -> Backbone:
    """Return the new registry entry after adding a backbone under `name`.

    `constructor(input_shape, weights)` must return a headless ``keras.Model``
    whose input is ``input_shape`` (``(None, None, 3)``) and which loads the
    ``.h5`` file at `weights` when it is not None.
    """
    if preprocess not in PREPROCESS_MODES:
        raise ConfigError(f"Unknown preprocess {preprocess!r} for backbone {name!r}; use one of {PREPROCESS_MODES}.")
    key = name.lower()
    if key in _REGISTRY and not overwrite:
        raise ConfigError(f"A backbone named {name!r} is already registered; pass overwrite=True to replace it.")
    entry = Backbone(key, constructor, preprocess, default_size, split, weights_file, min_size)
    _REGISTRY[key] = entry
    return entry


def names() -> list[str]:
    """Return the registered backbone names, sorted."""
    return sorted(_REGISTRY)


def describe() -> str:
    """Return a text table of the registered backbones: size, preprocessing and ImageNet weights file."""
    rows = [("name", "size", "preprocess", "ImageNet weights file (attach it offline)")]
    rows += [(e.name, str(e.default_size), e.preprocess, e.weights_file or "none (train from scratch)")
             for e in (_REGISTRY[n] for n in names())]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows)


def get(name: str | Backbone) -> Backbone:
    """Return the registry entry for `name` (raises ConfigError naming the choices)."""
    if isinstance(name, Backbone):
        return name
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ConfigError(
            f"Unknown backbone {name!r}. Registered: {', '.join(names())}. "
            "Register your own with kagglekit.backbones.register(name, constructor, ...)."
        )
    return _REGISTRY[key]


# ------------------------------------------------------------------ keras.applications
def _app(fn_name: str) -> Callable[..., keras.Model]:
    def construct(input_shape, weights=None):
        fn = getattr(keras.applications, fn_name)
        return fn(include_top=False, weights=weights, input_shape=input_shape)

    construct.__name__ = f"keras.applications.{fn_name}"
    return construct


_RESNET_FILE = "{}_weights_tf_dim_ordering_tf_kernels_notop.h5"
for _name, _fn, _pre, _size, _split in [
    ("vgg16", "VGG16", "caffe", 224, "block4_"),
    ("vgg19", "VGG19", "caffe", 224, "block4_"),
    ("resnet50", "ResNet50", "caffe", 224, "conv4_"),
    ("resnet101", "ResNet101", "caffe", 224, "conv4_"),
    ("resnet152", "ResNet152", "caffe", 224, "conv4_"),
    ("resnet50v2", "ResNet50V2", "tf", 224, "conv4_"),
]:
    register(_name, _app(_fn), _pre, _size, _split, _RESNET_FILE.format(_name))
for _i, _size in enumerate((224, 240, 260, 300)):
    register(f"efficientnetb{_i}", _app(f"EfficientNetB{_i}"), "none", _size, "block4", f"efficientnetb{_i}_notop.h5")
register("convnext_tiny", _app("ConvNeXtTiny"), "none", 224, "convnext_tiny_stage_2", "convnext_tiny_notop.h5")
register(
    "mobilenetv2", _app("MobileNetV2"), "tf", 224, "block_7_",
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
)


# ------------------------------------------------------------------ small ResNets from scratch
def small_resnet(
    input_shape=(None, None, 3),
    weights: str | None = None,
    widths: Sequence[int] = (32, 64, 128),
    blocks: int = 1,
    name: str = "resnet_small",
    strides: Sequence[int] | None = None,
) -> keras.Model:
    """Return a pre-activation ResNet for 28-64 px inputs (one stage per width).

    `strides` gives each stage's stride (default 1 for the first, 2 for the others).
    """
    strides = list(strides) if strides is not None else [1] + [2] * (len(widths) - 1)
    if len(strides) != len(widths):
        raise ConfigError(f"strides={strides} needs one stride per stage ({len(widths)} widths).")
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    for s, width in enumerate(widths):
        for b in range(blocks):
            pre = f"stage{s + 1}_block{b + 1}_"
            stride = int(strides[s]) if b == 0 else 1
            h = layers.BatchNormalization(momentum=0.9, name=pre + "bn1")(x)
            h = layers.Activation("relu", name=pre + "relu1")(h)
            if stride != 1 or x.shape[-1] != width:
                shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False, name=pre + "proj")(h)
            else:
                shortcut = x
            h = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=pre + "conv1")(h)
            h = layers.BatchNormalization(momentum=0.9, name=pre + "bn2")(h)
            h = layers.Activation("relu", name=pre + "relu2")(h)
            h = layers.Conv2D(width, 3, padding="same", use_bias=False, name=pre + "conv2")(h)
            x = layers.Add(name=pre + "add")([shortcut, h])
    x = layers.BatchNormalization(momentum=0.9, name="final_bn")(x)
    x = layers.Activation("relu", name="final_relu")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


register("resnet_small", small_resnet, "unit", 32, "stage2_", None, min_size=8)
register(
    "resnet_tiny",
    lambda input_shape=(None, None, 3), weights=None: small_resnet(
        input_shape, weights, widths=(16, 32, 64), blocks=1, name="resnet_tiny"
    ),
    "unit", 32, "stage2_", None, min_size=8,
)
register(
    "resnet_compact",  # resnet_small's widths at resnet_tiny's cost: the first stage already works at half size
    lambda input_shape=(None, None, 3), weights=None: small_resnet(
        input_shape, weights, widths=(32, 64, 128), blocks=1, name="resnet_compact", strides=(2, 2, 2)
    ),
    "unit", 32, "stage2_", None, min_size=8,
)
register(
    "wide_resnet",
    lambda input_shape=(None, None, 3), weights=None: small_resnet(
        input_shape, weights, widths=(96, 192, 384), blocks=2, name="wide_resnet"
    ),
    "unit", 32, "stage2_", None, min_size=8,
)


# ------------------------------------------------------------------ weights
def keras_cache_dir() -> Path:
    """Return the folder where Keras caches downloaded model weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def find_weights_file(filename: str, roots: Sequence[str | os.PathLike] | None = None) -> Path | None:
    """Return the first file called `filename` in the Keras cache or under the input root, or None."""
    if roots is None:
        roots = [keras_cache_dir(), INPUT_ROOT]
    for root in roots:
        root = Path(root)
        if (root / filename).is_file():
            return root / filename
        if not root.is_dir():
            continue
        for folder, _dirs, files in os.walk(root, followlinks=True):
            if filename in files:
                return Path(folder) / filename
    return None


def _copy_backbone_weights(source: keras.Model, target: keras.Model, path: Path) -> None:
    """Copy weights from a saved model (a bare backbone or a kagglekit classifier) into `target`."""
    candidates = [source] + [layer for layer in source.layers if isinstance(layer, keras.Model)]
    shapes = [tuple(w.shape) for w in target.weights]
    for cand in candidates:
        if [tuple(w.shape) for w in cand.weights] == shapes:
            target.set_weights(cand.get_weights())
            return
    raise WeightsError(
        f"{path} holds no model whose weights fit the {target.name!r} backbone "
        f"({len(shapes)} weight arrays expected). Pass a file saved from the same backbone "
        "(Learner.save_backbone(path) or Learner.model.save(path))."
    )


def load_backbone(
    name: str | Backbone,
    weights: str | os.PathLike | None = None,
    input_shape: tuple = (None, None, 3),
    roots: Sequence[str | os.PathLike] | None = None,
) -> keras.Model:
    """Return the headless backbone `name` with `weights` ("imagenet", a file path or None) loaded.

    Raises WeightsError, fast, when ImageNet weights are neither cached nor
    attached and the machine is offline; the message names the file to attach.
    """
    entry = get(name)
    if weights is None:
        return entry.constructor(input_shape, None)
    if isinstance(weights, str) and weights.lower() == "imagenet":
        if entry.weights_file is None:
            raise WeightsError(
                f"Backbone {entry.name!r} has no ImageNet weights; pass weights=None (train from scratch) "
                "or a weights file path."
            )
        found = find_weights_file(entry.weights_file, roots)
        if found is not None:
            return _load_from_file(entry, found, input_shape)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # Keras' downloader has no timeout of its own
        try:
            return entry.constructor(input_shape, "imagenet")
        except Exception as exc:  # noqa: BLE001 - any download failure means: attach the file
            raise WeightsError(
                f"ImageNet weights for {entry.name!r} are not cached and could not be downloaded "
                f"(offline? {type(exc).__name__}: {str(exc)[:200]}). Attach the file {entry.weights_file!r} "
                "(on Kaggle: Add Data -> a dataset holding the keras.applications weights, e.g. search "
                f"'keras pretrained models'; it is then found under {INPUT_ROOT} automatically), copy it to "
                f"{keras_cache_dir()}, or pass its path: fine_tune(..., weights='/path/to/{entry.weights_file}')."
            ) from exc
        finally:
            socket.setdefaulttimeout(previous)
    return _load_from_file(entry, Path(weights), input_shape)


def _load_from_file(entry: Backbone, path: Path, input_shape: tuple) -> keras.Model:
    if not path.is_file():
        raise WeightsError(
            f"Weights file {path} does not exist. Pass weights='imagenet', None, or the path of an existing "
            "'*_notop.h5', '*.weights.h5' or '*.keras' file."
        )
    name = path.name
    try:
        if name.endswith(".keras"):
            from . import learner  # noqa: F401  (registers kagglekit's custom objects)

            source = keras.saving.load_model(path, compile=False, safe_mode=False)
            model = entry.constructor(input_shape, None)
            _copy_backbone_weights(source, model, path)
            return model
        if name.endswith(".weights.h5"):
            model = entry.constructor(input_shape, None)
            model.load_weights(path)
            return model
        if name.endswith(".h5"):
            return entry.constructor(input_shape, str(path))
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - report any loader failure with the fix
        raise WeightsError(
            f"Could not load weights {path} into backbone {entry.name!r}: {type(exc).__name__}: {exc}. "
            f"Check that the file was saved from {entry.name!r} without its top "
            f"(ImageNet file name: {entry.weights_file or 'none'})."
        ) from exc
    raise WeightsError(
        f"Unsupported weights file {path}: use a '*_notop.h5' file (keras.applications), "
        "a '*.weights.h5' file (model.save_weights) or a '*.keras' model."
    )


def build_model(
    backbone: str | Backbone,
    n_classes: int,
    multilabel: bool = False,
    weights: str | os.PathLike | None = None,
    dropout: float = 0.25,
    pooling: str = "avg",
    augment: keras.layers.Layer | None = None,
    roots: Sequence[str | os.PathLike] | None = None,
) -> keras.Model:
    """Return a classifier: raw pixels -> [augment] -> preprocess -> backbone -> pool -> dropout -> Dense.

    The input is ``(None, None, 3)`` (any size, 0..255 pixels); the output layer
    ``predictions`` is float32 (softmax, or sigmoid when `multilabel`) even
    under mixed precision. The backbone is a nested model named as in the registry.
    """
    entry = get(backbone)
    if pooling not in ("avg", "max"):
        raise ConfigError(f"pooling={pooling!r} is not supported; use 'avg' or 'max'.")
    base = load_backbone(entry, weights, roots=roots)
    inputs = keras.Input((None, None, 3), name="pixels")
    x = inputs
    if augment is not None:
        x = augment(x)
    x = Preprocess(entry.preprocess, name="preprocess")(x)
    x = base(x)
    pool = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
    x = pool(name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    activation = "sigmoid" if multilabel else "softmax"
    outputs = layers.Dense(n_classes, activation=activation, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"kagglekit_{entry.name}")


def backbone_of(model: keras.Model) -> keras.Model:
    """Return the nested backbone model inside a classifier built by :func:`build_model`."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if not nested:
        raise ConfigError(f"Model {model.name!r} has no nested backbone; build it with kagglekit.backbones.build_model.")
    return max(nested, key=lambda m: len(m.weights))


def layer_groups(model: keras.Model, backbone: str | Backbone | None = None) -> dict[str, list[keras.layers.Layer]]:
    """Return the layers of a classifier in groups ``early``, ``late`` (the backbone) and ``head`` (the rest).

    The backbone is split at its registry entry's `split` prefix, else in half.
    """
    base = backbone_of(model)
    inner = [layer for layer in base.layers if layer.weights]
    split_at = None
    entry = None
    if backbone is not None:
        try:
            entry = get(backbone)
        except ConfigError:
            entry = None
    if entry is not None and entry.split:
        split_at = next((i for i, layer in enumerate(inner) if layer.name.startswith(entry.split)), None)
    if split_at is None:
        split_at = len(inner) // 2
    head = [layer for layer in model.layers if layer is not base and layer.weights]
    return {"early": inner[:split_at], "late": inner[split_at:], "head": head}
