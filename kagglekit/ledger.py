"""The run ledger: one row per ``kagglekit run`` in ``runs/ledger.csv``, joined to Kaggle's public scores.

Columns (fixed, in this order; `COLUMNS`):

=============  ==============================================================================
run_id         unique id of the run (UTC time + 4 hex digits); put it in the submission message
time           when the run finished, UTC, ISO 8601 (``2026-11-28T21:10:05Z``)
competition    the competition slug (or the local folder's name)
backbone       the backbone trained
weights        "imagenet", a weights file, or "none" (from scratch)
sizes          input sizes, space-separated ("64 128" for progressive resizing)
epochs         epochs per size (as fine_tune took them); epochs_done: epochs actually trained
epochs_done    (fewer when the deadline stopped training early)
batch_size     the batch size
budget_s       the time budget in seconds (empty when none was set)
seconds        the run's wall time in seconds, over all sessions when resumed
outside_share  the share of `seconds` spent outside training steps (start-up, tracing, validation, TTA, writing)
hardware       one line: what it trained on (``Hardware.describe()``)
metric         the competition metric the validation score is in
valid_score    the validation score
tta            TTA views used for the submission
submission     the submission file written (path)
message        the description sent with the submission (empty when not submitted)
submission_ref Kaggle's reference of the submission (empty when not submitted)
cv_score       the out-of-fold (cross-validation) score of a ``--folds K`` run (empty for one split)
public_score   Kaggle's public score, when known at the time of the run
workdir        the run folder
extra          any other settings, as JSON
=============  ==============================================================================

Rows are appended under a lock, by writing the whole file anew and renaming it into place, so a
killed run never leaves half a row and two runs finishing together both keep theirs.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd

from .errors import ConfigError
from .io import atomic_open, why_not_writable
from .logs import logger

LEDGER_PATH = Path("runs") / "ledger.csv"
COLUMNS: tuple[str, ...] = (
    "run_id", "time", "competition", "backbone", "weights", "sizes", "epochs", "epochs_done", "batch_size",
    "budget_s", "seconds", "outside_share", "hardware", "metric", "valid_score", "tta", "submission", "message",
    "submission_ref", "cv_score", "public_score", "workdir", "extra",
)
_NUMERIC = ("epochs", "epochs_done", "batch_size", "budget_s", "seconds", "outside_share", "valid_score", "tta", "cv_score",
            "public_score")
#: A CSV is a ledger (one kagglekit wrote, of any version) when its header holds these columns.
MARK: tuple[str, ...] = ("run_id", "time", "competition")
#: A submission is matched to the last run that finished before it, at most this long before (by file and time).
MATCH_WINDOW_S = 6 * 3600.0


def new_run_id(now: float | None = None) -> str:
    """Return a fresh run id: UTC time to the second and 4 random hex digits ("20261128-211005-3fa2")."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{os.urandom(2).hex()}"


