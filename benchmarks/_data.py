"""Fashion-MNIST arrays for the benchmarks, from the original idx files (Debian's dataset-fashion-mnist)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kagglekit.testing.competitions import fashion_mnist as _read  # noqa: E402

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def fashion_mnist(split: str = "train", data: str = DEFAULT_DATA) -> tuple[np.ndarray, np.ndarray]:
    """Return (x uint8 (n, 28, 28, 3), y int32) of the Fashion-MNIST `split` ("train" or "test")."""
    x_train, y_train, x_test, y_test = _read(data)
    images, labels = (x_train, y_train) if split == "train" else (x_test, y_test)
    return np.repeat(images[..., None], 3, axis=-1), labels.astype("int32")
