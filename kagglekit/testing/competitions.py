"""Small competitions built offline from real images, in the layouts Kaggle ships.

The images are scikit-learn's 1,797 real handwritten digits (8×8, upscaled), so
everything here works with no network. They feed the embedded demo, the Kaggle
emulator, the examples run in CI and the tests.

Layouts:

* ``digits``: ``train/<id>.png``, ``train.csv`` (``id,label``), ``test/<id>.png``,
  ``sample_submission.csv`` (``id,label``); the `kagglekit demo` competition, built by
  `kagglekit.demo.build_digits` (which also holds `digits` and `to_rgb`).
* ``dogs-vs-cats``: ``train/cat.<n>.jpg`` / ``train/dog.<n>.jpg`` (digits 3 and 5
  are the cats, 8 and 9 the dogs: `DOGS_VS_CATS_DIGITS`), ``test/<n>.jpg``,
  ``sample_submission.csv`` (``id,label`` with P(dog)), zipped as Kaggle ships it.
* ``imaterialist-fashion``: ``train.json``/``validation.json``/``test.json`` in the
  iMaterialist Fashion 2018 format, images as ``<split>/<imageId>.jpg`` 2×2
  mosaics of digits (labels = label ids of the digits present),
  ``sample_submission.csv`` (``image_id,label_id``, space-separated ids).
* ``fashion-mnist``: pixels in CSVs as Kaggle's Digit Recognizer ships them:
  ``train.csv`` (``label,pixel0..pixel783``), ``test.csv`` (``pixel0..``),
  ``sample_submission.csv`` (``ImageId,Label``, ids from 1). Made from the real
  Fashion-MNIST idx files when a folder holding them is given, else from digits.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from ..demo import build_digits, digits, to_rgb  # noqa: F401 (the demo's competition, and its images, are the digits layout here)

LAYOUTS = ("digits", "dogs-vs-cats", "imaterialist-fashion", "fashion-mnist")
DOGS_VS_CATS_DIGITS = {"cat": (3, 5), "dog": (8, 9)}  # hard enough to need training


def mosaic(tiles: list[np.ndarray], size: int) -> Image.Image:
    """Return four 8×8 digits as one `size`×`size` 2×2 mosaic."""
    half = size // 2
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    for k, tile in enumerate(tiles[:4]):
        canvas.paste(to_rgb(tile, half, tint=k), ((k % 2) * half, (k // 2) * half))
    return canvas


def _zip_dir(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(folder.parent).as_posix())
    shutil.rmtree(folder)


def build_dogs_vs_cats(root: Path, n_train: int = 400, n_test: int = 100, size: int = 64, seed: int = 0, zipped: bool = True) -> Path:
    """Return `root` holding a dogs-vs-cats-shaped competition made of digits."""
    images, labels = digits(None, seed)
    wanted = {d: name for name, ds in DOGS_VS_CATS_DIGITS.items() for d in ds}
    keep = np.array([int(y) in wanted for y in labels])
    images, labels = images[keep][: n_train + n_test], labels[keep][: n_train + n_test]
    train, test = root / "train", root / "test"
    train.mkdir(parents=True, exist_ok=True)
    test.mkdir(parents=True, exist_ok=True)
    counters = {"cat": 0, "dog": 0}
    for i in range(n_train):
        name = wanted[int(labels[i])]
        to_rgb(images[i], size, tint=i).save(train / f"{name}.{counters[name]}.jpg", quality=92)
        counters[name] += 1
    answers = []
    for j in range(n_test):
        to_rgb(images[n_train + j], size, tint=j).save(test / f"{j + 1}.jpg", quality=92)
        answers.append((j + 1, 1.0 if wanted[int(labels[n_train + j])] == "dog" else 0.0))
    pd.DataFrame({"id": [a for a, _ in answers], "label": 0.5}).to_csv(root / "sample_submission.csv", index=False)
    pd.DataFrame(answers, columns=["id", "label"]).to_csv(root.parent / f"{root.name}.solution.csv", index=False)
    if zipped:
        _zip_dir(train, root / "train.zip")
        _zip_dir(test, root / "test.zip")
    return root


def imaterialist_label_id(digit: int) -> str:
    """Return the iMaterialist-style label id standing for `digit` (ids are 1-based strings)."""
    return str(int(digit) + 1)


def build_imaterialist(root: Path, n_train: int = 300, n_valid: int = 60, n_test: int = 60, size: int = 64, seed: int = 0, zipped: bool = True) -> Path:
    """Return `root` holding an iMaterialist-Fashion-2018-shaped competition of digit mosaics."""
    images, labels = digits(None, seed)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    solution = []
    next_id = 1
    for split, count in (("train", n_train), ("validation", n_valid), ("test", n_test)):
        folder = root / split
        folder.mkdir(exist_ok=True)
        records, annotations = [], []
        for _ in range(count):
            pick = rng.choice(len(images), size=4, replace=False)
            # Leave one or two tiles blank so images carry 2 to 4 labels.
            blanks = rng.choice(4, size=rng.integers(0, 3), replace=False)
            tiles = [np.zeros((8, 8), "uint8") if k in blanks else images[p] for k, p in enumerate(pick)]
            present = sorted({imaterialist_label_id(labels[p]) for k, p in enumerate(pick) if k not in blanks}, key=int)
            image_id = str(next_id)
            next_id += 1
            mosaic(tiles, size).save(folder / f"{image_id}.jpg", quality=92)
            records.append({"imageId": image_id, "url": f"https://contestimg.example/{split}/{image_id}.jpg"})
            if split == "test":
                solution.append((image_id, " ".join(present)))
            else:
                annotations.append({"imageId": image_id, "labelId": present})
        doc = {"images": records}
        if split != "test":
            doc["annotations"] = annotations
        (root / f"{split}.json").write_text(json.dumps(doc))
        if zipped:
            _zip_dir(folder, root / f"{split}.zip")
    pd.DataFrame({"image_id": [i for i, _ in solution], "label_id": "1 2"}).to_csv(root / "sample_submission.csv", index=False)
    pd.DataFrame(solution, columns=["image_id", "label_id"]).to_csv(root.parent / f"{root.name}.solution.csv", index=False)
    return root


def read_idx(path: str | Path) -> np.ndarray:
    """Return the array in an idx file (the MNIST/Fashion-MNIST format), gzipped or not."""
    import gzip

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype="uint8", offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test) from the original Fashion-MNIST idx files in `folder`."""
    folder = Path(folder)

    def one(stem: str) -> np.ndarray:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return read_idx(folder / name)
        raise FileNotFoundError(
            f"{folder / stem}(.gz) not found: install Debian's dataset-fashion-mnist (files under "
            "/usr/share/datasets/fashion-mnist/) or download the idx files from the Fashion-MNIST repository."
        )

    return (one("train-images-idx3-ubyte"), one("train-labels-idx1-ubyte"),
            one("t10k-images-idx3-ubyte"), one("t10k-labels-idx1-ubyte"))


