"""Prediction keyed by id, with test-time augmentation, on real digit images and tiny real Keras models."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kagglekit.errors import ConfigError, TableError
from kagglekit.predict import (
    align,
    augment_view,
    choose_tta,
    predict,
    predict_batch,
    read_predictions,
    save_predictions,
    score,
    tta_views,
    tune_settings,
)
from kagglekit.table import LabelTable

SIZE = 32
CLASSES = [str(d) for d in range(10)]


class TinyLearner:
    """What predict needs from a learner: model, classes, multilabel, size, settings."""

    def __init__(self, model, classes=CLASSES, multilabel=False, size=SIZE, settings=None):
        self.model, self.classes, self.multilabel, self.size = model, list(classes), multilabel, size
        self.settings = dict(settings or {})


def conv_model(n_out: int = 10, activation: str = "softmax", seed: int = 0) -> keras.Model:
    """A small model that a mirror changes (3×3 convolutions, flatten)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(n_out, activation=activation)(x))


def symmetric_model(n_out: int = 10, seed: int = 0) -> keras.Model:
    """A model blind to left/right mirroring (1×1 convolution, global average pooling)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(n_out, activation="softmax")(x))


@pytest.fixture(scope="module")
def digits_table(digits_competition: Path) -> LabelTable:
    frame = pd.read_csv(digits_competition / "train.csv", dtype=str).head(60)
    paths = [digits_competition / "train" / f"{i}.png" for i in frame["id"]]
    return LabelTable.from_records(frame["id"], paths, frame["label"], classes=CLASSES)


@pytest.fixture(scope="module")
def images(digits_table: LabelTable) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in digits_table.paths])


class Batches:
    """Unshuffled batches with `.table`, as kagglekit.pipeline.ImageBatches serves them."""

    def __init__(self, table: LabelTable, batch_size: int = 16):
        self.table, self.batch_size, self.shuffle = table, batch_size, False

    def __len__(self):
        return -(-len(self.table) // self.batch_size)

    def __getitem__(self, i):
        paths = self.table.paths[i * self.batch_size : (i + 1) * self.batch_size]
        return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def test_ids_keep_their_rows_when_the_table_is_shuffled(digits_table, images):
    learner = TinyLearner(conv_model())
    plain = predict(learner, images, ids=digits_table.ids, batch_size=7, progress=False)
    assert plain.columns.tolist() == ["id", *CLASSES]
    assert plain["id"].tolist() == digits_table.ids
    order = np.random.default_rng(1).permutation(len(images))
    shuffled = predict(learner, images[order], ids=[digits_table.ids[i] for i in order], batch_size=16, progress=False)
    assert shuffled["id"].tolist() == [digits_table.ids[i] for i in order]
    merged = plain.merge(shuffled, on="id", suffixes=("", "_s"))
    assert len(merged) == len(images)
    np.testing.assert_allclose(merged[CLASSES].to_numpy(), merged[[c + "_s" for c in CLASSES]].to_numpy(), atol=1e-5)
    # and through batches that carry their table (the pipeline's contract), shuffled table too
    shuffled_table = digits_table.take(order)
    from_batches = predict(learner, Batches(shuffled_table), progress=False)
    assert from_batches["id"].tolist() == shuffled_table.ids
    again = plain.set_index("id").loc[from_batches["id"]]
    np.testing.assert_allclose(from_batches[CLASSES].to_numpy(), again[CLASSES].to_numpy(), atol=1e-5)
    # scoring matches by id: the shuffled and the plain predictions score the same
    assert score(shuffled, digits_table, "accuracy") == pytest.approx(score(plain, digits_table, "accuracy"))
    y, p = align(shuffled, digits_table)
    assert y.tolist() == [int(digits_table.labels[i][0]) for i in order]


def test_predict_attrs_and_probabilities(digits_table, images):
    learner = TinyLearner(conv_model(), settings={"clip": 0.01})
    out = predict(learner, images, ids=digits_table.ids, progress=False)
    assert out.attrs["classes"] == CLASSES and out.attrs["multilabel"] is False
    assert out.attrs["settings"] == {"clip": 0.01}
    np.testing.assert_allclose(out[CLASSES].sum(axis=1), 1.0, atol=1e-5)
    direct = keras.ops.convert_to_numpy(learner.model(images.astype("float32")))
    np.testing.assert_allclose(out[CLASSES].to_numpy(), direct, atol=1e-5)


def test_tta_one_is_plain_prediction_and_views_are_averaged(digits_table, images):
    model = conv_model()
    learner = TinyLearner(model)
    plain = predict(learner, images, ids=digits_table.ids, tta=0, progress=False)
    one = predict(learner, images, ids=digits_table.ids, tta=1, progress=False)
    np.testing.assert_allclose(plain[CLASSES].to_numpy(), one[CLASSES].to_numpy(), atol=1e-6)
    two = predict(learner, images, ids=digits_table.ids, tta=2, progress=False)
    mirrored = keras.ops.convert_to_numpy(model(images[:, :, ::-1].astype("float32")))
    expected = (plain[CLASSES].to_numpy() + mirrored) / 2
    np.testing.assert_allclose(two[CLASSES].to_numpy(), expected, atol=1e-5)
    assert not np.allclose(two[CLASSES].to_numpy(), plain[CLASSES].to_numpy(), atol=1e-4)  # the mirror mattered
    # all twelve views, averaged
    x = images[:8]
    views = tta_views(12)
    manual = np.mean([keras.ops.convert_to_numpy(model(augment_view(x, v))) for v in views], axis=0)
    np.testing.assert_allclose(predict_batch(model, x, 10, tta=12), manual, atol=1e-5)


def test_flips_of_a_symmetric_model_give_equal_output(digits_table, images):
    learner = TinyLearner(symmetric_model())
    plain = predict(learner, images, ids=digits_table.ids, progress=False)
    flipped = predict(learner, images, ids=digits_table.ids, tta=2, progress=False)
    np.testing.assert_allclose(plain[CLASSES].to_numpy(), flipped[CLASSES].to_numpy(), atol=1e-5)
    # crops do change what it sees
    crops = predict(learner, images, ids=digits_table.ids, tta=3, progress=False)
    assert not np.allclose(plain[CLASSES].to_numpy(), crops[CLASSES].to_numpy(), atol=1e-6)


def test_tta_views_and_settings_defaults(digits_table, images):
    assert tta_views(0) == ["full"] and tta_views(2) == ["full", "full+flip"]
    assert len(tta_views(12)) == 12 and len(set(tta_views(12))) == 12
    no_flip = tta_views(6, flip=False)
    assert no_flip == ["full", "centre", "top-left", "top-right", "bottom-left", "bottom-right"]
    with pytest.raises(ConfigError, match="tta <= 6"):
        tta_views(7, flip=False)
    with pytest.raises(ConfigError, match="0 or more"):
        tta_views(-1)
    crop = augment_view(images[:2], "top-left", crop=0.5)
    assert crop.shape == (2, SIZE, SIZE, 3) and crop.dtype == np.float32
    # tta and flip come from learner.settings unless given
    model = conv_model()
    by_settings = predict(TinyLearner(model, settings={"tta": 2, "tta_flip": False}), images[:10], progress=False)
    explicit = predict(TinyLearner(model), images[:10], tta=2, flip=False, progress=False)
    np.testing.assert_allclose(by_settings[CLASSES].to_numpy(), explicit[CLASSES].to_numpy(), atol=1e-6)
    assert by_settings.attrs["tta"] == 2


def test_resizes_other_sizes_and_binary_sigmoid(images):
    learner = TinyLearner(conv_model(1, "sigmoid"), classes=["cat", "dog"], size=(SIZE, SIZE))
    big = np.repeat(np.repeat(images[:5], 2, axis=1), 2, axis=2)  # 64×64 input, model takes 32×32
    out = predict(learner, big, ids=[f"{i}.jpg" for i in range(5)], progress=False)
    assert out.columns.tolist() == ["id", "cat", "dog"]
    np.testing.assert_allclose(out["cat"] + out["dog"], 1.0, atol=1e-6)


def test_bad_inputs_are_named(digits_table, images):
    with pytest.raises(ConfigError, match="softmax"):
        predict(TinyLearner(conv_model(10, "linear")), images[:4], progress=False)
    with pytest.raises(ConfigError, match="gives 3 outputs but the learner has 10"):
        predict(TinyLearner(conv_model(3)), images[:4], progress=False)
    with pytest.raises(ConfigError, match="one id per image"):
        predict(TinyLearner(conv_model()), images[:4], ids=["a"], progress=False)
    with pytest.raises(TableError, match="more than once"):
        predict(TinyLearner(conv_model()), images[:2], ids=["a", "a"], progress=False)
    with pytest.raises(ConfigError, match="Cannot predict"):
        predict(TinyLearner(conv_model()), [1, 2, 3], progress=False)
    preds = predict(TinyLearner(conv_model()), images[:3], ids=["x", "y", "z"], progress=False)
    with pytest.raises(TableError, match="not in the table"):
        align(preds, digits_table)


def test_tune_settings_stores_the_clip_in_the_learner(digits_table, images):
    learner = TinyLearner(conv_model())
    preds = predict(learner, images, ids=digits_table.ids, tta=2, progress=False)
    settings = tune_settings(learner, preds, "logloss", table=digits_table)
    assert settings is learner.settings
    assert settings["metric"] == "logloss" and settings["tta"] == 2
    assert settings["valid_score"] <= settings["valid_score_raw"] + 1e-12
    assert score(preds, digits_table, "logloss", settings) == pytest.approx(settings["valid_score"])


def test_label_tables_go_through_the_pipeline_and_unreadable_images_keep_their_row_named_in_a_warning(
        digits_table, images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the pipeline reports unreadable images in the working folder when there is no cache
    learner = TinyLearner(conv_model())
    from_arrays = predict(learner, images, ids=digits_table.ids, progress=False)
    from_table = predict(learner, digits_table, batch_size=16, cache=tmp_path / "cache", progress=False)
    assert from_table["id"].tolist() == digits_table.ids
    np.testing.assert_allclose(from_table[CLASSES].to_numpy(), from_arrays[CLASSES].to_numpy(), atol=1e-5)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    frame = digits_table.frame.copy()
    frame.loc[3, "path"] = str(broken)
    frame.loc[7, "path"] = str(tmp_path / "gone.png")  # listed, but not on disk
    with_bad = LabelTable(frame, classes=CLASSES)
    from kagglekit.logs import shown

    lines: list[str] = []
    with shown(lines.append):  # what a run shows
        out = predict(learner, with_bad, cache=None, progress=False)
    # every id keeps its row, in order (Kaggle needs them all); the unreadable ones are predicted from a black image
    assert out["id"].tolist() == digits_table.ids
    black = predict(learner, np.zeros((1, SIZE, SIZE, 3), "uint8"), progress=False)[CLASSES].to_numpy()
    np.testing.assert_allclose(out.loc[[3, 7], CLASSES].to_numpy(), np.repeat(black, 2, axis=0), atol=1e-5)
    keep = [i for i in range(len(out)) if i not in (3, 7)]
    np.testing.assert_allclose(out.loc[keep, CLASSES].to_numpy(), from_arrays.loc[keep, CLASSES].to_numpy(), atol=1e-5)
    warned = [line for line in lines if "predicted from a black image" in line]
    assert len(warned) == 1, lines
    ids = [digits_table.ids[3], digits_table.ids[7]]
    assert f"2 of {len(out)} images cannot be decoded" in warned[0] and f"ids {ids[0]}, {ids[1]}." in warned[0]
    assert str(broken) in warned[0]
    report = (tmp_path / "skipped-images.csv").read_text()
    assert "broken.png" in report and "served as black images" in report
    quiet: list[str] = []
    with shown(quiet.append):  # readable images: no warning
        predict(learner, digits_table.take(range(8)), cache=None, progress=False)
    assert not any("black image" in line for line in quiet), quiet


def test_settings_tuned_on_validation_travel_with_the_saved_learner_into_the_submission(digits_table, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from kagglekit.learner import Learner
    from kagglekit.submission import validate_submission, write_submission

    learner = Learner(conv_model(), CLASSES, multilabel=False, size=SIZE)
    valid, test = digits_table.take(range(40)), digits_table.take(range(40, 60))
    settings = tune_settings(learner, valid, "logloss", tta=2, cache=None, progress=False)
    assert settings["tta"] == 2 and "clip" in settings
    loaded = Learner.load(learner.save(tmp_path / "learner"))
    assert loaded.settings["clip"] == settings["clip"] and loaded.settings["tta"] == 2
    preds = predict(loaded, test, cache=None, progress=False)  # tta from the saved settings
    assert preds.attrs["tta"] == 2
    sample = tmp_path / "sample_submission.csv"
    pd.DataFrame({"id": test.ids, **{c: 0.1 for c in CLASSES}}).to_csv(sample, index=False)
    path = write_submission(preds, like=sample, path=tmp_path / "submission.csv")
    back = validate_submission(path, like=sample)
    clip = settings["clip"]
    expected = np.clip(preds.set_index("id").loc[test.ids, CLASSES].to_numpy(), clip, 1 - clip)
    np.testing.assert_allclose(back[CLASSES].to_numpy(), expected, rtol=1e-5)


def test_choose_tta_scores_every_count_from_one_pass(digits_table, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    learner = TinyLearner(conv_model(), settings={"tta_flip": False})
    best, scores = choose_tta(learner, digits_table, "logloss", max_tta=3, cache=None, progress=False)
    assert sorted(scores) == [1, 2, 3]
    for n in (1, 3):  # each candidate equals predicting with that tta and tuning the clip
        preds = predict(learner, digits_table, tta=n, cache=None, progress=False)
        tuned = tune_settings(TinyLearner(learner.model), preds, "logloss", table=digits_table)
        assert scores[n] == pytest.approx(tuned["valid_score"], rel=1e-6)
    expected = min(scores, key=lambda n: (scores[n], n))
    assert best == (0 if expected == 1 else expected)
    settings = tune_settings(learner, digits_table, "logloss", tta="auto", max_tta=3, cache=None, progress=False)
    assert settings["tta"] == best and settings["tta_flip"] is False
    assert settings["valid_score"] == pytest.approx(scores[max(1, best)], rel=1e-6)


def test_predictions_save_and_read_back_with_their_settings(digits_table, images, tmp_path):
    learner = TinyLearner(conv_model(), settings={"clip": 0.01, "tta": 2})
    preds = predict(learner, images[:12], ids=[f"{i:05d}" for i in range(12)], progress=False)
    back = read_predictions(save_predictions(preds, tmp_path / "valid.csv"))
    assert back["id"].tolist() == preds["id"].tolist()  # "00003" stays "00003"
    np.testing.assert_allclose(back[CLASSES].to_numpy(), preds[CLASSES].to_numpy(), rtol=1e-7)
    assert back.attrs["settings"] == {"clip": 0.01, "tta": 2} and back.attrs["tta"] == 2 and back.attrs["classes"] == CLASSES
    plain = tmp_path / "plain.csv"
    preds.to_csv(plain, index=False)
    assert read_predictions(plain)["id"].tolist() == preds["id"].tolist()
    with pytest.raises(ConfigError, match="No predictions file"):
        read_predictions(tmp_path / "missing.csv")


def test_resize_mode_reads_what_training_used_also_from_learners_saved_as_fit():
    from kagglekit.predict import resize_mode

    assert resize_mode({}) == "squash"
    assert resize_mode({"resize": "crop"}) == "crop"
    assert resize_mode({"fit": "pad"}) == "pad"  # a learner saved before the setting was renamed
    assert resize_mode({"recipe": {"resize": "pad"}}) == "pad" and resize_mode({"resize": "crop", "fit": "pad"}) == "crop"
