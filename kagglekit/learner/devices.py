"""Devices, precision and distribution: which accelerators there are, the mixed-precision policy, data parallelism."""
from __future__ import annotations

import contextlib
import warnings

import keras

from ..errors import ConfigError


def _backend() -> str:
    return keras.backend.backend()


def accelerators() -> list[str]:
    """Return the names of the GPUs the current backend can use (empty on CPU)."""
    backend = _backend()
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform == "gpu"]
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_logical_devices("GPU")]
        if backend == "torch":
            import torch

            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no accelerator stack means CPU
        return []
    return []


def _auto_policy() -> str | None:
    """Return the mixed-precision policy for the first GPU (bfloat16 from Ampere on), or None on CPU."""
    if not accelerators():
        return None
    major = 0
    with contextlib.suppress(Exception):
        backend = _backend()
        if backend == "jax":
            import jax

            major = int(str(getattr(jax.devices()[0], "compute_capability", "0")).split(".")[0])
        elif backend == "torch":
            import torch

            major = torch.cuda.get_device_capability()[0]
        elif backend == "tensorflow":
            import tensorflow as tf

            gpu = tf.config.list_physical_devices("GPU")[0]
            major = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))[0]
    return "mixed_bfloat16" if major >= 8 else "mixed_float16"


def precision_policy(mixed_precision: str | bool | None) -> str | None:
    """Return the dtype policy name for `mixed_precision` ("auto", True, False/None, or a policy name), or None for float32.

    "auto" is mixed precision on a GPU (bfloat16 from Ampere on) and None on CPU;
    True is bfloat16 on JAX and float16 elsewhere.
    """
    if mixed_precision == "auto":
        return _auto_policy()
    if mixed_precision is True:
        return "mixed_bfloat16" if _backend() == "jax" else "mixed_float16"
    return mixed_precision or None


class _Strategy:
    """Data-parallel training through the backend's own engine, or a no-op."""

    def __init__(self, distribute: bool | str) -> None:
        self.kind = "none"
        self.replicas = 1
        self._scope = contextlib.nullcontext
        backend = _backend()
        if distribute is False or distribute is None:
            return
        if distribute not in (True, "auto"):
            raise ConfigError(f"distribute={distribute!r}: use 'auto', True or False.")
        gpus = accelerators()
        if distribute == "auto" and len(gpus) < 2:
            return
        if backend == "tensorflow":
            import tensorflow as tf

            devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
                d.name for d in tf.config.list_logical_devices("CPU")
            ]
            if len(devices) < 2:
                return
            strategy = tf.distribute.MirroredStrategy(devices)
            self.kind, self.replicas, self._scope = "mirrored", strategy.num_replicas_in_sync, strategy.scope
        elif backend == "jax":
            devices = keras.distribution.list_devices("gpu") if gpus else keras.distribution.list_devices("cpu")
            if len(devices) < 2:
                return
            dist = keras.distribution.DataParallel(devices=devices)
            self.kind, self.replicas, self._scope = "data_parallel", len(devices), dist.scope
        else:
            warnings.warn(f"Data-parallel training is not wired for the {backend} backend; using one device.")

    def scope(self):
        return self._scope()
