"""Small file and environment helpers: atomic writes, content hashes, and the folders kagglekit reads and writes."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
import time
import warnings
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                durable: bool = True) -> Iterator[IO]:
    """Yield a file that replaces `path` only when the block finishes without error.

    The file gets the mode a plain ``open()`` would give it (0666 less the umask), or
    keeps the mode of the file it replaces. With `durable` the data is flushed to disk (fsync) before the rename; writers of
    many small files pass False and sync once at the end (``os.sync()``) instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "newline": ""})) as fh:
            yield fh
            fh.flush()
            with contextlib.suppress(OSError):  # mkstemp makes 0600: give the file the mode a plain open() would
                os.fchmod(fh.fileno(), file_mode(path))
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """Return the process's umask (from /proc where it says; else set and put back at once)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(path: str | os.PathLike) -> int:
    """Return the permission bits a file written at `path` gets: an existing file's own, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Return `path` after writing `text` to it atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Return `path` after writing `data` to it atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def why_not_writable(folder: str | os.PathLike) -> str | None:
    """Return why files cannot be created in `folder` (None when they can), without leaving anything behind.

    The folder need not exist: its nearest existing parent must be a folder in which a
    file can be created (tried for real: a probe file made and removed at once, so a
    read-only mount answers truthfully even for root, who passes every `os.access` test).
    """
    folder = Path(os.path.abspath(folder))
    probe = folder
    while not probe.exists() and probe != probe.parent:
        if os.path.lexists(probe):
            return f"{probe} is a broken link"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    try:
        fd, name = tempfile.mkstemp(prefix=".kagglekit-probe-", dir=probe)
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror or exc})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


CACHE_ENV = "KAGGLEKIT_CACHE"
CACHE_DIRNAME = ".kagglekit-cache"


def default_cache_dir() -> Path:
    """Return kagglekit's cache folder: $KAGGLEKIT_CACHE, else `.kagglekit-cache` in the working folder."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.cwd() / CACHE_DIRNAME


INPUT_ROOT_ENV = "KAGGLEKIT_INPUT_ROOT"
_OLD_INPUT_ROOT_ENV = "KAGGLEKIT_INPUT"  # deprecated spelling, still read
DATA_ENV = "KAGGLEKIT_DATA"


def input_root() -> Path:
    """Return where a Kaggle notebook mounts its inputs: $KAGGLEKIT_INPUT_ROOT, else /kaggle/input.

    The older variable ``KAGGLEKIT_INPUT`` is still read, with a DeprecationWarning.
    """
    value = os.environ.get(INPUT_ROOT_ENV)
    if value is None and _OLD_INPUT_ROOT_ENV in os.environ:
        warnings.warn(f"${_OLD_INPUT_ROOT_ENV} is deprecated; set ${INPUT_ROOT_ENV} instead.",
                      DeprecationWarning, stacklevel=2)
        value = os.environ[_OLD_INPUT_ROOT_ENV]
    return Path(value or "/kaggle/input")


_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def is_slug(text: str | os.PathLike) -> bool:
    """Return whether `text` looks like a competition slug (the last part of its URL, e.g. 'dogs-vs-cats')."""
    return bool(_SLUG.match(str(text)))


def notebook_input(slug: str) -> Path | None:
    """Return the notebook input folder of competition `slug` (``<input root>/<slug>`` or ``.../competitions/<slug>``), when mounted."""
    for candidate in (input_root() / slug, input_root() / "competitions" / slug):
        if candidate.is_dir():
            return candidate
    return None


WORKING_ENV = "KAGGLEKIT_WORKING"


def working_root() -> Path:
    """Return a Kaggle notebook's writable output folder: $KAGGLEKIT_WORKING, else /kaggle/working."""
    return Path(os.environ.get(WORKING_ENV) or "/kaggle/working")


def data_root() -> Path:
    """Return the default folder for downloads: $KAGGLEKIT_DATA, else ./data."""
    return Path(os.environ.get(DATA_ENV, "data"))


def in_kaggle_notebook() -> bool:
    """Return whether this process runs in a Kaggle notebook ($KAGGLE_KERNEL_RUN_TYPE is set)."""
    return bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE"))


def file_digest(path: str | os.PathLike, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Return the hex digest of a file's content."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def set_aside(path: str | os.PathLike, why: str, problem: str = "cannot be read") -> Path:
    """Return the new name of `path` after renaming it ``NAME.corrupt-<timestamp>`` (kept, never deleted); logs why."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, target)
    from .logs import logger

    logger.warning(f"{path} {problem} ({why}); set aside as {target.name}, and what it held is done again.")
    return target
