"""Devices, precision and distribution: which accelerators there are, the mixed-precision policy, data parallelism."""
from __future__ import annotations

import contextlib
import warnings

import keras

from ..errors import ConfigError


def _backend() -> str:
    return keras.backend.backend()


def accelerators() -> list[str]:
    """Return the names of the GPUs or TPU cores the current backend can use (empty on CPU)."""
    backend = _backend()
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform in ("gpu", "tpu")]
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_logical_devices("GPU")]
        if backend == "torch":
            import torch

            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no accelerator stack means CPU
        return []
    return []


def tpu_cores() -> int:
    """Return how many TPU cores the JAX backend sees (0 elsewhere: TPUs are trained through JAX here)."""
    if _backend() != "jax":
        return 0
    with contextlib.suppress(Exception):
        import jax

        return sum(1 for d in jax.devices() if d.platform == "tpu")
    return 0


def jit_compile_setting(replicas: int) -> bool | str:
    """Return the ``jit_compile`` to compile with: False for TensorFlow's MirroredStrategy, else "auto".

    XLA under ``tf.distribute.MirroredStrategy`` breaks: with a ``LossScaleOptimizer``
    (float16 mixed precision) it crashes in ``merge_call`` (keras-team/keras#21366), and even in
    float32 it fails on replicas placed on other devices (tensorflow/tensorflow#56423; reproduced here
    on two logical CPU devices). Keras' "auto" turns XLA on whenever a GPU is present, so several
    GPUs on TensorFlow compile without it; one device and JAX keep "auto".
    """
    return False if replicas > 1 and _backend() == "tensorflow" else "auto"


def _auto_policy() -> str | None:
    """Return the mixed-precision policy: bfloat16 on a TPU and on GPUs from Ampere on, float16 on older GPUs, None on CPU."""
    if not accelerators():
        return None
    if tpu_cores():
        return "mixed_bfloat16"
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

    "auto" is mixed precision on an accelerator (bfloat16 on a TPU and from Ampere on; float16, with
    the loss scaling Keras' ``compile`` adds for it, on older GPUs such as the T4) and None on CPU;
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
        self.part = (0, 1)  # (this process, processes): each feeds its share of every batch
        self._scope = contextlib.nullcontext
        backend = _backend()
        if backend != "jax":
            _warn_tpu_without_jax()
        if backend == "jax" and distribute is not False:
            from .multihost import requested_processes

            if requested_processes() > 1:  # several processes: one run over all their devices
                self._join_processes()
                return
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
            kind = "tpu" if tpu_cores() else "gpu" if gpus else "cpu"
            devices = keras.distribution.list_devices(kind)
            if len(devices) < 2:
                return
            dist = keras.distribution.DataParallel(devices=devices)
            self.kind, self.replicas, self._scope = "data_parallel", len(devices), dist.scope
        else:
            warnings.warn(f"Data-parallel training is not wired for the {backend} backend; using one device.")

    def scope(self):
        return self._scope()

    def _join_processes(self) -> None:
        """Data parallel over every device of every process (multi-host JAX); each process feeds its `part` of a batch."""
        from .multihost import data_parallel, join, process_count, process_index

        join()
        self.kind, self.replicas, self._scope = "multihost", len(keras.distribution.list_devices()), data_parallel().scope
        self.part = (process_index(), process_count())


def _warn_tpu_without_jax() -> None:
    """Warn when a TPU is present but the backend is not JAX (it would train on the host's CPU)."""
    from ..hardware import Hardware

    with contextlib.suppress(Exception):
        if Hardware.probe().kind == "tpu":
            warnings.warn("This machine has a TPU, but kagglekit trains on TPUs through JAX only; with the "
                          f"{_backend()} backend it trains on the CPU. Fix: KERAS_BACKEND=jax.")
