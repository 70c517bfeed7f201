"""Backbone registry: name -> constructor, preprocessing, default size, layer groups, weights.

Every entry builds a headless Keras model with a flexible spatial input
``(None, None, 3)``. :func:`build_model` puts kagglekit's :class:`Preprocess`
layer in front (so models take raw 0..255 pixels, uint8 or float, on any
backend) and a classification head behind (pooling, dropout, a float32 Dense
with softmax or sigmoid).

Weights are ``"imagenet"`` (the Keras cache, then the notebook input root
``kagglekit.io.input_root()``, ``/kaggle/input/**``, then a download when online), a local file (``*_notop.h5`` as ``keras.applications``
ships them, ``*.weights.h5``, ``*.keras``) or ``None``.

The registry (names, sizes, preprocessing modes, weight file names: :func:`names`,
:func:`get`, :func:`describe`) imports no keras; keras is imported only when a model
is built or weights are loaded (the Keras half lives in ``kagglekit.backbones.layers``).
"""
from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import ConfigError, WeightsError
from ..io import input_root
from .preprocessing import PREPROCESS_MODES

if TYPE_CHECKING:  # keras is imported only where a model is built or weights are loaded
    import keras

#: Seconds a weights download may wait on the network (connect or read) before giving up.
DOWNLOAD_TIMEOUT: float = 15.0

#: Names this package serves lazily from its Keras half (``layers``): importing them imports keras.
_KERAS_NAMES = ("Preprocess", "small_resnet")


def __getattr__(name: str) -> Any:
    if name in _KERAS_NAMES:
        from . import layers

        return getattr(layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        import keras

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
def _small(**options: Any) -> Callable[..., "keras.Model"]:
    """Return a constructor of :func:`~kagglekit.backbones.layers.small_resnet` with `options` (keras imported when called)."""
    def construct(input_shape=(None, None, 3), weights=None):
        from .layers import small_resnet

        return small_resnet(input_shape, weights, **options)

    construct.__name__ = f"small_resnet({options.get('name', 'resnet_small')})"
    return construct


register("resnet_small", _small(name="resnet_small"), "unit", 32, "stage2_", None, min_size=8)
register("resnet_tiny", _small(widths=(16, 32, 64), blocks=1, name="resnet_tiny"), "unit", 32, "stage2_", None,
         min_size=8)
register(  # resnet_small's widths at resnet_tiny's cost: the first stage already works at half size
    "resnet_compact", _small(widths=(32, 64, 128), blocks=1, name="resnet_compact", strides=(2, 2, 2)),
    "unit", 32, "stage2_", None, min_size=8,
)
register(  # resnet_tiny's widths, every stage at half the size before: a quarter of resnet_compact's cost
    "resnet_micro", _small(widths=(16, 32, 64), blocks=1, name="resnet_micro", strides=(2, 2, 2)),
    "unit", 32, "stage2_", None, min_size=8,
)
register("wide_resnet", _small(widths=(96, 192, 384), blocks=2, name="wide_resnet"), "unit", 32, "stage2_", None,
         min_size=8)


# ------------------------------------------------------------------ weights
def keras_cache_dir() -> Path:
    """Return the folder where Keras caches downloaded model weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def find_weights_file(filename: str, roots: Sequence[str | os.PathLike] | None = None) -> Path | None:
    """Return the first file called `filename` in the Keras cache or under the input root, or None."""
    if roots is None:
        roots = [keras_cache_dir(), input_root()]
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
    import keras

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
                f"({download_failure(exc)}). Attach the file {entry.weights_file!r} "
                "(on Kaggle: Add Data -> a dataset holding the keras.applications weights, e.g. search "
                f"'keras pretrained models'; it is then found under {input_root()} automatically), copy it to "
                f"{keras_cache_dir()}, or pass its path: fine_tune(..., weights='/path/to/{entry.weights_file}')."
            ) from exc
        finally:
            socket.setdefaulttimeout(previous)
    return _load_from_file(entry, Path(weights), input_shape)


def download_failure(exc: BaseException) -> str:
    """Say in words why a download failed: a server that never answered, or the error it gave."""
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in seen:
        seen.append(cause)
        reason = getattr(cause, "reason", None)
        if isinstance(cause, TimeoutError) or isinstance(reason, TimeoutError):
            return f"no answer from the server within {DOWNLOAD_TIMEOUT:g} s"
        cause = cause.__cause__ or cause.__context__
    return f"offline? {type(exc).__name__}: {str(exc)[:200]}"


def _load_from_file(entry: Backbone, path: Path, input_shape: tuple) -> keras.Model:
    if not path.is_file():
        raise WeightsError(
            f"Weights file {path} does not exist. Pass weights='imagenet', None, or the path of an existing "
            "'*_notop.h5', '*.weights.h5' or '*.keras' file."
        )
    name = path.name
    try:
        if name.endswith(".keras"):
            import keras

            from .layers import Preprocess  # noqa: F401  (registers the layer for loading)

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
    import keras
    from keras import layers

    from .layers import Preprocess

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
    import keras

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
