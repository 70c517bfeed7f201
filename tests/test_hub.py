"""KerasHub presets as backbones, without downloads: tiny randomly initialised models saved as presets where
Kaggle Models mounts them (``<input root>/<model>/keras/<preset>/<version>``), then fine-tuned from there."""
from __future__ import annotations

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from kagglekit import backbones as bb  # noqa: E402
from kagglekit.backbones import hub  # noqa: E402
from kagglekit.backbones.layers import Preprocess, TokenPool  # noqa: E402
from kagglekit.errors import ConfigError, WeightsError  # noqa: E402
from kagglekit.learner import Learner, fine_tune  # noqa: E402


def _arrays(n=24, size=32, seed=0):
    """Return (pixels, labels): two classes told apart by brightness, with noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 120, (n, size, size, 3)) + (y * 120)[:, None, None, None]
    return x.astype("uint8"), y.astype("int32")


def _save_preset(backbone, converter, folder):
    backbone.save_to_preset(str(folder))
    converter.save_to_preset(str(folder))
    return folder


def _weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def _tiny_vit():
    keras.utils.set_random_seed(0)
    vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2,
                                       hidden_dim=16, mlp_dim=32)
    return vit, keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 127.5, offset=-1.0)


def _tiny_resnet():
    keras.utils.set_random_seed(0)
    resnet = keras_hub.models.ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[3],
                                             stackwise_num_filters=[64, 16], stackwise_num_blocks=[1, 1],
                                             stackwise_num_strides=[1, 2], block_type="basic_block")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return resnet, keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=list(1 / (255 * std)),
                                                         offset=list(-mean / std))


def test_token_backbone_fine_tunes_from_a_preset_mounted_as_kaggle_models_do(tmp_path, monkeypatch):
    """A ViT attached as the Kaggle Model keras/vit/keras/vit_base_patch16_224_imagenet is found offline, its image
    converter gives the preprocessing, its class token is pooled, and the learner saves and reloads."""
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "input"))
    entry = bb.get("hub:vit_base_patch16_224_imagenet")
    assert entry.name == "vit_base_patch16_224_imagenet" and entry.pooling == "cls"
    vit, converter = _tiny_vit()
    for version in ("1", "3"):  # the newest version mounted is used
        _save_preset(vit, converter, tmp_path / "input" / "vit" / "keras" / entry.preset / version)
    assert hub.find_preset(entry) == tmp_path / "input" / "vit" / "keras" / entry.preset / "3"
    loaded = bb.load_backbone(entry, "imagenet")  # the preset's weights, read from the attached folder
    assert all(np.array_equal(a, b) for a, b in zip(_weights(vit), _weights(loaded)))

    x, y = _arrays()
    learner = fine_tune((x, y), backbone=entry.name, sizes=[32], epochs=1, freeze_epochs=1, valid=0.25,
                        batch_size=8, workdir=tmp_path / "run", verbose=0, augment=False)
    model = learner.model
    assert isinstance(model.get_layer("pool"), TokenPool) and model.get_layer("pool").mode == "cls"
    pre = model.get_layer("preprocess")
    assert pre.mode == "affine" and pre.scale == pytest.approx(1 / 127.5) and pre.offset == pytest.approx(-1.0)
    groups = bb.layer_groups(model, entry.name)
    assert len(groups["early"]) + len(groups["late"]) >= 3  # the encoder's blocks, not one layer
    assert {len(g) > 0 for g in groups.values()} == {True}
    assert len(learner.history) == 2 and np.isfinite(learner.history["loss"]).all()
    reloaded = Learner.load(learner.save(tmp_path / "saved"))
    np.testing.assert_allclose(reloaded.model.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), atol=1e-5)
    # any input size: images are resized to the size the position embeddings fix
    assert model.predict(x[:2, :24, :24], verbose=0).shape == (2, 2)


def test_cnn_backbone_fine_tunes_from_a_preset_folder_path(tmp_path, monkeypatch):
    """--backbone PATH: a ResNet preset folder (per-channel scale and offset from its converter, feature maps averaged)."""
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "input"))
    resnet, converter = _tiny_resnet()
    folder = _save_preset(resnet, converter, tmp_path / "input" / "my-resnet" / "keras" / "tiny" / "1")
    entry = bb.get(str(folder))
    assert entry.source == "keras_hub" and entry.family == "resnet" and entry.params == resnet.count_params()
    x, y = _arrays(seed=1)
    learner = fine_tune((x, y), backbone=str(folder), sizes=[32], epochs=1, freeze_epochs=1, valid=0.25,
                        batch_size=8, workdir=tmp_path / "run", verbose=0, augment=False)
    model = learner.model
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    assert "fit_size" not in [layer.name for layer in model.layers]  # a CNN takes any size
    pre = model.get_layer("preprocess")
    np.testing.assert_allclose(pre.scale, converter.scale, rtol=1e-6)
    np.testing.assert_allclose(pre.offset, converter.offset, rtol=1e-6)
    groups = bb.layer_groups(model, entry.name)
    assert groups["early"] and groups["late"] and groups["head"]
    reloaded = Learner.load(learner.save(tmp_path / "saved"))
    np.testing.assert_allclose(reloaded.model.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), atol=1e-5)


def test_missing_preset_fails_fast_naming_the_kaggle_model_to_attach(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "input"))
    with pytest.raises(WeightsError, match="keras/dinov2/keras/dinov2_small/1") as info:
        bb.build_model("dinov2_small", 2, weights=None)  # random init still needs the preset's config.json
    assert str(tmp_path / "input") in str(info.value) and "--backbone PATH" in str(info.value)
    with pytest.raises(ConfigError, match="no KerasHub preset"):
        bb.get(str(tmp_path))
    with pytest.raises(ConfigError, match="preset name"):
        bb.get("hub:")
    assert bb.get("hub:dinov2_small") is bb.get("dinov2_small")


def test_token_pooling_modes():
    tokens = np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(TokenPool("cls")(tokens)), tokens[:, 0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(TokenPool("mean")(tokens)), tokens.mean(axis=1))
    with pytest.raises(ConfigError):
        TokenPool("max")
    layer = Preprocess("affine", scale=[1.0, 2.0, 3.0], offset=-1.0)
    out = keras.ops.convert_to_numpy(layer(np.ones((1, 1, 1, 3), "float32")))
    np.testing.assert_allclose(out.reshape(-1), [0.0, 1.0, 2.0])
    assert Preprocess.from_config(layer.get_config()).scale == [1.0, 2.0, 3.0]


def test_siglip_preset_uses_its_vision_encoder_and_its_pooled_features(tmp_path):
    """A SigLIP preset (image and text towers): the image tower alone, its pooled output straight to the head."""
    keras.utils.set_random_seed(0)
    vision = keras_hub.models.SigLIPVisionEncoder(patch_size=8, hidden_dim=16, num_layers=1, num_heads=2,
                                                  intermediate_dim=32, image_shape=(32, 32, 3))
    text = keras_hub.models.SigLIPTextEncoder(vocabulary_size=50, embedding_dim=16, hidden_dim=16, num_layers=1,
                                              num_heads=2, intermediate_dim=32)
    converter = keras_hub.layers.SigLIPImageConverter(image_size=(32, 32), scale=1 / 127.5, offset=-1.0)
    folder = _save_preset(keras_hub.models.SigLIPBackbone(vision, text), converter, tmp_path / "siglip")
    model = bb.build_model(str(folder), 3, weights="imagenet")
    assert model.get_layer("pool").mode == "none" and bb.get(str(folder)).family == "siglip"
    assert bb.backbone_of(model).count_params() == vision.count_params()  # no text tower
    x, _ = _arrays(4, 40)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)


def test_offline_preset_request_fails_naming_the_kaggle_model(tmp_path, monkeypatch):
    """Pretrained weights asked, the preset neither attached nor cached, no network: one error with the fix."""
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "input"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):  # a refusing proxy: internet off
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(WeightsError, match="offline.*keras/deit/keras/deit_tiny_distilled_patch16_224_imagenet/1"):
        bb.build_model("deit_tiny_distilled_patch16_224_imagenet", 2, weights="imagenet")
