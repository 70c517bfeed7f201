"""Preprocessing modes of the backbone registry and their constants (no keras: the registry lists them cheaply)."""
from __future__ import annotations

#: Modes of ``kagglekit.backbones.layers.Preprocess``, as in ``keras.applications.imagenet_utils.preprocess_input``
#: (``unit``: 0..1; ``none``: cast only; ``affine``: ``x * scale + offset`` as a KerasHub preset's image converter says).
PREPROCESS_MODES = ("none", "caffe", "tf", "torch", "unit", "affine")

MEANS = {
    "caffe": (103.939, 116.779, 123.68),  # BGR
    "torch": (0.485 * 255, 0.456 * 255, 0.406 * 255),
}
STDS = {"torch": (0.229 * 255, 0.224 * 255, 0.225 * 255)}
