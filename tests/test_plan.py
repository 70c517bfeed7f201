"""kagglekit.plan: durations, hardware, image sizes -> plan with reasons; the Deadline callback on a real Keras model."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from kagglekit import plan as P
from kagglekit.errors import KaggleKitError, PlanError
from kagglekit.table import LabelTable

CPU = P.Hardware.cpu(cores=2)


# ------------------------------------------------------------------ durations
@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("1h 30m", 5400), ("1.5h", 5400), ("45", 45),
    (45, 45), (2.5, 2.5), ("10 min", 600), ("2 hours", 7200), ("1:30:00", 5400), ("10:00", 600), (" 5M ", 300),
])
def test_parse_duration_good(text, seconds):
    assert P.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "abc", "10x", "m10", "10m5", "-5m", "0", 0, -3, True, None, "1h30mm", "5 5"])
def test_parse_duration_bad_names_input_and_fix(bad):
    with pytest.raises(PlanError) as err:
        P.parse_duration(bad)
    assert isinstance(err.value, KaggleKitError) and isinstance(err.value, ValueError)
    assert repr(bad) in str(err.value) and "'10m'" in str(err.value)


def test_import_does_not_import_keras():
    code = "import sys, kagglekit.plan as p; p.Hardware.probe(); print(any(m in sys.modules for m in ('keras', 'tensorflow', 'jax', 'torch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------ hardware
def test_hardware_probe_and_tpu_env(monkeypatch):
    hw = P.Hardware.probe()
    assert hw.cores >= 1 and hw.kind in ("cpu", "gpu", "tpu") and hw.describe()
    monkeypatch.setenv("TPU_NAME", "local")
    tpu = P.Hardware.probe()
    assert tpu.kind == "tpu" and "TPU_NAME" in tpu.describe()


def test_hardware_probe_reads_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"  # prints what the real one prints for --query-gpu=name,memory.total
    fake.write_text("#!/bin/sh\necho 'Tesla T4, 15360'\necho 'Tesla T4, 15360'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")
    for var in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    hw = P.Hardware.probe()
    assert hw.kind == "gpu" and len(hw.devices) == 2 and hw.device_memory_gb == 15.0
    assert "2 x Tesla T4 15 GiB" in hw.describe() and "nvidia-smi" in hw.describe()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert len(P.Hardware.probe().devices) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert P.Hardware.probe().kind == "cpu"


def test_hardware_describe_gpu():
    hw = P.Hardware.gpu("Tesla T4", 15.0, count=2)
    assert hw.kind == "gpu" and hw.device_memory_gb == 15.0
    assert "2 x Tesla T4 15 GiB" in hw.describe()


# ------------------------------------------------------------------ image sizes
def _pictures(folder, sizes, n_each=3):
    paths = []
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes * n_each):
        p = folder / f"img{i}.{'png' if h < 64 else 'jpg'}"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_image_stats_from_table(tmp_path):
    paths = _pictures(tmp_path, [(28, 28), (28, 28), (30, 40)])
    paths.append(str(tmp_path / "missing.png"))  # unreadable files are skipped, not fatal
    table = LabelTable.from_records(range(len(paths)), paths, ["a"] * len(paths))
    stats = P.ImageStats.from_table(table)
    assert stats.count == len(paths) and stats.sampled == len(paths) - 1
    assert stats.median_side == 28 and stats.median_height == 28
    assert "28x28" in stats.describe()


def test_size_small_digits_never_224(tmp_path):
    stats = P.ImageStats.from_paths(_pictures(tmp_path, [(28, 28)]))
    for weights in (None, "imagenet"):
        for hw in (CPU, P.Hardware.gpu("A100", 40)):
            plan = P.make_plan(1000, stats, hw, "10m", weights=weights, n_test=200)
            assert plan.sizes[-1] <= 64, plan.describe()
    scratch = P.make_plan(1000, stats, CPU, "10m", weights=None, n_test=200)
    assert scratch.sizes == [32] and scratch.backbone == "resnet_compact"
    assert any("28x28" in r and "not upscaled beyond 32" in r for r in scratch.reasons)


def test_size_photos_not_squashed_to_32():
    photos = P.ImageStats.from_sizes([(427, 640), (375, 500), (500, 375)] * 5, count=2000)
    for weights in (None, "imagenet"):
        for hw in (CPU, P.Hardware.gpu("Tesla T4", 15)):
            plan = P.make_plan(1600, photos, hw, "10m", weights=weights, n_test=400)
            assert plan.sizes[-1] >= 64, plan.describe()
    gpu = P.make_plan(1600, photos, P.Hardware.gpu("A100", 40), "30m", n_test=400)
    assert gpu.sizes[-1] == 224 and gpu.backbone == "resnet50"


def test_sklearn_sample_photos(tmp_path):
    from sklearn.datasets import load_sample_images

    paths = []
    for i, im in enumerate(load_sample_images().images):
        paths.append(tmp_path / f"photo{i}.jpg")
        Image.fromarray(im).save(paths[-1])
    stats = P.ImageStats.from_paths(paths)
    assert stats.median_side == 427
    plan = P.make_plan(500, stats, CPU, "5m", weights=None, n_test=100)
    assert 64 <= plan.sizes[-1] <= 128 and plan.sizes[-1] % 8 == 0


# ------------------------------------------------------------------ plans
DIGITS = P.ImageStats.from_sizes([(28, 28)] * 20, count=1797)


def test_explicit_epochs_and_sizes_win():
    plan = P.make_plan(1400, DIGITS, CPU, "2m", weights=None, epochs=50, sizes=[48, 64], backbone="resnet_small",
                       batch_size=16, n_test=300)
    assert (plan.epochs, plan.sizes, plan.backbone, plan.batch_size) == (50, [48, 64], "resnet_small", 16)
    assert any("epochs 50: asked" in r and "stop early" in r for r in plan.reasons)
    no_budget = P.make_plan(1400, DIGITS, CPU, None, weights=None, epochs=40, n_test=300)
    assert no_budget.epochs == 40 and no_budget.budget_s >= no_budget.estimated_s


def test_longer_budget_never_fewer_epochs():
    big = P.ImageStats.from_sizes([(28, 28)] * 20, count=60000)
    for weights in (None, "imagenet"):
        for budget in ((300, 600, 1200, 3600) if weights is None else (900, 1800, 3600)):
            short = P.make_plan(48000, big, CPU, budget, weights=weights, n_test=10000)
            long = P.make_plan(48000, big, CPU, 2 * budget, weights=weights, n_test=10000)
            assert long.total_epochs * long.sizes[-1] ** 2 >= short.total_epochs * short.sizes[-1] ** 2
            if long.sizes == short.sizes and long.backbone == short.backbone:
                assert long.epochs >= short.epochs
            assert short.estimated_s <= short.budget_s * 1.05 or short.epochs == 1


def test_default_budget_by_hardware_and_fills_it():
    cpu = P.make_plan(8000, DIGITS, CPU, None, weights=None, n_test=2000)
    gpu = P.make_plan(8000, DIGITS, P.Hardware.gpu("Tesla T4", 15), None, weights=None, n_test=2000)
    assert cpu.budget_s == P.DEFAULT_BUDGET_S["cpu"] == 600 and gpu.budget_s == P.DEFAULT_BUDGET_S["gpu"]
    assert not cpu.budget_given and "default first baseline on CPU" in cpu.describe()
    assert cpu.estimated_s <= cpu.budget_s and cpu.epochs >= 3


def test_batch_size_from_memory():
    photos = P.ImageStats.from_sizes([(375, 500)] * 5, count=20000)
    small = P.make_plan(16000, photos, P.Hardware.gpu("GPU", 8), "1h", backbone="resnet50", n_test=100)
    large = P.make_plan(16000, photos, P.Hardware.gpu("GPU", 80), "1h", backbone="resnet50", n_test=100)
    cpu = P.make_plan(16000, photos, CPU, "1h", backbone="resnet50", n_test=100)
    assert small.batch_size < large.batch_size
    assert small.batch_size & (small.batch_size - 1) == 0 and large.batch_size <= 256
    assert cpu.batch_size in (32, 64) and any(r.startswith(f"batch {cpu.batch_size}: CPU") for r in cpu.reasons)
    two = P.make_plan(16000, photos, P.Hardware.gpu("GPU", 8, count=2), "1h", backbone="resnet50", n_test=100)
    assert two.batch_size == 2 * small.batch_size  # one batch per device


def test_batch_and_learning_rate_scale_with_the_device_count():
    photos = P.ImageStats.from_sizes([(375, 500)] * 5, count=20000)
    plans = {n: P.make_plan(16000, photos, P.Hardware.gpu("T4", 16, count=n), "1h", backbone="resnet50", n_test=100)
             for n in (1, 2, 8, 16)}
    assert plans[1].lr is None and "lr" not in plans[1].fine_tune_kwargs()
    for n in (2, 8):
        assert plans[n].batch_size == n * plans[1].batch_size
        assert plans[n].lr == pytest.approx(n * P.BASE_LR) and plans[n].fine_tune_kwargs()["lr"] == plans[n].lr
        assert any(r.startswith(f"lr {plans[n].lr:g}: {n} devices") and "--lr" in r for r in plans[n].reasons)
    assert plans[16].lr == pytest.approx(P.MAX_LR_SCALE * P.BASE_LR)  # capped
    asked = P.make_plan(16000, photos, P.Hardware.gpu("T4", 16, count=8), "1h", backbone="resnet50", batch_size=64)
    assert asked.batch_size == 64 and asked.lr is None  # an explicit batch is the user's: no scaling
    assert P.Plan.from_dict(plans[8].to_dict()).lr == plans[8].lr  # kept in the run state
    scratch = P.make_plan(16000, photos, P.Hardware.gpu("T4", 16, count=4), "1h", weights=None, n_test=100)
    assert scratch.lr == pytest.approx(4 * P.SCRATCH_LR)  # from scratch: 4x its own single-device rate


def test_fine_tune_default_learning_rate_depends_on_the_weights(tmp_path):
    """One device: 1e-3 fine-tuning pretrained weights, 3e-3 from scratch (the plan's BASE_LR, SCRATCH_LR)."""
    import numpy as np

    from kagglekit import backbones
    from kagglekit.learner import fine_tune

    x = np.random.default_rng(0).integers(0, 255, (32, 16, 16, 3), dtype="uint8")
    y = np.arange(32) % 2
    common = dict(backbone="resnet_micro", sizes=[16], epochs=1, valid=None, batch_size=16, verbose=0, augment=False)
    scratch = fine_tune((x, y), weights=None, workdir=tmp_path / "scratch", **common)
    path = tmp_path / "micro.weights.h5"
    backbones.load_backbone("resnet_micro", input_shape=(16, 16, 3)).save_weights(path)
    tuned = fine_tune((x, y), weights=str(path), freeze_epochs=0, workdir=tmp_path / "tuned", **common)
    assert scratch.settings["recipe"]["lr"] == P.SCRATCH_LR and tuned.settings["recipe"]["lr"] == P.BASE_LR


def test_measured_speed_replaces_the_model():
    slow = P.make_plan(8000, DIGITS, CPU, "10m", weights=None, sizes=[32], n_test=100, seconds_per_image=0.02)
    fast = P.make_plan(8000, DIGITS, CPU, "10m", weights=None, sizes=[32], n_test=100, seconds_per_image=0.001)
    assert slow.epochs < fast.epochs and slow.seconds_per_image == pytest.approx(0.02)
    assert any("measured" in r for r in slow.reasons)


def test_reserve_grows_with_test_set_and_tta():
    a = P.make_plan(8000, DIGITS, CPU, "30m", weights=None, n_test=1000, tta=1)
    b = P.make_plan(8000, DIGITS, CPU, "30m", weights=None, n_test=10000, tta=1)
    c = P.make_plan(8000, DIGITS, CPU, "30m", weights=None, n_test=10000, tta=4)
    assert a.reserve_s < b.reserve_s < c.reserve_s and c.tta == 4


def test_budget_too_short_raises():
    with pytest.raises(PlanError, match="too short.*--time"):
        P.make_plan(8000, DIGITS, CPU, "20s", weights=None, n_test=100000)


def test_plan_reasons_printed_and_logged(caplog):
    plan = P.make_plan(1400, DIGITS, CPU, "10m", weights=None, n_test=360)
    text = plan.describe()
    assert text.splitlines()[0].startswith("plan: resnet_compact (from scratch), size 32")
    for word in ("hardware:", "images:", "budget 10 min: asked", "backbone resnet_compact", "size 32:",
                 "batch 64", "epochs", "kept back"):
        assert word in text, word
    assert P.Plan.from_dict(plan.to_dict()) == plan
    kwargs = plan.fine_tune_kwargs()
    assert kwargs["sizes"] == [32] and kwargs["weights"] is None and kwargs["epochs"] == plan.epochs



def test_a_time_driven_plan_does_not_promise_an_epoch_count_or_an_early_end():
    """kagglekit run trains until the deadline: a plan capped at 30 epochs that 'ends early' would be silently
    wrong (the 5-minute zoo's Aerial Cactus, so planned, trained 223 epochs for the whole 5 minutes)."""
    plan = P.make_plan(1600, P.ImageStats.from_sizes([(32, 32)] * 10, count=1600), CPU, "5m", weights=None,
                       n_valid=400, n_test=500)
    counted, timed = plan.describe(), plan.describe(time_driven=True)
    assert f"{plan.epochs} epochs, batch" in counted and "the run ends early" in counted
    head = timed.splitlines()[0]
    assert "trained until the deadline" in head and "all of a 5 min budget" in head and "epochs," not in head
    fit = int(timed.split("epochs: as many as fit, ~")[1].split()[0])
    assert fit > plan.epochs == P.MAX_EPOCHS[False] and "ends early" not in timed

# ------------------------------------------------------------------ Deadline
class _Clock:
    """A virtual monotonic clock for `kagglekit.deadline`: it moves only when a training step says it took time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch):
    """Return the virtual clock `kagglekit.deadline` reads (the machine's own speed and load play no part)."""
    import types

    from kagglekit import deadline as deadline_module

    virtual = _Clock()
    monkeypatch.setattr(deadline_module, "time", types.SimpleNamespace(monotonic=virtual.monotonic, time=time.time))
    return virtual


class _Slow:
    """A callback factory: every training batch takes `seconds` of the virtual clock (a stand-in for a big model)."""

    @staticmethod
    def make(seconds: float, counter: list, clock: _Clock):
        import keras

        class Slow(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                counter.append(batch)
                clock.now += seconds

        return Slow()


def _tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(320, 16)).astype("float32"), rng.integers(0, 3, 320)
    return model, x, y


def test_deadline_stops_inside_budget_and_resumes(caplog, tmp_path, clock):
    from kagglekit.plan import Deadline

    model, x, y = _tiny_model()
    steps = []
    budget, reserve = 4.0, 0.5
    deadline = Deadline(budget, reserve_s=reserve, batch_size=32, state_path=tmp_path / "deadline.json")
    t0 = clock.now
    with caplog.at_level(logging.INFO, logger="kagglekit"):
        history = model.fit(x, y, batch_size=32, epochs=1000, verbose=0, validation_data=(x[:64], y[:64]),
                            callbacks=[_Slow.make(0.03, steps, clock), deadline])
    took = clock.now - t0  # virtual seconds: 0.03 a step, whatever this machine's speed
    ran = len(history.history["loss"])
    assert 2 <= ran < 1000 and deadline.stopped
    assert took <= budget * 1.05, took  # never past the budget by more than 5%
    assert took <= budget - reserve + 0.15 * budget  # and most of the reserve is left for prediction
    assert took >= (budget - reserve) - 3 * deadline.epoch_s  # did not stop absurdly early
    assert deadline.expected_epochs is not None and deadline.expected_epochs <= ran + 1
    assert deadline.seconds_per_image == pytest.approx(0.03 / 32)  # measured from the steps: 30 ms for 32 images
    assert "deadline: stopping training" in caplog.text

    state = deadline.to_state()
    assert state["spent_s"] >= took - 0.2 and state["budget_s"] == budget
    resumed = Deadline.from_state(state)
    on_disk = json.loads((tmp_path / "deadline.json").read_text())  # written at every epoch end, as a killed run leaves it
    assert on_disk["budget_s"] == budget and 0 < on_disk["spent_s"] <= state["spent_s"]
    saved = Deadline.load(tmp_path / "deadline.json", extra_s=1.0)
    assert saved.spent_s == pytest.approx(on_disk["spent_s"] + 1.0, abs=0.01) and saved.reserve_s == reserve
    fresh = Deadline.load(tmp_path / "none.json", budget_s="1m")
    assert fresh.budget_s == 60 and fresh.spent_s < 1 and fresh.save().is_file()
    assert resumed.exhausted or resumed.remaining_s < deadline.epoch_s
    model2, x, y = _tiny_model()
    steps.clear()
    history = model2.fit(x, y, batch_size=32, epochs=1000, verbose=0, callbacks=[_Slow.make(0.03, steps, clock), resumed])
    assert len(history.history["loss"]) == 1 and len(steps) <= 2  # stops at once (Keras runs one step)
    assert resumed.stopped and ("resumed with" in resumed.stopped or "budget is spent" in resumed.stopped)


def test_deadline_resumes_a_state_file_written_before_its_records_and_reads_through_them(tmp_path, clock):
    from kagglekit.plan import Deadline

    # a deadline.json as the Deadline of the previous release wrote it (the same keys today's writes)
    old = {"budget_s": 600.0, "spent_s": 250.5, "reserve_s": 40.0, "seconds_per_image": 0.002, "epoch_s": 30.0,
           "size": 64, "stopped": None, "train_start_s": 12.0, "step_total_s": 200.25, "valid_s": 3.5, "tail_s": 1.25}
    (tmp_path / "deadline.json").write_text(json.dumps(old))
    resumed = Deadline.load(tmp_path / "deadline.json", extra_s=9.5)
    assert resumed.spent_s == 260.0 and resumed.remaining_s == 600.0 - 40.0 - 260.0 and resumed.size == 64
    clock.now += 10.0  # the budget's clock goes on with the monotonic one
    assert resumed.spent_s == 270.0 and resumed.budget.spent_s == 270.0
    assert (resumed.train_start_s, resumed.step_total_s, resumed.valid_s) == (12.0, 200.25, 3.5)
    # the window runs from the first step (12 s) to the limit (560 s) less the validation and the checkpoint tail
    assert resumed.fraction == pytest.approx((270.0 - 12.0) / (560.0 - 3.5 - 1.25 - 12.0))
    resumed.reserve_s = 100.0  # the attributes read and write their records
    assert resumed.budget.reserve_s == 100.0 and resumed.limit_s == 500.0
    resumed.save()
    written = json.loads((tmp_path / "deadline.json").read_text())
    assert set(written) == set(old) and written["spent_s"] == 270.0 and written["tail_s"] == 1.25
    assert written["epoch_s"] is None  # not measured in this session: the resumed epoch length only guards its first fit


def test_deadline_replans_expected_epochs(clock):
    from kagglekit.plan import Deadline

    model, x, y = _tiny_model()
    steps = []
    deadline = Deadline(1.5, calibrate_steps=3)  # 10 steps of 30 ms: ~0.3 s an epoch -> a few epochs, not 50
    model.fit(x, y, batch_size=32, epochs=50, verbose=0, callbacks=[_Slow.make(0.03, steps, clock), deadline])
    assert deadline.planned_epochs == 50 and deadline.expected_epochs is not None
    assert deadline.expected_epochs < 50 and deadline.stopped
    steps.clear()  # fine_tune's next stage (another fit, same callback): no time for it either
    history = model.fit(x, y, batch_size=32, epochs=50, verbose=0, callbacks=[_Slow.make(0.03, steps, clock), deadline])
    assert len(history.history["loss"]) == 1 and len(steps) <= 2


def test_plan_makes_its_deadline():
    plan = P.make_plan(1400, DIGITS, CPU, "10m", weights=None, n_test=360)
    deadline = plan.deadline(spent_s=30)
    assert deadline.budget_s == plan.budget_s and deadline.reserve_s == plan.reserve_s
    assert 29 <= deadline.spent_s < 31 and deadline.batch_size == plan.batch_size


def test_plan_costs_come_from_the_registry():
    """The plan keeps no table of its own: every cost fact is the registry record's."""
    from kagglekit import backbones

    for name in P.CANDIDATES[(True, "gpu")] + P.CANDIDATES[(False, "gpu")] + P.CANDIDATES[(False, "cpu")]:
        backbones.get(name)  # every candidate is registered
    assert not any(hasattr(P, t) for t in ("_KERAS_APPS", "_SMALL_RESNETS", "_CPU_SLOWNESS"))
    for name in backbones.names():
        entry = backbones.get(name)
        assert P.forward_gflops(name, entry.default_size) == pytest.approx(entry.gflops), name
        assert P._entry(name) == (entry.default_size, entry.min_size, entry.pretrained)
    gpu = P.Hardware.gpu("Tesla T4", 15.0)
    effnet, resnet = backbones.get("efficientnetb0"), backbones.get("resnet50")
    assert P._slowness("efficientnetb0", CPU) == effnet.slowness > P._slowness("efficientnetb0", gpu) > 1.0
    assert P._slowness("resnet_micro", CPU) == backbones.get("resnet_micro").cpu_slowness  # measured on CPU
    assert P.batch_size_for("efficientnetv2l", 480, gpu)[0] < P.batch_size_for("resnet50", 224, gpu)[0]
    assert P.estimate_seconds_per_image("resnet50", 224, CPU) == pytest.approx(
        3 * resnet.gflops * 1e9 / CPU.train_flops + P.CPU_OVERHEAD_S)
    assert P.forward_gflops("resnet_compact", 32) < P.forward_gflops("resnet_small", 32) / 3
    small = backbones.get("resnet_small").constructor((32, 32, 3), None)  # the widths counted are the model's
    assert small.count_params() == backbones.get("resnet_small").params


@pytest.mark.parametrize("kwargs", [{"sizes": [0]}, {"sizes": []}, {"epochs": 0}])
def test_bad_explicit_settings(kwargs):
    with pytest.raises(PlanError, match="must be"):
        P.make_plan(100, DIGITS, CPU, "10m", weights=None, **kwargs)


def test_default_budget_grows_to_one_epoch_but_a_given_one_is_honoured_or_refused():
    cats = P.ImageStats.from_sizes([(375, 500)], count=60000)
    plan = P.make_plan(50000, cats, CPU, None, weights="imagenet", n_test=12500)
    assert plan.budget_s > P.DEFAULT_BUDGET_S["cpu"] and plan.estimated_s <= plan.budget_s
    assert "does not afford one epoch" in plan.describe()
    with pytest.raises(PlanError, match=r"too short.*--time \d+m.*weights none"):
        P.make_plan(50000, cats, CPU, "10m", weights="imagenet", n_test=12500)
