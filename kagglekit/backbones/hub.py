"""KerasHub presets as backbones: found offline under the notebook input root, else downloaded; their image converter.

A preset is a folder holding ``config.json``, ``metadata.json``, ``model.weights.h5`` (and, for vision
models, ``image_converter.json``). Kaggle Models mounts one in a notebook at
``/kaggle/input/<model>/keras/<preset>/<version>``; KerasHub downloads one (through kagglehub) into
``~/.cache/kagglehub/models/keras/<model>/keras/<preset>/<version>``. :func:`find_preset` looks in both
places, offline, before anything is downloaded. keras_hub is imported only when a model is built.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError, WeightsError
from ..io import input_root

if TYPE_CHECKING:
    import keras

Backbone = Any  # a kagglekit.backbones.Backbone record (not imported: the registry imports this module)

logger = logging.getLogger("kagglekit")

#: The files that make a folder a KerasHub preset.
PRESET_FILES = ("config.json", "model.weights.h5")
#: How deep below a root :func:`find_preset` walks looking for a preset folder named after the preset.
SEARCH_DEPTH = 6


def kagglehub_cache() -> Path:
    """Return the folder where kagglehub keeps downloaded Kaggle Models (``KAGGLEHUB_CACHE`` or ~/.cache/kagglehub)."""
    return Path(os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub") / "models"


def is_preset(folder: str | os.PathLike) -> bool:
    """Return True when `folder` holds a KerasHub preset (config.json and model.weights.h5)."""
    return all((Path(folder) / name).is_file() for name in PRESET_FILES)


def _newest_version(folder: Path) -> Path | None:
    """Return the preset folder of the highest numbered version under `folder` (``.../<preset>/<version>``), or None."""
    if not folder.is_dir():
        return None
    versions = sorted((p for p in folder.iterdir() if p.name.isdigit() and is_preset(p)), key=lambda p: int(p.name))
    return versions[-1] if versions else (folder if is_preset(folder) else None)


def find_preset(entry: "Backbone", roots: Sequence[str | os.PathLike] | None = None) -> Path | None:
    """Return the folder of `entry`'s preset under `roots` (the input root, then kagglehub's cache), or None.

    Looked for in order: the entry's own folder (``--backbone PATH``); ``<root>/<model>/keras/<preset>/<version>``
    from its Kaggle Models handle (the newest version); any preset folder below a root whose path names the preset.
    """
    if entry.preset and is_preset(entry.preset):
        return Path(entry.preset)
    if not entry.preset:
        return None
    roots = [input_root(), kagglehub_cache() / "keras"] if roots is None else [Path(r) for r in roots]
    handle = (entry.kaggle_handle or "").split("/")
    for root in map(Path, roots):
        if len(handle) >= 4:
            found = _newest_version(root / handle[1] / "keras" / handle[3])
            if found is not None:
                return found
        found = _walk_for(root, entry.preset)
        if found is not None:
            return found
    return None


def _walk_for(root: Path, preset: str) -> Path | None:
    """Return the first preset folder below `root` (at most SEARCH_DEPTH deep) whose path names `preset`, or None."""
    if not root.is_dir():
        return None
    base = len(root.parts)
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        if len(here.parts) - base >= SEARCH_DEPTH:
            dirs[:] = []
        if "config.json" in files and preset in here.parts and is_preset(here):
            return here
        dirs.sort()
    return None


def _keras_hub() -> Any:
    """Return the keras_hub module (ConfigError naming the install command when it is missing)."""
    try:
        import keras_hub
    except ImportError as exc:
        raise ConfigError(f"KerasHub backbones need keras_hub ({exc}); install it: pip install 'kagglekit[hub]' "
                          "(or pip install 'keras-hub>=0.29,<0.30').") from None
    return keras_hub


def _not_found(entry: "Backbone", why: str) -> WeightsError:
    handle = entry.kaggle_handle
    where = (f"attach the Kaggle Model {handle} (Add Input -> Models; it is mounted at "
             f"{input_root()}/{handle.split('/')[1]}/keras/{handle.split('/')[3]}/<version> and found there)"
             if handle else f"attach a folder holding the preset {entry.preset!r} (config.json, model.weights.h5) "
             f"under {input_root()}")
    return WeightsError(f"KerasHub preset {entry.preset!r} for backbone {entry.name!r}: {why}. Fix: {where}, "
                        "or pass its folder: --backbone PATH.")


def _from_preset(entry: "Backbone", source: str, load_weights: bool, timeout: float) -> "keras.Model":
    """Return the KerasHub backbone of preset `source` (a folder or a preset name, then downloaded)."""
    keras_hub = _keras_hub()

    if Path(source).is_dir():
        return keras_hub.models.Backbone.from_preset(source, load_weights=load_weights)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # a download must fail fast offline
    try:
        return keras_hub.models.Backbone.from_preset(source, load_weights=load_weights)
    except Exception as exc:  # noqa: BLE001 - any download failure means: attach the preset
        raise _not_found(entry, f"not attached, and downloading it failed (offline? {type(exc).__name__}: "
                                f"{str(exc)[:200]})") from exc
    finally:
        socket.setdefaulttimeout(previous)


def _vision_model(backbone: "keras.Model", name: str) -> "keras.Model":
    """Return the image part of a KerasHub backbone: itself, or a model of its vision encoder (SigLIP, CLIP)."""
    import keras

    encoder = getattr(backbone, "vision_encoder", None)
    if encoder is None:
        return backbone
    shape = tuple(getattr(encoder, "image_shape", None) or (None, None, 3))
    inputs = keras.Input(shape, name="images")
    expects = getattr(encoder, "input", None)
    feed = {next(iter(expects)): inputs} if isinstance(expects, dict) else inputs
    return keras.Model(inputs, encoder(feed), name=f"{name}_vision")


def preprocess_layer(entry: "Backbone", folder: Path | None) -> "keras.layers.Layer":
    """Return the Preprocess layer the preset's image converter describes (scale, offset), else the entry's mode."""
    from .layers import Preprocess

    source = str(folder) if folder is not None else entry.preset
    keras_hub = _keras_hub()
    try:
        converter = keras_hub.layers.ImageConverter.from_preset(source)
    except Exception as exc:  # noqa: BLE001 - no converter in the preset: say so and use the registry's mode
        logger.warning(f"kagglekit: preset {entry.preset!r} holds no image converter ({type(exc).__name__}); "
                       f"preprocessing {entry.preprocess!r} from the registry")
        return Preprocess(entry.preprocess, name="preprocess")
    return Preprocess("affine", scale=converter.scale, offset=converter.offset, name="preprocess")


def load_hub(entry: "Backbone", weights: str | os.PathLike | None = "imagenet",
             roots: Sequence[str | os.PathLike] | None = None,
             timeout: float = 15.0) -> tuple["keras.Model", "keras.layers.Layer"]:
    """Return (the headless backbone, its Preprocess layer) of KerasHub entry `entry`.

    `weights`: "imagenet" (or "preset"): the preset's pretrained weights, from its folder when attached,
    else downloaded (the network may wait `timeout` seconds at a time); None: the preset's architecture
    randomly initialised (its config.json must be found); a preset folder; or a ``*.weights.h5`` file
    saved from the same backbone.
    """
    file = None
    if weights is not None and str(weights).lower() not in ("imagenet", "preset"):
        path = Path(weights)
        if path.is_dir():
            folder = path if is_preset(path) else None
            if folder is None:
                raise WeightsError(f"weights={weights}: no KerasHub preset there (config.json, model.weights.h5).")
        elif path.name.endswith(".weights.h5") and path.is_file():
            folder, file = find_preset(entry, roots), path
        else:
            raise WeightsError(f"weights={weights}: for a KerasHub backbone pass 'imagenet' (the preset's weights), "
                               "None, a preset folder or a '*.weights.h5' file saved from it.")
    else:
        folder = find_preset(entry, roots)
    if folder is None and (weights is None or file is not None):
        raise _not_found(entry, "its architecture (config.json) is needed and it is not attached")
    source = str(folder) if folder is not None else str(entry.preset)
    loaded = _from_preset(entry, source, weights is not None and file is None, timeout)
    if file is not None:
        loaded.load_weights(file)
    logger.info(f"kagglekit: backbone {entry.name} from KerasHub preset {source}")
    return _vision_model(loaded, entry.name), preprocess_layer(entry, folder)
