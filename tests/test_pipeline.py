"""ImageBatches on real digits: cache, shuffling, targets, bad files, Keras on TF and jax."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kagglekit import pipeline
from kagglekit.errors import ConfigError
from kagglekit.images import load_image
from kagglekit.pipeline import ImageBatches, augmentation
from kagglekit.table import LabelTable

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits_table(digits_competition) -> LabelTable:
    """The first 150 training digits of the demo competition as a LabelTable."""
    frame = pd.read_csv(digits_competition / "train.csv", dtype=str).head(150)
    paths = [digits_competition / "train" / f"{i}.png" for i in frame["id"]]
    if not paths[0].exists():  # ids may already carry the extension
        paths = [digits_competition / "train" / i for i in frame["id"]]
    return LabelTable.from_records(frame["id"], paths, frame["label"])


def _epoch(ds: ImageBatches) -> tuple[np.ndarray, np.ndarray | None]:
    xs, ys = [], []
    for i in range(len(ds)):
        item = ds[i]
        xs.append(item[0])
        if len(item) > 1:
            ys.append(item[1])
    return np.concatenate(xs), (np.concatenate(ys) if ys else None)


def test_batches_shapes_order_and_targets(digits_table, tmp_path):
    ds = ImageBatches(digits_table, 24, batch_size=64, cache=tmp_path / "c")
    assert len(ds) == 3 and ds.num_batches == 3
    x, y = ds[2]
    assert x.shape == (150 - 128, 24, 24, 3) and x.dtype == np.uint8  # the last batch is short
    xs, ys = _epoch(ds)
    assert np.array_equal(ys, digits_table.targets("int"))  # unshuffled order is table order
    for k in (0, 77, 149):
        assert np.array_equal(xs[k], load_image(digits_table.paths[k], 24))
    with pytest.raises(IndexError):
        ds[3]
    assert np.array_equal(ds[-1][0], x)
    onehot = ImageBatches(digits_table, 24, batch_size=50, targets="onehot", cache=None)
    assert np.array_equal(onehot[1][1], digits_table.targets("onehot")[50:100])
    ds.close()


def test_multihot_and_unlabelled_tables(digits_table):
    labels = [(a, b) if a != b else (a,) for a, b in zip(digits_table.frame["labels"].str[0], digits_table.frame["labels"].str[0][::-1])]
    multi = LabelTable.from_records(digits_table.ids, digits_table.paths, labels, multilabel=True)
    ds = ImageBatches(multi, 16, batch_size=40, cache=None)
    _, y = _epoch(ds)
    assert y.shape == (150, len(multi.classes)) and np.array_equal(y, multi.targets("multihot"))
    assert (y.sum(axis=1) >= 1).all()
    test = LabelTable.from_records(digits_table.ids, digits_table.paths)
    item = ImageBatches(test, 16, batch_size=40, cache=None)[0]
    assert len(item) == 1 and item[0].shape == (40, 16, 16, 3)
    no_y = ImageBatches(digits_table, 16, batch_size=40, targets=None, cache=None)[0]
    assert len(no_y) == 1


def test_seeded_shuffle_is_reproducible_and_changes_each_epoch(digits_table):
    a = ImageBatches(digits_table, 16, batch_size=32, shuffle=True, seed=7, cache=None)
    b = ImageBatches(digits_table, 16, batch_size=32, shuffle=True, seed=7, cache=None)
    c = ImageBatches(digits_table, 16, batch_size=32, shuffle=True, seed=8, cache=None)
    first = a.order()
    assert np.array_equal(first, b.order()) and not np.array_equal(first, c.order())
    assert sorted(first) == list(range(150)) and not np.array_equal(first, np.arange(150))
    xa, ya = _epoch(a)
    assert np.array_equal(ya, digits_table.targets("int")[first])  # images and labels travel together
    assert np.array_equal(xa[0], load_image(digits_table.paths[first[0]], 16))
    a.on_epoch_end()
    second = a.order()
    assert not np.array_equal(first, second)
    b.set_epoch(1)
    assert np.array_equal(second, b.order())
    assert np.array_equal(_epoch(a)[0], _epoch(b)[0])


def test_cold_and_cached_passes_give_the_same_images(digits_table, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cold = ImageBatches(digits_table, 20, batch_size=32, shuffle=True, seed=1, cache=cache, resize="pad")
    x_cold, _ = _epoch(cold)
    cold.close()
    files = sorted(p.suffix for p in (cache / "20x20-pad").iterdir())
    assert files.count(".pixels") == 1 and files.count(".index") == 1

    # A later run (a new object, as in another process) must not decode at all.
    def no_decode(*args, **kwargs):
        raise AssertionError("decoded although the image was cached")

    monkeypatch.setattr(pipeline, "load_image", no_decode)
    warm = ImageBatches(digits_table, 20, batch_size=32, shuffle=True, seed=1, cache=cache, resize="pad")
    x_warm, _ = _epoch(warm)
    assert np.array_equal(x_cold, x_warm)
    # another size or fit is another cache
    other = ImageBatches(digits_table, 20, batch_size=32, cache=cache, resize="crop")
    with pytest.raises(AssertionError, match="decoded"):
        other[0]
    other.close()
    warm.close()
    assert pipeline.clear_cache(cache) > 0 and not cache.exists()


def test_cache_is_rebuilt_for_a_changed_or_damaged_entry(digits_table, tmp_path):
    table = digits_table.take(range(40))
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for p in table.paths:
        paths.append(folder / Path(p).name)
        paths[-1].write_bytes(Path(p).read_bytes())
    table = LabelTable.from_records(table.ids, paths, table.labels)
    cache = tmp_path / "cache"
    before, _ = _epoch(ImageBatches(table, 16, batch_size=16, cache=cache))

    # the source of row 3 changes: a new picture (another digit) under the same name
    Image.open(paths[30]).save(paths[3])
    os.utime(paths[3], ns=(os.stat(paths[3]).st_atime_ns, os.stat(paths[3]).st_mtime_ns + 10**9))
    # a run killed while writing left garbage in row 5's pixels
    ds = ImageBatches(table, 16, batch_size=16, cache=cache)
    slot = int(ds._rows.slots[5])
    with open(ds.cache.pixels_path, "r+b") as fh:
        fh.seek(slot * ds.cache.nbytes)
        fh.write(b"\x7f" * ds.cache.nbytes)
    after, _ = _epoch(ds)
    assert np.array_equal(after[3], load_image(paths[30], 16)) and not np.array_equal(after[3], before[3])
    assert np.array_equal(after[5], before[5])
    keep = [i for i in range(40) if i != 3]
    assert np.array_equal(after[keep], before[keep])


def test_bad_files_are_dropped_from_the_served_table(digits_table, tmp_path):
    table = digits_table.take(range(20))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.png").write_text("not a picture")
    data = Path(table.paths[0]).read_bytes()
    (bad / "cut.png").write_bytes(data[: len(data) // 2])
    frame = pd.concat([table.frame, pd.DataFrame({
        "id": ["e", "t", "c"], "path": [str(bad / n) for n in ("empty.png", "text.png", "cut.png")],
        "labels": [table.labels[0]] * 3,
    })])
    mixed = LabelTable(frame, table.classes)
    report = tmp_path / "skipped.csv"
    ds = ImageBatches(mixed, 16, batch_size=8, cache=tmp_path / "cache", report=report, verbose=False)
    assert len(ds.table) == 20 and ds.table.ids == table.ids
    assert {Path(p).name for p, _ in ds.skipped} == {"empty.png", "text.png", "cut.png"}
    assert report.exists() and "cut.png" in report.read_text()
    assert sum(len(ds[i][0]) for i in range(len(ds))) == 20
    with pytest.raises(Exception, match="3 image files"):
        ImageBatches(mixed, 16, strict=True, cache=None)


def test_unreadable_black_keeps_every_row_and_names_the_black_ones(digits_table, tmp_path):
    table = digits_table.take(range(12))
    frame = table.frame.copy()
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    frame.loc[2, "path"] = str(empty)  # found by the scan
    later = tmp_path / "later.png"
    later.write_bytes(Path(table.paths[5]).read_bytes())
    frame.loc[5, "path"] = str(later)  # readable now, garbage by the time it is decoded
    ds = ImageBatches(LabelTable(frame, table.classes), 16, batch_size=4, targets=None, cache=None,
                      report=tmp_path / "r.csv", verbose=False, unreadable="black")
    assert ds.table.ids == table.ids and ds.skipped == []
    assert [(i, Path(p).name) for i, p, _ in ds.served_black] == [(table.ids[2], "empty.png")]
    later.write_bytes(b"garbage now")
    x = np.concatenate([ds.images(i) for i in range(len(ds))])
    assert len(x) == 12 and not x[2].any() and not x[5].any()
    assert all(np.array_equal(x[i], load_image(table.paths[i], 16)) for i in (0, 1, 3, 4, 6, 11))
    assert [i for i, _, _ in ds.served_black] == [table.ids[2], table.ids[5]]
    assert "empty" in ds.served_black[0][2] and "later.png" in ds.served_black[1][2]
    with pytest.raises(ConfigError, match="unreadable='drop'"):
        ImageBatches(table, 16, cache=None, unreadable="drop")


def test_keras_fit_on_tensorflow_with_augmentation(digits_table, tmp_path):
    import keras

    ds = ImageBatches(digits_table, 16, batch_size=32, shuffle=True, cache=tmp_path / "c")
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        augmentation(),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(digits_table.classes), activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(ds, epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    probs = model.predict(ImageBatches(digits_table, 16, batch_size=64, targets=None, cache=tmp_path / "c"), verbose=0)
    assert probs.shape == (150, len(digits_table.classes))
    # augmentation is inactive at inference: a batch passes through unchanged
    x = ds[0][0].astype("float32")
    assert np.allclose(keras.ops.convert_to_numpy(augmentation()(x, training=False)), x)


def test_keras_input_serves_each_epochs_seeded_order_through_tf_data(digits_table, tmp_path):
    """On TensorFlow the batches go through tf.data (not from_generator), same batches, epoch order from EpochOrder."""
    import keras
    import tensorflow as tf

    ds = ImageBatches(digits_table, 16, batch_size=32, shuffle=True, seed=3, cache=tmp_path / "c")
    feed = pipeline.keras_input(ds)
    assert isinstance(feed, tf.data.Dataset) and int(feed.cardinality()) == len(ds)
    order = pipeline.EpochOrder(ds)
    served = []
    for epoch in (0, 1, 0):
        order.on_epoch_begin(epoch)
        want_x, want_y = _epoch(ds)
        got = list(feed.as_numpy_iterator())
        assert np.array_equal(np.concatenate([x for x, _ in got]), want_x)
        assert np.array_equal(np.concatenate([y for _, y in got]), want_y)
        served.append(want_y)
    assert np.array_equal(served[0], served[2]) and not np.array_equal(served[0], served[1])
    # a model trains on it, and the callback sets each epoch's order
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(ds.epoch)

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(len(digits_table.classes), activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(feed, epochs=3, initial_epoch=1, callbacks=[order, Spy()], verbose=0)
    assert len(history.history["loss"]) == 2 and seen == [1, 2]
    unlabelled = pipeline.keras_input(ImageBatches(digits_table, 16, batch_size=64, targets=None, cache=tmp_path / "c"))
    assert model.predict(unlabelled, verbose=0).shape == (150, len(digits_table.classes))


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed, so the jax backend cannot run")
def test_jax_backend_builds_batches_and_fits_without_tensorflow(digits_table, tmp_path):
    table_csv = digits_table.take(range(64)).to_csv(tmp_path / "table.csv")
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import keras
        from kagglekit.table import LabelTable
        from kagglekit.pipeline import ImageBatches, augmentation
        assert keras.backend.backend() == "jax"
        table = LabelTable.read_csv({str(table_csv)!r})
        ds = ImageBatches(table, 16, batch_size=32, shuffle=True, cache={str(tmp_path / 'c')!r})
        x, y = ds[0]
        assert x.shape == (32, 16, 16, 3) and x.dtype == np.uint8
        model = keras.Sequential([keras.Input((16, 16, 3)), augmentation(), keras.layers.Rescaling(1 / 255),
                                  keras.layers.Flatten(), keras.layers.Dense(len(table.classes), activation="softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy")
        h = model.fit(ds, epochs=1, steps_per_epoch=1, shuffle=False, verbose=0)
        assert np.isfinite(h.history["loss"][0])
        assert "tensorflow" not in sys.modules, "TensorFlow was imported on the jax backend"
        print("JAX-OK")
    """)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "JAX-OK" in out.stdout, out.stderr[-3000:]


