"""kagglekit: from a Kaggle image-classification competition to a scored submission with Keras 3.

Imports are lazy, so `import kagglekit` is fast and does not start a Keras backend.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import KaggleKitError  # noqa: E402
from .table import LabelTable  # noqa: E402

# name -> module that defines it; resolved on first use.
_LAZY = {
    "layout": None,
    "images": None,
    "pipeline": None,
}


def __getattr__(name: str):
    if name in _LAZY:
        target = _LAZY[name]
        if target is None:
            return importlib.import_module(f".{name}", __name__)
        module = importlib.import_module(f".{target}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'kagglekit' has no attribute {name!r}")


__all__ = ["KaggleKitError", "LabelTable", "__version__", *_LAZY]
