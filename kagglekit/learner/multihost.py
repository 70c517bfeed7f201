"""Several processes (multi-host JAX, e.g. a TPU pod slice): start-up, who writes, the input share, one shared decision.

JAX only: `initialize` calls ``keras.distribution.initialize()`` when the environment says the run
has several processes (Keras' ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` / ``_NUM_PROCESSES`` /
``_PROCESS_ID``, or JAX's ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``).
Then:

* `data_parallel` is ``keras.distribution.DataParallel`` over every device of every process, with
  Keras' auto-sharding off: each process feeds its own rows (`shard`), and ``fit`` assembles the
  global batch from the processes' parts (``jax.make_array_from_process_local_data``);
* `is_writer` is true on process 0 only: the run folder, ledger, submission and upload are its job;
* `agree` turns each process's stop/continue into one decision every process takes (any of them
  says stop -> all stop), so no process waits forever in a collective another has left.

Tested with two JAX processes on one machine (CPU collectives through gloo): ``tests/test_devices.py``.
NOT wired yet into `fine_tune` / `kagglekit run` (their input pipeline, run folder and Deadline):
see docs/kaggle-accelerators.md.
"""
from __future__ import annotations

import os

import keras
import numpy as np

_ENV_SETS = (("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID"),
             ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"))


def requested_processes() -> int:
    """Return how many processes the environment asks for (1 when it does not say)."""
    for _addr, count, _pid in _ENV_SETS:
        value = os.environ.get(count, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def initialize() -> bool:
    """Return whether this run has several processes, after joining them (``keras.distribution.initialize``).

    A no-op returning False with one process or a backend other than JAX.
    """
    if keras.backend.backend() != "jax" or requested_processes() <= 1:
        return False
    import jax

    joined = getattr(jax.distributed, "is_initialized", lambda: False)
    if joined():  # nothing may touch the backend before joining, so ask the client, not jax.process_count()
        return jax.process_count() > 1
    for addr, count, pid in _ENV_SETS:
        if os.environ.get(addr) and os.environ.get(count):
            # CPU devices of several processes talk through gloo (GPU and TPU clients ignore this setting)
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            keras.distribution.initialize(job_addresses=os.environ[addr], num_processes=int(os.environ[count]),
                                          process_id=int(os.environ[pid]) if os.environ.get(pid) else None)
            return jax.process_count() > 1
    return False


def process_index() -> int:
    """Return this process's index (0 with one process)."""
    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def process_count() -> int:
    """Return the number of processes (1 unless several were joined)."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def is_writer() -> bool:
    """Return whether this process writes the run's files (process 0 only)."""
    return process_index() == 0


def shard(n_rows: int) -> slice:
    """Return this process's contiguous share of `n_rows` rows (equal shares; the rest is dropped on every process)."""
    count, index = process_count(), process_index()
    per = n_rows // count
    return slice(index * per, (index + 1) * per)


def local_batch(global_batch: int) -> int:
    """Return the rows each process feeds per step for `global_batch` (a `ConfigError` if it does not divide)."""
    from ..errors import ConfigError

    count = process_count()
    if global_batch % count:
        raise ConfigError(f"batch size {global_batch} does not split over {count} processes. "
                          f"Fix: --batch-size {(global_batch // count + 1) * count}.")
    return global_batch // count


def data_parallel() -> "keras.distribution.DataParallel":
    """Return DataParallel over all devices of all processes, each process feeding its own rows."""
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices(), auto_shard_dataset=False)


def agree(stop: bool) -> bool:
    """Return True on every process when any process passes True (the one decision all of them take)."""
    if process_count() <= 1:
        return bool(stop)
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.array([bool(stop)], dtype=np.int32))).any())
