"""Where a competition comes from: a Kaggle notebook's input, the Kaggle API, a local folder or zip.

`fetch` returns a `Competition`. Downloads go through `kagglekit.kaggle` (the
official client), are resumable, are recorded in a manifest
(``.kagglekit-manifest.json``: name, size, MD5) only once verified, and
archives are unpacked safely, nested ones too.
"""
from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Collection, Sequence

from .errors import ArchiveError, CredentialsError, KaggleApiError, SourceError, SourceNotFoundError, list_offenders
from .io import atomic_write_text, data_root, why_not_writable, file_digest, in_kaggle_notebook, input_root, is_slug, notebook_input, working_root  # noqa: F401 (re-exported)
from .submission import SAMPLE_NAMES, find_sample_submission  # noqa: F401 (re-exported)

MANIFEST = ".kagglekit-manifest.json"
MAX_NESTING = 3  # archives inside archives are unpacked this many levels deep
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.7z", ".7z")  # .7z: py7zr


@dataclass
class Competition:
    """A competition's data on disk: its folder, its files, its sample submission."""

    slug: str
    path: Path
    files: list[Path] = field(default_factory=list)
    sample_submission: Path | None = None
    source: str = "kaggle"  # "kaggle" | "notebook" | "local"

    @property
    def train(self) -> Path | None:
        """Return the `train` folder when there is one."""
        return self.path / "train" if (self.path / "train").is_dir() else None

    @property
    def test(self) -> Path | None:
        """Return the `test` (or `test1`) folder when there is one."""
        for name in ("test", "test1"):
            if (self.path / name).is_dir():
                return self.path / name
        return None


# --------------------------------------------------------------------------- locations
def _listing(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".kaggle-partial"))


def describe(folder: str | os.PathLike, slug: str | None = None, source: str = "local") -> Competition:
    """Return the `Competition` held by `folder` (files listed, sample submission found)."""
    folder = Path(folder)
    return Competition(slug or folder.name, folder, _listing(folder), find_sample_submission(folder), source)


# --------------------------------------------------------------------------- manifest
class Manifest:
    """What is complete in a download folder: {key: {file, size, md5, unpacked}}."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / MANIFEST
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text()).get("files", {})
            except (ValueError, AttributeError):
                self.entries = {}

    def downloaded(self, key: str) -> bool:
        """Return whether `key` was downloaded and verified, and its file is still there with its size."""
        entry = self.entries.get(key)
        if not entry:
            return False
        local = self.folder / entry["file"]
        return local.is_file() and local.stat().st_size == entry["size"]

    def unpacked(self, key: str) -> bool:
        """Return whether `key` is recorded and everything unpacked from it is still there."""
        entry = self.entries.get(key)
        return bool(entry) and all((self.folder / u).exists() for u in entry.get("unpacked", []))

    def complete(self, key: str) -> bool:
        """Return whether `key` was downloaded and everything unpacked from it is still there."""
        return self.downloaded(key) and self.unpacked(key)

    def written(self) -> set[str]:
        """Return the resolved paths of every file the manifest records as unpacked by kagglekit."""
        out = set()
        for entry in self.entries.values():
            for u in entry.get("unpacked", []) if isinstance(entry, dict) else []:
                out.add(os.path.realpath(self.folder / u))
        return out

    def mark(self, key: str, file: Path, size: int, md5: str, unpacked: Sequence[Path] = ()) -> dict:
        """Return the entry recorded for `key`, now marked complete and saved (the one place the manifest is written).

        `file` and `unpacked` are stored relative to the folder when inside it (a source
        outside it, such as a local zip or a notebook input, is stored as its full path).
        """
        inside = lambda p: Path(p).relative_to(self.folder).as_posix() if self.folder in Path(p).parents else str(p)  # noqa: E731
        self.entries[key] = {"file": inside(file), "size": size, "md5": md5, "unpacked": [inside(u) for u in unpacked]}
        atomic_write_text(self.path, json.dumps({"version": 1, "files": self.entries}, indent=1))
        return self.entries[key]


# --------------------------------------------------------------------------- archives
def is_archive(path: str | os.PathLike) -> bool:
    """Return whether `path` has an archive suffix kagglekit unpacks (zip, tar, tar.gz, ...)."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def _stem(path: Path) -> str:
    low = path.name.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _check_member(name: str, archive: Path) -> PurePosixPath:
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
        raise ArchiveError(f"Archive {archive} holds an entry with an absolute path ({name!r}); it was not unpacked. Fix: unpack it by hand after checking it, or get the archive from a trusted source.")
    parts = PurePosixPath(clean).parts
    if ".." in parts:
        raise ArchiveError(f"Archive {archive} holds an entry that points outside its folder ({name!r}); it was not unpacked. Fix: do not use this archive; get it from a trusted source.")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")]) if parts else PurePosixPath(".")


