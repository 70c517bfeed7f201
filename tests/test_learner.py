"""The recipe: frozen then discriminative stages, schedules, save/load, lr_find, resume after kill -9, 2 devices."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from kagglekit import LabelTable
from kagglekit import backbones as bb
from kagglekit import learner as L
from kagglekit.learner import OneCycle, make_schedule, sgdr

ROOT = Path(__file__).resolve().parents[1]


def digit_arrays(n=300, size=16):
    from kagglekit.testing.competitions import digits

    images, labels = digits(n, seed=0)
    x = np.repeat(images[..., None], 3, axis=-1)
    return L.resize_images(x, size), labels.astype("int32")


def lr_at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_one_cycle_produces_the_documented_rates():
    s = OneCycle(1e-2, total_steps=100, pct_start=0.25, div_factor=25, final_div_factor=1e4)
    assert s.warmup_steps == 25
    assert lr_at(s, 0) == pytest.approx(1e-2 / 25, rel=1e-5)
    assert lr_at(s, 25) == pytest.approx(1e-2, rel=1e-5)
    assert lr_at(s, 100) == pytest.approx(1e-6, rel=1e-3)
    assert lr_at(s, 150) == pytest.approx(1e-6, rel=1e-3)
    mid_up = (1e-2 / 25 + 1e-2) / 2
    assert lr_at(s, 12.5) == pytest.approx(mid_up, rel=1e-4)
    rates = [lr_at(s, i) for i in range(101)]
    assert all(np.diff(rates[:26]) > 0) and all(np.diff(rates[25:]) < 0)


def test_sgdr_restarts_with_cycle_len_and_cycle_mult():
    s = sgdr(0.1, steps_per_epoch=10, cycle_len=1, cycle_mult=2)
    assert lr_at(s, 0) == pytest.approx(0.1)
    assert lr_at(s, 5) == pytest.approx(0.05, rel=1e-4)  # half way down the first 1-epoch cycle
    assert lr_at(s, 10) == pytest.approx(0.1)  # restart after cycle_len epochs
    assert lr_at(s, 20) == pytest.approx(0.05, rel=1e-4)  # second cycle is twice as long
    assert lr_at(s, 30) == pytest.approx(0.1)  # restart after 1 + 2 epochs
    assert make_schedule("constant", 0.3, 10, 2) == 0.3
    with pytest.raises(Exception, match="one_cycle"):
        make_schedule("cosine", 0.1, 10, 2)


def group_arrays(model):
    """All weights per group (BatchNorm statistics included), and the trainable ones as `<group>:trainable`."""
    out = {}
    for name, layers in bb.layer_groups(model, "resnet_small").items():
        out[name] = [keras.ops.convert_to_numpy(w).copy() for layer in layers for w in layer.weights]
        out[name + ":trainable"] = [keras.ops.convert_to_numpy(w).copy() for layer in layers
                                    for w in layer.trainable_weights]
    return out


class Snapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.stages = []

    def on_train_begin(self, logs=None):
        self.stages.append({"before": group_arrays(self.model)})

    def on_train_end(self, logs=None):
        self.stages[-1]["after"] = group_arrays(self.model)


def mean_change(stage, group):
    pairs = list(zip(stage["before"][group], stage["after"][group]))
    return sum(float(np.abs(a - b).sum()) for a, b in pairs) / sum(a.size for a, _ in pairs)


@pytest.fixture(scope="module")
def trained(digits_competition, tmp_path_factory):
    """A learner fine-tuned from a weights file on the digits competition's real PNGs (table path)."""
    tmp = tmp_path_factory.mktemp("learner")
    frame = pd.read_csv(digits_competition / "train.csv", dtype=str)
    table = LabelTable.from_records(frame["id"], [digits_competition / "train" / f"{i}.png" for i in frame["id"]],
                                    frame["label"])
    keras.utils.set_random_seed(0)
    pretrained = tmp / "pretrained.weights.h5"
    bb.backbone_of(bb.build_model("resnet_small", 3, weights=None)).save_weights(pretrained)
    snaps = Snapshots()
    learner = L.fine_tune(table, backbone="resnet_small", sizes=[16], weights=pretrained, valid=0.25,
                          freeze_epochs=1, epochs=1, lr=3e-3, batch_size=32, workdir=tmp / "run",
                          callbacks=[snaps], verbose=0, augment=False)
    return learner, snaps, tmp, table


