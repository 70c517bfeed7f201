"""Checkpoints and resume state of one run: weights and optimizer state per epoch, the best epoch, ``state.json``.

Every epoch the weights, the optimizer state and ``state.json`` are written
atomically into the run's folder, so a run killed at any moment and started again
with the same arguments continues from its last completed epoch.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pandas as pd
from keras import ops

from ..errors import StateError
from ..io import atomic_open, atomic_write_text
from ..plots import plot_history
from .optim import current_lr


#: A time-driven stage writes its checkpoint at most this often (and when it ends): its epochs can be a second long,
#: and writing weights, optimizer state, state.json and history.csv after each took ~4% of a 5-minute run.
CHECKPOINT_EVERY_S = 10.0


def save_arrays(path: str | os.PathLike, arrays: Sequence[np.ndarray]) -> Path:
    """Return `path` after writing `arrays` (in order) to an ``.npz`` file atomically."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, *arrays)
    return Path(path)


def load_arrays(path: str | os.PathLike) -> list[np.ndarray]:
    """Return the arrays written by :func:`save_arrays`, in order."""
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def built_optimizer(model: keras.Model) -> keras.optimizers.Optimizer:
    """Return `model`'s optimizer, built for its trainable variables when it is not yet (so its state exists)."""
    opt = model.optimizer
    if not getattr(opt, "inner_optimizer", opt).built:
        opt.build(model.trainable_variables)
    return opt


def restore_optimizer(model: keras.Model, path: Path) -> None:
    """Assign the optimizer state saved in `path` to `model`'s optimizer (built first when needed)."""
    opt = built_optimizer(model)
    values = load_arrays(path)
    if len(values) != len(opt.variables):
        raise StateError(
            f"The optimizer state in {path} has {len(values)} arrays, the new optimizer {len(opt.variables)}; "
            f"delete the run folder {path.parent} (or pass resume=False) to start over."
        )
    for var, value in zip(opt.variables, values):
        var.assign(value)


class _Recorder(keras.callbacks.Callback):
    """Cheap per-epoch bookkeeping: history row, best/last checkpoints, atomic state file.

    With `every_s` (time-driven stages: many short epochs) the checkpoint is written after an epoch only
    when `every_s` seconds have passed since the last one, and always when the fit ends; a run killed in
    between resumes from the last one written.
    """

    def __init__(self, run: "_Run", stage_index: int, every_s: float = 0.0) -> None:
        super().__init__()
        self.run, self.stage_index, self.every_s = run, stage_index, float(every_s)
        self._t0 = 0.0
        self._steps = 0
        self._unwritten: int | None = None  # stage epochs done when epochs since the last checkpoint are unwritten
        self._written_at = -float("inf")

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        run = self.run
        stage = run.plan[self.stage_index]
        row = {"epoch": len(run.rows), "stage_index": self.stage_index, "stage": stage["stage"],
               "size": stage["size"], "stage_epoch": epoch,
               "lr": current_lr(self.model.optimizer), "seconds": round(time.perf_counter() - self._t0, 3),
               "steps": self._steps}
        row.update({k: float(v) for k, v in (logs or {}).items() if np.isscalar(v) or np.ndim(v) == 0})
        run.rows.append(row)
        run.observe(self.model, row)
        self._unwritten = epoch + 1
        if time.monotonic() - self._written_at >= self.every_s:
            self._write()

    def on_train_end(self, logs=None):
        if self._unwritten is not None:
            self._write()

    def _write(self) -> None:
        self.run.checkpoint(self.model, self.stage_index, self._unwritten)
        self._unwritten, self._written_at = None, time.monotonic()