def _is_zip(archive: Path) -> bool:
    return archive.name.lower().endswith(".zip") or zipfile.is_zipfile(archive)


def _is_7z(archive: Path) -> bool:
    """Return whether `archive` is a 7z archive (Planet ships its images as .tar.7z), by its signature."""
    with open(archive, "rb") as fh:
        return fh.read(6) == b"7z\xbc\xaf\x27\x1c"


def _py7zr():
    try:
        import py7zr
    except ImportError:  # a dependency of kagglekit; missing only from a partial install
        raise ArchiveError("7z archives need py7zr, a dependency of kagglekit that is missing here. "
                           "Fix: pip install 'py7zr>=0.21,<2'.") from None
    return py7zr


def _bad_7z() -> tuple[type[BaseException], ...]:
    """Return the exceptions py7zr raises for a damaged archive (none when py7zr is missing)."""
    try:
        import py7zr.exceptions as e
    except ImportError:
        return ()
    return (e.ArchiveError, e.Bad7zFile, e.CrcError, e.DecompressionError, e.UnsupportedCompressionMethodError)


def _members(archive: Path) -> list[tuple[PurePosixPath, bool, object]]:
    """Return (relative path, is_dir, handle) for every entry, refusing unsafe ones."""
    out = []
    if _is_zip(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _check_member(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise ArchiveError(f"Archive {archive} holds a symbolic link ({info.filename!r}); it was not unpacked. Fix: do not use this archive; get it from a trusted source.")
                out.append((rel, info.is_dir(), info))
        return out
    if _is_7z(archive):
        with _py7zr().SevenZipFile(archive) as sz:
            for info in sz.list():
                rel = _check_member(info.filename, archive)
                if getattr(info, "is_symlink", False):
                    raise ArchiveError(f"Archive {archive} holds a symbolic link ({info.filename!r}); it was not unpacked. Fix: do not use this archive; get it from a trusted source.")
                out.append((rel, bool(info.is_directory), info.filename))
        return out
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            rel = _check_member(member.name, archive)
            if member.issym() or member.islnk():
                raise ArchiveError(f"Archive {archive} holds a link ({member.name!r}); it was not unpacked. Fix: do not use this archive; get it from a trusted source.")
            if not (member.isfile() or member.isdir()):
                raise ArchiveError(f"Archive {archive} holds a special file ({member.name!r}); it was not unpacked. Fix: do not use this archive.")
            out.append((rel, member.isdir(), member))
    return out


REFETCH = "delete it and fetch again"
NOTEBOOK_REFETCH = ("remove the competition from the notebook's inputs and add it again (Add Input), "
                    "or download it with the Kaggle API into another folder")


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else "unreadable"


def _checked_members(archive: Path, fix: str = REFETCH) -> list[tuple[PurePosixPath, bool, object]]:
    """Return `_members(archive)`; an archive that cannot be read is an `ArchiveError` naming it and `fix`."""
    try:
        return _members(archive)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, *_bad_7z()) as e:
        raise ArchiveError(f"Archive {archive} is corrupt or not an archive ({type(e).__name__}: {_first_line(e)}); "
                           f"nothing was unpacked or marked complete. Fix: {fix}.") from None


def _nested_target(archive: Path, members: list, where: Path | None = None) -> Path:
    """Return where `archive` unpacks in `where` (default: beside it): there when its entries sit in a folder named
    like it or it only wraps one archive of its name (Planet's train-jpg.tar.7z holds train-jpg.tar), else in a
    folder named like it."""
    stem = _stem(archive)
    where = archive.parent if where is None else where
    names = [m[0] for m in members if str(m[0]) != "."]
    if names and all(n.parts[0] == stem for n in names):
        return where
    if len(names) == 1 and is_archive(names[0].name) and _stem(Path(names[0].name)) == stem:
        return where
    return where / stem


def _extract(archive: Path, members: list, staging: Path, bar) -> list[PurePosixPath]:
    """Return the files of `archive` written into `staging` (its checked `members`; `bar` shows progress)."""
    written = []
    if _is_7z(archive):  # a solid 7z archive decompresses in one pass: extract it all, then check each entry
        with _py7zr().SevenZipFile(archive) as sz:
            sz.extractall(path=staging)
        for rel, is_dir, _ in bar:
            if not is_dir:
                if not (staging / rel).is_file():
                    raise OSError(f"entry {rel} was not extracted")
                written.append(rel)
        return written
    handle = zipfile.ZipFile(archive) if _is_zip(archive) else tarfile.open(archive)
    open_member = handle.open if isinstance(handle, zipfile.ZipFile) else handle.extractfile
    with handle:
        for rel, is_dir, member in bar:
            dest = staging / rel
            if is_dir:
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open_member(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            written.append(rel)
    return written


def _foreign(target: Path, staging: Path, written: list[PurePosixPath], ours: Collection[str]) -> list[str]:
    """Return the entries that would replace a file in `target` kagglekit did not put there (recorded in `ours`) with other bytes."""
    clash = []
    for rel in written:
        final = target / rel
        if not os.path.lexists(final) or os.path.realpath(final) in ours:
            continue
        if final.is_file() and not final.is_symlink() and filecmp.cmp(final, staging / rel, shallow=False):
            continue  # the same bytes (unpacked by hand before): nothing is lost by leaving it
        clash.append(rel.as_posix())
    return clash


def unpack(archive: str | os.PathLike, target: str | os.PathLike | None = None, nested: bool = True, progress: bool = True,
           _depth: int = 0, _fix: str = REFETCH, ours: Collection[str] | None = None) -> list[Path]:
    """Return the files unpacked from `archive` into `target` (nested archives unpacked too).

    Entries with absolute paths, ``..`` components, links or special files are
    refused before anything is written (`ArchiveError`); a corrupt archive raises
    `ArchiveError` and leaves nothing behind: entries go to a staging folder inside
    `target` and are moved into place only when all of them were read intact.
    Without `target`, unpacks beside the archive (into a folder named after it
    unless its entries already sit in one). `_fix` ends a corrupt archive's message.
    A file already in `target` that the archive would replace with other bytes is never
    replaced unless its resolved path is in `ours` (what kagglekit unpacked there before, as
    its manifest records): an `ArchiveError` names it and nothing is unpacked.
    """
    archive = Path(archive)
    members = _checked_members(archive, _fix)
    target = Path(target) if target is not None else _nested_target(archive, members)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target))
    written: list[Path] = []
    from tqdm.auto import tqdm

    bar = tqdm(members, desc=f"unpack {archive.name}", unit="file", leave=False, disable=not progress or len(members) < 500)
    try:
        try:
            written = _extract(archive, members, staging, bar)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError, *_bad_7z()) as e:
            raise ArchiveError(f"Archive {archive} is corrupt ({type(e).__name__}: {_first_line(e)}); nothing was unpacked or marked complete. Fix: {_fix}.") from None
        clash = _foreign(target, staging, written, set(ours or ()))
        if clash:
            raise ArchiveError(f"Unpacking {archive.name} into {target} would replace {len(clash)} file(s) kagglekit did not put "
                               f"there: {list_offenders(clash)}; nothing was unpacked. Fix: move them aside, or unpack the "
                               "archive into another folder.")
        for rel in written:  # all entries read intact: move them into place
            final = target / rel
            if target.resolve() not in final.resolve().parents:
                raise ArchiveError(f"Archive {archive} entry {rel} would land outside {target}; nothing more was unpacked.")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, final)
        for rel, is_dir, _ in members:
            if is_dir:
                (target / rel).mkdir(parents=True, exist_ok=True)
    finally:
        bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    out = [target / rel for rel in written]
    if nested and _depth < MAX_NESTING:
        for path in list(out):
            if is_archive(path) and path.is_file():
                out += unpack(path, None, nested=True, progress=progress, _depth=_depth + 1, _fix=_fix, ours=ours)
    return out