def test_stage1_freezes_the_backbone_and_stage2_moves_early_layers_least(trained):
    learner, snaps, _, _ = trained
    frozen, unfrozen = snaps.stages
    for group in ("early", "late"):  # weights and BatchNorm statistics untouched while frozen
        assert all(np.array_equal(a, b) for a, b in zip(frozen["before"][group], frozen["after"][group]))
    assert mean_change(frozen, "head") > 0
    early, late, head = (mean_change(unfrozen, g + ":trainable") for g in ("early", "late", "head"))
    assert 0 < early < late < head
    assert list(learner.history["stage"]) == ["frozen", "unfrozen"]
    assert learner.size == (16, 16) and learner.classes == tuple(str(i) for i in range(10))


def test_run_folder_has_curves_history_and_best_checkpoint(trained):
    learner, _, tmp, _ = trained
    run = tmp / "run"
    history = pd.read_csv(run / "history.csv")
    assert {"epoch", "stage", "size", "lr", "loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    assert (run / "curves.png").stat().st_size > 1000
    state = json.loads((run / "state.json").read_text())
    assert state["best"]["value"] == pytest.approx(history["val_accuracy"].max())
    assert (run / state["best"]["file"]).is_file()


def test_save_and_load_round_trip_model_classes_and_settings(trained, tmp_path):
    learner, _, _, _ = trained
    learner.settings["thresholds"] = [0.5] * 10
    x, _ = digit_arrays(8)
    saved = learner.save(tmp_path / "model")
    again = L.Learner.load(saved)
    assert again.classes == learner.classes and again.multilabel is False and again.size == (16, 16)
    assert again.settings["thresholds"] == [0.5] * 10 and again.settings["backbone"] == "resnet_small"
    np.testing.assert_allclose(again.model.predict(x, verbose=0), learner.model.predict(x, verbose=0), atol=1e-5)
    assert len(again.history) == 2


def test_lr_find_sweeps_across_epochs_to_the_end_rate_or_to_a_real_explosion(tmp_path):
    data = digit_arrays(96, 12)  # 3 batches of 32 per epoch: every sweep below spans several epochs
    sane = L.lr_find(data, backbone="resnet_small", weights=None, steps=12, start=1e-4, end=1e-2, batch_size=32,
                     plot=tmp_path / "lr.png")
    # a sane end rate is reached: no false explosion where epoch 2 starts, the rates are the sweep's own
    np.testing.assert_allclose(sane.lrs, np.geomspace(1e-4, 1e-2, 12), rtol=1e-6)
    assert np.all(np.isfinite(sane.losses)) and sane.losses.max() < 4 * sane.losses.min()
    assert (tmp_path / "lr.png").stat().st_size > 1000

    huge = L.lr_find(data, backbone="resnet_small", weights=None, steps=30, start=1e-4, end=1e6, batch_size=32,
                     plot=None)
    n = len(huge.lrs)
    # a huge end rate stops early, past the first epoch, on a real explosion at a rate that diverges
    assert 3 < n < 30, huge.lrs
    np.testing.assert_allclose(huge.lrs, np.geomspace(1e-4, 1e6, 30)[:n], rtol=1e-6)
    assert huge.lrs[-1] > 0.1
    assert not np.isfinite(huge.losses[-1]) or huge.losses[-1] > 4 * huge.losses[:-1].min()
    assert np.all(huge.losses[:-1] <= 4 * huge.losses[:-1].min())  # nothing stopped it sooner
    # the suggestion lies on the descending part of the smoothed loss, before its minimum
    i, lowest = int(np.flatnonzero(huge.lrs == huge.suggestion)[0]), int(np.nanargmin(huge.losses))
    assert i < lowest and huge.losses[i] > huge.losses[lowest]
    assert np.gradient(huge.losses[:lowest + 1], np.log10(huge.lrs[:lowest + 1]))[i] < 0


def test_mixed_float16_computes_inside_in_float16_and_predicts_in_float32(tmp_path):
    x, y = digit_arrays(32, 12)
    learner = L.fine_tune((x, y), backbone="resnet_tiny", weights=None, epochs=1, valid=None, batch_size=32,
                          workdir=tmp_path / "run", verbose=0, augment=False, mixed_precision="mixed_float16")
    model = learner.model
    assert learner.settings["policy"] == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back after building
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # float16 gradients are loss-scaled
    # one real step: finite loss, weights moved (kept in float32 while the layers compute in float16)
    assert np.isfinite(learner.history["loss"]).all() and len(learner.history) == 1
    conv = next(layer for layer in bb.backbone_of(model)._flatten_layers() if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == "float16" and conv.kernel.dtype == "float32"
    probe = keras.Model(model.inputs, [model.get_layer("pool").output, model.get_layer("predictions").output])
    features, probs = (keras.ops.convert_to_numpy(t) for t in probe(x[:4]))
    assert features.dtype == np.float16 and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)  # a softmax computed in float32
    assert model.predict(x[:4], verbose=0).dtype == np.float32


WORKER = textwrap.dedent("""
    import os, signal, sys, json
    import numpy as np, keras
    if os.environ.get("TWO_DEVICES") and os.environ["KERAS_BACKEND"] == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from kagglekit import learner as L
    from kagglekit.testing.competitions import digits
    images, labels = digits(240, seed=0)
    x = L.resize_images(np.repeat(images[..., None], 3, -1), 12)
    kill_at = int(os.environ.get("KILL_AT_EPOCH", "-1"))

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            done = len(json.load(open(os.path.join(sys.argv[1], "state.json")))["rows"]) if os.path.exists(
                os.path.join(sys.argv[1], "state.json")) else 0
            if done == kill_at and batch == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    learner = L.fine_tune((x, labels.astype("int32")), backbone="resnet_small", weights=None,
                          sizes=[int(s) for s in os.environ.get("SIZES", "10,12").split(",")],
                          epochs=int(os.environ.get("EPOCHS", "3")), batch_size=32, valid=0.25, lr=3e-3,
                          workdir=sys.argv[1], verbose=0, augment=False, callbacks=[Kill()],
                          distribute=bool(os.environ.get("TWO_DEVICES")), label_smoothing=0.1,
                          class_weight="balanced", mixed_precision=os.environ.get("MIXED", "auto"))
    print("RESULT", json.dumps({"distribution": learner.settings["distribution"], "policy": learner.settings["policy"],
                                "optimizer": type(learner.model.optimizer).__name__, "jit": learner.model.jit_compile,
                                "loss": learner.history["loss"].tolist()}))
""")


def run_worker(tmp_path, workdir, **env):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    return subprocess.run([sys.executable, str(script), str(workdir)], env=full_env, capture_output=True,
                          text=True, timeout=300)


def test_run_killed_mid_stage_resumes_at_the_right_stage_size_and_rate(tmp_path):
    workdir = tmp_path / "run"
    killed = run_worker(tmp_path, workdir, KILL_AT_EPOCH="4")  # dies inside epoch 5 = 2nd epoch at size 12
    assert killed.returncode == -9, killed.stderr[-2000:]
    before = json.loads((workdir / "state.json").read_text())
    assert len(before["rows"]) == 4 and before["stage_index"] == 1 and before["stage_epochs_done"] == 1
    resumed = run_worker(tmp_path, workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = pd.read_csv(workdir / "history.csv")
    assert list(history["epoch"]) == list(range(6))
    assert list(history["size"]) == [10, 10, 10, 12, 12, 12]
    assert list(history["stage_epoch"]) == [0, 1, 2, 0, 1, 2]
    pd.testing.assert_frame_equal(history.iloc[:4].reset_index(drop=True), pd.DataFrame(before["rows"]),
                                  check_dtype=False)
    # The one-cycle rate after each resumed epoch is the rate an uninterrupted run has there.
    steps = int(np.ceil(180 / 32))
    schedule = OneCycle(3e-3, steps * 3)
    expected = [lr_at(schedule, steps * (e + 1)) for e in range(3)] * 2
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-4)


@pytest.mark.parametrize("backend", ["tensorflow"])  # jax: test_jax_data_parallel_on_8_devices_matches_one_device
def test_data_parallel_run_on_two_logical_cpu_devices_trains(tmp_path, backend):
    """MirroredStrategy over 2 logical CPU devices with float16 mixed precision: loss scaling, no XLA (Keras #21366)."""
    env = {"KERAS_BACKEND": backend, "TWO_DEVICES": "1", "SIZES": "12", "EPOCHS": "2", "MIXED": "mixed_float16",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    done = run_worker(tmp_path, tmp_path / "run", **env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    assert result["distribution"] == "mirrored" and result["policy"] == "mixed_float16"
    assert result["optimizer"] == "LossScaleOptimizer" and result["jit"] is False
    assert np.all(np.isfinite(result["loss"])) and (len(result["loss"]) == 1 or result["loss"][-1] < result["loss"][0])


DATA_PARALLEL = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from kagglekit import learner as L
    from kagglekit.testing.competitions import digits

    images, labels = digits(128, seed=0)
    x, y = L.resize_images(np.repeat(images[..., None], 3, -1), 12), labels.astype("int32")
    out = {}
    for distribute in (True, False):  # 8 devices, then one, from the same seed
        learner = L.fine_tune((x, y), backbone="resnet_tiny", weights=None, epochs=1, valid=None, batch_size=32,
                              lr=1e-3, dropout=0.0, augment=False, distribute=distribute, seed=0, verbose=0,
                              workdir=os.path.join(sys.argv[1], str(distribute)))
        weights = learner.model.weights
        shards = [[np.asarray(s.data) for s in w.value.addressable_shards] for w in weights]
        out[str(distribute)] = {
            "distribution": learner.settings["distribution"],
            "copies": sorted({len(s) for s in shards}),
            "replicas_equal": all(np.array_equal(s[0], t) for s in shards for t in s[1:]),
            "whole": all(s[0].shape == tuple(w.shape) for s, w in zip(shards, weights)),
            "loss": learner.history["loss"].tolist(),
            "probs": learner.model.predict(x[:16], verbose=0).tolist(),
            "weights": [np.asarray(s[0]).ravel()[:64].tolist() for s in shards],
        }
    print("RESULT", json.dumps(out))
""")


def test_jax_data_parallel_on_8_devices_matches_one_device(tmp_path):
    """DataParallel over 8 host devices: every replica ends with the same weights, and training equals one device's."""
    pytest.importorskip("jax")
    script = tmp_path / "data_parallel.py"
    script.write_text(DATA_PARALLEL)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax",
           "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    many, one = result["True"], result["False"]
    assert many["distribution"] == "data_parallel" and one["distribution"] == "none"
    assert many["copies"] == [8] and one["copies"] == [1]  # every weight replicated on all 8 devices
    assert many["replicas_equal"] and many["whole"]
    # the 8 replicas together take the same steps as one device on the whole batch (gradients averaged)
    np.testing.assert_allclose(many["loss"], one["loss"], rtol=1e-4)
    for a, b in zip(many["weights"], one["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(many["probs"], one["probs"], atol=1e-4)


def test_frozen_stage_trains_the_head_on_cached_features(tmp_path):
    """The frozen stage fits the head on the backbone's features (folded back into the model exactly)."""
    x, y = digit_arrays(600)
    xt, yt, xv, yv = x[:450], y[:450], x[450:], y[450:]
    source = L.fine_tune((xt, yt), backbone="resnet_tiny", weights=None, epochs=2, valid=None, lr=3e-3,
                         batch_size=32, workdir=tmp_path / "pre", verbose=0, augment=False)
    weights = source.save_backbone(tmp_path / "pre.weights.h5")
    runs = {}
    for on_features in (True, False):
        runs[on_features] = L.fine_tune((xt, yt), backbone="resnet_tiny", weights=weights, valid=(xv, yv),
                                        freeze_epochs=1, epochs=0, lr=3e-3, batch_size=32, verbose=0, augment=False,
                                        workdir=tmp_path / f"head-{on_features}", head_on_features=on_features)
    learner = runs[True]
    assert list(learner.history["stage"]) == ["frozen"] and list(runs[False].history["stage"]) == ["frozen"]
    # the recorded validation accuracy is the full model's: the standardisation is folded into the Dense layer
    predicted = learner.model.predict(xv, verbose=0).argmax(1)
    assert abs(float(np.mean(predicted == yv)) - learner.history["val_accuracy"].iloc[-1]) < 1e-6
    # the backbone is the file's, untouched
    fresh = bb.load_backbone("resnet_tiny", weights)
    assert all(np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
               for a, b in zip(fresh.weights, bb.backbone_of(learner.model).weights))
    # a few hundred steps on the features train the head well past one epoch of the whole model (15 steps)
    # (measured: 0.83 against 0.15; chance is 0.1)
    assert learner.history["val_accuracy"].iloc[-1] > 0.6
    assert learner.history["val_accuracy"].iloc[-1] > runs[False].history["val_accuracy"].iloc[-1]


def test_flip_is_judged_from_the_images_and_reaches_training_and_tta(tmp_path):
    x, y = digit_arrays(240)

    def flips(learner):
        return [layer for layer in learner.model._flatten_layers() if isinstance(layer, keras.layers.RandomFlip)]

    common = dict(backbone="resnet_tiny", weights=None, epochs=1, valid=0.25, batch_size=64, verbose=0)
    judged = L.fine_tune((x, y), workdir=tmp_path / "judged", **common)  # digits: a mirrored 2 is no 2
    assert judged.settings["tta_flip"] is False and not flips(judged)
    assert judged.settings["recipe"]["flip"] is False
    forced = L.fine_tune((x, y), workdir=tmp_path / "forced", flip=True, **common)
    assert forced.settings["tta_flip"] is True and flips(forced)
