"""kagglekit: from a Kaggle image-classification competition to a scored submission with Keras 3.

Imports are lazy, so `import kagglekit` is fast and does not start a Keras backend (nor load pandas)::

    import kagglekit as kk
    comp = kk.fetch("dogs-vs-cats")
    train, test = kk.layout.read_competition(comp.path)
    learner = kk.fine_tune(train, backbone="vgg16", sizes=[128, 224], weights="imagenet")
    kk.write_submission(learner.predict(test, tta=4), like=comp.sample_submission, path="submission.csv")
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import KaggleKitError  # noqa: E402

# public name -> module that defines it (None: the name is a module); resolved on first use.
_LAZY = {
    # modules (kk.demo.demo() runs the demo)
    "layout": None, "images": None, "pipeline": None, "backbones": None, "learner": None,
    "metrics": None, "predict": None, "submission": None, "sources": None, "kaggle": None, "plots": None,
    "demo": None, "logs": None,
    # functions and classes
    "LabelTable": "table", "fetch": "sources", "Competition": "sources", "submit": "kaggle",
    "ImageBatches": "pipeline", "fine_tune": "learner", "Learner": "learner", "lr_find": "learner",
    "write_submission": "submission", "validate_submission": "submission",
    "run": "job", "doctor": "health",
}


def __getattr__(name: str):
    if name in _LAZY:
        target = _LAZY[name]
        if target is None:
            return importlib.import_module(f".{name}", __name__)
        return getattr(importlib.import_module(f".{target}", __name__), name)
    raise AttributeError(f"module 'kagglekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["KaggleKitError", "__version__", *_LAZY]