# --------------------------------------------------------------------------- fetch
def _unpack_archives(folder: Path, work: Path, fix: str, origin: str) -> None:
    """Unpack the archives at the top of `folder` into `work` (once: recorded in work's manifest); link the rest
    of `folder` into `work` when they differ. An archive whose folder is already there is left as it is."""
    manifest = Manifest(work)
    for item in sorted(folder.iterdir()):
        if item.is_file() and is_archive(item):
            key = f"{origin}:{item.name}"
            if manifest.unpacked(key) or (work / _stem(item)).exists():  # done, by an earlier run or by hand
                continue
            target = _nested_target(item, _checked_members(item, fix), where=work)
            files = unpack(item, target, _fix=fix, ours=manifest.written())
            manifest.mark(key, item, item.stat().st_size, "", files)
        elif work != folder and not (work / item.name).exists():
            (work / item.name).symlink_to(item, target_is_directory=item.is_dir())


def _pending_archives(folder: Path, work: Path, origin: str) -> list[str]:
    """Return the names of the archives at the top of `folder` that `_unpack_archives` would still unpack into `work`."""
    manifest = Manifest(work)
    return [p.name for p in sorted(folder.iterdir()) if p.is_file() and is_archive(p)
            and not manifest.unpacked(f"{origin}:{p.name}") and not (work / _stem(p)).exists()]


