"""Files kagglekit did not write are never overwritten; a run folder belongs to one run of one competition.

Issue 18, sections 3 and 4. Cheap: no training (``--dry-run`` or the functions directly).
Tests run as root, where ``chmod`` does not stop a write: unwritable places are real ones that
refuse root too (``/sys``, a file where a folder is expected), or, where said, a simulated check.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from kagglekit import ledger, runfolder
from kagglekit.cli import main
from kagglekit.errors import ArchiveError, ConfigError, LayoutError, SourceError, StateError
from kagglekit.io import atomic_write_text, file_digest, why_not_writable
from kagglekit.runstate import RunState
from kagglekit.sources import fetch, unpack
from kagglekit.testing.competitions import build_competition

ROOT = Path(__file__).resolve().parents[1]
UNWRITABLE = Path("/sys")  # refuses even root (EACCES): a real unwritable folder


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="kagglekit")
    return caplog


@pytest.fixture(scope="module")
def comps(tmp_path_factory) -> tuple[Path, Path]:
    """Two different digits competitions whose folders have the same name ("comp")."""
    root = tmp_path_factory.mktemp("same-name")
    return (build_competition("digits", root / "a" / "comp", n_train=80, n_test=10),
            build_competition("digits", root / "b" / "comp", n_train=70, n_test=10))


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), os.stat(path).st_mode


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- 3. umask and modes
def test_atomic_writes_follow_the_umask_and_keep_an_existing_mode(tmp_path):
    old = os.umask(0o022)
    try:
        assert os.stat(atomic_write_text(tmp_path / "a.txt", "a")).st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert os.stat(atomic_write_text(tmp_path / "b.txt", "b")).st_mode & 0o777 == 0o600
        os.umask(0o002)
        (tmp_path / "c.txt").write_text("old")
        os.chmod(tmp_path / "c.txt", 0o640)
        atomic_write_text(tmp_path / "c.txt", "new")
        assert os.stat(tmp_path / "c.txt").st_mode & 0o777 == 0o640 and (tmp_path / "c.txt").read_text() == "new"
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- 3. the ledger
def test_the_ledger_is_appended_only_to_a_ledger(tmp_path):
    other = tmp_path / "scores.csv"
    other.write_text("id,score\n1,0.5\n")
    os.chmod(other, 0o644)
    before = _snapshot(other)
    with pytest.raises(ConfigError, match="scores.csv is not a kagglekit ledger.*left untouched"):
        ledger.append({"competition": "x"}, other)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\xff\xfe" * 10)
    with pytest.raises(ConfigError, match="not a kagglekit ledger"):
        ledger.append({"competition": "x"}, binary)
    with pytest.raises(ConfigError, match="is a folder"):
        ledger.append({"competition": "x"}, tmp_path)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        ledger.check_path(other / "ledger.csv")
    if why_not_writable(UNWRITABLE) is not None:
        with pytest.raises(ConfigError, match="cannot be written"):
            ledger.check_path(UNWRITABLE / "ledger.csv")
    with pytest.raises(ConfigError, match="not a kagglekit run ledger"):
        ledger.read(other)
    assert _snapshot(other) == before and _snapshot(binary)[0] == b"\x00\xff\xfe" * 10

    real = tmp_path / "runs" / "ledger.csv"
    ledger.append({"competition": "x"}, real)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    ledger.append({"competition": "x2"}, link)
    assert link.is_symlink() and list(ledger.read(real)["competition"]) == ["x", "x2"]
    os.chmod(real, 0o640)
    ledger.append({"competition": "y"}, real)
    assert os.stat(real).st_mode & 0o777 == 0o640 and list(ledger.read(real)["competition"]) == ["x", "x2", "y"]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    ledger.append({"competition": "z"}, empty)  # an empty file is a ledger not started yet
    assert len(ledger.read(empty)) == 1


def test_run_refuses_a_csv_as_ledger_before_any_work(comps, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    train_csv = comps[0] / "train.csv"
    before = _snapshot(train_csv)
    assert main(["run", str(comps[0]), "--dry-run", "--ledger", str(train_csv)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "is not a kagglekit ledger" in line and "--ledger" in line
    assert _snapshot(train_csv) == before and not (tmp_path / "runs").exists()  # refused before any run folder


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("where", ["runs/x", "train", "ledger"])
def test_a_run_folder_or_ledger_inside_the_competition_folder_is_refused(comps, tmp_path, where, capsys):
    # Before: --workdir COMP/train and COMP/runs/x were taken (run.json and the tables written among the
    # competition's files, where the next detection reads them) and a --ledger there was created.
    before = _listing(comps[0])
    inside = comps[0] / where
    flags = ["--ledger", str(inside / "ledger.csv")] if where == "ledger" else ["--workdir", str(inside)]
    code = main(["run", str(comps[0]), "--dry-run", "--weights", "none", *flags,
                 *(["--workdir", str(tmp_path / "run")] if where == "ledger" else [])])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "inside the competition folder" in line, line
    assert ("--ledger" if where == "ledger" else "--workdir") in line
    assert _listing(comps[0]) == before


def test_a_users_folder_as_run_folder_keeps_the_users_tmp_and_part_files(tmp_path, monkeypatch, capsys):
    # Before: `--workdir .` (a folder holding the competition and the user's files) deleted every *.tmp and
    # hidden *.part file under it, the competition's included, as "unfinished temporary files".
    proj = tmp_path / "proj"
    comp = build_competition("digits", proj / "comp", n_train=80, n_test=5)
    mine = [proj / "notes" / "draft.tmp", proj / ".essay.txt.part", comp / ".train.csv.abcdefgh.part"]
    for p in mine:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("mine")
    left = proj / ".run.json.k2j4h6g8.part"  # what io.atomic_open leaves when killed: removed
    left.write_text("half")
    monkeypatch.chdir(proj)
    assert main(["run", str(comp), "--workdir", ".", "--dry-run", "--weights", "none", "--ledger", "none"]) == 0, \
        capsys.readouterr().err
    assert all(p.read_text() == "mine" for p in mine) and not left.exists()


# --------------------------------------------------------------------------- 3. organise
def test_organise_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    comp = build_competition("digits", tmp_path / "comp", n_train=30, n_test=5)
    out = tmp_path / "out"
    assert main(["organise", str(comp), str(out)]) == 0
    assert main(["organise", str(comp), str(out), "--mode", "copy"]) == 0  # its own links: replaced by copies
    victim = sorted(out.rglob("*.png"))[0]
    victim.write_bytes(b"the user's own file")
    capsys.readouterr()
    assert main(["organise", str(comp), str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "never replaces a file it did not write" in line and "--overwrite" in line
    assert victim.read_bytes() == b"the user's own file"
    assert main(["organise", str(comp), str(out), "--overwrite"]) == 0
    assert victim.is_symlink()

    train_csv = comp / "train.csv"
    before = _snapshot(train_csv)
    for extra in ([], ["--overwrite"]):  # writing onto its own input: refused even with --overwrite
        assert main(["organise", str(comp), str(train_csv), "--csv", *extra]) == 2
        assert "never writes into its own input" in _one_line(capsys.readouterr().err)
    assert _snapshot(train_csv) == before
    listing = sorted(str(p) for p in comp.rglob("*"))
    assert main(["organise", str(comp), str(comp / "train"), "--overwrite"]) == 2  # class folders inside the input
    assert "never writes into its own input" in _one_line(capsys.readouterr().err)
    assert sorted(str(p) for p in comp.rglob("*")) == listing
    from kagglekit.layout import read_competition, write_multihot_csv

    with pytest.raises(LayoutError, match="never writes onto its input"):  # the API: the file the table was read from
        write_multihot_csv(read_competition(comp)[0], train_csv, overwrite=True, inputs=[train_csv])
    assert _snapshot(train_csv) == before

    labels = tmp_path / "labels.csv"
    assert main(["organise", str(comp), str(labels), "--csv"]) == 0
    assert main(["organise", str(comp), str(labels), "--csv"]) == 0  # the same content again: fine
    labels.write_text("image,labels\nmine,0\n")
    assert main(["organise", str(comp), str(labels), "--csv"]) == 2
    assert labels.read_text() == "image,labels\nmine,0\n"
    assert main(["organise", str(comp), str(labels), "--csv", "--overwrite"]) == 0
    assert len(labels.read_text().splitlines()) == 31


# --------------------------------------------------------------------------- 3. archives
def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_an_archive_never_replaces_files_it_did_not_put_there(tmp_path):
    archive = _zip(tmp_path / "data.zip", {"data/train.csv": b"id,label\n1,a\n", "data/new.txt": b"new"})
    target = tmp_path / "target"
    (target / "data").mkdir(parents=True)
    (target / "data" / "train.csv").write_bytes(b"the user's own labels")
    with pytest.raises(ArchiveError, match=r"would replace 1 file\(s\) kagglekit did not put there: data/train.csv"):
        unpack(archive, target)
    assert (target / "data" / "train.csv").read_bytes() == b"the user's own labels"
    assert not (target / "data" / "new.txt").exists()  # nothing unpacked
    ours = {os.path.realpath(target / "data" / "train.csv")}  # what a manifest records kagglekit unpacked there
    unpack(archive, target, ours=ours)
    assert (target / "data" / "train.csv").read_bytes() == b"id,label\n1,a\n"
    unpack(archive, target)  # the same bytes already there: nothing lost, nothing refused


def test_a_local_zip_is_not_unpacked_over_the_users_folder(tmp_path):
    comp = build_competition("digits", tmp_path / "src" / "comp", n_train=20, n_test=5)
    archive = tmp_path / "comp.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(comp.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(comp).as_posix())
    dest = tmp_path / "comp"
    dest.mkdir()
    (dest / "train.csv").write_text("my,own\n")
    with pytest.raises(ArchiveError, match="train.csv"):
        fetch(str(archive))
    assert (dest / "train.csv").read_text() == "my,own\n"
    (dest / "train.csv").unlink()
    got = fetch(str(archive))  # now nothing is in the way; fetched again, the manifest says it is done
    assert got.path == dest and (dest / "train.csv").read_bytes() == (comp / "train.csv").read_bytes()
    assert fetch(str(archive)).path == dest


# --------------------------------------------------------------------------- 3. read-only places
def test_why_not_writable_tells_real_unwritable_places(tmp_path):
    assert why_not_writable(tmp_path / "new" / "deeper") is None and not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in why_not_writable(tmp_path / "file" / "runs")
    if not os.path.isdir(UNWRITABLE):
        pytest.skip("no /sys here")
    assert "not writable" in why_not_writable(UNWRITABLE / "runs")
    assert list(tmp_path.glob(".kagglekit-probe-*")) == []


def test_a_read_only_competition_folder_with_an_archive_names_a_writable_workdir(tmp_path, monkeypatch, capsys):
    """Simulated: the competition folder is judged read-only by patching the check (root writes through chmod)."""
    comp = build_competition("digits", tmp_path / "comp", n_train=80, n_test=5)
    import kagglekit.sources as sources

    _zip(comp / "extra.zip", {"notes.txt": b"unpack me"})
    real = sources.why_not_writable
    monkeypatch.setattr(sources, "why_not_writable",
                        lambda p: "read-only (simulated)" if Path(p) == comp else real(p))
    before = sorted(p.name for p in comp.iterdir())
    with pytest.raises(SourceError, match="extra.zip.*cannot be written.*--workdir"):
        fetch(str(comp))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(comp), "--dry-run"]) == 2
    assert "--workdir" in _one_line(capsys.readouterr().err)
    work = tmp_path / "work"
    assert main(["run", str(comp), "--dry-run", "--workdir", str(work)]) == 0
    assert (work / "data" / "extra" / "notes.txt").read_bytes() == b"unpack me"
    assert (work / "data" / "train.csv").is_symlink() and sorted(p.name for p in comp.iterdir()) == before


@pytest.fixture
def read_only_copy(tmp_path):
    """Return a function that mounts a folder read-only (a bind mount) at a new path; skips where mounting is not allowed."""
    mounted = []

    def mount(src: Path) -> Path:
        dst = tmp_path / f"ro-{len(mounted)}"
        dst.mkdir()
        for cmd in (["mount", "--bind", str(src), str(dst)], ["mount", "-o", "remount,ro,bind", str(dst)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                if mounted or cmd[1] != "--bind":
                    subprocess.run(["umount", str(dst)], capture_output=True)
                pytest.skip(f"cannot make a read-only bind mount here ({done.stderr.strip()[:80]})")
            if cmd[1] == "--bind":
                mounted.append(dst)
        return dst

    yield mount
    for dst in mounted:
        subprocess.run(["umount", str(dst)], capture_output=True)


def test_a_really_read_only_competition_folder_with_an_archive(tmp_path, read_only_copy, monkeypatch, capsys):
    """Real where a bind mount is allowed (the OS refuses the write, root too); skipped elsewhere."""
    src = build_competition("digits", tmp_path / "src" / "comp", n_train=80, n_test=5)
    _zip(src / "extra.zip", {"notes.txt": b"unpack me"})
    comp = read_only_copy(src)
    with pytest.raises(OSError):
        (comp / "probe").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(comp), "--dry-run"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "extra.zip" in line and "cannot be written" in line and "--workdir" in line
    assert main(["run", str(comp), "--dry-run", "--workdir", str(tmp_path / "work")]) == 0
    assert (tmp_path / "work" / "data" / "extra" / "notes.txt").read_bytes() == b"unpack me"


def test_a_zip_beside_which_nothing_can_be_written_is_unpacked_into_the_workdir(tmp_path, monkeypatch):
    """Simulated as above: the folder beside the zip is judged unwritable by patching the check."""
    import kagglekit.sources as sources

    archive = _zip(tmp_path / "comp.zip", {"train.csv": b"id,label\n1,a\n"})
    real = sources.why_not_writable
    monkeypatch.setattr(sources, "why_not_writable",
                        lambda p: "read-only (simulated)" if Path(p) == tmp_path / "comp" else real(p))
    with pytest.raises(SourceError, match="read-only.*--workdir DIR"):
        fetch(str(archive))
    got = fetch(str(archive), spare=tmp_path / "work" / "data")
    assert got.path == tmp_path / "work" / "data" and (got.path / "train.csv").is_file()
    assert not (tmp_path / "comp").exists()


def test_an_unwritable_current_folder_names_a_writable_workdir(comps, monkeypatch, capsys):
    if why_not_writable(UNWRITABLE) is None:
        pytest.skip("/sys is writable here")
    monkeypatch.chdir(UNWRITABLE)  # real: runs/ cannot be created here, even by root
    assert main(["run", str(comps[0]), "--dry-run"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "cannot be written" in line and "--workdir" in line


# --------------------------------------------------------------------------- 4. the lock
_HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from kagglekit.runfolder import RunLock
RunLock({workdir!r}).acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_the_lock_refuses_a_live_holder_and_recovers_after_kill_9(tmp_path, logs):
    workdir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER.format(root=str(ROOT), workdir=str(workdir))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StateError, match=f"in use by another kagglekit run \\(process {holder.pid} since"):
            runfolder.RunLock(workdir).acquire()
        os.kill(holder.pid, signal.SIGKILL)  # not reaped yet: a zombie still answers kill(pid, 0)
        for _ in range(200):  # the signal is delivered asynchronously: wait until the process is dead (a zombie)
            if not runfolder._alive(holder.pid, None):
                break
            time.sleep(0.05)
        with runfolder.RunLock(workdir) as lock:
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
            assert f"took over the lock of an earlier run (process {holder.pid} is no longer running" in logs.text
        assert not (workdir / runfolder.LOCK_FILE).exists()
    finally:
        holder.kill()
        holder.wait()
    with runfolder.RunLock(workdir):  # the dead, reaped holder left nothing behind now
        pass


def test_the_lock_is_released_on_errors_and_a_second_run_refuses(comps, tmp_path, monkeypatch, capsys):
    workdir = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with runfolder.RunLock(workdir):
            raise RuntimeError("boom")
    assert not (workdir / runfolder.LOCK_FILE).exists()
    monkeypatch.chdir(tmp_path)
    with runfolder.RunLock(workdir):  # this process holds it: a run on the same folder refuses
        assert main(["run", str(comps[0]), "--dry-run", "--workdir", str(workdir)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"in use by another kagglekit run (process {os.getpid()}" in line and "--workdir" in line
    assert main(["run", str(comps[0]), "--dry-run", "--workdir", str(workdir)]) == 0
    assert not (workdir / runfolder.LOCK_FILE).exists()  # released after the run
    (workdir / runfolder.LOCK_FILE).write_text("{garbage")  # a holder killed before it wrote its pid, long ago
    old = time.time() - 3600
    os.utime(workdir / runfolder.LOCK_FILE, (old, old))
    assert main(["run", str(comps[0]), "--dry-run", "--workdir", str(workdir)]) == 0


# --------------------------------------------------------------------------- 4. the identity
def test_same_folder_name_other_competition_gets_its_own_run_folder(comps, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(comps[0]), "--dry-run"]) == 0
    first = tmp_path / "runs" / "comp"
    kept = {p.name: p.read_bytes() for p in first.glob("*.table.csv")}
    assert main(["run", str(comps[1]), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "runs/comp belongs to another competition" in out
    seconds = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("comp-")]
    assert len(seconds) == 1 and (seconds[0] / "train.table.csv").is_file()
    assert {p.name: p.read_bytes() for p in first.glob("*.table.csv")} == kept
    assert main(["run", str(comps[0]), "--dry-run"]) == 0 and main(["run", str(comps[1]), "--dry-run"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["comp", seconds[0].name]  # each found again
    # --workdir naming another competition's run folder is refused
    assert main(["run", str(comps[1]), "--dry-run", "--workdir", str(first)]) == 2
    assert "belongs to another competition" in _one_line(capsys.readouterr().err)
    assert main(["run", str(comps[1]), "--dry-run", "--workdir", str(comps[1])]) == 2  # its own input
    assert "is the competition folder itself" in _one_line(capsys.readouterr().err)


def test_a_run_folder_of_an_older_version_is_adopted_only_by_its_source(comps, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "runs" / "comp"
    old.mkdir(parents=True)
    record = {"version": 2, "steps": {"layout": {"inputs": {"source": str(comps[0])}, "result": {}}}, "run": {}}
    (old / "run.json").write_text(json.dumps(record))
    ident = runfolder.identity(fetch(str(comps[1])))
    other = runfolder.choose_workdir(None, Path("runs"), "comp", ident, comps[1])
    assert other.name.startswith("comp-")
    ident = runfolder.identity(fetch(str(comps[0])))
    assert runfolder.choose_workdir(None, Path("runs"), "comp", ident, comps[0]) == Path("runs") / "comp"


# --------------------------------------------------------------------------- 4. one ledger row per submission
def test_each_new_submission_gets_its_own_run_id_and_kept_copy(tmp_path):
    state = RunState(tmp_path / "run")
    state.put("run_id", "first")
    ids = iter(["second", "third"])
    sub = tmp_path / "submission.csv"
    sub.write_text("id,label\n1,a\n")
    one = runfolder.run_id_for(state, file_digest(sub), lambda: next(ids))
    kept_one = runfolder.keep_submission(state.workdir, one, sub)
    assert one == "first" and runfolder.run_id_for(state, file_digest(sub), lambda: next(ids)) == "first"
    sub.write_text("id,label\n1,b\n")  # a retraining writes another submission over the same file
    two = runfolder.run_id_for(state, file_digest(sub), lambda: next(ids))
    kept_two = runfolder.keep_submission(state.workdir, two, sub)
    assert two == "second" and RunState(state.workdir).get("run_id") == "second"
    assert kept_one.read_text() == "id,label\n1,a\n" and kept_two.read_text() == "id,label\n1,b\n"
    assert kept_one.name == kept_two.name == "submission.csv" and kept_one != kept_two


@pytest.mark.slow  # three tiny runs, two of them training (the one test here that trains)
def test_every_new_submission_adds_a_ledger_row_pointing_at_its_own_file(dogs_vs_cats_dir, tmp_path):
    """One real (tiny) run, a re-run (no new row) and a retraining with another seed (a new row, the first file kept)."""
    import kagglekit as kk

    quick = {"backbone": "resnet_micro", "sizes": [32], "weights": "none", "epochs": 1, "batch_size": 32, "tta": 0,
             "positive": "dog"}
    workdir, book = tmp_path / "runs" / "dvc", tmp_path / "runs" / "ledger.csv"
    kk.run(dogs_vs_cats_dir, workdir=workdir, log=None, **quick)
    kk.run(dogs_vs_cats_dir, workdir=workdir, log=None, **quick)  # nothing new: no new row
    assert len(ledger.read(book)) == 1
    kk.run(dogs_vs_cats_dir, workdir=workdir, log=None, **{**quick, "seed": 1})  # retrained: a new submission
    rows = ledger.read(book)
    assert len(rows) == 2 and rows["run_id"].nunique() == 2
    for _, row in rows.iterrows():
        kept = Path(row["submission"])
        assert kept.parent.name == row["run_id"] and kept.is_file()
        assert file_digest(kept) == json.loads(row["extra"])["submission_md5"]
    assert Path(rows["submission"][0]).read_bytes() != Path(rows["submission"][1]).read_bytes()
    assert Path(rows["submission"][1]).read_bytes() == (workdir / Path(rows["submission"][1]).name).read_bytes()
