"""`kagglekit run` over several processes (multi-host JAX, e.g. a TPU pod slice): one run, one writer.

When the environment names several processes (``KERAS_DISTRIBUTION_*`` or ``JAX_COORDINATOR_ADDRESS``
/ ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``), every process starts the same ``kagglekit run``:

* they join (``keras.distribution.initialize``) before anything touches the backend (`join`);
* process 0 is the run: its run folder, ledger, submission and upload. The others read the competition
  as it does (each host has its own copy, as under /kaggle/input) but keep their files in a scratch
  folder of their own under ``$TMPDIR``, never the user's (`Role.places`), removed when they end
  (`Role.cleanup`; ``$KAGGLEKIT_KEEP_SCRATCH=1`` keeps it), and log warnings only (`Role.quiet`);
* the plan is process 0's (`shared_plan`); training is one data-parallel fit over every device, each
  process feeding its share of each batch and following process 0's clock (`kagglekit.learner.multihost`);
* after training the others are done (`follower_result`); process 0 predicts on its own devices from
  the learner it saved (``Learner.load``: the trained weights are the same on every process), tunes,
  writes and submits.

K models on K folds need one process (`check_folds`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError
from ..logs import logger

#: Set to 1 to keep a follower's scratch folder (its checkpoints and history) after the run.
KEEP_SCRATCH_ENV = "KAGGLEKIT_KEEP_SCRATCH"


@dataclass(frozen=True)
class Role:
    """This process's place in the run: its index and the number of processes (0 of 1: the usual run)."""

    index: int = 0
    count: int = 1
    scratch: str | None = None  # a follower's own folder for its run files, removed when it ends

    @property
    def several(self) -> bool:
        return self.count > 1

    @property
    def follower(self) -> bool:
        """Whether this process only trains in step with process 0 (it writes nothing of the user's)."""
        return self.index > 0

    def places(self, workdir: Any, submit: bool, ledger: Any) -> tuple[Any, bool, Any]:
        """Return (workdir, submit, ledger) for this process: a follower's scratch folder, no upload, no ledger."""
        if not self.follower:
            return workdir, submit, ledger
        return str(Path(self.scratch) / "run"), False, False

    def cleanup(self) -> None:
        """Remove a follower's scratch folder (kept when ``$KAGGLEKIT_KEEP_SCRATCH`` is 1, to look into)."""
        if self.scratch and os.environ.get(KEEP_SCRATCH_ENV) != "1":
            shutil.rmtree(self.scratch, ignore_errors=True)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Yield with a follower's messages below WARNING held back (process 0 tells the run)."""
        if not self.follower:
            yield
            return
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)


def join() -> Role:
    """Return this process's `Role`, after joining the others when the environment names several processes."""
    from ..learner import multihost

    if not multihost.join():
        return Role()
    index, count = multihost.process_index(), multihost.process_count()
    scratch = tempfile.mkdtemp(prefix=f"kagglekit-process{index}-") if index > 0 else None
    return Role(index, count, scratch)


def announce(role: Role) -> None:
    """Say (process 0) how the processes share the run."""
    import keras

    if role.several:
        logger.info(f"processes: {role.count} (multi-host JAX): one data-parallel run over "
                    f"{len(keras.distribution.list_devices())} devices, each process feeding its share of every "
                    "batch; process 0 writes the run folder, the submission and the ledger")


def check_folds(role: Role, k: int, asked: Any) -> int:
    """Return `k`, or 1 when several processes run and the folds were "auto"; a `ConfigError` when K was asked."""
    from ..learner import multihost

    k = int(multihost.share(int(k)))  # "auto" decides from the clock: process 0's decision
    if not role.several or k <= 1:
        return k
    if asked == "auto":
        logger.info(f"folds: 1 (several processes train one model; --folds auto chose {k} for one process)")
        return 1
    raise ConfigError(f"--folds {asked} trains {k} models one after another, which kagglekit does in one process only; "
                      f"this run has {role.count}. Fix: --folds 1, or run the folds on one machine.")


def shared_plan(role: Role, plan: Any) -> Any:
    """Return process 0's plan on every process (each made its own from its own clock)."""
    if not role.several:
        return plan
    from ..learner import multihost
    from ..plan import Plan

    return Plan.from_dict(multihost.share(plan.to_dict()))


def trained_before(role: Role, have: bool) -> bool:
    """Return whether process 0 has a learner already (trained earlier, or --model): then no process trains."""
    if not role.several:
        return have
    from ..learner import multihost

    return bool(multihost.from_writer(bool(have)))


def follower_result(role: Role, workdir: Path, metric: str, seconds: float, inference: Any) -> Any:
    """Return a follower's `RunResult`: it trained in step; process 0 holds the score and the submission."""
    from ..runfolder import RunResult

    return RunResult(workdir=workdir, metric=metric, valid_score=float("nan"), submission=None, seconds=seconds,
                     inference=inference, process=(role.index, role.count))