def _from_local(source: Path, path: str | os.PathLike | None, spare: str | os.PathLike | None = None) -> Competition:
    if source.is_dir():
        pending = _pending_archives(source, source, "local")  # e.g. Planet's train-jpg.tar.7z, unzipped
        why = why_not_writable(source) if pending else None
        if why is not None and spare is None:
            raise SourceError(f"{source} holds archives to unpack ({list_offenders(pending, 3)}) but cannot be written ({why}). "
                              "Fix: give a writable --workdir DIR (they are unpacked into DIR/data, the rest linked), "
                              "or unpack them by hand into a copy of the folder.")
        if why is not None:  # a read-only folder: unpack into `spare`, link the rest (as from a notebook's input)
            work = Path(spare)
            _writable(work, "--workdir")
            work.mkdir(parents=True, exist_ok=True)
            _unpack_archives(source, work, REFETCH, "local")
            return describe(work, source.name, "local")
        if pending:
            _unpack_archives(source, source, REFETCH, "local")
        return describe(source, source.name, "local")
    if not is_archive(source) and not zipfile.is_zipfile(source):
        raise SourceError(f"{source} is neither a folder nor an archive (.zip, .tar.gz, ...). Fix: pass a competition slug, a folder or a zip.")
    dest = Path(path) if path else source.parent / _stem(source)
    if not path and spare is not None and why_not_writable(dest) is not None and not Manifest(dest).entries:
        dest = Path(spare)  # beside the zip cannot be written: unpack it into the run's folder
    manifest = Manifest(dest)
    key = f"local:{source.resolve()}"
    size = source.stat().st_size
    if not (manifest.unpacked(key) and manifest.entries[key]["size"] == size):
        _writable(dest, "--workdir DIR (kagglekit run: unpacked into DIR/data) or fetch --path DIR")
        dest.mkdir(parents=True, exist_ok=True)
        files = unpack(source, dest, ours=manifest.written())
        manifest.mark(key, source.resolve(), size, file_digest(source), files)
    return describe(dest, _stem(source), "local")


def _from_notebook(slug: str, folder: Path, path: str | os.PathLike | None) -> Competition:
    archives = [p for p in sorted(folder.iterdir()) if p.is_file() and is_archive(p)]
    if not archives:
        return describe(folder, slug, "notebook")  # read-only use, nothing copied
    # Archives in the (read-only) input: unpack them into a working folder, link the rest.
    work = Path(path) if path else working_root() / slug
    _writable(work, "$KAGGLEKIT_WORKING (or fetch --path)")
    work.mkdir(parents=True, exist_ok=True)
    _unpack_archives(folder, work, NOTEBOOK_REFETCH, "notebook")
    return describe(work, slug, "notebook")


def _writable(folder: Path, flag: str) -> None:
    """Raise `SourceError` naming `flag` when files cannot be written in `folder`."""
    why = why_not_writable(folder)
    if why is not None:
        raise SourceError(f"Cannot write the competition's files into {folder} ({why}). Fix: name a writable folder with {flag}.")


