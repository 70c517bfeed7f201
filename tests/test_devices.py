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
