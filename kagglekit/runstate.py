"""The state of one `kagglekit run` folder: which steps finished, with which inputs, and the submissions made.

``run.json`` records, per step (layout, split, train, tune, predict, write), the
inputs that determine its result and the result itself. A step is skipped on a
re-run only when it finished with the same inputs; when an input changed, that
step and every step after it are done again, and the run says which and why::

    metric changed from 'accuracy' to 'logloss': re-tuning, re-predicting and re-writing the submission

Submissions are recorded *before* the upload (an intent: the file's hash, the
time, the description) and completed after it (Kaggle's ref, then the score), so
a run stopped after the upload finds its submission in Kaggle's list and waits
for the score instead of uploading the same file again (`submit_once`).

Saved state that cannot be read (this file, the learner's ``state.json``, a saved
table) is never deleted: `set_aside` renames it ``NAME.corrupt-<timestamp>``,
says so, and the step that wrote it is done again. Files an interrupted write
left behind (``.NAME.XXXX.part``) are removed by `remove_partial_files`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import SubmissionError
from .io import atomic_write_text, set_aside  # noqa: F401 (set_aside: re-exported)
from .logs import logger
from .table import LabelTable

STATE_FILE = "run.json"
STEPS = ("layout", "split", "plan", "train", "tune", "predict", "write")
REDOING = {  # what the log says a step does again
    "layout": "re-reading the layout", "split": "re-splitting", "plan": "re-planning", "train": "re-training", "tune": "re-tuning",
    "predict": "re-predicting", "write": "re-writing the submission",
}
INPUT_NAMES = {  # how the log names an input; others by their key
    "layout_recipe": "the recipe's [layout] section", "fine_tune": "the recipe's [fine_tune] section",
    "files": "the competition's files", "data": "the training data", "test": "the test table",
    "layout": "the layout", "train": "the trained model", "tune": "the tuned settings",
    "predictions": "the test predictions", "sample": "the sample submission",
}
SUBMISSION_CLOCK_SKEW_S = 600  # a submission Kaggle dates this much before our intent still matches it
PARTIAL_PATTERNS = (".*.part", ".model.part.keras")  # io.atomic_open's, the pipeline's and Learner.save's unfinished files
# The names those writers give: ``.NAME.<8 characters of mkstemp>.part`` (io.atomic_open), ``.NAME.<pid>.<thread>.part``
# (the pipeline's cache) and Learner.save's ``.model.part.keras``. Only such names are removed: a run folder may be a
# folder of the user's (``--workdir .``) holding their own ``notes.tmp`` or ``.draft.txt.part``.
_PARTIAL_NAME = re.compile(r"^\..+\.(?:[a-z0-9_]{8}|\d+\.\d+)\.part$|^\.model\.part\.keras$")


def remove_partial_files(folder: str | os.PathLike, skip: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Return the unfinished temporary files (``.NAME.XXXXXXXX.part``) an interrupted run left under `folder`, after removing them.

    Only the names kagglekit's writers give are removed, and nothing under `skip` (the competition folder,
    when the run folder holds it).
    """
    folder = Path(folder)
    skipped = [os.path.realpath(s) for s in skip]
    found = sorted({p for pattern in PARTIAL_PATTERNS for p in folder.rglob(pattern)
                    if _PARTIAL_NAME.match(p.name) and p.is_file()
                    and not any(os.path.realpath(p).startswith(s.rstrip(os.sep) + os.sep) for s in skipped)})
    for p in found:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    if found:
        logger.info(f"removed {len(found)} unfinished temporary file(s) an interrupted run left in {folder}")
    return found


