"""Competition sources without the network: safe unpacking, local folders and zips, the notebook case."""
from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from kaggle_helpers import evil_zip, truncated_zip
from kagglekit.errors import ArchiveError, CredentialsError
from kagglekit.sources import MANIFEST, fetch, unpack
from kagglekit.testing.competitions import build_competition


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No credentials and a proxy nobody listens on: any network use fails loudly."""
    for key in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "input"))
    monkeypatch.setenv("KAGGLEKIT_WORKING", str(tmp_path / "working"))
    return tmp_path


@pytest.mark.parametrize("entry", ["../evil.txt", "/tmp/kagglekit-evil-abs.txt", "a/../../evil.txt", "..\\evil.txt"])
def test_unsafe_paths_are_refused_before_anything_is_written(tmp_path, entry):
    archive = evil_zip(tmp_path / "evil.zip", entry)
    target = tmp_path / "box" / "out"
    with pytest.raises(ArchiveError, match="absolute path|outside"):
        unpack(archive, target)
    assert not target.exists() or not any(target.rglob("*"))
    assert not list(tmp_path.rglob("evil.txt")) and not Path("/tmp/kagglekit-evil-abs.txt").exists()


def test_symlink_entries_are_refused(tmp_path):
    archive = evil_zip(tmp_path / "link.zip", "passwd", symlink=True)
    with pytest.raises(ArchiveError, match="symbolic link"):
        unpack(archive, tmp_path / "out")
    tar_path = tmp_path / "link.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo("data/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(ArchiveError, match="link"):
        unpack(tar_path, tmp_path / "out2")
    assert not (tmp_path / "out2" / "data" / "link").exists()


def test_corrupt_archives_leave_nothing_behind(tmp_path):
    with pytest.raises(ArchiveError, match="corrupt"):
        unpack(truncated_zip(tmp_path / "cut.zip"), tmp_path / "a")
    # Intact directory, damaged data: the CRC check fails while reading; nothing is moved into place.
    good = tmp_path / "crc.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("first.txt", "x" * 1000)
        zf.writestr("second.txt", "y" * 1000)
    data = bytearray(good.read_bytes())
    data[data.index(b"y" * 100) + 10] ^= 0xFF
    good.write_bytes(bytes(data))
    target = tmp_path / "b"
    with pytest.raises(ArchiveError, match="corrupt"):
        unpack(good, target)
    assert list(target.iterdir()) == []



def test_7z_archives_unpack_and_damaged_or_linked_ones_are_refused(tmp_path):
    import py7zr

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("x" * 5000)
    (tmp_path / "src" / "b.txt").write_text("y" * 5000)
    good = tmp_path / "data.7z"
    with py7zr.SevenZipFile(good, "w") as sz:
        sz.writeall(tmp_path / "src", "data")
    assert sorted(p.name for p in unpack(good)) == ["a.txt", "b.txt"]
    assert (tmp_path / "data" / "a.txt").read_text() == "x" * 5000  # entries already in data/: not data/data/
    cut = tmp_path / "cut.7z"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ArchiveError, match="cut.7z is corrupt"):
        unpack(cut, tmp_path / "c")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.txt"))
    (tmp_path / "src" / "link").symlink_to("/etc/passwd")
    linked = tmp_path / "linked.7z"
    with py7zr.SevenZipFile(linked, "w") as sz:
        sz.writeall(tmp_path / "src", "data")
    with pytest.raises(ArchiveError, match="symbolic link"):
        unpack(linked, tmp_path / "d")
    assert not (tmp_path / "d" / "data" / "link").exists()

def test_nested_archives_unpack_where_they_belong(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("train/cat.0.jpg", b"jpg")
    flat = io.BytesIO()
    with zipfile.ZipFile(flat, "w") as zf:
        zf.writestr("a.csv", "id\n1\n")
    outer = tmp_path / "comp.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("train.zip", inner.getvalue())
        zf.writestr("extra.zip", flat.getvalue())
        zf.writestr("sample_submission.csv", "id,label\n1,0\n")
    files = unpack(outer, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "train" / "cat.0.jpg").read_bytes() == b"jpg"  # entries already in train/: next to the zip
    assert (out / "extra" / "a.csv").is_file()  # loose entries: into a folder named after the zip
    assert out / "train" / "cat.0.jpg" in files and not (out / "train" / "train").exists()
    tgz = tmp_path / "t.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(out / "extra" / "a.csv", arcname="t/a.csv")
    assert unpack(tgz) == [tmp_path / "t" / "a.csv"]


def test_local_folder_is_used_as_is(offline, dogs_vs_cats_dir):
    before = sorted(p.name for p in dogs_vs_cats_dir.iterdir())
    comp = fetch(str(dogs_vs_cats_dir))
    assert comp.path == dogs_vs_cats_dir and comp.source == "local"
    assert comp.sample_submission == dogs_vs_cats_dir / "sample_submission.csv"
    assert sorted(p.name for p in dogs_vs_cats_dir.iterdir()) == before


def test_local_zip_is_unpacked_once(offline, tmp_path):
    folder = build_competition("dogs-vs-cats", tmp_path / "src" / "dogs-vs-cats", n_train=12, n_test=4, zipped=True)
    archive = Path(shutil.make_archive(str(tmp_path / "dogs-vs-cats"), "zip", folder))
    comp = fetch(str(archive), path=tmp_path / "out")
    assert len(list(comp.train.iterdir())) == 12 and len(list(comp.test.iterdir())) == 4
    assert (comp.path / MANIFEST).is_file()
    kept = comp.path / "train" / "dog.0.jpg"
    stamp = kept.stat().st_mtime_ns
    os.utime(kept, ns=(stamp - 10**9, stamp - 10**9))
    fetch(str(archive), path=tmp_path / "out")  # complete: nothing rewritten
    assert kept.stat().st_mtime_ns == stamp - 10**9
    (comp.path / "train" / "cat.0.jpg").unlink()
    again = fetch(str(archive), path=tmp_path / "out")  # a file is gone: unpacked again
    assert (again.path / "train" / "cat.0.jpg").is_file()


def test_notebook_input_is_used_read_only_without_network(offline, digits_competition):
    mounted = offline / "input" / "digits"
    shutil.copytree(digits_competition, mounted)
    os.chmod(mounted, 0o555)
    try:
        comp = fetch("digits")
    finally:
        os.chmod(mounted, 0o755)
    assert comp.path == mounted and comp.source == "notebook"
    assert comp.sample_submission == mounted / "sample_submission.csv"
    assert not (mounted / MANIFEST).exists()


def test_notebook_archives_are_unpacked_into_working(offline, monkeypatch):
    mounted = build_competition("dogs-vs-cats", offline / "input" / "dogs-vs-cats", n_train=10, n_test=4, zipped=True)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    comp = fetch("dogs-vs-cats")
    assert comp.path == offline / "working" / "dogs-vs-cats" and comp.source == "notebook"
    assert len(list(comp.train.iterdir())) == 10 and len(list(comp.test.iterdir())) == 4
    assert (comp.path / "sample_submission.csv").resolve() == mounted / "sample_submission.csv"
    assert sorted(p.name for p in mounted.iterdir()) == ["sample_submission.csv", "test.zip", "train.zip"]


def test_notebook_without_the_input_points_to_add_input(offline, monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    with pytest.raises(CredentialsError, match="Add Input"):
        fetch("some-competition", path=offline / "d")