def _photo_crops(n: int, side: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Return `n` crops of scikit-learn's two and scikit-image's four sample photos, labelled by their photo.

    Natural images: a mirrored crop of the coffee cup is still the coffee cup.
    """
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    from kagglekit.images import resize_images

    rng = np.random.default_rng(0)
    photos = [np.asarray(p) for p in load_sample_images().images]
    photos += [np.asarray(getattr(skdata, name)()) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    photos = [resize_images(p[None], (p.shape[0] // 4, p.shape[1] // 4))[0] for p in photos]  # cheap crops
    out, labels = [], []
    for i in range(n):
        photo = photos[i % len(photos)]
        s = int(rng.integers(15, min(photo.shape[:2]) - 1))
        top, left = int(rng.integers(0, photo.shape[0] - s)), int(rng.integers(0, photo.shape[1] - s))
        out.append(resize_images(photo[None, top:top + s, left:left + s], side)[0])
        labels.append(i % len(photos))
    return np.stack(out), np.array(labels)


def test_flip_check_keeps_flips_where_mirrors_keep_the_label_and_drops_them_for_digits(digits_table):
    from kagglekit.flips import KEEP_SKILL, flip_check

    photos = flip_check(_photo_crops(300))
    assert photos.flip and photos.kept >= KEEP_SKILL and "flip on" in photos.reason and "--no-flip" in photos.reason
    assert photos.original > photos.chance + 0.3  # the quick classifier learnt something to judge by
    digits = flip_check(digits_table)  # real handwritten digits: a mirrored 2 is no 2
    assert not digits.flip and digits.kept < KEEP_SKILL and "flip off" in digits.reason and "--flip" in digits.reason
    assert f"{digits.original:.3f}" in digits.reason and f"{digits.mirrored:.3f}" in digits.reason
    few = flip_check(_photo_crops(30))  # too few to judge: flips stay on, said so
    assert few.flip and few.kept is None and "too few" in few.reason
    unlabelled = flip_check(_photo_crops(100)[0])
    assert unlabelled.flip and "no labels" in unlabelled.reason
    assert flip_check(digits_table) == digits  # seeded: a resumed run judges the same


def _record_reads(batches: ImageBatches) -> list[np.ndarray]:
    """Return the list that each batch `batches` reads from now on appends its row positions to."""
    served: list[np.ndarray] = []
    batch = batches._batch

    def recording(index):
        out, rows = batch(index)
        served.append(rows.copy())
        return out, rows

    batches._batch = recording
    return served


def _tiny_classifier():
    """Return a compiled 16 px, 10-class softmax over flattened pixels."""
    import keras

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_every_epoch_of_fit_serves_its_own_seeded_order_from_its_first_batch(digits_table):
    """Keras asks for the next epoch's first batch before `on_epoch_begin` (tf.data's prefetch, a new iterator):
    that batch is already the next epoch's, decoded ahead, and every epoch serves each image once."""
    import keras

    batches = ImageBatches(digits_table, 16, batch_size=32, shuffle=True, seed=3, cache=None)
    served = _record_reads(batches)
    model = _tiny_classifier()
    source = pipeline.keras_input(batches)
    served.clear()  # what building the input read (batch 0 for its shapes) is not an epoch's
    class SlowEpochStart(keras.callbacks.Callback):  # gives tf.data's prefetch thread time to ask for batch 0 first
        def on_epoch_begin(self, epoch, logs=None):
            import time

            time.sleep(0.5)

    model.fit(source, epochs=3, verbose=0, shuffle=False, callbacks=[SlowEpochStart(), pipeline.EpochOrder(batches)])
    rows = np.concatenate(served)
    n = len(digits_table)
    assert len(rows) == 3 * n
    for epoch in range(3):
        expected = np.random.default_rng([3, epoch]).permutation(n)
        assert np.array_equal(rows[epoch * n:(epoch + 1) * n], expected), epoch


