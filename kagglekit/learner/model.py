"""The trained classifier: :class:`Learner` (model, classes, kind, input size, settings, history), saved and loaded."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import keras
import pandas as pd

from .. import backbones as bb
from ..backbones.layers import Preprocess  # noqa: F401  (registers the layer for Learner.load)
from ..errors import ConfigError, StateError
from ..images import as_size
from ..io import atomic_open, atomic_write_text
from ..table import LabelTable
from .optim import GroupAdamW, GroupSGD, OneCycle  # noqa: F401  (registered for Learner.load)


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
        self.size = as_size(size)
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
            raise StateError(f"{path} holds no saved learner (model.keras + learner.json); save one with "
                             "Learner.save(dir), or pass the folder it wrote.")
        try:
            meta = json.loads((path / "learner.json").read_text(encoding="utf-8"))
            classes, multilabel, size, settings = meta["classes"], meta["multilabel"], meta["size"], meta["settings"]
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise StateError(f"{path / 'learner.json'} cannot be read ({type(exc).__name__}: {exc}); save the learner "
                             "again (Learner.save), or train it again.") from None
        try:
            bb.import_layers_of(path / "model.keras")  # KerasHub backbones: keras_hub registers their classes
            model = keras.saving.load_model(path / "model.keras", compile=False)
        except Exception as exc:  # a truncated or damaged .keras archive: zipfile, h5py or Keras errors
            raise StateError(f"{path / 'model.keras'} cannot be loaded ({type(exc).__name__}: {exc}); save the learner "
                             "again (Learner.save), or train it again.") from None
        history = pd.read_csv(path / "history.csv") if (path / "history.csv").is_file() else None
        return cls(model, classes, multilabel, size, settings, history)

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
        from ..predict import predict

        return predict(self, table, tta=tta, batch_size=batch_size)
