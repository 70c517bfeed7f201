"""`kagglekit run SLUG --submit` killed (-9) at a step, then run again, ends as an uninterrupted run does.

The command runs as a user runs it (``python -m kagglekit run digits ... --submit``)
against the Kaggle emulator, on a tiny digits competition fetched from it. One
uninterrupted run is the baseline; each scenario kills a fresh run folder's run
when its step shows (a line on stdout, a file in the run folder, the upload in
the emulator's log), runs the same command again, and checks: the same test
predictions (float tolerance) and submission as the baseline, no unfinished
temporary files in the run folder, and exactly one upload for that run folder.

Every step is killed in CI in one run folder, in turn: the run is killed at the download, started
again and killed at the layout, and so on to the wait for the score, then completed (nine processes,
about the cost of two scenarios). ``KAGGLEKIT_KILL_STEPS=all`` (or a comma list of names) also runs
each step as its own scenario from a fresh run folder (one killed and one completed run each).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from kagglekit.testing.competitions import build_competition
from kagglekit.testing.kaggle_emulator import KaggleEmulator

pytestmark = pytest.mark.slow

RECIPE = "[fine_tune]\naugment = false\ndropout = 0.0\n"  # no random augmentation: a resumed epoch repeats exactly
ARGS = ["--backbone", "resnet_tiny", "--sizes", "32", "--epochs", "2", "--weights", "none", "--tta", "0",
        "--batch-size", "32", "--seed", "0", "--submit"]


def _text(run: "Run") -> str:
    return "".join(run.out)


# name -> when to kill: (run folder, run) -> bool. Their order is the order of the steps.
KILL_AT = {
    "download": lambda w, r: any((r.home / "data" / "digits").glob("*")),
    "layout": lambda w, r: (w / "train.table.csv").exists(),
    "first epoch": lambda w, r: "kagglekit: stage 1/1" in _text(r),
    "mid-training": lambda w, r: (w / "train" / "state.json").exists(),
    "tuning": lambda w, r: (w / "learner" / "model.keras").exists(),
    "prediction": lambda w, r: "validation accuracy:" in _text(r),
    "writing": lambda w, r: (w / "test_predictions.csv").exists(),
    "after upload": lambda w, r: r.uploads() > 0,
}
# Steps told by the process's own output: a new process shows them again, so they are never "already past".
SAID_STEPS = ("first epoch", "prediction")


def _chosen() -> list[str]:
    wanted = os.environ.get("KAGGLEKIT_KILL_STEPS", "")
    if wanted == "all":
        return list(KILL_AT)
    return [s.strip() for s in wanted.split(",") if s.strip()]


class Run:
    """One scenario's folder, environment and `kagglekit run` processes."""

    def __init__(self, root: Path, emu: KaggleEmulator, name: str) -> None:
        self.home = root / name.replace(" ", "-")
        self.workdir = self.home / "run"
        self.emu = emu
        self.home.mkdir(parents=True)
        (self.home / "recipe.toml").write_text(RECIPE)
        self.env = {**os.environ, **emu.environ(self.home / "home"), "KAGGLEKIT_DATA": str(self.home / "data"),
                    "KAGGLEKIT_CACHE": str(self.home / "cache"), "KAGGLEKIT_INPUT_ROOT": str(self.home / "no-input"),
                    "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
        self.env.pop("KAGGLE_KERNEL_RUN_TYPE", None)
        self.first_log = len(emu.log)
        self.out: list[str] = []

    def uploads(self) -> int:
        return sum(1 for e in self.emu.log[self.first_log:] if e.get("api") == "CreateSubmission")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "kagglekit", "run", "digits", "--workdir", str(self.workdir),
                "--recipe", str(self.home / "recipe.toml"), *ARGS]

    def start(self, kill_when=None) -> tuple[int, bool]:
        """Return (exit code, killed) of one run, killed with SIGKILL as soon as `kill_when` holds."""
        self.out = []
        proc = subprocess.Popen(self.command(), cwd=self.home, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        reader = threading.Thread(target=lambda: [self.out.append(line) for line in iter(proc.stdout.readline, "")],
                                  daemon=True)
        reader.start()
        killed = False
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_when is not None and kill_when(self.workdir, self):
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.02)
        if proc.poll() is None and not killed:
            proc.kill()
        code = proc.wait()
        reader.join(timeout=10)
        return code, killed


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    comp = build_competition("digits", tmp_path_factory.mktemp("kill-comp") / "digits", n_train=100, n_test=30)
    with KaggleEmulator({"digits": comp}, pending_polls=0, daily_limit=100) as emu:
        yield emu


@pytest.fixture(scope="module")
def baseline(emulator, tmp_path_factory):
    run = Run(tmp_path_factory.mktemp("kill-runs"), emulator, "baseline")
    code, _ = run.start()
    assert code == 0, _text(run)[-3000:]
    assert run.uploads() == 1
    return run


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".part", ".tmp")) or ".part." in p.name]


def _ends_as_the_baseline(run: Run, baseline: Run) -> None:
    expected = pd.read_csv(baseline.workdir / "test_predictions.csv", skiprows=1)
    got = pd.read_csv(run.workdir / "test_predictions.csv", skiprows=1)
    pd.testing.assert_frame_equal(got, expected, atol=1e-4, check_exact=False)
    assert (run.workdir / "submission.csv").read_text() == (baseline.workdir / "submission.csv").read_text()
    assert _leftovers(run.workdir) == []
    assert run.uploads() == 1, f"{run.uploads()} uploads for one run folder"


def _kill_at(run: Run, emulator: KaggleEmulator, step: str) -> None:
    """Start the run and kill it (-9) as soon as `step` shows; fail when it ended first."""
    if step == "after upload":
        emulator.pending_polls = 10_000  # the score does not come: the run is waiting when it is killed
    try:
        code, killed = run.start(KILL_AT[step])
    finally:
        emulator.pending_polls = 0
    assert killed, f"the run ended ({code}) before the {step} step showed:\n{_text(run)[-3000:]}"


def test_a_run_killed_at_every_step_in_turn_ends_as_an_uninterrupted_one(emulator, baseline, tmp_path):
    run = Run(tmp_path, emulator, "every step")
    killed = []
    for step, shown in KILL_AT.items():
        if step not in SAID_STEPS and shown(run.workdir, run):
            continue  # an earlier session got past it (a kill came after it): nothing left to kill there
        _kill_at(run, emulator, step)
        killed.append(step)
    assert len(killed) >= 6, killed  # most steps were still ahead when the run before was killed
    for sub in emulator.submissions.get("digits", []):
        sub.polls_left = 0  # scored from now on
    code, _ = run.start()
    assert code == 0, _text(run)[-3000:]
    _ends_as_the_baseline(run, baseline)


@pytest.mark.parametrize("step", _chosen())
def test_a_run_killed_at_a_step_ends_as_an_uninterrupted_one(emulator, baseline, step, tmp_path):
    run = Run(tmp_path, emulator, step)
    _kill_at(run, emulator, step)
    for sub in emulator.submissions.get("digits", []):
        sub.polls_left = 0  # scored from now on
    code, _ = run.start()
    assert code == 0, _text(run)[-3000:]
    _ends_as_the_baseline(run, baseline)
