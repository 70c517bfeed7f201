"""Backbone registry: name -> constructor, preprocessing, default size, layer groups, weights.

Every entry builds a headless Keras model with a flexible spatial input
``(None, None, 3)``. :func:`build_model` puts kagglekit's :class:`Preprocess`
layer in front (so models take raw 0..255 pixels, uint8 or float, on any
backend) and a classification head behind (pooling, dropout, a float32 Dense
with softmax or sigmoid).

Weights are ``"imagenet"`` (the Keras cache, then the notebook input root
``kagglekit.io.input_root()``, ``/kaggle/input/**``, then a download when online), a local file (``*_notop.h5`` as ``keras.applications``
ships them, ``*.weights.h5``, ``*.keras``) or ``None``.

KerasHub presets (``hub:<preset>``, a registered preset name, or the path of a preset folder) are
built by ``kagglekit.backbones.hub``: found offline under the input root as Kaggle Models mount them,
else downloaded; preprocessed as their image converter says; token outputs pooled by ``TokenPool``.

Every architecture is one record (:class:`Backbone`, listed in ``kagglekit.backbones.catalog``) holding
its cost facts too (forward GFLOPs, parameters, slowness, training memory): the time-budget plan reads
them here. The registry (names, sizes, preprocessing modes, weight file names, cost facts: :func:`names`,
:func:`get`, :func:`describe`) imports no keras; keras is imported only when a model
is built or weights are loaded (the Keras half lives in ``kagglekit.backbones.layers``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import ConfigError, WeightsError
from ..io import input_root
from . import catalog
from .preprocessing import PREPROCESS_MODES

if TYPE_CHECKING:  # keras is imported only where a model is built or weights are loaded
    import keras

#: Seconds a weights download may wait on the network (connect or read) before giving up.
DOWNLOAD_TIMEOUT: float = 15.0

#: Names this package serves lazily from its Keras half (``layers``): importing them imports keras.
_KERAS_NAMES = ("Preprocess", "TokenPool", "small_resnet")


def __getattr__(name: str) -> Any:
    if name in _KERAS_NAMES:
        from . import layers

        return getattr(layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Where an entry's pretrained weights come from (`Backbone.source`).
SOURCES = ("keras.applications", "kagglekit", "keras_hub", "custom")
#: How a token sequence (ViT-style output) is pooled: its class token or the mean of its tokens.
TOKEN_POOLING = ("cls", "mean")
# A backbone without cost facts is planned as a ResNet50: 8.2 forward GFLOPs and 90 MB an image at 224 px.
_UNKNOWN_GFLOPS, _UNKNOWN_MB, _UNKNOWN_SIZE = 8.2, 90.0, 224


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One registry entry: how to build an architecture, and its cost facts (one record, read by everything else).

    Attributes:
        name: registry key.
        constructor: ``f(input_shape, weights) -> keras.Model`` without a top;
            ``weights`` is None or a path to an ``.h5`` file it should load
            (None for KerasHub entries: ``kagglekit.backbones.hub`` builds them from their preset).
        preprocess: a :class:`Preprocess` mode applied inside the model (KerasHub entries: the
            fallback when the preset holds no image converter).
        default_size: the input size the backbone was trained at.
        split: name prefix of the first layer of the ``late`` group (layers
            before it form ``early``); None splits the layers in half.
        weights_file: the standard ``keras.applications`` no-top file name for
            ImageNet weights (None: no such file).
        min_size: the smallest input the backbone accepts.
        family: the architecture family (``efficientnetv2``, ``vit``, ...).
        source: one of `SOURCES`: where pretrained weights come from.
        params: parameters without the top (None: unknown).
        gflops: forward GFLOPs of one image at `default_size` (None: unknown, planned as a ResNet50).
        slowness: seconds per FLOP relative to a dense convolution network (an estimate).
        cpu_slowness: the same, measured on CPU (replaces `slowness` there), or None.
        memory_mb: training memory of one image at `default_size` in MB (an estimate; None: unknown).
        preset: the KerasHub preset name, or the path of a preset folder.
        kaggle_handle: the Kaggle Models handle of the preset (``keras/vit/keras/<preset>/<version>``),
            mounted in a notebook at ``/kaggle/input/<model>/keras/<preset>/<version>``.
        pooling: how a token output is pooled (`TOKEN_POOLING`); feature maps are averaged.
    """

    name: str
    constructor: Callable[..., keras.Model] | None
    preprocess: str = "none"
    default_size: int = 224
    split: str | None = None
    weights_file: str | None = None
    min_size: int = 32
    family: str = "custom"
    source: str = "custom"
    params: int | None = None
    gflops: float | None = None
    slowness: float = 1.0
    cpu_slowness: float | None = None
    memory_mb: float | None = None
    preset: str | None = None
    kaggle_handle: str | None = None
    pooling: str = "cls"

    @property
    def pretrained(self) -> bool:
        """Return True when pretrained weights exist for this entry (a weights file or a KerasHub preset)."""
        return bool(self.weights_file or self.preset)

    @property
    def from_scratch(self) -> bool:
        """Return True for kagglekit's small ResNets, made to be trained from scratch on small images."""
        return self.source == "kagglekit"

    def forward_gflops(self, size: float) -> float:
        """Return the forward GFLOPs of one `size` x `size` image (unknown entries: as a ResNet50)."""
        if self.gflops is None:
            return _UNKNOWN_GFLOPS * (size / _UNKNOWN_SIZE) ** 2
        return self.gflops * (size / self.default_size) ** 2

    def memory_mb_at(self, size: float) -> float:
        """Return the training memory of one `size` x `size` image in MB (unknown entries: as a ResNet50)."""
        if self.memory_mb is None:
            return _UNKNOWN_MB * (size / _UNKNOWN_SIZE) ** 2
        return self.memory_mb * (size / self.default_size) ** 2

    def slowness_on(self, kind: str) -> float:
        """Return the slowness per FLOP on hardware `kind` ("cpu", "gpu", "tpu"): measured on CPU where known."""
        if kind == "cpu":
            return self.slowness if self.cpu_slowness is None else self.cpu_slowness
        return 1.0 + (self.slowness - 1.0) / 2  # accelerators suffer less from depthwise convolutions

    def weights_source(self) -> str:
        """Return where the pretrained weights come from, in words."""
        if self.source == "keras.applications":
            return "keras.applications ImageNet" + (" (21k pretrained)" if self.family == "convnext"
                                                    and not self.name.endswith(("tiny", "small")) else "")
        if self.source == "keras_hub":
            return "KerasHub preset" + (" (Kaggle Models)" if self.kaggle_handle else "")
        if self.source == "kagglekit":
            return "none: trained from scratch"
        return "a weights file" if self.weights_file else "none"

    def attach(self) -> str:
        """Return what to attach to a Kaggle notebook for pretrained weights offline: a file name or a handle."""
        if self.kaggle_handle:
            return f"Kaggle Models {self.kaggle_handle}"
        if self.preset:
            return f"a preset folder named {Path(self.preset).name} (config.json, model.weights.h5)"
        return self.weights_file or "-"