def _cell(value: Any) -> str:
    """Return one CSV cell: lists space-separated, None/NaN empty, floats without noise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.1f}"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def normalise(row: dict) -> dict[str, str]:
    """Return `row` as ledger cells: known columns filled in, unknown keys folded into ``extra`` as JSON."""
    row = dict(row)
    out = {c: "" for c in COLUMNS}
    extra = {k: row.pop(k) for k in list(row) if k not in COLUMNS}
    if isinstance(row.get("extra"), dict):
        extra = {**row.pop("extra"), **extra}
    for key, value in row.items():
        out[key] = _cell(value)
    if extra:
        out["extra"] = json.dumps(extra, sort_keys=True, default=str)
    out["run_id"] = out["run_id"] or new_run_id()
    out["time"] = out["time"] or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def _header(path: Path) -> list[str] | None:
    """Return the column names on the first line of the CSV at `path` ([] when empty; None when not readable as text)."""
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as fh:
            first = fh.readline(1 << 16)
    except (OSError, UnicodeDecodeError):
        return None
    if not first.strip():
        return []
    try:
        return [c.strip() for c in next(csv.reader([first]))]
    except csv.Error:
        return None


def is_ledger(path: str | os.PathLike) -> bool:
    """Return whether `path` is a file kagglekit's ledger can append to: empty, or a CSV whose header has `MARK`'s columns."""
    path = Path(path)
    if not path.is_file():
        return False
    head = _header(path)
    return head == [] or (head is not None and all(c in head for c in MARK))


def check_path(path: str | os.PathLike, flag: str = "--ledger") -> Path:
    """Return `path` when a ledger row can be added there (a ledger, or no file yet in a writable folder).

    A folder, any other file (a CSV whose header is not the ledger's, a binary file) and an
    unwritable place are a `ConfigError` naming `flag`: kagglekit appends only to its own ledgers.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; name a CSV file, e.g. {flag} {path / 'ledger.csv'}.")
    if os.path.lexists(path) and not path.is_file():
        raise ConfigError(f"{flag} {path} is not a regular file; name a new or existing ledger CSV file.")
    if path.is_file() and not is_ledger(path):
        head = _header(path)
        what = f"its header is {','.join(head)[:80]!r}" if head else "it is not a text CSV"
        raise ConfigError(f"{flag} {path} is not a kagglekit ledger ({what}; a ledger's header holds "
                          f"{', '.join(MARK)}); kagglekit only appends to its own ledgers, so it was left untouched. "
                          f"Fix: name a new file with {flag}, or leave {flag} out (ledger.csv beside the run folder).")
    why = why_not_writable(path.parent)
    if why is not None:
        raise ConfigError(f"{flag} {path} cannot be written ({why}); name a ledger in a writable folder, "
                          f"e.g. {flag} {Path.home() / 'kagglekit-ledger.csv'}.")
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path` (released when the process dies; no-op where fcntl is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append(row: dict, path: str | os.PathLike = LEDGER_PATH) -> dict[str, str]:
    """Return the row as written, after adding it to the ledger at `path` atomically (under a lock).

    Keys of `row` are `COLUMNS` (missing ones stay empty; ``run_id`` and ``time`` are filled in);
    other keys go into the ``extra`` column as JSON. A ledger written with other columns (an older
    kagglekit) is rewritten with the current ones, its rows kept (and its mode). Any other file at
    `path` (a CSV that is not a ledger, a folder) is a `ConfigError` and is left untouched (`check_path`).
    """
    path = Path(os.path.realpath(check_path(path)))  # a link to a ledger stays a link: its target is rewritten
    cells = normalise(row)
    with _locked(path):
        for stale in path.parent.glob(f".{path.name}.*.part"):  # left by a writer killed mid-write (we hold the lock)
            with contextlib.suppress(OSError):
                stale.unlink()
        old = _read_raw(path)
        frame = pd.concat([old, pd.DataFrame([cells])], ignore_index=True) if len(old) else pd.DataFrame([cells])
        frame = frame.reindex(columns=list(COLUMNS), fill_value="").astype(object).fillna("")
        with atomic_open(path, "w") as fh:
            frame.to_csv(fh, index=False)
    logger.debug("ledger: run %s recorded in %s", cells["run_id"], path)
    return cells


def _read_raw(path: Path) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(COLUMNS))
    if not is_ledger(path):
        raise ConfigError(f"{path} is not a kagglekit run ledger (its header lacks {', '.join(MARK)}); "
                          "name the ledger kagglekit wrote (default runs/ledger.csv) with --ledger PATH.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The run ledger {path} is not a readable CSV ({exc}); move it aside and run again "
                          "(a new ledger is started).") from None
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:  # columns this version does not know: keep them in `extra`
        def fold(r: pd.Series) -> str:
            data = json.loads(r["extra"]) if r.get("extra") else {}
            data.update({c: r[c] for c in extra if r[c] != ""})
            return json.dumps(data, sort_keys=True) if data else ""
        frame["extra"] = frame.apply(fold, axis=1) if "extra" in frame else frame.assign(extra="").apply(fold, axis=1)
    return frame.reindex(columns=list(COLUMNS), fill_value="").astype(object).fillna("")


def read(path: str | os.PathLike = LEDGER_PATH) -> pd.DataFrame:
    """Return the ledger as a DataFrame with `COLUMNS` (numbers as floats, ``time`` as UTC timestamps); empty when none."""
    frame = _read_raw(Path(path))
    for col in _NUMERIC:
        frame[col] = pd.to_numeric(frame[col].replace("", None), errors="coerce")
    frame["time"] = pd.to_datetime(frame["time"].replace("", None), utc=True, errors="coerce")
    return frame


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _num(v: Any, digits: int = 4) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "" if v is None else str(v)
    if math.isnan(f):
        return ""
    return f"{f:.{digits}f}" if digits else f"{f:.0f}"


def format_runs(df: pd.DataFrame, last: int | None = None) -> str:
    """Return the runs (the ledger, or `join_submissions`' result) as a plain text table, oldest first."""
    if df is None or not len(df):
        return "No runs recorded yet (every `kagglekit run` adds one to runs/ledger.csv)."
    df = df.tail(last) if last else df
    joined = "ref" in df.columns
    head = ("date", "ref", "public", "private", "valid", "metric", "backbone", "sizes", "epochs", "run") if joined else \
        ("time", "competition", "backbone", "sizes", "epochs", "budget", "seconds", "valid", "cv", "metric", "public",
         "submission")
    rows = [head]
    for _, r in df.iterrows():
        epochs = _num(r.get("epochs"), 0)
        if _num(r.get("epochs_done"), 0) and _num(r.get("epochs_done"), 0) != epochs:
            epochs = f"{_num(r.get('epochs_done'), 0)}/{epochs}"
        if joined:
            rows.append((str(r.get("date", "")), _num(r.get("ref"), 0), _num(r.get("public_score"), 5),
                         _num(r.get("private_score"), 5), _num(r.get("valid_score")), str(r.get("metric") or ""),
                         str(r.get("backbone") or ""), str(r.get("sizes") or ""), epochs, str(r.get("run_id") or "")))
            continue
        when = r.get("time")
        when = when.strftime("%Y-%m-%d %H:%M") if isinstance(when, pd.Timestamp) else str(when or "")
        rows.append((when, str(r.get("competition") or ""), str(r.get("backbone") or ""), str(r.get("sizes") or ""),
                     epochs, _num(r.get("budget_s"), 0), _num(r.get("seconds"), 0), _num(r.get("valid_score")),
                     _num(r.get("cv_score")), str(r.get("metric") or ""), _num(r.get("public_score"), 5),
                     Path(str(r.get("submission") or "")).name))
    return _table([tuple("" if c in ("nan", "NaT", "None") else c for c in row) for row in rows])


def _submission_frame(submissions: Sequence[Any] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(submissions, pd.DataFrame):
        frame = submissions.copy()
    else:
        from dataclasses import asdict, is_dataclass

        frame = pd.DataFrame([asdict(s) if is_dataclass(s) else dict(s) for s in submissions])
    for col, default in (("ref", 0), ("file_name", ""), ("description", ""), ("status", ""), ("public_score", None),
                         ("private_score", None), ("date", "")):
        if col not in frame:
            frame[col] = default
    return frame


def join_submissions(runs_df: pd.DataFrame, submissions: Sequence[Any] | pd.DataFrame,
                     competition: str | None = None) -> pd.DataFrame:
    """Return Kaggle's submissions (newest first) with the ledger run that made each, and how it was matched.

    `submissions` are ``kagglekit.kaggle.Submission`` objects (``kaggle.submissions(slug)``) or a frame
    with their fields. A submission is matched to a run by, in order: the run's ``submission_ref``;
    the run's ``run_id`` inside the submission's description; the run's ``message`` equal to the
    description; else the same file name and the last run that finished before the submission, at most
    `MATCH_WINDOW_S` before. The ``matched_by`` column says which ("" when no run matched). Run columns
    keep their names (``public_score``/``private_score`` are Kaggle's; the run's public score is dropped).
    """
    subs = _submission_frame(submissions).reset_index(drop=True)
    runs = runs_df.copy() if runs_df is not None else pd.DataFrame(columns=list(COLUMNS))
    if competition is not None and len(runs):
        runs = runs[runs["competition"].astype(str) == str(competition)]
    runs = runs.reset_index(drop=True)
    run_time = pd.to_datetime(runs["time"], utc=True, errors="coerce") if len(runs) else pd.Series([], dtype="datetime64[ns, UTC]")
    sub_time = pd.to_datetime(subs["date"].replace("", None), utc=True, errors="coerce")
    picks, how = [], []
    for i, sub in subs.iterrows():
        ref, desc, name = str(int(sub["ref"] or 0)), str(sub["description"] or ""), Path(str(sub["file_name"] or "")).name
        found, why = None, ""
        for j, run in runs.iterrows():
            if _num(run.get("submission_ref"), 0) == ref and ref != "0":
                found, why = j, "ref"
                break
        if found is None:
            hits = [j for j, run in runs.iterrows() if run.get("run_id") and str(run["run_id"]) in desc]
            found, why = (hits[-1], "run_id") if hits else (None, "")
        if found is None and desc:
            hits = [j for j, run in runs.iterrows() if str(run.get("message") or "") == desc]
            found, why = (hits[-1], "message") if hits else (None, "")
        if found is None and name and pd.notna(sub_time[i]):
            best = None
            for j, run in runs.iterrows():
                if Path(str(run.get("submission") or "")).name != name or pd.isna(run_time[j]):
                    continue
                lag = (sub_time[i] - run_time[j]).total_seconds()
                if -60 <= lag <= MATCH_WINDOW_S and (best is None or lag < best[0]):
                    best = (lag, j)
            found, why = (best[1], "file and time") if best else (None, "")
        picks.append(found)
        how.append(why)
    run_cols = [c for c in COLUMNS if c not in ("public_score",)]
    matched = pd.DataFrame([runs.loc[j, run_cols] if j is not None else pd.Series(index=run_cols, dtype=object)
                            for j in picks], columns=run_cols).reset_index(drop=True)
    out = pd.concat([subs[["ref", "date", "file_name", "description", "status", "public_score", "private_score"]],
                     matched.drop(columns=["message"])], axis=1)
    out["matched_by"] = how
    return out
