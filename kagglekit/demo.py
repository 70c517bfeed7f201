"""`kagglekit demo`: the whole job offline, on a competition built from real handwritten digits.

The images are scikit-learn's 1,797 real handwritten digits (8×8, upscaled), laid out as
Kaggle ships an image competition (the ``digits`` layout): ``train/<id>.png``,
``train.csv`` (``id,label``), ``test/<id>.png`` and ``sample_submission.csv``
(``id,label``); the answers for the test images go to ``<folder>.solution.csv`` beside
the competition folder. Nothing here needs the network.

Run it from Python with ``kk.demo.demo()``::

    import kagglekit as kk
    result = kk.demo.demo("kagglekit-demo", epochs=1)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
from PIL import Image

from .errors import ConfigError
from .io import why_not_writable
from .logs import logger, shown

if TYPE_CHECKING:  # pragma: no cover
    from .job import RunResult

# The demo's quick settings: a small from-scratch ResNet at 32 px trains in about a minute on 2 CPU cores.
DEMO_SETTINGS = {"backbone": "resnet_small", "sizes": [32], "weights": "none", "epochs": 6, "tta": "auto", "batch_size": 64}


def digits(n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 N×8×8 in 0..255, labels int) from scikit-learn's digits, shuffled."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.clip(data.images * (255.0 / 16.0), 0, 255).astype("uint8")
    order = np.random.default_rng(seed).permutation(len(images))
    if n is not None:
        order = order[:n]
    return images[order], data.target[order]


def to_rgb(image: np.ndarray, size: int, tint: int = 0) -> Image.Image:
    """Return an 8×8 digit as a `size`×`size` RGB picture (ink dark on light, slightly tinted)."""
    ink = 255 - image
    pic = Image.fromarray(ink, mode="L").resize((size, size), Image.BILINEAR)
    rgb = np.stack([np.asarray(pic)] * 3, axis=-1).astype("int16")
    rgb[..., tint % 3] = np.clip(rgb[..., tint % 3] - 25, 0, 255)
    return Image.fromarray(rgb.astype("uint8"), mode="RGB")


def build_digits(root: str | os.PathLike, n_train: int = 1500, n_test: int = 297, size: int = 32, seed: int = 0) -> Path:
    """Return `root` holding the digits competition (the demo's), its answers in ``<root>.solution.csv`` beside it."""
    root = Path(root)
    images, labels = digits(n_train + n_test, seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train):
        image_id = f"{i:05d}"
        to_rgb(images[i], size, tint=i).save(root / "train" / f"{image_id}.png")
        rows.append((image_id, int(labels[i])))
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(root / "train.csv", index=False)
    test_ids = []
    for j in range(n_test):
        image_id = f"{n_train + j:05d}"
        to_rgb(images[n_train + j], size, tint=j).save(root / "test" / f"{image_id}.png")
        test_ids.append(image_id)
    pd.DataFrame({"id": test_ids, "label": 0}).to_csv(root / "sample_submission.csv", index=False)
    # Kept out of the competition folder: the answers, for scoring in tests and the emulator.
    pd.DataFrame({"id": test_ids, "label": labels[n_train:].astype(int)}).to_csv(root.parent / f"{root.name}.solution.csv", index=False)
    return root


def demo(directory: str | os.PathLike = "kagglekit-demo", epochs: int | None = None,
         log: Callable[[str], None] | bool | None = print) -> "RunResult":
    """Return the `RunResult` of the whole job on the embedded real-digits competition (built offline on first use).

    `log` decides where the messages go, as in `kagglekit.run`: a callable gets each
    one (default `print`), None or False adds no output of its own.
    """
    from .job import run

    directory = Path(directory)
    why = why_not_writable(directory)
    if why is not None:
        raise ConfigError(f"The demo folder {directory} cannot be written ({why}); give a writable folder with "
                          "--dir DIR (kk.demo(directory=...)).")
    competition = directory / "digits"
    settings = dict(DEMO_SETTINGS)
    if epochs is not None:
        settings["epochs"] = epochs
    with shown(log):
        if not (competition / "sample_submission.csv").is_file():
            logger.info(f"building the demo competition from scikit-learn's real digits in {competition}")
            build_digits(competition)
        return run(competition, workdir=directory / "run", log=None, **settings)