_REGISTRY: dict[str, Backbone] = {}
_FACTS = tuple(f.name for f in dataclasses.fields(Backbone))[7:]


def register(
    name: str,
    constructor: Callable[..., keras.Model] | None,
    preprocess: str = "none",
    default_size: int = 224,
    split: str | None = None,
    weights_file: str | None = None,
    min_size: int = 32,
    overwrite: bool = False,
    **facts: Any,
) -> Backbone:
    """Return the new registry entry after adding a backbone under `name`.

    `constructor(input_shape, weights)` must return a headless ``keras.Model``
    whose input is ``input_shape`` (``(None, None, 3)``) and which loads the
    ``.h5`` file at `weights` when it is not None. `facts` are the other
    :class:`Backbone` fields (family, source, params, gflops, slowness, ...).
    """
    if preprocess not in PREPROCESS_MODES:
        raise ConfigError(f"Unknown preprocess {preprocess!r} for backbone {name!r}; use one of {PREPROCESS_MODES}.")
    unknown = sorted(set(facts) - set(_FACTS))
    if unknown:
        raise ConfigError(f"Unknown backbone facts {unknown} for {name!r}; use any of {list(_FACTS)}.")
    if facts.get("source", "custom") not in SOURCES:
        raise ConfigError(f"Unknown source {facts['source']!r} for backbone {name!r}; use one of {SOURCES}.")
    if facts.get("pooling", "cls") not in TOKEN_POOLING:
        raise ConfigError(f"Unknown pooling {facts['pooling']!r} for backbone {name!r}; use one of {TOKEN_POOLING}.")
    key = name.lower()
    if key in _REGISTRY and not overwrite:
        raise ConfigError(f"A backbone named {name!r} is already registered; pass overwrite=True to replace it.")
    entry = Backbone(key, constructor, preprocess=preprocess, default_size=default_size, split=split,
                     weights_file=weights_file, min_size=min_size, **facts)
    _REGISTRY[key] = entry
    return entry


