"""A run folder belongs to one run of one competition: its lock, its identity, its runs' ids and kept submissions.

* **The lock** (`RunLock`): ``run.lock`` in the run folder, created with ``O_EXCL`` and holding
  the holder's pid, host, process start time and start date. A second ``kagglekit run`` on the
  same folder refuses with one line naming the holder; a lock whose process is gone (killed with
  ``kill -9``, the machine rebooted) is taken over, and the log says so. Released on exit,
  errors included.
* **The identity** (`identity`, `choose_workdir`): a run folder records the competition it
  serves (the slug, or the source folder's resolved path, with a digest of its file listing).
  ``runs/<name>`` is used only by the competition it records (or, when written by an older
  kagglekit, whose recorded source is the same folder); another competition whose folder has the
  same name gets ``runs/<name>-<8 hex digits of its identity>``.
* **Runs** (`run_id_for`, `keep_submission`): every distinct submission a run folder writes gets
  its own run id and a copy kept as ``submissions/<run id>/<file name>``, so a ledger row never
  points at a file a later run replaced.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, StateError
from .io import why_not_writable, working_root
from .logs import logger

LOCK_FILE = "run.lock"
KEPT = "submissions"  # where each run's submission is kept: <run folder>/submissions/<run id>/<name>
_UNWRITTEN_GRACE_S = 10.0  # a lock file still empty this long after its creation is a holder killed mid-write


# --------------------------------------------------------------------------- the lock
def _process_start(pid: int) -> str | None:
    """Return the start time of process `pid` in clock ticks since boot (Linux /proc; None where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    """Return whether process `pid` runs and is the one that took the lock (same start time, where known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except (OverflowError, ValueError):
        return False
    now = _process_start(pid)
    if now is not None and started is not None and now != started:
        return False  # the pid was reused by a later process
    if now is not None:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False  # a zombie: killed, not yet reaped by its parent
        except (OSError, IndexError):
            pass
    return True


def _read_lock(path: Path) -> dict | None:
    """Return what a lock file says ({} when it cannot be read as a JSON object; None when there is no file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class RunLock:
    """The lock of a run folder: `acquire` refuses (`StateError`) while a live process holds it; a dead holder's lock is taken over."""

    def __init__(self, workdir: str | os.PathLike) -> None:
        self.workdir = Path(workdir)
        self.path = self.workdir / LOCK_FILE
        self.token = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.held = False

    def _mine(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "token": self.token}

    def holder(self) -> dict | None:
        """Return what the lock file says about its holder ({} when it cannot be read; None when there is no lock)."""
        return _read_lock(self.path)

    def _stale(self, holder: dict) -> str | None:
        """Return why the lock `holder` describes is stale (None while it may be live)."""
        if not holder:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return "it is gone"
            return f"its lock file is unreadable and {age:.0f} s old" if age > _UNWRITTEN_GRACE_S else None
        if holder.get("host") != socket.gethostname():
            return None  # another machine's process: cannot be checked from here
        try:
            pid = int(holder.get("pid"))
        except (TypeError, ValueError):
            return "its lock file names no process"
        return None if _alive(pid, holder.get("process_start")) else f"process {pid} is no longer running"

    def acquire(self) -> RunLock:
        """Return this lock after taking it (O_EXCL create); a live holder is a `StateError` naming it, a dead one's lock is taken over."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is None:
                    continue  # released in between: try again
                why = self._stale(holder)
                if why is None:
                    raise StateError(self._busy(holder)) from None
                self._take_over(holder, why)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(self._mine()))
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return self
        raise StateError(f"Could not take the lock {self.path} (it keeps changing hands); wait for the other "
                         "run on this folder to finish, or give another --workdir.")

    def _busy(self, holder: dict) -> str:
        where = "" if holder.get("host") == socket.gethostname() else f" on host {holder.get('host')}"
        who = f"process {holder.get('pid')}{where}" if holder else "a run that is still starting"
        since = f" since {holder['started']}" if holder.get("started") else ""
        extra = (f"; if that process is gone, delete {self.path}" if where else "")
        return (f"The run folder {self.workdir} is in use by another kagglekit run ({who}{since}); wait for it to "
                f"finish, or give another --workdir{extra}.")

    def _take_over(self, holder: dict, why: str) -> None:
        """Remove a stale lock (only if it still holds what was read: two takers cannot both remove a fresh one)."""
        if self.holder() != holder:
            return
        aside = self.path.with_name(f".{LOCK_FILE}.{self.token}.stale")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        if _read_lock(aside) != holder:  # a fresh holder's lock moved by mistake: put it back
            os.replace(aside, self.path)
            return
        aside.unlink()
        logger.info(f"run folder {self.workdir}: took over the lock of an earlier run ({why}; "
                    f"it started {holder.get('started', 'at an unknown time')})")

    def release(self) -> None:
        """Remove the lock file if this lock holds it."""
        if self.held and (self.holder() or {}).get("token") == self.token:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# --------------------------------------------------------------------------- the identity
def identity(comp: Any) -> dict:
    """Return a competition's identity: {"kind", "key" (the slug, or the resolved folder), "listing" (digest of names and sizes)}."""
    source = getattr(comp, "source", "local")
    path = Path(os.path.realpath(comp.path))
    key = getattr(comp, "slug", None) if source in ("kaggle", "notebook") else str(path)
    h = hashlib.md5()
    for f in sorted(getattr(comp, "files", None) or []):
        try:
            h.update(f"{Path(f).relative_to(comp.path).as_posix()}\0{Path(f).stat().st_size}\n".encode())
        except (OSError, ValueError):
            continue
    return {"kind": "local" if source not in ("kaggle", "notebook") else "slug", "key": key, "listing": h.hexdigest()[:12]}


def recorded_identity(workdir: Path) -> dict | None:
    """Return the identity a run folder recorded ({"legacy": source} for an older kagglekit's; None when it records none)."""
    try:
        saved = json.loads((workdir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(saved, dict):
        return None
    run = saved.get("run") if isinstance(saved.get("run"), dict) else {}
    if isinstance(run.get("identity"), dict):
        return run["identity"]
    layout = (saved.get("steps") or {}).get("layout") if isinstance(saved.get("steps"), dict) else None
    source = ((layout or {}).get("inputs") or {}).get("source") if isinstance(layout, dict) else None
    return {"legacy": source} if source else None


def same_competition(recorded: dict, ident: dict, comp_path: str | os.PathLike) -> bool:
    """Return whether a run folder's `recorded` identity is the competition `ident` (an older folder's: the same source folder)."""
    if "legacy" in recorded:
        return os.path.realpath(str(recorded["legacy"])) == os.path.realpath(comp_path)
    return recorded.get("kind") == ident["kind"] and recorded.get("key") == ident["key"]


def _describe(recorded: dict) -> str:
    return f"source {recorded['legacy']}" if "legacy" in recorded else f"{recorded.get('kind')} {recorded.get('key')}"


def choose_workdir(given: str | os.PathLike | None, root: Path, name: str, ident: dict, comp_path: str | os.PathLike) -> Path:
    """Return the run folder for competition `ident`: `given` (refused when it serves another competition), else ``root/name``,
    or ``root/name-<digest>`` when ``root/name`` serves another competition. Unwritable places are a `ConfigError`."""
    if given is not None:
        candidates = [Path(given)]
    else:
        tag = hashlib.md5(json.dumps([ident["kind"], ident["key"]]).encode()).hexdigest()[:8]
        candidates = [root / name, root / f"{name}-{tag}"]
    for workdir in candidates:
        recorded = recorded_identity(workdir) if workdir.is_dir() else None
        if recorded is None or same_competition(recorded, ident, comp_path):
            if workdir != candidates[0]:
                logger.info(f"run folder: {candidates[0]} belongs to another competition ({_describe(recorded_identity(candidates[0]) or {})}); "
                            f"this one ({ident['key']}) runs in {workdir}")
            break
    else:
        recorded = recorded_identity(candidates[-1]) or {}
        fix = "give another --workdir" if given is not None else "give a --workdir"
        raise ConfigError(f"The run folder {candidates[-1]} belongs to another competition ({_describe(recorded)}), "
                          f"not {ident['key']}; {fix} (or delete {candidates[-1] / 'run.json'} to reuse the folder).")
    if os.path.realpath(workdir) == os.path.realpath(comp_path):
        raise ConfigError(f"The run folder {workdir} is the competition folder itself; kagglekit never writes its run "
                          "into its input. Fix: give another --workdir (e.g. runs/NAME).")
    if _inside(workdir, comp_path):
        raise ConfigError(f"The run folder {workdir} lies inside the competition folder {comp_path}; kagglekit never "
                          "writes into its input (its tables there would change what layout detection reads). "
                          "Fix: give a --workdir outside it (e.g. runs/NAME).")
    why = why_not_writable(workdir)
    if why is not None:
        raise ConfigError(f"The run folder {workdir} cannot be written ({why}); give a writable one with --workdir DIR"
                          f"{' (or set $KAGGLEKIT_WORKING)' if given is None and root == working_root() / 'runs' else ''}.")
    return workdir


def _inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Return whether `path` (existing or not) lies under `folder` (both resolved; the folder itself is not inside)."""
    inner, outer = os.path.realpath(path), os.path.realpath(folder)
    return inner != outer and inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_ledger(ledger: str | os.PathLike | bool | None) -> None:
    """Raise `ConfigError` when a ledger path was given and is not one a row can be appended to (`ledger.check_path`)."""
    if ledger not in (None, True, False):
        from .ledger import check_path

        check_path(ledger)


def claim(given: str | os.PathLike | None, root: Path, name: str, comp: Any, ledger: str | os.PathLike | bool | None,
          held: contextlib.ExitStack | None) -> tuple[Path, Any, Path | None]:
    """Return (the run folder, its `RunState`, the ledger file or None) after choosing the folder for `comp`
    (`choose_workdir`), taking its lock (released when `held` closes), checking the ledger and recording the identity."""
    from .ledger import check_path
    from .runstate import RunState

    ident = identity(comp)
    workdir = choose_workdir(given, root, name, ident, comp.path)
    lock = RunLock(workdir)
    held.enter_context(lock) if held is not None else lock.acquire()  # without `held`: held until the process ends
    ledger_file = None if ledger is False else Path(ledger) if ledger not in (None, True) else workdir.parent / "ledger.csv"
    if ledger_file is not None:
        if _inside(ledger_file, comp.path):
            raise ConfigError(f"The run ledger {ledger_file} lies inside the competition folder {comp.path}; kagglekit "
                              "never writes into its input (a CSV there would change what layout detection reads). "
                              "Fix: give a --ledger outside it (e.g. runs/ledger.csv), or --ledger none.")
        check_path(ledger_file)
    state = RunState(workdir)
    if state.get("identity") != ident:
        state.put("identity", ident)
    return workdir, state, ledger_file


# --------------------------------------------------------------------------- runs and their submissions
def run_id_for(state: Any, file_md5: str, new_id: Any) -> str:
    """Return the run id of the submission with this MD5: the one it had, else the folder's current id while unused, else `new_id()`."""
    runs = dict(state.get("runs") or {})
    if file_md5 in runs:
        return runs[file_md5]
    current = state.get("run_id")
    run_id = current if current and current not in runs.values() else new_id()
    runs[file_md5] = run_id
    state.put("runs", runs)
    state.put("run_id", run_id)
    return run_id


def keep_submission(workdir: Path, run_id: str, file: str | os.PathLike) -> Path:
    """Return the kept copy of run `run_id`'s submission (``submissions/<run id>/<name>``), copying it there once."""
    from .io import atomic_open

    file = Path(file)
    kept = workdir / KEPT / run_id / file.name
    if not kept.is_file():
        with open(file, "rb") as src, atomic_open(kept, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return kept


def record(state: Any, workdir: Path, row: dict, ledger: str | os.PathLike | bool | None,
           submitted: dict | None) -> dict | None:
    """Return the ledger row added for the run `state` names (None: no ledger, or recorded and not submitted since).

    `row` holds the run's own columns; this adds the run id, the submission kept under
    ``submissions/<run id>/`` (a later run cannot replace the file a row points at), its MD5 and
    the submission's reference and score, then marks the run as recorded.
    """
    from .ledger import append
    from .runstate import file_hash

    run_id = state.get("run_id")
    if ledger is False or (run_id in (state.get("ledgered") or []) and not submitted):
        return None
    path = Path(ledger) if ledger not in (None, True) else workdir.parent / "ledger.csv"
    sub, file = submitted or {}, row["submission"]
    added = append({**row, "run_id": run_id, "submission": keep_submission(workdir, run_id, file),
                    "message": sub.get("message"), "submission_ref": sub.get("submission_ref"),
                    "public_score": sub.get("public_score"), "workdir": workdir,
                    "extra": {**row.get("extra", {}), "submission_md5": file_hash(file)}}, path)
    state.put("ledger", str(path))
    state.put("ledgered", [*(state.get("ledgered") or []), run_id])
    return {**added, "path": path}


@dataclass
class RunResult:
    """What a run produced: the validation score, the submission file and, when submitted, the public score."""

    workdir: Path
    metric: str
    valid_score: float
    submission: Path | None  # None: a multi-host follower (process > 0), which writes none
    settings: dict = field(default_factory=dict)
    public_score: float | None = None
    seconds: float = 0.0
    inference: Any = None  # what the run inferred before training (kagglekit.job.Inference)
    outside_share: float | None = None  # share of `seconds` outside training steps (kagglekit.timeline.outside_share)
    process: tuple[int, int] | None = None  # (this process, processes) of a multi-host run's follower (kagglekit.job.processes)

    def __str__(self) -> str:
        if self.process is not None:
            return (f"process {self.process[0]} of {self.process[1]}: trained in step with process 0, which holds "
                    "the validation score and writes the submission")
        lines = [f"validation {self.metric}: {self.valid_score:.4f}", f"submission: {self.submission}"]
        if self.public_score is not None:
            lines.append(f"public score: {self.public_score}")
        return "\n".join(lines)
