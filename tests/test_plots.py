"""PNG plots from real predictions of tiny real Keras models on the digits competitions."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kagglekit.errors import ConfigError
from kagglekit.plots import per_image_loss, plot_confusion_matrix, plot_threshold_curve, plot_top_losses
from kagglekit.predict import align, predict, tune_settings
from kagglekit.table import LabelTable

PNG = b"\x89PNG\r\n\x1a\n"


class TinyLearner:
    def __init__(self, model, classes, multilabel, size):
        self.model, self.classes, self.multilabel, self.size, self.settings = model, list(classes), multilabel, size, {}


def tiny_model(size: int, n_out: int, activation: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(n_out, activation=activation)(x))


def images_of(table: LabelTable) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in table.paths])


def assert_png(path: Path, tmp_path: Path) -> None:
    assert path.parent == tmp_path and path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000
    with Image.open(path) as im:
        assert im.size[0] > 300 and im.size[1] > 200
        assert np.asarray(im.convert("L")).std() > 5  # something was drawn


@pytest.fixture(scope="module")
def digits_run(digits_competition: Path):
    frame = pd.read_csv(digits_competition / "train.csv", dtype=str).head(80)
    table = LabelTable.from_records(frame["id"], [digits_competition / "train" / f"{i}.png" for i in frame["id"]], frame["label"])
    learner = TinyLearner(tiny_model(32, len(table.classes), "softmax"), table.classes, False, 32)
    return table, predict(learner, images_of(table), ids=table.ids, progress=False)


@pytest.fixture(scope="module")
def fashion_run(imaterialist_dir: Path):
    doc = json.loads((imaterialist_dir / "validation.json").read_text())
    labels = {a["imageId"]: a["labelId"] for a in doc["annotations"]}
    ids = [r["imageId"] for r in doc["images"]]
    classes = [str(i) for i in range(1, 11)]
    table = LabelTable.from_records(ids, [imaterialist_dir / "validation" / f"{i}.jpg" for i in ids], [labels[i] for i in ids], classes=classes, multilabel=True)
    learner = TinyLearner(tiny_model(64, len(classes), "sigmoid"), classes, True, 64)
    preds = predict(learner, images_of(table), ids=table.ids, progress=False)
    settings = tune_settings(learner, preds, "f2", table=table)
    preds.attrs["settings"] = settings
    return table, preds


def test_confusion_matrix(digits_run, tmp_path):
    table, preds = digits_run
    path = plot_confusion_matrix(preds, table, path=tmp_path / "cm.png")
    assert_png(path, tmp_path)
    y, p = align(preds, table)
    assert_png(plot_confusion_matrix(y, p, classes=table.classes, path=tmp_path / "cm_norm.png", normalize=True), tmp_path)
    assert_png(plot_confusion_matrix(y, p.argmax(1), classes=table.classes, path=tmp_path / "cm_idx.png"), tmp_path)


def test_top_losses_grid(digits_run, fashion_run, tmp_path):
    table, preds = digits_run
    y, p = align(preds, table)
    losses = per_image_loss(y, p, multilabel=False)
    np.testing.assert_allclose(losses, -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1)))
    assert_png(plot_top_losses(preds, table, path=tmp_path / "top.png", k=6), tmp_path)
    ftable, fpreds = fashion_run
    assert_png(plot_top_losses(fpreds, ftable, path=tmp_path / "top_multi.png", k=4), tmp_path)


def test_threshold_curve(fashion_run, tmp_path):
    table, preds = fashion_run
    assert isinstance(preds.attrs["settings"]["threshold"], list)
    assert_png(plot_threshold_curve(preds, table, path=tmp_path / "thr.png"), tmp_path)
    y, p = align(preds, table)
    assert_png(plot_threshold_curve(y, p, path=tmp_path / "thr_f1.png", beta=1.0), tmp_path)


def test_confusion_matrix_refuses_multilabel(fashion_run, tmp_path):
    table, preds = fashion_run
    with pytest.raises(ConfigError, match="single-label"):
        plot_confusion_matrix(preds, table, path=tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()