def names() -> list[str]:
    """Return the registered backbone names, sorted."""
    return sorted(_REGISTRY)


def _params_text(params: int | None) -> str:
    if params is None:
        return "?"
    return f"{params / 1e6:.1f}M" if params >= 1e5 else f"{params / 1e3:.0f}k"


def describe(markdown: bool = False) -> str:
    """Return a table of the registered backbones: family, parameters, size, GFLOPs, weights and what to attach.

    `markdown`: a Markdown table (as docs/backbones.md shows it), else aligned text.
    """
    rows = [("name", "family", "params", "size", "GFLOPs", "weights from", "attach offline")]
    rows += [(e.name, e.family, _params_text(e.params), str(e.default_size),
              "?" if e.gflops is None else f"{e.gflops:.3g}", e.weights_source(), e.attach())
             for e in (_REGISTRY[n] for n in sorted(names(), key=lambda n: (_REGISTRY[n].source, _REGISTRY[n].family,
                                                                             _REGISTRY[n].params or 0, n)))]
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return "\n".join(lines + ["| " + " | ".join(f"`{c}`" if i in (0, 6) and c != "-" else c
                                                     for i, c in enumerate(r)) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows)


def get(name: str | Backbone) -> Backbone:
    """Return the registry entry for `name`: a registered name, ``hub:<preset>`` or a KerasHub preset folder.

    Raises ConfigError naming the choices.
    """
    if isinstance(name, Backbone):
        return name
    spec = str(name)
    key = spec.lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key.startswith("hub:"):
        return _hub_entry(spec[4:])
    if os.sep in spec or "/" in spec or Path(spec).is_dir():
        return _folder_entry(Path(spec))
    raise ConfigError(
        f"Unknown backbone {name!r}. Registered: {', '.join(names())}; or hub:<KerasHub preset>, or the path of a "
        "KerasHub preset folder. Register your own with kagglekit.backbones.register(name, constructor, ...)."
    )


def _hub_entry(preset: str) -> Backbone:
    """Return the entry of KerasHub preset `preset`: the registered one, else one registered now (cost unknown)."""
    if not preset:
        raise ConfigError("--backbone hub: needs a KerasHub preset name, e.g. hub:vit_base_patch16_224_imagenet.")
    for entry in _REGISTRY.values():
        if entry.preset == preset:
            return entry
    key = re.sub(r"[^a-z0-9_.-]+", "_", preset.lower())
    return register(key, None, "none", family="keras_hub", source="keras_hub", preset=preset, overwrite=True)


def _folder_entry(folder: Path) -> Backbone:
    """Return an entry for the KerasHub preset folder `folder` (its config.json and metadata.json read)."""
    if not (folder / "config.json").is_file():
        raise ConfigError(f"--backbone {folder}: no KerasHub preset there (a folder with config.json and "
                          "model.weights.h5, as Kaggle Models mount them); give a registered name or hub:<preset>.")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8")) \
            if (folder / "metadata.json").is_file() else {}
    except ValueError as exc:
        raise ConfigError(f"--backbone {folder}: config.json or metadata.json cannot be read ({exc}).") from None
    family = str(config.get("class_name", "keras_hub")).replace("Backbone", "").lower() or "keras_hub"
    shape = (config.get("config") or {}).get("image_shape") or [None]
    fixed = bool(shape) and isinstance(shape[0], int)  # a fixed input size (position embeddings): also the least
    size = int(shape[0]) if fixed else 224
    parts = [p for p in folder.resolve().parts[-4:] if p not in ("keras", "/")]
    key = "preset_" + re.sub(r"[^a-z0-9_.-]+", "_", "_".join(parts).lower())
    return register(key, None, "none", size, None, None, size if fixed else 32, family=family, source="keras_hub",
                    preset=str(folder.resolve()), params=meta.get("parameter_count"), overwrite=True)


# ------------------------------------------------------------------ the catalog (keras.applications, small ResNets, KerasHub)
def _app(fn_name: str) -> Callable[..., keras.Model]:
    def construct(input_shape, weights=None):
        import keras

        fn = getattr(keras.applications, fn_name)
        return fn(include_top=False, weights=weights, input_shape=input_shape)

    construct.__name__ = f"keras.applications.{fn_name}"
    return construct


for (_name, _fn, _family, _pre, _size, _split, _file, _min, _gflops, _params, _slow,
     _mb) in catalog.KERAS_APPS:
    register(_name, _app(_fn), _pre, _size, _split, _file, _min, family=_family, source="keras.applications",
             params=_params, gflops=_gflops, slowness=_slow, memory_mb=_mb)


def _small(**options: Any) -> Callable[..., "keras.Model"]:
    """Return a constructor of :func:`~kagglekit.backbones.layers.small_resnet` with `options` (keras imported when called)."""
    def construct(input_shape=(None, None, 3), weights=None):
        from .layers import small_resnet

        return small_resnet(input_shape, weights, **options)

    construct.__name__ = f"small_resnet({options.get('name', 'resnet_small')})"
    return construct


for _name, (_widths, _blocks, _strides) in catalog.SMALL_RESNETS.items():
    register(_name, _small(widths=_widths, blocks=_blocks, strides=_strides, name=_name), "unit", 32, "stage2_",
             None, 8, family="small_resnet", source="kagglekit",
             params=catalog.small_resnet_params(_widths, _blocks, _strides),
             gflops=catalog.small_resnet_gflops(_widths, _blocks, _strides, 32),
             cpu_slowness=catalog.SMALL_RESNET_CPU_SLOWNESS.get(_name),
             memory_mb=catalog.small_resnet_memory_mb(_widths, _blocks, _strides, 32))

for (_preset, _family, _model, _version, _size, _pool, _pre, _gflops, _params, _slow,
     _mb) in catalog.HUB_PRESETS:
    register(_preset, None, _pre, _size, None, None, _size if _family in catalog.FIXED_SIZE_FAMILIES else 32,
             family=_family, source="keras_hub", params=_params,
             gflops=_gflops, slowness=_slow, memory_mb=_mb, preset=_preset, pooling=_pool,
             kaggle_handle=f"keras/{_model}/keras/{_preset}/{_version}")


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
    if entry.source == "keras_hub":
        from .hub import load_hub

        return load_hub(entry, weights, roots, DOWNLOAD_TIMEOUT)[0]
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

    from .layers import TokenPool

    entry = get(backbone)
    if pooling not in ("avg", "max"):
        raise ConfigError(f"pooling={pooling!r} is not supported; use 'avg' or 'max'.")
    if entry.source == "keras_hub":
        from .hub import load_hub

        base, preprocess = load_hub(entry, weights, roots, DOWNLOAD_TIMEOUT)
    else:
        base, preprocess = load_backbone(entry, weights, roots=roots), Preprocess(entry.preprocess, name="preprocess")
    inputs = keras.Input((None, None, 3), name="pixels")
    x = inputs
    if augment is not None:
        x = augment(x)
    fixed = tuple(base.inputs[0].shape[1:3])
    if all(isinstance(d, int) for d in fixed):  # position embeddings fix the size: any image is resized to it
        x = layers.Resizing(*fixed, name="fit_size")(x)
    x = base(preprocess(x))
    rank = len(x.shape)
    if rank == 4:
        pool = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
        x = pool(name="pool")(x)
    else:  # tokens (class token or their mean, as the entry says) or already pooled features
        x = TokenPool(entry.pooling if rank == 3 else "none", name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    activation = "sigmoid" if multilabel else "softmax"
    outputs = layers.Dense(n_classes, activation=activation, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"kagglekit_{entry.name}")


def import_layers_of(path: str | os.PathLike) -> None:
    """Import keras_hub when the saved ``.keras`` model at `path` holds KerasHub layers (their classes register then)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = archive.read("config.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        return  # the loader reports what is wrong with the file
    if b'"keras_hub' in config:
        import keras_hub  # noqa: F401


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
    inner = []
    for layer in base.layers:  # a layer holding several weighted layers (a transformer encoder) counts as those
        children = [c for c in layer._flatten_layers(include_self=False, recursive=False) if c.weights]
        inner += children if len(children) > 1 else ([layer] if layer.weights else [])
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
