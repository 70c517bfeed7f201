"""Accelerator facts: TPU devices from the accelerator type, the plan's training note, precision and XLA choices.

The TPU and multi-GPU paths themselves need the hardware: these tests check the decisions kagglekit
takes from what it finds (no TPU or GPU was available where they were written).
"""
from __future__ import annotations

import pytest

from kagglekit.hardware import Hardware, tpu_devices
from kagglekit.learner import devices
from kagglekit.plan import batch_size_for


@pytest.mark.parametrize("kind, count, memory", [("v3-8", 8, 16.0), ("v5litepod-8", 8, 16.0), ("v4-8", 4, 32.0),
                                                 ("v2-32", 32, 8.0)])
def test_tpu_types_give_the_devices_jax_sees(kind, count, memory, monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "jax", raising=False)
    found = tpu_devices(kind)
    assert len(found) == count and {d.kind for d in found} == {"tpu"} and {d.memory_gb for d in found} == {memory}


def test_unknown_tpu_type_is_one_device_of_unknown_memory(monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "jax", raising=False)
    assert [(d.kind, d.memory_gb) for d in tpu_devices("TPU")] == [("tpu", None)]


def test_tpu_vm_is_found_and_the_plan_says_how_it_trains(monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "jax", raising=False)
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v5litepod-8")
    hw = Hardware.probe()
    assert hw.kind == "tpu" and len(hw.devices) == 8
    assert hw.training_note("jax") == ("; data parallel over 8 TPU cores (keras.distribution.DataParallel), "
                                       "mixed_bfloat16, the batch split evenly across the cores")
    assert "KERAS_BACKEND=jax" in hw.training_note("tensorflow")  # never silently trains a TPU VM on its CPU
    batch, _why = batch_size_for("resnet50", 224, hw)
    assert batch % 8 == 0 and batch // 8 >= 16  # sized to the cores: every core gets a full share


def test_two_gpus_note_names_the_engine_and_loss_scaling():
    hw = Hardware.gpu("Tesla T4", 15, count=2)
    assert "MirroredStrategy, without XLA (Keras #21366)" in hw.training_note("tensorflow")
    assert "keras.distribution.DataParallel" in hw.training_note("jax") and "loss scaling" in hw.training_note("jax")
    assert Hardware.gpu("Tesla T4", 15, count=1).training_note("tensorflow") == ""


def test_auto_precision_is_bfloat16_on_a_tpu(monkeypatch):
    monkeypatch.setattr(devices, "accelerators", lambda: ["TPU_0", "TPU_1"])
    monkeypatch.setattr(devices, "tpu_cores", lambda: 2)
    assert devices.precision_policy("auto") == "mixed_bfloat16"
    monkeypatch.setattr(devices, "accelerators", lambda: [])
    assert devices.precision_policy("auto") is None


def test_xla_is_off_under_mirrored_strategy_only(monkeypatch):
    monkeypatch.setattr(devices, "_backend", lambda: "tensorflow")
    assert devices.jit_compile_setting(2) is False and devices.jit_compile_setting(1) == "auto"
    monkeypatch.setattr(devices, "_backend", lambda: "jax")
    assert devices.jit_compile_setting(8) == "auto"


TWO_PROCESSES = """
import json, os, sys
import numpy as np
import keras
from kagglekit.learner import multihost

assert multihost.initialize(), "the environment asked for 2 processes"
keras.distribution.set_distribution(multihost.data_parallel())
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 8)).astype("float32"), rng.integers(0, 3, 64)
rows = multihost.shard(len(x))
history = model.fit(x[rows], y[rows], batch_size=multihost.local_batch(16), epochs=2, verbose=0, shuffle=False)
if multihost.is_writer():
    os.makedirs(sys.argv[1], exist_ok=True)
    with open(os.path.join(sys.argv[1], f"written-by-{multihost.process_index()}.json"), "w") as fh:
        fh.write("{}")
out = {"index": multihost.process_index(), "count": multihost.process_count(), "rows": [rows.start, rows.stop],
       "loss": history.history["loss"], "stop_if_one_says_so": multihost.agree(multihost.process_index() == 1),
       "go_on_if_none_says_stop": multihost.agree(False),
       "weights": [np.asarray(w.value.addressable_shards[0].data).ravel().tolist() for w in model.weights]}
print("RESULT", json.dumps(out))
"""


@pytest.mark.slow
def test_two_jax_processes_keep_replicas_equal_and_write_once(tmp_path, jax_process_env):
    """Multi-host JAX, as two processes on this machine (CPU collectives): one model, one writer, one decision."""
    import json
    import subprocess
    import sys

    pytest.importorskip("jax")
    script = tmp_path / "worker.py"
    script.write_text(TWO_PROCESSES)
    procs = []
    for index in range(2):
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")], env=jax_process_env(index),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.split("RESULT", 1)[1]))
    a, b = results
    assert (a["index"], b["index"], a["count"], b["count"]) == (0, 1, 2, 2)
    assert a["rows"] == [0, 32] and b["rows"] == [32, 64]  # each process fed its own half
    assert a["loss"] == b["loss"] and a["weights"] == b["weights"]  # one model: the replicas stay equal
    assert a["stop_if_one_says_so"] is True and b["stop_if_one_says_so"] is True
    assert a["go_on_if_none_says_stop"] is False and b["go_on_if_none_says_stop"] is False
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["written-by-0.json"]  # written once