# --------------------------------------------------------------------------- helpers
def digest(value: Any) -> str:
    """Return a short content hash of a JSON-able value (sorted keys)."""
    return hashlib.md5(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def file_hash(path: str | os.PathLike) -> str:
    """Return the MD5 of a file's bytes (hex)."""
    from .io import file_digest

    return file_digest(path)


def _plain(value: Any) -> Any:
    """Return `value` as run.json stores it (JSON types only), so saved and current inputs compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _show(value: Any, limit: int = 60) -> str:
    text = "(not recorded)" if value is _MISSING else repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_MISSING = object()


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


# --------------------------------------------------------------------------- the record
class RunState:
    """The steps a run folder finished (with their inputs and results) and its submissions, saved atomically in run.json."""

    def __init__(self, workdir: str | os.PathLike) -> None:
        self.workdir = Path(workdir)
        self.path = self.workdir / STATE_FILE
        self.state: dict = {"version": 2, "steps": {}, "submissions": {}, "run": {}}
        if self.path.is_file():
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(saved, dict):
                    raise ValueError(f"it holds a {type(saved).__name__}, not an object")
            except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
                set_aside(self.path, f"{type(exc).__name__}: {exc}")
                saved = None
            if saved is not None and isinstance(saved.get("steps"), dict):
                self.state["steps"] = {k: v for k, v in saved["steps"].items() if k in STEPS and isinstance(v, dict)}
                subs, run = saved.get("submissions"), saved.get("run")
                self.state["submissions"] = subs if isinstance(subs, dict) else {}
                self.state["run"] = run if isinstance(run, dict) else {}
            elif saved is not None:
                logger.info(f"{self.path} holds no step records this kagglekit reads (written by an older version); "
                            "doing the steps again (training resumes from its checkpoints)")

    # ------------------------------------------------------------------ steps
    def save(self) -> None:
        """Write run.json atomically."""
        atomic_write_text(self.path, json.dumps(self.state, indent=1, default=str))

    def result(self, step: str) -> Any:
        """Return the result recorded for `step` (None when it has not finished)."""
        record = self.state["steps"].get(step)
        return record.get("result") if record else None

    def fresh(self, step: str, inputs: Mapping[str, Any]) -> bool:
        """Return True when `step` finished with these `inputs`; otherwise forget it and every later step.

        When it had finished with other inputs, logs which changed and what is done again.
        """
        inputs = _plain(dict(inputs))
        record = self.state["steps"].get(step)
        if record is not None and record.get("inputs") == inputs:
            return True
        if record is not None:
            old = record.get("inputs") or {}
            changed = [k for k in sorted(set(old) | set(inputs)) if old.get(k, _MISSING) != inputs.get(k, _MISSING)]
            what = ", ".join(f"{INPUT_NAMES.get(k, k)} changed from {_show(old.get(k, _MISSING))} to "
                             f"{_show(inputs.get(k, _MISSING))}" for k in changed)
            logger.info(f"{what}: {_join(self._forget(step))}")
        else:
            self._forget(step)
        return False

    def redo(self, step: str, why: str) -> None:
        """Forget `step` and every later step, logging `why` and what is done again."""
        logger.info(f"{why}: {_join(self._forget(step))}")

    def _forget(self, step: str) -> list[str]:
        """Return what is done again after dropping the records of `step` and every later step."""
        later = STEPS[STEPS.index(step):]
        dropped = [s for s in later if s in self.state["steps"]]
        for s in dropped:
            del self.state["steps"][s]
        if dropped:
            self.save()
        return [REDOING[s] for s in later if s == step or s in dropped]

    def finish(self, step: str, inputs: Mapping[str, Any], result: Any = True) -> Any:
        """Return `result` after recording that `step` finished with `inputs`."""
        self.state["steps"][step] = {"inputs": _plain(dict(inputs)), "result": _plain(result), "finished": _now()}
        self.save()
        return result

    # ------------------------------------------------------------------ the run's own facts
    def get(self, key: str, default: Any = None) -> Any:
        """Return a fact the run recorded about itself (run id, seconds spent, epochs done, ledger), or `default`."""
        return self.state["run"].get(key, default)

    def put(self, key: str, value: Any) -> Any:
        """Return `value` after recording it as a fact of the run (saved at once)."""
        self.state["run"][key] = _plain(value)
        self.save()
        return value

    # ------------------------------------------------------------------ submissions
    def submission(self, file_md5: str) -> dict | None:
        """Return the record of the submission of the file with this MD5 (None when never submitted from here)."""
        return self.state["submissions"].get(file_md5)

    def record_submission(self, file_md5: str, **fields: Any) -> dict:
        """Return the submission record of `file_md5` after updating it with `fields` and saving."""
        record = self.state["submissions"].setdefault(file_md5, {})
        record.update(_plain(fields))
        self.save()
        return record


def _parse_time(text: str) -> datetime | None:
    with contextlib.suppress(ValueError, TypeError):
        value = datetime.fromisoformat(str(text).replace("Z", "").replace(" ", "T"))
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(timezone.utc).replace(tzinfo=None)
    return None


def submit_once(state: RunState, slug: str, file: str | os.PathLike, description: str,
                like: str | os.PathLike | None = None, timeout: float = 600.0, poll: float = 10.0):
    """Return the scored `kagglekit.kaggle.Submission` of `file`, uploading it only if this run folder never did.

    The intent (file MD5, time, description) is saved before the upload and Kaggle's
    ref right after it. A re-run with an intent but no ref looks the submission up in
    this account's submissions (same file name and description, dated after the
    intent): found, it waits for that one's score; not found, it uploads.
    """
    from . import kaggle

    file = Path(file)
    md5 = file_hash(file)
    record = state.submission(md5)
    if record is not None and record.get("slug") != slug:
        record = None
    if record is not None and record.get("status") == "scored":
        logger.info(f"{file.name} was submitted from this run folder before (ref {record.get('ref')}, public score "
                    f"{record.get('public_score')}); not uploading it again")
        return kaggle.Submission(int(record["ref"]), file.name, record.get("description", ""), "COMPLETE",
                                 record.get("public_score"), record.get("private_score"))
    if record is not None and record.get("status") == "error":
        raise SubmissionError(f"{file.name} was submitted from this run folder before (ref {record.get('ref')}) and Kaggle "
                              f"could not score it: {record.get('error')}. Fix: compare the file with sample_submission.csv, "
                              "change what produces it, and run again.")
    if record is not None and not record.get("ref"):  # stopped between the intent and Kaggle's answer
        taken = {int(r["ref"]) for r in state.state["submissions"].values() if r.get("ref")}
        found = find_submission(slug, file.name, record.get("description", description), record.get("started", ""), taken)
        if found is not None:
            logger.info(f"an earlier run uploaded {file.name} to {slug} (ref {found.ref}) and stopped before its score; "
                        "waiting for that score instead of uploading again")
            record = state.record_submission(md5, ref=found.ref, status="submitted")
        else:
            logger.info(f"an earlier run stopped while uploading {file.name}; {slug} has no such submission, so uploading it now")
            record = None
    elif record is not None:
        logger.info(f"{file.name} was uploaded to {slug} by an earlier run (ref {record['ref']}); waiting for its score")
    if record is None:
        state.record_submission(md5, slug=slug, file=file.name, description=description, started=_now(),
                                status="uploading", ref=None)
        answer = kaggle.submit(slug, file, description, wait=False, like=like)
        record = state.record_submission(md5, ref=answer.ref, status="submitted",
                                         remaining_today=answer.remaining_today)
    try:
        scored = kaggle.wait_for_score(slug, int(record["ref"]), timeout=timeout, poll=poll)
    except SubmissionError as exc:
        state.record_submission(md5, status="error", error=str(exc))
        raise
    state.record_submission(md5, status="scored", public_score=scored.public_score, private_score=scored.private_score)
    return scored


def find_submission(slug: str, file_name: str, description: str, since: str, exclude: set[int] = frozenset()):
    """Return this account's submission to `slug` of `file_name` with `description` made after `since` (None when none).

    `since` is the intent's UTC time (ISO); Kaggle's dates may run up to
    SUBMISSION_CLOCK_SKEW_S behind it. The earliest match dated after the intent wins (else the
    latest within the skew); refs in `exclude` are skipped.
    """
    from . import kaggle

    start = _parse_time(since)
    earliest = start - timedelta(seconds=SUBMISSION_CLOCK_SKEW_S) if start else None
    matches = []
    for s in kaggle.submissions(slug):
        if s.ref in exclude or s.file_name != file_name or s.description.strip() != description.strip():
            continue
        when = _parse_time(s.date)
        if earliest is not None and when is not None and when < earliest:
            continue
        after = when is None or start is None or when >= start - timedelta(seconds=2)  # Kaggle dates in whole seconds
        matches.append((after, when or datetime.max, s.ref, s))
    after = [m for m in matches if m[0]]
    if after:
        return min(after, key=lambda m: (m[1], m[2]))[3]
    return max(matches, key=lambda m: (m[1], m[2]))[3] if matches else None


# ---------------------------------------------------------------------- what run() reads back
TUNED_KEYS = ("metric", "valid_score", "valid_score_raw", "clip", "threshold", "thresholds", "fallback",
              "tta", "tta_flip", "tta_crop", "tuned_for", "cuts", "top_k", "new_class", "new_class_reason",
              "new_index", "new_threshold")
SMALL_FILE = 64 << 20  # top-level competition files up to this size (label CSVs, JSON) are hashed whole


def files_digest(comp, workdir: Path) -> str:
    """Return a hash of the competition's files: every name and size, and the bytes of the small top-level ones.

    Hidden files and folders (caches, manifests) and the run folder itself (when it lies inside) are left out.
    """
    import hashlib

    h = hashlib.md5()
    root, skip = Path(os.path.abspath(comp.path)), Path(os.path.abspath(workdir))  # links kept as links
    for path in sorted(getattr(comp, "files", None) or []):
        path = Path(os.path.abspath(path))
        try:
            relative = path.relative_to(root)
            size = path.stat().st_size
        except (OSError, ValueError):
            continue
        if any(part.startswith(".") for part in relative.parts) or (skip != root and skip in path.parents):
            continue
        h.update(f"{relative.as_posix()}\0{size}\n".encode())
        if path.parent == root and size <= SMALL_FILE and path.suffix.lower() in (".csv", ".json", ".txt", ".tsv"):
            h.update(file_hash(path).encode())
    return h.hexdigest()[:12]


def table_digest(table: LabelTable | None) -> str | None:
    """Return a hash of a table's rows (id, path, labels), vocabulary and kind (None for no table)."""
    if table is None:
        return None
    import hashlib

    import pandas as pd

    frame = table.frame[["id", "path", "labels"]].astype(str)
    rows = pd.util.hash_pandas_object(frame, index=False).values.tobytes()
    return hashlib.md5(rows + json.dumps([list(table.classes), table.multilabel]).encode()).hexdigest()[:12]


