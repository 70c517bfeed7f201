"""Backbone registry: every entry builds and trains a step; weights from each file format; offline fails fast."""
from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from kagglekit import backbones as bb
from kagglekit.errors import ConfigError, WeightsError

REQUIRED = {"vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2",
            *(f"efficientnetb{i}" for i in range(8)),
            *(f"efficientnetv2{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")),
            *(f"convnext_{v}" for v in ("tiny", "small", "base", "large", "xlarge")), "densenet121", "densenet169",
            "densenet201", "xception", "inceptionv3", "inceptionresnetv2", "mobilenetv2", "mobilenetv3small",
            "mobilenetv3large", "resnet_small", "vit_base_patch16_224_imagenet", "dinov2_small",
            "deit_small_distilled_patch16_224_imagenet", "swin_tiny_patch4_window7_224", "resnet_vd_50_imagenet",
            "efficientnet_b0_ra_imagenet", "hgnetv2_b4_ssld_stage2_ft_in1k"}
APPS = [n for n in bb.names() if bb.get(n).source in ("keras.applications", "kagglekit")]
# The smallest member of each keras.applications family, and every small ResNet: built, trained, saved, reloaded.
SMALLEST = sorted({min((n for n in APPS if bb.get(n).family == f), key=lambda n: bb.get(n).params)
                   for f in {bb.get(n).family for n in APPS}} | {n for n in APPS if bb.get(n).from_scratch})


