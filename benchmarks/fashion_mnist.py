"""Fashion-MNIST as a Kaggle competition, through kagglekit's own stages; prints test accuracy and wall time.

    python benchmarks/fashion_mnist.py                  # CPU profile: resnet_small, target >= 0.935 in 20 min on 2 cores
    KERAS_BACKEND=jax python benchmarks/fashion_mnist.py --gpu --data DIR   # wide_resnet + random erasing, >= 0.955 in 10 min

The original idx files come from Debian's `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist/)
or any folder given with --data. They are written out as a competition (train/<id>.png, train.csv with
id,label, test/<id>.png, and the answers beside), read back with kagglekit.layout, trained with
kagglekit.fine_tune (weights=None: a ResNet from scratch) and scored on the 10,000 test images.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(folder: Path, stem: str) -> np.ndarray:
    """Return the array stored in the idx file `stem` (plain or .gz) under `folder`."""
    for path in (folder / stem, folder / (stem + ".gz")):
        if path.is_file():
            raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
            ndim = raw[3]
            shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    raise SystemExit(f"No {stem}[.gz] under {folder}: install `dataset-fashion-mnist` (apt) or pass --data DIR.")


def write_competition(data: Path, root: Path, n_train: int | None, n_test: int | None) -> Path:
    """Return `root` holding train/*.png, train.csv, test/*.png and test_solution.csv (written once)."""
    from PIL import Image

    if (root / "test_solution.csv").is_file():
        return root
    for split in ("train", "test"):
        images, labels = read_idx(data, FILES[split][0]), read_idx(data, FILES[split][1])
        n = n_train if split == "train" else n_test
        images, labels = images[:n], labels[:n]
        (root / split).mkdir(parents=True, exist_ok=True)
        ids = [f"{split[:2]}{i:05d}" for i in range(len(images))]
        for i, img in zip(ids, images):
            Image.fromarray(img).save(root / split / f"{i}.png")
        name = "train.csv" if split == "train" else "test_solution.csv"
        with open(root / (name + ".part"), "w") as fh:
            fh.write("id,label\n" + "".join(f"{i},{int(l)}\n" for i, l in zip(ids, labels)))
        os.replace(root / (name + ".part"), root / name)
    return root


def table_from(root: Path, csv: str, folder: str):
    """Return the LabelTable of `csv` (kagglekit.layout.from_csv when present)."""
    try:
        from kagglekit.layout import from_csv

        return from_csv(root / csv, images=root / folder, ext=".png")
    except ImportError:
        import pandas as pd
        from kagglekit import LabelTable

        frame = pd.read_csv(root / csv, dtype=str)
        return LabelTable.from_records(frame["id"], [root / folder / f"{i}.png" for i in frame["id"]], frame["label"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder with the idx files")
    ap.add_argument("--work", default="fashion-mnist-competition", help="where the competition is written")
    ap.add_argument("--gpu", action="store_true", help="GPU profile: wide_resnet, random erasing, more epochs")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--n", type=int, default=None, help="use only the first N training images (smoke runs)")
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--backbone", default=None, help="override the profile's backbone (a registry name)")
    args = ap.parse_args()

    import keras
    from kagglekit import learner as L

    t0 = time.perf_counter()
    suffix = f"-{args.n}-{args.n_test}" if args.n or args.n_test else ""
    root = write_competition(Path(args.data), Path(args.work + suffix), args.n, args.n_test)
    train, test = table_from(root, "train.csv", "train"), table_from(root, "test_solution.csv", "test")
    t_data = time.perf_counter() - t0
    if args.gpu:
        backbone, epochs, batch, lr = "wide_resnet", args.epochs or 40, args.batch_size or 256, 4e-3
        augment = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                                    keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
                                    keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.25), fill_value=0,
                                                               value_range=(0, 255))], name="augmentation")
        smoothing = 0.1
    else:
        backbone, epochs, batch, lr = "resnet_small", args.epochs or 6, args.batch_size or 128, 4e-3
        augment = keras.Sequential([keras.layers.RandomFlip("horizontal")], name="augmentation")
        smoothing = 0.0
    backbone = args.backbone or backbone
    t1 = time.perf_counter()
    learner = L.fine_tune(train, backbone=backbone, weights=None, sizes=[28], valid=0.05, epochs=epochs,
                          lr=lr, batch_size=batch, augment=augment, label_smoothing=smoothing,
                          workdir=Path(args.work + suffix + "-run"), resume=False, verbose=2)
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    try:
        from kagglekit.predict import predict

        probs = predict(learner, test, batch_size=512)
        ids, probs = probs["id"].tolist(), probs[list(learner.classes)].to_numpy()
    except ImportError:
        from kagglekit.pipeline import ImageBatches

        batches = ImageBatches(test, 28, batch_size=512, targets=None)
        ids, probs = batches.table.ids, learner.model.predict(batches, verbose=0)
    truth = dict(zip(test.ids, (lab[0] for lab in test.labels)))
    predicted = [learner.classes[k] for k in probs.argmax(axis=1)]
    accuracy = float(np.mean([truth[i] == p for i, p in zip(ids, predicted)]))
    t_pred = time.perf_counter() - t2
    total = time.perf_counter() - t0
    print(f"fashion_mnist backend={keras.backend.backend()} profile={'gpu' if args.gpu else 'cpu'} "
          f"backbone={backbone} params={learner.model.count_params():,} epochs={epochs} train={len(train)} "
          f"test={len(ids)} tensorflow_imported={'tensorflow' in sys.modules}")
    print(f"test accuracy {accuracy:.4f} | wall {total:.0f}s (data {t_data:.0f}s, train {t_train:.0f}s, "
          f"predict {t_pred:.0f}s) | target {'0.955 in 600s' if args.gpu else '0.935 in 1200s'}")


if __name__ == "__main__":
    main()
