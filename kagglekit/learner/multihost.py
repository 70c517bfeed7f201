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

Every decision a process takes from its own clock (stop training, the learning rate of the next step,
whether to validate, whether a stage still has time) is taken by process 0 and followed by the others
(`from_writer`, `Lockstep`), so all of them run the same steps and collectives in the same order. The
plan and any resumed weights come from process 0 too (`share`, `share_weights`). After training, only
process 0 predicts (on its own devices, from the saved learner), writes and submits.

``kagglekit run`` / ``kk.run`` do all of this when the environment names several processes
(`kagglekit.job`). Tested with two JAX processes on one machine (CPU collectives through gloo):
``tests/test_devices.py`` (the parts) and ``tests/test_multihost_run.py`` (a whole run).
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


def join() -> bool:
    """Return whether this run has several processes, after joining them (`initialize`).

    A `ConfigError` when the environment names several processes but the backend is not JAX, or they
    cannot be joined.
    """
    from ..errors import ConfigError

    asked = requested_processes()
    if asked <= 1:
        return False
    if keras.backend.backend() != "jax":
        raise ConfigError(f"The environment names {asked} processes (multi-host), which kagglekit runs with JAX only; "
                          f"the backend is {keras.backend.backend()}. Fix: KERAS_BACKEND=jax.")
    if not initialize():
        raise ConfigError(f"The environment names {asked} processes, but they could not be joined. Fix: give every "
                          "process the same coordinator address and number of processes, and its own id "
                          "(JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).")
    return True


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


def several() -> bool:
    """Return whether this run has several processes."""
    return process_count() > 1


def from_writer(value: float | bool) -> float | bool:
    """Return process 0's `value` on every process (a number or a flag; `value` itself with one process)."""
    if not several():
        return value
    from jax.experimental import multihost_utils

    got = float(np.asarray(multihost_utils.broadcast_one_to_all(np.array([float(value)], dtype=np.float64)))[0])
    return bool(got) if isinstance(value, bool) else got


def share(obj: object) -> object:
    """Return process 0's `obj` (anything JSON can hold) on every process."""
    if not several():
        return obj
    import json

    from jax.experimental import multihost_utils

    data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8) if is_writer() else np.zeros(0, np.uint8)
    length = int(from_writer(float(len(data))))
    padded = np.zeros(length, np.uint8)
    padded[:len(data)] = data[:length]
    got = np.asarray(multihost_utils.broadcast_one_to_all(padded)).astype(np.uint8)
    return json.loads(got.tobytes().decode())


def share_weights(variables: list) -> None:
    """Give every process process 0's values of `variables` (a resumed run: only process 0 read the checkpoint)."""
    if not several():
        return
    from jax.experimental import multihost_utils

    for v in variables:
        v.assign(np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(v.value))))


class Lockstep(keras.callbacks.Callback):
    """Keras callback, last in the list: every process follows process 0's stop flag.

    Each process's own callbacks (the `Deadline`, the time-driven schedule) may stop training from
    their own clocks; this one replaces the flag by process 0's after each step and epoch, before
    Keras acts on it (one small broadcast per step). The time-driven learning rate is followed where
    it is set (``kagglekit.timeline.TimeDriven(follow=from_writer)``): JAX refuses a replicated
    variable given different values on different processes.
    """

    def _follow_stop(self) -> None:
        self.model.stop_training = from_writer(bool(self.model.stop_training))

    def on_train_begin(self, logs=None):
        self._follow_stop()

    def on_train_batch_end(self, batch, logs=None):
        self._follow_stop()

    def on_epoch_end(self, epoch, logs=None):
        self._follow_stop()


def agree(stop: bool) -> bool:
    """Return True on every process when any process passes True (the one decision all of them take)."""
    if process_count() <= 1:
        return bool(stop)
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.array([bool(stop)], dtype=np.int32))).any())
