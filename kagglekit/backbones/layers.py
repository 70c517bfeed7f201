"""The Keras half of the backbone registry: the :class:`Preprocess` layer and the small ResNets trained from scratch.

Importing this module imports keras; the registry (``kagglekit.backbones``) imports
it only when a model is built or weights are loaded.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers, ops

from ..errors import ConfigError
from .preprocessing import MEANS, PREPROCESS_MODES, STDS


@keras.saving.register_keras_serializable(package="kagglekit")
class Preprocess(layers.Layer):
    """Turn raw 0..255 pixels (uint8 or float) into what a backbone expects.

    Modes follow ``keras.applications.imagenet_utils.preprocess_input``:
    ``caffe`` (RGB->BGR, subtract the ImageNet mean), ``tf`` (scale to -1..1),
    ``torch`` (0..1 then ImageNet mean/std), ``unit`` (0..1) and ``none``
    (cast only; EfficientNet and ConvNeXt normalise inside themselves).
    """

    def __init__(self, mode: str = "none", scale: float | Sequence[float] | None = None,
                 offset: float | Sequence[float] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ConfigError(f"Unknown preprocessing mode {mode!r}; use one of {PREPROCESS_MODES}.")
        self.mode = mode
        self.scale = _floats(scale)
        self.offset = _floats(offset)

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(MEANS["caffe"], dtype=self.compute_dtype)
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        elif self.mode == "torch":
            mean = ops.convert_to_tensor(MEANS["torch"], dtype=self.compute_dtype)
            std = ops.convert_to_tensor(STDS["torch"], dtype=self.compute_dtype)
            x = (x - mean) / std
        elif self.mode == "unit":
            x = x / 255.0
        elif self.mode == "affine":
            if self.scale is not None:
                x = x * ops.convert_to_tensor(self.scale, dtype=self.compute_dtype)
            if self.offset is not None:
                x = x + ops.convert_to_tensor(self.offset, dtype=self.compute_dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "scale": self.scale, "offset": self.offset}


def _floats(value: float | Sequence[float] | None) -> float | list[float] | None:
    """Return `value` (a number, a sequence or an array of them, or None) as plain floats for the layer's config."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return [float(v) for v in ops.convert_to_numpy(value).reshape(-1)]


@keras.saving.register_keras_serializable(package="kagglekit")
class TokenPool(layers.Layer):
    """Pool a backbone's token sequence (batch, tokens, width) into one vector: its class token or the tokens' mean.

    ``cls`` takes token 0 (ViT, DeiT, DINOv2 put the class token first); ``mean`` averages every token;
    ``none`` passes already pooled features (batch, width) through.
    """

    def __init__(self, mode: str = "cls", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("cls", "mean", "none"):
            raise ConfigError(f"Unknown token pooling {mode!r}; use 'cls', 'mean' or 'none'.")
        self.mode = mode

    def call(self, x):
        if self.mode == "cls":
            return x[:, 0]
        if self.mode == "mean":
            return ops.mean(x, axis=1)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape if self.mode == "none" else (input_shape[0], input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def small_resnet(
    input_shape: tuple = (None, None, 3),
    weights: str | None = None,
    widths: Sequence[int] = (32, 64, 128),
    blocks: int = 1,
    name: str = "resnet_small",
    strides: Sequence[int] | None = None,
) -> keras.Model:
    """Return a pre-activation ResNet for 28-64 px inputs (one stage per width).

    `strides` gives each stage's stride (default 1 for the first, 2 for the others).
    """
    strides = list(strides) if strides is not None else [1] + [2] * (len(widths) - 1)
    if len(strides) != len(widths):
        raise ConfigError(f"strides={strides} needs one stride per stage ({len(widths)} widths).")
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    for s, width in enumerate(widths):
        for b in range(blocks):
            pre = f"stage{s + 1}_block{b + 1}_"
            stride = int(strides[s]) if b == 0 else 1
            h = layers.BatchNormalization(momentum=0.9, name=pre + "bn1")(x)
            h = layers.Activation("relu", name=pre + "relu1")(h)
            if stride != 1 or x.shape[-1] != width:
                shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False, name=pre + "proj")(h)
            else:
                shortcut = x
            h = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=pre + "conv1")(h)
            h = layers.BatchNormalization(momentum=0.9, name=pre + "bn2")(h)
            h = layers.Activation("relu", name=pre + "relu2")(h)
            h = layers.Conv2D(width, 3, padding="same", use_bias=False, name=pre + "conv2")(h)
            x = layers.Add(name=pre + "add")([shortcut, h])
    x = layers.BatchNormalization(momentum=0.9, name="final_bn")(x)
    x = layers.Activation("relu", name="final_relu")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