def build_fashion_mnist(root: Path, n_train: int | None = 600, n_test: int | None = 200, source: str | Path | None = None,
                        seed: int = 0) -> Path:
    """Return `root` holding a pixel-CSV competition (Digit Recognizer layout) of 28×28 grayscale images."""
    if source is not None:
        x_train, y_train, x_test, y_test = fashion_mnist(source)
        x_train, y_train = x_train[:n_train], y_train[:n_train]
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    else:
        images, labels = digits((n_train or 1200) + (n_test or 300), seed)
        upscale = lambda ims: np.stack([np.asarray(Image.fromarray(im).resize((28, 28), Image.BILINEAR)) for im in ims])  # noqa: E731
        n = n_train or 1200
        x_train, y_train, x_test, y_test = upscale(images[:n]), labels[:n], upscale(images[n:]), labels[n:]
    root.mkdir(parents=True, exist_ok=True)
    cols = [f"pixel{i}" for i in range(28 * 28)]
    train = pd.DataFrame(x_train.reshape(len(x_train), -1), columns=cols)
    train.insert(0, "label", np.asarray(y_train, dtype=int))
    train.to_csv(root / "train.csv", index=False)
    pd.DataFrame(x_test.reshape(len(x_test), -1), columns=cols).to_csv(root / "test.csv", index=False)
    ids = np.arange(1, len(x_test) + 1)
    pd.DataFrame({"ImageId": ids, "Label": 0}).to_csv(root / "sample_submission.csv", index=False)
    pd.DataFrame({"ImageId": ids, "Label": np.asarray(y_test, dtype=int)}).to_csv(root.parent / f"{root.name}.solution.csv", index=False)
    return root


BUILDERS: dict[str, Callable[..., Path]] = {
    "digits": build_digits,
    "dogs-vs-cats": build_dogs_vs_cats,
    "imaterialist-fashion": build_imaterialist,
    "fashion-mnist": build_fashion_mnist,
}


def build_competition(layout: str, root: str | Path, **kwargs) -> Path:
    """Return the folder of a new competition in `layout` (see module docstring).

    The answers for the test images go to ``<root>.solution.csv`` beside the folder.
    """
    if layout not in BUILDERS:
        raise ValueError(f"Unknown layout {layout!r}; choose one of {LAYOUTS}.")
    return BUILDERS[layout](Path(root), **kwargs)