def _pixels(n=2, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _backbone_arrays(model):
    return [keras.ops.convert_to_numpy(w) for w in bb.backbone_of(model).weights]


def test_registry_has_the_required_backbones():
    assert REQUIRED <= set(bb.names())
    with pytest.raises(ConfigError, match="Registered: .*resnet50"):
        bb.get("resnet5O")


def test_every_record_holds_its_facts():
    """Every entry's record, checked without building it: cost facts, weights, what to attach."""
    catalog = ([r[0] for r in bb.catalog.KERAS_APPS] + list(bb.catalog.SMALL_RESNETS)
               + [r[0] for r in bb.catalog.HUB_PRESETS])  # (not presets other tests registered on the fly)
    assert len(catalog) >= 35 and len(bb.catalog.HUB_PRESETS) >= 10 and set(catalog) <= set(bb.names())
    for name in catalog:
        e = bb.get(name)
        assert e.family and e.params and e.gflops > 0 and e.memory_mb > 0 and e.slowness >= 0.5, name
        assert e.min_size <= e.default_size and e.preprocess in bb.PREPROCESS_MODES, name
        if e.source == "keras.applications":
            assert e.weights_file.endswith(".h5") and e.pretrained and e.attach() == e.weights_file, name
            assert hasattr(keras.applications, e.constructor.__name__.split(".")[-1]), name
        elif e.source == "keras_hub":
            model, kind, preset, version = np.array(e.kaggle_handle.split("/"))[[1, 2, 3, 4]]
            assert e.kaggle_handle.startswith("keras/") and kind == "keras" and preset == e.preset and version.isdigit()
            assert e.constructor is None and e.pooling in bb.TOKEN_POOLING and "Kaggle Models" in e.attach()
        else:
            assert e.from_scratch and not e.pretrained and e.weights_file is None, name
    # the cost grows with the model inside a family, and with the size
    for family in ("efficientnet", "efficientnetv2", "convnext"):
        members = sorted((bb.get(n) for n in APPS if bb.get(n).family == family), key=lambda e: e.params)
        assert [m.gflops for m in members] == sorted(m.gflops for m in members), family
    assert bb.get("resnet50").forward_gflops(448) == pytest.approx(4 * bb.get("resnet50").gflops)


@pytest.mark.parametrize("name", SMALLEST)
def test_each_family_builds_trains_saves_and_reloads_at_its_smallest_size(name, tmp_path):
    from kagglekit.learner import Learner

    entry = bb.get(name)
    size = max(32, entry.min_size)
    model = bb.build_model(name, 3, weights=None, dropout=0.1)
    base = bb.backbone_of(model)
    assert base.count_params() == entry.params  # the record's parameters are the model's
    assert model.get_layer("preprocess").mode == entry.preprocess
    groups = bb.layer_groups(model, name)
    assert groups["early"] and groups["late"] and groups["head"]
    if entry.split:  # the late group starts where the record says
        assert groups["late"][0].name.startswith(entry.split) and not groups["early"][-1].name.startswith(entry.split)
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    # The stage-1 step (frozen backbone, BatchNorm in inference mode) keeps big backbones fast on CPU.
    base.trainable = False
    before = _backbone_arrays(model)
    head = model.get_layer("predictions")
    head_before = [keras.ops.convert_to_numpy(w) for w in head.weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", run_eagerly=True)
    loss = model.train_on_batch(_pixels(2, size), np.array([0, 2]))
    assert np.isfinite(loss)
    assert all(np.array_equal(a, b) for a, b in zip(before, _backbone_arrays(model)))
    # (the bias always gets a gradient; the kernel may not when random ReLU6 features are all zero)
    assert any(not np.allclose(a, keras.ops.convert_to_numpy(b)) for a, b in zip(head_before, head.weights))
    probs = model.predict(_pixels(1, size + 8), verbose=0)  # flexible input size
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1.0, atol=1e-4)
    reloaded = Learner.load(Learner(model, ["a", "b", "c"], size=size, settings={"backbone": name}).save(tmp_path))
    np.testing.assert_allclose(reloaded.model.predict(_pixels(1, size + 8), verbose=0), probs, atol=1e-5)


def test_multilabel_head_is_sigmoid():
    model = bb.build_model("resnet_small", 4, multilabel=True, weights=None)
    probs = model.predict(_pixels(2), verbose=0)
    assert probs.shape == (2, 4) and not np.allclose(probs.sum(axis=1), 1.0)


def _trained_small(seed=1):
    keras.utils.set_random_seed(seed)
    model = bb.build_model("resnet_small", 3, weights=None)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(_pixels(4, 16, seed), np.array([0, 1, 2, 0]))
    return model


def test_weights_round_trip_through_each_file_format(tmp_path):
    source = _trained_small()
    base = bb.backbone_of(source)
    expected = [keras.ops.convert_to_numpy(w) for w in base.weights]
    files = {
        "weights.h5": tmp_path / "small.weights.h5",
        "keras backbone": tmp_path / "backbone.keras",
        "keras classifier": tmp_path / "classifier.keras",
        "notop.h5": tmp_path / "resnet_small_notop.h5",
    }
    base.save_weights(files["weights.h5"])
    base.save(files["keras backbone"])
    source.save(files["keras classifier"])
    base.save(files["notop.h5"])  # legacy HDF5, the format of keras.applications' *_notop.h5 files
    for kind, path in files.items():
        loaded = bb.build_model("resnet_small", 5, weights=path)
        got = _backbone_arrays(loaded)
        assert len(got) == len(expected), kind
        assert all(np.array_equal(a, b) for a, b in zip(expected, got)), kind
    with pytest.raises(WeightsError, match="does not exist"):
        bb.build_model("resnet_small", 2, weights=tmp_path / "missing.weights.h5")
    with pytest.raises(WeightsError, match="wide_resnet"):
        bb.build_model("wide_resnet", 2, weights=files["keras classifier"])


def test_imagenet_weights_are_found_by_standard_name_under_the_input_root(tmp_path):
    entry = bb.get("mobilenetv2")
    keras.utils.set_random_seed(3)
    reference = entry.constructor((None, None, 3), None)
    attached = tmp_path / "input" / "keras-pretrained" / "weights"
    attached.mkdir(parents=True)
    reference.save(attached / entry.weights_file)
    base = bb.load_backbone("mobilenetv2", "imagenet", roots=[tmp_path / "cache", tmp_path / "input"])
    assert all(np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
               for a, b in zip(reference.weights, base.weights))


def test_offline_imagenet_request_fails_fast_with_the_file_to_attach(tmp_path, monkeypatch):
    import keras.src.backend.config as keras_config

    # Keras' own cache is an empty folder here, whatever ~/.keras/models holds on this machine.
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras-home"))
    # A proxy that refuses connections behaves like a notebook with internet off.
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setattr(bb, "DOWNLOAD_TIMEOUT", 2.0)
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        bb.build_model("resnet50", 2, weights="imagenet", roots=[tmp_path])
    assert time.monotonic() - start < 120  # tells a hang from a refusal; the speed is not the point
    message = str(info.value)
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "weights=" in message and "offline" in message
    with pytest.raises(WeightsError, match="no ImageNet weights"):
        bb.build_model("resnet_small", 2, weights="imagenet")


def test_users_can_register_their_own_backbone():
    def tiny(input_shape, weights=None):
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
        x = keras.layers.Conv2D(4, 3, name="c2")(x)
        return keras.Model(inputs, x, name="tiny")

    bb.register("tiny_test", tiny, preprocess="unit", default_size=16, split="c2", overwrite=True)
    model = bb.build_model("tiny_test", 2, weights=None)
    groups = bb.layer_groups(model, "tiny_test")
    assert [l.name for l in groups["early"]] == ["c1"] and [l.name for l in groups["late"]] == ["c2"]
    with pytest.raises(ConfigError, match="already registered"):
        bb.register("tiny_test", tiny)
    with pytest.raises(ConfigError, match="preprocess"):
        bb.register("tiny_bad", tiny, preprocess="imagenet")


def test_small_resnet_strides_set_each_stages_resolution():
    """resnet_compact halves the size in its first stage (resnet_tiny's cost with resnet_small's widths)."""
    compact = bb.load_backbone("resnet_compact", input_shape=(28, 28, 3))
    tiny = bb.load_backbone("resnet_tiny", input_shape=(28, 28, 3))
    assert compact.get_layer("stage1_block1_add").output.shape[1:] == (14, 14, 32)
    assert tiny.get_layer("stage1_block1_add").output.shape[1:] == (28, 28, 16)
    assert compact.output.shape[1:] == (4, 4, 128) and tiny.output.shape[1:] == (7, 7, 64)
    with pytest.raises(ConfigError, match="one stride per stage"):
        bb.small_resnet((28, 28, 3), widths=(8, 16), strides=(2,))


def test_the_registry_lists_backbones_without_importing_keras():
    """`kagglekit backbones` lists the registry fast: keras is imported only when a model is built."""
    import subprocess
    import sys

    code = ("import sys; import kagglekit.backbones as b; text = b.describe(); "
            "print(len(b.names()), 'keras' in sys.modules); "
            "assert 'resnet50' in text and b.get('vgg16').default_size == 224; "
            "assert 'Kaggle Models keras/vit/keras/vit_base_patch16_224_imagenet/4' in text; "
            "assert 'efficientnetv2-s_notop.h5' in text and 'KerasHub preset' in text")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    count, keras_imported = out.stdout.split()
    assert int(count) >= len(REQUIRED) and keras_imported == "False", out.stdout  # fast: Keras is not imported