def read_saved(state: RunState, step: str, path: Path, reader: Callable[[Path], Any]) -> Any:
    """Return what `reader` reads from the saved `path`; None (the file set aside, `step` to be done again) when it cannot."""
    if not path.is_file():
        state.redo(step, f"{path} is missing")
        return None
    try:
        return reader(path)
    except Exception as exc:  # a damaged file, whatever the parser says
        set_aside(path, f"{type(exc).__name__}: {exc}")
        state.redo(step, f"{path.name} could not be read")
        return None


def read_saved_tables(state: RunState, tables: dict[str, Path]) -> tuple | None:
    """Return the saved (train, valid, test) tables; None (layout and split to be done again) when one cannot be read."""
    names = ["train", "valid"] + (["test"] if (state.result("layout") or {}).get("test") else [])
    read = {}
    for name in names:
        read[name] = read_saved(state, "layout", tables[name], LabelTable.read_csv)
        if read[name] is None:
            return None
    return read["train"], read["valid"], read.get("test")


def load_learner(state: RunState, folder: Path):
    """Return the saved learner; None (set aside when damaged, training to be done again) when it cannot be loaded."""
    from .errors import StateError
    from .learner import Learner

    if not (folder / "model.keras").is_file() or not (folder / "learner.json").is_file():
        state.redo("train", f"the saved model in {folder} is missing")
        return None
    try:
        return Learner.load(folder)
    except (StateError, ValueError, OSError, KeyError) as exc:
        set_aside(folder, f"{type(exc).__name__}: {exc}")
        state.redo("train", f"the saved model in {folder} could not be loaded")
        return None


def unchanged(state: RunState, out: Path) -> bool:
    """Return whether the submission file is still as the write step left it (a changed one is set aside)."""
    if not out.is_file():
        return False
    if file_hash(out) == (state.result("write") or {}).get("md5"):
        return True
    set_aside(out, "its MD5 differs from the one recorded", problem="changed after kagglekit wrote it")
    return False
