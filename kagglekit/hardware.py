"""The machine a run will use: CPU cores, RAM, GPUs or TPUs and their memory, found without importing a backend.

`Hardware.probe()` reads ``os.sched_getaffinity``, ``/proc/meminfo``, the TPU environment variables
(``TPU_ACCELERATOR_TYPE``, ``TPU_NAME``, ``COLAB_TPU_ADDR``) and ``nvidia-smi``; it asks a backend
(jax, tensorflow, torch) only when that backend is already imported or named.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from .logs import logger

__all__ = ["Device", "Hardware", "cores"]

#: Training throughput the CPU reaches per core in Keras (FLOP/s; see kagglekit.plan's cost model). Measured on
#: 2 cores (TensorFlow, batch 64, steady epochs): resnet_compact 2.2 / 6.3 / 19.2 ms per image at 32 / 64 / 96 px,
#: resnet_tiny 6.6 and resnet50 35.5 at 64 px; 20e9 puts the estimates within -5%..+40% of those (12e9, the
#: earlier guess, was 1.6-2.4x slow, so runs ended with much of their budget unused).
CPU_FLOPS_PER_CORE = 20e9
#: Effective mixed-precision training TFLOP/s in Keras by GPU model (about a third of the tensor-core peak).
GPU_TFLOPS = {"h200": 40, "h100": 35, "a100": 20, "l40": 15, "rtx 4090": 15, "a10": 8, "l4": 6, "rtx 3090": 10,
              "v100": 12, "t4": 3, "p100": 3, "k80": 1}
TPU_TFLOPS = 25.0


@dataclass(frozen=True)
class Device:
    """One accelerator: kind ("gpu" or "tpu"), name and memory in GiB (None when unknown)."""

    kind: str
    name: str
    memory_gb: float | None = None


@dataclass(frozen=True)
class Hardware:
    """The machine a run will use: CPU cores, RAM and accelerators (see `Hardware.probe`)."""

    cores: int
    memory_gb: float | None = None
    devices: tuple[Device, ...] = ()
    source: str = ""  # how the accelerators were found (or why none)

    @property
    def kind(self) -> str:
        """Return "tpu", "gpu" or "cpu": what training will run on."""
        kinds = {d.kind for d in self.devices}
        return "tpu" if "tpu" in kinds else "gpu" if "gpu" in kinds else "cpu"

    @property
    def device_memory_gb(self) -> float | None:
        """Return the memory of the smallest accelerator in GiB (None on CPU or when unknown)."""
        known = [d.memory_gb for d in self.devices if d.memory_gb]
        return min(known) if known else None

    @property
    def train_flops(self) -> float:
        """Return the training FLOP/s this machine reaches in Keras (all devices together)."""
        if self.kind == "cpu":
            return CPU_FLOPS_PER_CORE * self.cores
        if self.kind == "tpu":
            return TPU_TFLOPS * 1e12
        total = 0.0
        for d in self.devices:
            name = d.name.lower()
            tflops = next((v for k, v in GPU_TFLOPS.items() if k in name), None)
            if tflops is None:  # unknown model: judge by its memory
                mem = d.memory_gb or 0
                tflops = 20 if mem >= 40 else 8 if mem >= 20 else 3
            total += tflops * 1e12
        return total

    @classmethod
    def cpu(cls, cores: int = 2, memory_gb: float | None = 8.0) -> "Hardware":
        """Return a CPU-only machine description (for planning elsewhere, and tests)."""
        return cls(int(cores), memory_gb, (), "given")

    @classmethod
    def gpu(cls, name: str = "GPU", memory_gb: float = 16.0, count: int = 1, cores: int = 4) -> "Hardware":
        """Return a machine description with `count` GPUs of `memory_gb` GiB each."""
        return cls(int(cores), None, tuple(Device("gpu", name, float(memory_gb)) for _ in range(count)), "given")

    @classmethod
    def probe(cls, backend: str | None = None) -> "Hardware":
        """Return the hardware found here, without importing a backend that is not imported or named.

        Order: TPU environment variables (``TPU_NAME``, ``COLAB_TPU_ADDR``, ``TPU_ACCELERATOR_TYPE``) or
        ``/dev/accel0``, ``nvidia-smi``, then the backend named by `backend` or already imported (jax, tensorflow, torch).
        """
        n_cores = cores()
        memory = _ram_gb()
        for var in ("TPU_ACCELERATOR_TYPE", "TPU_NAME", "COLAB_TPU_ADDR"):
            if os.environ.get(var):
                return cls(n_cores, memory, tpu_devices(os.environ.get("TPU_ACCELERATOR_TYPE") or "TPU"),
                           f"environment variable {var}")
        if os.path.exists("/dev/accel0"):  # a TPU VM (v4 and later; Kaggle's and Colab's TPU VMs)
            return cls(n_cores, memory, tpu_devices("TPU"), "/dev/accel0")
        gpus = _nvidia_smi()
        if gpus:
            return cls(n_cores, memory, gpus, "nvidia-smi")
        found = _backend_devices(backend)
        if found is not None:
            return cls(n_cores, memory, found[0], found[1] if found[0] else f"{found[1]} sees none")
        return cls(n_cores, memory, (), "no nvidia-smi, no TPU variables" + ("" if backend else "; no backend asked"))

    def describe(self) -> str:
        """Return one line: what the run will train on."""
        ram = f", {self.memory_gb:.0f} GiB RAM" if self.memory_gb else ""
        if not self.devices:
            return f"CPU: {self.cores} cores{ram}; no accelerator ({self.source})"
        names: dict[str, int] = {}
        for d in self.devices:
            label = d.name + (f" {d.memory_gb:.0f} GiB" if d.memory_gb else "")
            names[label] = names.get(label, 0) + 1
        shown = ", ".join(f"{n} x {label}" if n > 1 else label for label, n in names.items())
        return f"{self.kind.upper()}: {shown}; {self.cores} CPU cores{ram} (found by {self.source}){self.training_note()}"

    def training_note(self, backend: str | None = None) -> str:
        """Return how kagglekit trains on these accelerators with `backend` (default: Keras' current one), as "; ..."."""
        backend = backend or _keras_backend()
        n = len(self.devices)
        if self.kind == "tpu":
            if backend != "jax":
                return f"; a TPU trains through JAX only: with {backend} this run uses the CPU (fix: KERAS_BACKEND=jax)"
            return (f"; data parallel over {n} TPU cores (keras.distribution.DataParallel), mixed_bfloat16, "
                    "the batch split evenly across the cores" if n > 1 else "; one TPU core, mixed_bfloat16")
        if self.kind == "gpu" and n > 1:
            engine = "tf.distribute.MirroredStrategy, without XLA (Keras #21366)" if backend == "tensorflow" else \
                "keras.distribution.DataParallel" if backend == "jax" else "one GPU only (not wired for torch)"
            return f"; data parallel over {n} GPUs ({engine}); mixed precision: bfloat16 from Ampere on, else float16 with loss scaling"
        return ""


#: Memory (GiB) of one TPU device as JAX counts them, and how many devices the type's number means.
_TPU_KINDS = {"v2": (8, 1.0), "v3": (16, 1.0), "v4": (32, 0.5), "v5litepod": (16, 1.0), "v5e": (16, 1.0),
              "v5p": (95, 0.5), "v6e": (32, 1.0)}


def tpu_devices(accelerator_type: str) -> tuple[Device, ...]:
    """Return the TPU devices (as JAX counts them) of an accelerator type such as "v3-8" or "v5litepod-8".

    The JAX backend's own count wins when jax is already imported; an unknown type is one device.
    """
    if "jax" in sys.modules:
        try:
            import jax

            devs = [d for d in jax.devices() if d.platform == "tpu"]
            if devs:
                return tuple(Device("tpu", getattr(d, "device_kind", "TPU"), None) for d in devs)
        except Exception as exc:  # noqa: BLE001 - fall back to the type's name
            logger.debug("jax could not list TPU devices: %s", exc)
    match = re.fullmatch(r"(v\d+[a-z]*)-(\d+)", accelerator_type.strip().lower())
    if not match or match[1] not in _TPU_KINDS:
        return (Device("tpu", accelerator_type, None),)
    memory, per = _TPU_KINDS[match[1]]
    count = max(1, int(int(match[2]) * per))
    return tuple(Device("tpu", f"TPU {accelerator_type}", float(memory)) for _ in range(count))


def _keras_backend() -> str:
    """Return Keras' backend name without importing Keras when it is not imported yet."""
    if "keras" in sys.modules:
        try:
            return sys.modules["keras"].backend.backend()
        except Exception:  # noqa: BLE001 - a half-imported keras
            pass
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def cores() -> int:
    """Return the number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _ram_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:  # pragma: no cover - non-Linux
        return None
    return None


def _nvidia_smi() -> tuple[Device, ...]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    devices = []
    for line in out.strip().splitlines():
        name, _, mem = line.rpartition(",")
        try:
            devices.append(Device("gpu", name.strip(), float(mem) / 1024))
        except ValueError:
            continue
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # the backend will see only these
        keep = [int(i) for i in re.findall(r"\d+", visible) if int(i) < len(devices)]
        devices = [devices[i] for i in keep] if visible.strip() not in ("", "-1") else []
    return tuple(devices)


def _backend_devices(backend: str | None) -> tuple[tuple[Device, ...], str] | None:
    """Return (devices, how found) from a backend that is imported or named, else None."""
    names = [backend] if backend else [b for b in ("jax", "tensorflow", "torch") if b in sys.modules]
    for name in names:
        try:
            if name == "jax":
                import jax

                devs = [d for d in jax.devices() if d.platform in ("gpu", "tpu")]
                out = []
                for d in devs:
                    stats = d.memory_stats() or {} if hasattr(d, "memory_stats") else {}
                    limit = stats.get("bytes_limit")
                    out.append(Device(d.platform, getattr(d, "device_kind", str(d)), limit / 2 ** 30 if limit else None))
                return tuple(out), "jax.devices()"
            if name == "tensorflow":
                import tensorflow as tf

                out = []
                for gpu in tf.config.list_physical_devices("GPU"):
                    details = tf.config.experimental.get_device_details(gpu)
                    out.append(Device("gpu", details.get("device_name", gpu.name), None))
                return tuple(out), "tensorflow"
            if name == "torch":
                import torch

                out = [Device("gpu", torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory / 2 ** 30)
                       for i in range(torch.cuda.device_count())]
                return tuple(out), "torch.cuda"
        except Exception as exc:  # noqa: BLE001 - a broken accelerator stack means CPU
            logger.debug("hardware probe through %s failed: %s", name, exc)
    return None