def test_training_feed_serves_every_epoch_from_one_iterator(digits_table, monkeypatch):
    """`keras_input(batches, epochs=(first, end))`: a resumed fit (initial_epoch 1) gets epochs 1..3 in their seeded
    orders, each batch read once, from one iterator, nothing read ahead when a fit stops early. (With a one-pass
    dataset Keras builds two iterators an epoch and drops one whose prefetch thread is running: the stall at the
    start of about half the epochs.)"""
    import keras
    import tensorflow as tf

    made = []
    make = tf.data.Dataset.__iter__
    monkeypatch.setattr(tf.data.Dataset, "__iter__", lambda self: made.append(1) or make(self))
    batches = ImageBatches(digits_table, 16, batch_size=32, shuffle=True, seed=3, cache=None)
    served = _record_reads(batches)
    model = _tiny_classifier()
    source = pipeline.keras_input(batches, epochs=(1, 4))
    served.clear()  # what building the input read (batch 0 for its shapes) is not an epoch's
    history = model.fit(source, epochs=4, initial_epoch=1, steps_per_epoch=len(batches), verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 3
    assert len(made) <= 2  # Keras' shape peek and the fit's one iterator; a one-pass dataset gets 2 per epoch
    n = len(digits_table)
    assert len(served) == 3 * len(batches)
    rows = np.concatenate(served)
    for i, epoch in enumerate((1, 2, 3)):
        assert np.array_equal(rows[i * n:(i + 1) * n], np.random.default_rng([3, epoch]).permutation(n)), epoch

    class StopAfterTwo(keras.callbacks.Callback):  # a deadline ending a time-driven fit long before its last epoch
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch >= 1

    long_source = pipeline.keras_input(batches, epochs=(0, 100_000))
    served.clear()
    model.fit(long_source, epochs=100_000, steps_per_epoch=len(batches), verbose=0, shuffle=False,
              callbacks=[StopAfterTwo()])
    # nothing read ahead: no thread is inside `load` when the fit ends (dropping such an iterator waited 40-46 s)
    assert len(served) == 2 * len(batches)