class _Run:
    """Files of one run in `workdir`: state.json, checkpoints, history.csv, curves.png."""

    def __init__(self, workdir: Path, fingerprint: str, plan: list[dict], monitor: str, mode: str) -> None:
        self.workdir, self.fingerprint, self.plan = workdir, fingerprint, plan
        self.monitor, self.mode = monitor, mode
        self.rows: list[dict] = []
        self.best: dict | None = None
        self._best_weights: list[np.ndarray] | None = None  # the best epoch's weights, until a checkpoint writes them
        self.state: dict | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    def load_state(self) -> dict | None:
        if not self.state_path.is_file():
            return None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                raise ValueError(f"it holds a {type(state).__name__}, not an object")
            if state.get("fingerprint") != self.fingerprint:
                return None
            rows, best = list(state["rows"]), state.get("best")
            for key in ("weights", "optimizer"):  # the checkpoint it names must be there, whole
                if not zipfile.is_zipfile(self.workdir / state[key]):
                    raise ValueError(f"its {key} file {state[key]} is missing or damaged")
            int(state["stage_index"]), int(state["stage_epochs_done"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            from ..io import set_aside

            set_aside(self.state_path, f"{type(exc).__name__}: {exc}")
            return None
        self.rows, self.best, self.state = rows, best, state
        return state

    def _better(self, value: float, loss: float) -> bool:
        """Return whether an epoch beats the best: a better monitored value, or the same one at a lower validation
        loss (validation accuracy saturates on easy sets: without the tie-break the first epoch to reach 1.0, still
        at the peak learning rate, would be kept over every later one)."""
        if self.best is None or not np.isfinite(self.best["value"]):
            return bool(np.isfinite(value))
        if value == self.best["value"]:
            return bool(np.isfinite(loss)) and loss < self.best.get("loss", np.inf)
        return value > self.best["value"] if self.mode == "max" else value < self.best["value"]

    def observe(self, model: keras.Model, row: dict) -> None:
        """Take in the epoch just recorded (the last of `rows`): a new best keeps its weights until the next checkpoint."""
        value = row.get(self.monitor, float("nan"))
        loss = float(row.get("val_loss", float("nan"))) if self.monitor != "val_loss" else float("nan")
        if self._better(value, loss):
            n = len(self.rows)
            self.best = {"value": value, "epoch": n - 1, "size": row["size"], "file": f"best{n:04d}.weights.npz"}
            if np.isfinite(loss):
                self.best["loss"] = loss
            self._best_weights = model.get_weights()

    def checkpoint(self, model: keras.Model, stage_index: int, stage_epochs_done: int) -> None:
        """Write weights and optimizer state under new names, then commit them in state.json, then tidy."""
        n = len(self.rows)
        weights = f"epoch{n:04d}.weights.npz"
        save_arrays(self.workdir / weights, model.get_weights())
        opt_file = f"epoch{n:04d}.optimizer.npz"
        save_arrays(self.workdir / opt_file, [ops.convert_to_numpy(v) for v in model.optimizer.variables])
        if self._best_weights is not None:
            save_arrays(self.workdir / self.best["file"], self._best_weights)
            self._best_weights = None
        previous = self.state or {}
        old = (previous.get("best") or {}).get("file")
        self.state = {"fingerprint": self.fingerprint, "stage_index": stage_index,
                      "stage_epochs_done": stage_epochs_done, "weights": weights, "optimizer": opt_file,
                      "best": self.best, "rows": self.rows, "monitor": self.monitor}
        atomic_write_text(self.state_path, json.dumps(self.state, default=float))
        with atomic_open(self.workdir / "history.csv") as fh:
            pd.DataFrame(self.rows).to_csv(fh, index=False)
        for stale in (previous.get("weights"), previous.get("optimizer"), old):
            if stale and stale not in (weights, opt_file, self.best["file"] if self.best else None):
                with contextlib.suppress(FileNotFoundError):
                    (self.workdir / stale).unlink()

    def plot(self) -> Path | None:
        """Return the PNG of loss/metric/lr curves per epoch (None without rows)."""
        if not self.rows:
            return None
        return plot_history(pd.DataFrame(self.rows), self.workdir / "curves.png")

    def resume(self, model: keras.Model) -> tuple[int, int]:
        """Return (stage index, epochs of it done) to continue from, after loading the saved weights into `model`.

        (0, 0) without a saved state; a finished stage continues at the next one.
        """
        if not self.state:
            return 0, 0
        model.set_weights(load_arrays(self.workdir / self.state["weights"]))
        stage, done = self.state["stage_index"], self.state["stage_epochs_done"]
        if done >= self.plan[stage]["epochs"]:
            stage, done = stage + 1, 0
        return stage, done

    def restore_optimizer(self, model: keras.Model) -> None:
        """Load the saved optimizer state into `model`'s (compiled) optimizer."""
        restore_optimizer(model, self.workdir / self.state["optimizer"])

    def restore_best(self, model: keras.Model) -> dict | None:
        """Return the best epoch's record after loading its weights into `model` (None when there is none on disk)."""
        if self.best is None or not (self.workdir / self.best["file"]).is_file():
            return None
        model.set_weights(load_arrays(self.workdir / self.best["file"]))
        return self.best
