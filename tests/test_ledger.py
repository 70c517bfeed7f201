"""kagglekit.ledger: atomic appends under a lock, reading, the runs table, joining Kaggle's public scores."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kagglekit import ledger
from kagglekit.errors import ConfigError
from kagglekit.kaggle import Submission

ROOT = str(Path(ledger.__file__).resolve().parents[1])  # the kagglekit under test, also in subprocesses


def _row(**kw):
    row = {"competition": "digits", "backbone": "resnet_compact", "weights": "none", "sizes": [32], "epochs": 12,
           "epochs_done": 12, "batch_size": 64, "budget_s": 600.0, "seconds": 512.3, "hardware": "CPU: 2 cores",
           "metric": "accuracy", "valid_score": 0.9712, "tta": 2, "submission": "runs/digits/submission.csv",
           "workdir": "runs/digits"}
    row.update(kw)
    return row


def test_append_and_read_roundtrip(tmp_path):
    path = tmp_path / "runs" / "ledger.csv"
    a = ledger.append(_row(), path)
    b = ledger.append(_row(sizes=[64, 128], epochs=3, epochs_done=2, valid_score=0.98, lr=0.003, public_score=0.975,
                           message="kagglekit run x", submission_ref=123), path)
    assert a["run_id"] != b["run_id"] and a["time"].endswith("Z")
    header = path.read_text().splitlines()[0]
    assert header == ",".join(ledger.COLUMNS)
    df = ledger.read(path)
    assert list(df.columns) == list(ledger.COLUMNS) and len(df) == 2
    assert df["valid_score"].tolist() == [0.9712, 0.98] and df["sizes"].tolist() == ["32", "64 128"]
    assert pd.isna(df["public_score"][0]) and df["public_score"][1] == 0.975
    assert str(df["time"].dtype).startswith("datetime64") and '"lr": 0.003' in df["extra"][1]
    assert not list(tmp_path.glob("runs/.ledger.csv.*.part"))  # no temp files left behind


def test_read_missing_is_empty_and_format(tmp_path):
    df = ledger.read(tmp_path / "nothing.csv")
    assert len(df) == 0 and list(df.columns) == list(ledger.COLUMNS)
    assert "No runs recorded yet" in ledger.format_runs(df)
    path = tmp_path / "ledger.csv"
    ledger.append(_row(), path)
    ledger.append(_row(epochs=12, epochs_done=9, public_score=0.97), path)
    text = ledger.format_runs(ledger.read(path))
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["time", "competition", "backbone", "sizes"] and len(lines) == 3
    assert "0.9712" in lines[1] and "submission.csv" in lines[1] and "9/12" in lines[2] and "0.97000" in lines[2]


def test_old_columns_are_kept_and_bad_file_named(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_text("run_id,time,competition,valid_score,old_column\nr1,2026-01-01T00:00:00Z,digits,0.5,kept\n")
    ledger.append(_row(), path)
    df = ledger.read(path)
    assert len(df) == 2 and df["run_id"][0] == "r1" and '"old_column": "kept"' in df["extra"][0]
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00garbage\n\"unterminated")
    with pytest.raises(ConfigError, match="bad.csv"):
        ledger.read(tmp_path / "bad.csv")


def test_concurrent_appends_keep_every_row(tmp_path):
    path = tmp_path / "ledger.csv"
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from kagglekit import ledger\n"
            f"for i in range(10): ledger.append({{'competition': 'digits', 'epochs': i}}, {str(path)!r})")
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]  # separate processes, as runs are
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    df = ledger.read(path)
    assert len(df) == 30 and df["run_id"].is_unique


def test_killed_writer_never_leaves_half_a_row(tmp_path):
    path = tmp_path / "ledger.csv"
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from kagglekit import ledger\n"
            f"while True: ledger.append({{'competition': 'x' * 20000, 'valid_score': 0.5}}, {str(path)!r})")
    for delay in (0.05, 0.2, 0.35):
        rows_before = len(ledger.read(path))
        proc = subprocess.Popen([sys.executable, "-c", code])
        deadline = time.monotonic() + 60
        while len(ledger.read(path)) == rows_before and time.monotonic() < deadline:  # it is writing now
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # somewhere in the middle of an append
        proc.wait()
    df = ledger.read(path)
    assert len(df) >= 3 and (df["competition"].str.len() == 20000).all() and (df["valid_score"] == 0.5).all()
    ledger.append(_row(), path)  # the next append tidies what a killed writer left
    assert not list(tmp_path.glob(".ledger.csv.*.part")) and len(ledger.read(path)) == len(df) + 1


def test_join_submissions(tmp_path):
    path = tmp_path / "ledger.csv"
    r1 = ledger.append(_row(time="2026-11-28T10:00:00Z", valid_score=0.95, message="kagglekit first", submission_ref=11), path)
    r2 = ledger.append(_row(time="2026-11-28T11:00:00Z", valid_score=0.96), path)
    r3 = ledger.append(_row(time="2026-11-28T12:00:00Z", valid_score=0.97), path)
    r4 = ledger.append(_row(time="2026-11-28T13:00:00Z", valid_score=0.98, message="kagglekit fourth"), path)
    ledger.append(_row(time="2026-11-28T13:30:00Z", competition="other", valid_score=0.5), path)
    subs = [  # newest first, as kaggle.submissions() returns them
        Submission(15, "mine.csv", "by hand", "COMPLETE", 0.9, None, "2026-11-28 14:00:00"),
        Submission(14, "submission.csv", "kagglekit fourth", "COMPLETE", 0.979, None, "2026-11-28 13:05:00"),
        Submission(13, "submission.csv", "resnet_compact", "COMPLETE", 0.968, None, "2026-11-28 12:10:00"),
        Submission(12, "submission.csv", f"kagglekit resnet_compact [{r2['run_id']}]", "COMPLETE", 0.958, None,
                   "2026-11-28 11:02:00"),
        Submission(11, "submission.csv", "kagglekit first", "COMPLETE", 0.949, None, "2026-11-28 10:01:00"),
    ]
    out = ledger.join_submissions(ledger.read(path), subs, competition="digits")
    assert out["ref"].tolist() == [15, 14, 13, 12, 11]
    assert out["matched_by"].tolist() == ["", "message", "file and time", "run_id", "ref"]
    assert out["run_id"].tolist()[1:] == [r4["run_id"], r3["run_id"], r2["run_id"], r1["run_id"]]
    assert out["public_score"].tolist() == [0.9, 0.979, 0.968, 0.958, 0.949]
    assert out["valid_score"].tolist()[1:] == [0.98, 0.97, 0.96, 0.95]
    text = ledger.format_runs(out)
    assert text.splitlines()[0].split()[:4] == ["date", "ref", "public", "private"] and "0.97900" in text
    frame = pd.DataFrame([{"ref": 13, "file_name": "submission.csv", "date": "2026-11-28 12:10:00", "public_score": 0.968}])
    assert ledger.join_submissions(ledger.read(path), frame)["run_id"][0] == r3["run_id"]
    assert ledger.join_submissions(ledger.read(tmp_path / "none.csv"), subs)["matched_by"].tolist() == [""] * 5