def fetch(slug: str, path: str | os.PathLike | None = None, files: Sequence[str] | None = None, progress: bool = True,
          retries: int = 3, spare: str | os.PathLike | None = None) -> Competition:
    """Return the `Competition` `slug`, downloading and unpacking it only when needed.

    Where the data comes from, in order:

    * `slug` is an existing folder (used as is) or archive (unpacked safely into
      `path`, default beside it);
    * a Kaggle notebook: ``/kaggle/input/<slug>`` (``$KAGGLEKIT_INPUT_ROOT``) is
      used read-only, nothing downloaded; archives in it are unpacked into `path`
      (default ``/kaggle/working/<slug>``);
    * the Kaggle API (official client) into `path` (default ``./data/<slug>``,
      ``$KAGGLEKIT_DATA``): all files as ``<slug>.zip``, or only `files`. Files
      already complete are skipped without any network call; a preflight checks
      credentials, that the competition exists, that its rules are accepted and
      the free disk space; interrupted downloads resume; archives are unpacked
      safely, nested ones too; the manifest records each file (name, size, MD5)
      once verified and unpacked.

    Unpacking never replaces a file kagglekit did not put there (`unpack`). A read-only
    local folder holding archives is unpacked into `spare` (``run`` passes
    ``<--workdir>/data``), the rest linked; without `spare` that is a `SourceError`.
    """
    from . import kaggle

    text = str(slug)
    source = Path(text).expanduser()
    looks_like_path = "/" in text or os.sep in text or text.startswith(("~", ".")) or is_archive(text)
    if looks_like_path or (source.exists() and not is_slug(text)):
        if not source.exists():
            raise SourceNotFoundError(f"{source} does not exist. Fix: pass an existing folder or archive, or a competition slug such as 'dogs-vs-cats'.")
        return _from_local(source, path, spare)
    if not is_slug(slug):
        raise SourceError(f"{slug!r} is neither a competition slug nor an existing folder or archive. Fix: pass the last part of the competition URL (e.g. 'dogs-vs-cats'), or a path that exists.")
    mounted = notebook_input(slug)
    if mounted is not None:
        if files:
            absent = [f for f in files if not (mounted / f).exists()]
            if absent:
                raise SourceNotFoundError(f"{mounted} has no {list_offenders(absent)}. Fix: pick from {list_offenders(sorted(p.name for p in mounted.iterdir()), 12)}.")
        return _from_notebook(slug, mounted, path)

    dest = Path(path) if path else data_root() / slug
    manifest = Manifest(dest)
    keys = list(files) if files else ["*"]
    pending = [k for k in keys if not manifest.complete(k)]
    if not pending:
        return describe(dest, slug, "kaggle")  # everything verified before: no network at all
    _writable(dest, "fetch --path DIR (or $KAGGLEKIT_DATA)")
    api, sizes = None, {}
    if any(not manifest.downloaded(k) for k in pending):
        try:
            api = kaggle._api()
        except CredentialsError as e:
            if in_kaggle_notebook():
                raise CredentialsError(f"{e} In a Kaggle notebook, add the competition as input instead (Add Input), so it appears under {input_root() / slug}.") from None
            raise
        remote = kaggle.preflight(slug, dest, files, skip=[k for k in keys if manifest.downloaded(k)], api=api)
        sizes = {f.name: f.size for f in remote}
    for key in pending:
        if manifest.downloaded(key):  # only the unpacking is incomplete: redo it from the archive we have
            entry = manifest.entries[key]
            got = kaggle.Download(dest / entry["file"], entry["size"], entry["md5"])
        else:
            folder = dest / PurePosixPath(key).parent if key != "*" else dest
            got = kaggle.download(slug, folder, None if key == "*" else key, progress=progress, retries=retries, api=api)
        if key != "*" and key in sizes and sizes[key] and got.size != sizes[key]:
            raise KaggleApiError(f"{got.path} has {got.size} bytes but Kaggle lists {sizes[key]}; it was not marked complete. Fix: run the same fetch again.")
        unpacked: list[Path] = []
        if is_archive(got.path):
            unpacked = unpack(got.path, dest if key == "*" else None, progress=progress, ours=manifest.written())
        manifest.mark(key, got.path, got.size, got.md5, [p for p in unpacked if dest in p.parents])
    return describe(dest, slug, "kaggle")
