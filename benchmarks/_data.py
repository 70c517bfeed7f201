"""Fashion-MNIST arrays for the benchmarks (Debian's idx files, or scikit-learn digits as a fallback)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fashion_mnist import DEFAULT_DATA, FILES, read_idx  # noqa: E402


def fashion_mnist(split: str = "train", data: str = DEFAULT_DATA) -> tuple[np.ndarray, np.ndarray]:
    """Return (x uint8 (n, 28, 28, 3), y int32) of the Fashion-MNIST `split` ("train" or "test")."""
    images, labels = read_idx(Path(data), FILES[split][0]), read_idx(Path(data), FILES[split][1])
    return np.repeat(images[..., None], 3, axis=-1), labels.astype("int32")
