"""kagglekit's own Kaggle functions (fetch, submit, track) with the real `kaggle` client against the emulator."""
from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from kaggle_helpers import build_emulated_competitions
from kagglekit import kaggle as kk_kaggle
from kagglekit.errors import ArchiveError, CredentialsError, KaggleApiError, SubmissionError
from kagglekit.io import file_digest
from kagglekit.sources import MANIFEST, fetch
from kagglekit.testing.kaggle_emulator import KaggleEmulator


@pytest.fixture(scope="module")
def comps(tmp_path_factory) -> dict[str, Path]:
    return build_emulated_competitions(tmp_path_factory.mktemp("emulated"))


@pytest.fixture(scope="module")
def emulator(comps):
    with KaggleEmulator(comps, pending_polls=1) as emu:
        yield emu


@pytest.fixture
def emu(emulator, tmp_path, monkeypatch):
    """The emulator, reset, with this process's environment pointing the kaggle client at it."""
    emulator.reject_credentials = False
    emulator.rules_not_accepted = set()
    emulator.drop_after = {}
    emulator.faults.drops_done = {}
    emulator.fail_uploads = False
    emulator.submissions.clear()
    emulator.log.clear()
    monkeypatch.setattr(kk_kaggle, "RETRY_BACKOFF_S", 0.01)
    monkeypatch.setenv("KAGGLEKIT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "no-input"))
    with emulator.activate(tmp_path / "home"):
        yield emulator


def _served_files(emu: KaggleEmulator) -> list[dict]:
    return [e for e in emu.log if "file" in e]


def test_fetch_downloads_unpacks_and_refetch_downloads_nothing(emu, comps, tmp_path, capsys):
    dest = tmp_path / "digits"
    comp = fetch("digits", path=dest, progress=False)

    source = comps["digits"]
    assert comp.path == dest and comp.source == "kaggle"
    assert comp.sample_submission == dest / "sample_submission.csv"
    assert sorted(p.name for p in (dest / "train").iterdir()) == sorted(p.name for p in (source / "train").iterdir())
    assert (dest / "train.csv").read_bytes() == (source / "train.csv").read_bytes()
    assert len(list(comp.test.iterdir())) == 40
    manifest = json.loads((dest / MANIFEST).read_text())["files"]["*"]
    archive = dest / "digits.zip"
    assert manifest["size"] == archive.stat().st_size and manifest["md5"] == file_digest(archive)
    assert emu.bytes_served("digits.zip") == archive.stat().st_size

    before = len(emu.log)
    again = fetch("digits", path=dest, progress=False)
    assert len(emu.log) == before, "a complete fetch must not call Kaggle at all"
    assert again.files == comp.files

    (dest / "train" / "00007.png").unlink()  # unpacked data lost: unpacked again, nothing downloaded
    restored = fetch("digits", path=dest, progress=False)
    assert len(emu.log) == before and (dest / "train" / "00007.png").is_file() and restored.files == comp.files
    out = capsys.readouterr()
    assert emu.key not in out.out + out.err


def test_fetch_unpacks_nested_archives(emu, tmp_path):
    comp = fetch("dogs-vs-cats", path=tmp_path / "dvc", progress=False)
    # dogs-vs-cats.zip holds train.zip and test.zip, which hold train/ and test/.
    assert (comp.path / "train.zip").is_file()
    assert len(list((comp.path / "train").glob("cat.*.jpg"))) + len(list((comp.path / "train").glob("dog.*.jpg"))) == 30
    assert len(list(comp.test.glob("*.jpg"))) == 10
    assert not (comp.path / "train" / "train").exists()


def test_fetch_chosen_files_only(emu, tmp_path):
    comp = fetch("digits", path=tmp_path / "some", files=["train.csv", "sample_submission.csv"], progress=False)
    assert sorted(p.name for p in comp.files) == ["sample_submission.csv", "train.csv"]
    assert emu.calls("DownloadDataFiles") == 0
    with pytest.raises(KaggleApiError, match="no file 'nope.csv'|no file nope.csv"):
        fetch("digits", path=tmp_path / "some", files=["nope.csv"], progress=False)


def test_bad_credentials_401_names_the_fix_and_hides_the_key(emu, tmp_path, capsys):
    emu.reject_credentials = True
    with pytest.raises(CredentialsError) as info:
        fetch("digits", path=tmp_path / "d", progress=False)
    message = str(info.value)
    assert "401" in message and "kaggle.json" in message and "chmod 600" in message
    assert "KAGGLE_USERNAME" in message and "KAGGLE_API_TOKEN" in message
    out = capsys.readouterr()
    for text in (message, out.out, out.err, json.dumps(emu.log)):
        assert emu.key not in text
    assert not (tmp_path / "d" / "digits.zip").exists()


def test_missing_credentials_say_where_they_go(emu, tmp_path):
    (Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json").unlink()
    before = len(emu.log)
    with pytest.raises(CredentialsError, match=r"~/.kaggle/kaggle.json.*KAGGLE_USERNAME and KAGGLE_KEY.*KAGGLE_API_TOKEN"):
        fetch("digits", path=tmp_path / "d", progress=False)
    assert len(emu.log) == before


def test_world_readable_kaggle_json_warns_with_chmod_fix(emu, tmp_path):
    config = Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    config.chmod(0o644)
    with pytest.warns(UserWarning, match=r"chmod 600 .*kaggle.json"):
        kk_kaggle.list_files("digits")


def test_api_token_credentials_work(emu, tmp_path, monkeypatch):
    (Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json").unlink()
    monkeypatch.setenv("KAGGLE_API_TOKEN", emu.token)
    names = {f.name for f in kk_kaggle.list_files("digits")}
    assert {"train.csv", "sample_submission.csv"} <= names
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_wrong-token")
    with pytest.raises(CredentialsError) as info:
        kk_kaggle.list_files("digits")
    assert "KGAT_wrong-token" not in str(info.value)


def test_rules_not_accepted_403_gives_rules_url(emu, tmp_path):
    emu.rules_not_accepted = {"digits"}
    with pytest.raises(KaggleApiError, match=r"https://www\.kaggle\.com/competitions/digits/rules"):
        fetch("digits", path=tmp_path / "d", progress=False)
    assert emu.calls("DownloadDataFiles") == emu.calls("DownloadDataFile") == 0
    # The 403 of the download call itself gets the same message.
    with pytest.raises(KaggleApiError, match=r"403.*competitions/digits/rules"):
        kk_kaggle.download("digits", tmp_path / "d", "train.csv", progress=False)


def test_unknown_competition_404(emu, tmp_path):
    with pytest.raises(KaggleApiError, match=r"no competition 'no-such-thing' \(404"):
        fetch("no-such-thing", path=tmp_path / "x", progress=False)


def test_not_enough_disk_space_stops_before_downloading(emu, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(kk_kaggle.DiskSpaceError, match="free disk space"):
        fetch("digits", path=tmp_path / "d", progress=False)
    assert emu.calls("DownloadDataFiles") == 0


def test_interrupted_download_resumes_without_resending_bytes(emu, tmp_path):
    cut = 2 * kk_kaggle.DOWNLOAD_CHUNK
    emu.drop_after = {"digits.zip": cut}
    dest = tmp_path / "d"
    with pytest.raises(KaggleApiError, match="interrupted.*run the same fetch again"):
        fetch("digits", path=dest, progress=False, retries=0)
    assert (dest / "digits.zip").stat().st_size == cut
    assert not (dest / MANIFEST).exists(), "nothing may be marked complete"

    comp = fetch("digits", path=dest, progress=False)
    size = (dest / "digits.zip").stat().st_size
    first, *_, last = emu.requests_for("digits.zip")
    assert first["dropped"] and first["bytes"] == cut
    # The new run asks only for the missing bytes. (Before that, the kaggle client follows the
    # fresh download link with a plain GET just to read the headers, then drops it unread.)
    assert last["range"] == f"bytes={cut}-" and last["status"] == 206 and last["bytes"] == size - cut
    assert file_digest(dest / "digits.zip") == file_digest(emu._archive(emu._store.competitions["digits"]))
    assert len(list(comp.train.iterdir())) == 200


def test_dropped_connection_is_retried_within_one_fetch(emu, tmp_path):
    cut = 3 * kk_kaggle.DOWNLOAD_CHUNK
    emu.drop_after = {"digits.zip": cut}
    comp = fetch("digits", path=tmp_path / "d", progress=False, retries=2)
    size = (comp.path / "digits.zip").stat().st_size
    assert [e["start"] for e in emu.requests_for("digits.zip")] == [0, cut]
    assert emu.bytes_served("digits.zip") == size


def test_zip_slip_archive_is_refused_and_nothing_escapes(emu, tmp_path):
    dest = tmp_path / "box" / "b"
    with pytest.raises(ArchiveError, match="outside"):
        fetch("broken", path=dest, files=["evil.zip"], progress=False)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not (dest / "evil").exists() or not any((dest / "evil").iterdir())
    assert not (dest / MANIFEST).exists()


def test_corrupt_archive_is_a_clear_error_and_not_marked_complete(emu, tmp_path):
    dest = tmp_path / "b"
    with pytest.raises(ArchiveError, match="corrupt.*fetch again"):
        fetch("broken", path=dest, files=["broken.zip", "sample_submission.csv"], progress=False)
    manifest = json.loads((dest / MANIFEST).read_text())["files"] if (dest / MANIFEST).exists() else {}
    assert "broken.zip" not in manifest


def _perfect_submission(comps, tmp_path) -> Path:
    solution = pd.read_csv(comps["digits"].parent / "digits.solution.csv", dtype=str)
    path = tmp_path / "submission.csv"
    solution.to_csv(path, index=False)
    return path


def test_submission_is_scored_and_listed(emu, comps, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kagglekit")  # submit logs; the CLI (or run's log=) shows the messages
    sub_file = _perfect_submission(comps, tmp_path)
    result = kk_kaggle.submit("digits", sub_file, "perfect", wait=True, poll=0.05, timeout=30, like=comps["digits"] / "sample_submission.csv")
    assert result.status == "COMPLETE" and result.public_score == pytest.approx(1.0)
    assert result.remaining_today == emu.daily_limit - 1
    out = caplog.text
    assert "submission(s) remaining today" in out and "public 1.0" in out

    zero = tmp_path / "zeros.csv"
    pd.read_csv(comps["digits"] / "sample_submission.csv", dtype=str).to_csv(zero, index=False)
    pending = kk_kaggle.submit("digits", zero, "all zeros", like=comps["digits"] / "sample_submission.csv", quiet=True)
    assert pending.status == "PENDING" and pending.remaining_today == emu.daily_limit - 2
    listed = kk_kaggle.submissions("digits")
    assert [s.description for s in listed] == ["all zeros", "perfect"]
    assert listed[1].public_score == pytest.approx(1.0)
    assert "perfect" in kk_kaggle.format_submissions(listed)


def test_failed_upload_is_detected(emu, comps, tmp_path):
    emu.fail_uploads = True
    with pytest.raises(KaggleApiError, match="upload of submission.csv .*failed, so nothing was submitted"):
        kk_kaggle.submit("digits", _perfect_submission(comps, tmp_path), "x", quiet=True)
    assert emu.calls("CreateSubmission") == 0 and not emu.submissions.get("digits")


def test_bad_file_is_refused_before_any_upload(emu, comps, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prediction\n1,3\n")
    with pytest.raises(SubmissionError, match="columns"):
        kk_kaggle.submit("digits", bad, "x", like=comps["digits"] / "sample_submission.csv")
    assert emu.calls("StartSubmissionUpload") == 0


def test_scoring_error_raises_with_kaggles_reason(emu, comps, tmp_path):
    partial = tmp_path / "partial.csv"
    pd.read_csv(comps["digits"] / "sample_submission.csv", dtype=str).head(5).to_csv(partial, index=False)
    with pytest.raises(SubmissionError, match="could not score.*missing"):
        kk_kaggle.submit("digits", partial, "partial", wait=True, poll=0.05, timeout=30, quiet=True)


def test_sample_submission_found_from_an_earlier_fetch(emu, comps, tmp_path):
    fetch("digits", files=["sample_submission.csv"], progress=False)  # into $KAGGLEKIT_DATA/digits
    partial = tmp_path / "partial.csv"
    pd.read_csv(comps["digits"] / "sample_submission.csv", dtype=str).head(5).to_csv(partial, index=False)
    with pytest.raises(SubmissionError, match="35 sample ids are missing"):
        kk_kaggle.submit("digits", partial, "partial")
    assert emu.calls("StartSubmissionUpload") == 0


def test_check_submission_file(tmp_path, comps):
    sample = comps["digits"] / "sample_submission.csv"
    with pytest.raises(SubmissionError, match="No file at .*none.csv"):
        kk_kaggle.check_submission_file(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SubmissionError, match="is empty"):
        kk_kaggle.check_submission_file(empty)
    txt = tmp_path / "p.txt"
    txt.write_text("id,label\n1,2\n")
    with pytest.raises(SubmissionError, match=r"not a \.csv"):
        kk_kaggle.check_submission_file(txt)
    dup = tmp_path / "dup.csv"
    dup.write_text("id,label\n1,2\n1,3\n")
    with pytest.raises(SubmissionError, match="ids appear more than once.*: 1"):
        kk_kaggle.check_submission_file(dup)
    good = pd.read_csv(sample, dtype=str)
    zipped = tmp_path / "sub.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("sub.csv", good.to_csv(index=False))
    assert len(kk_kaggle.check_submission_file(zipped, like=sample)) == len(good)
    extra = tmp_path / "extra.csv"
    pd.concat([good, pd.DataFrame({"id": ["99999"], "label": ["1"]})]).to_csv(extra, index=False)
    with pytest.raises(SubmissionError, match="1 ids are not in the sample: 99999"):
        kk_kaggle.check_submission_file(extra, like=sample)


def test_scrub_hides_secrets(emu):
    assert emu.key not in kk_kaggle.scrub(f"oops {emu.key} leaked")


def test_kaggle_imported_before_the_environment_is_set(emulator, tmp_path):
    """kaggle reads its config folder and environment at import; kagglekit re-reads them on every call."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "HTTP_PROXY", "http_proxy"))}
    env.update(HOME=str(tmp_path / "empty-home"), PYTHONPATH=os.pathsep.join(sys.path))
    client_env = emulator.environ(tmp_path / "home")
    code = (
        "import os, json, kaggle\n"  # imported with no credentials and the production endpoint
        f"os.environ.update({client_env!r})\n"
        "from kagglekit.kaggle import list_files\n"
        "print(json.dumps(sorted(f.name for f in list_files('digits'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "train.csv" in json.loads(out.stdout.strip().splitlines()[-1])
