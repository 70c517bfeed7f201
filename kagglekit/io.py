"""Small file helpers: atomic writes and content hashes."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                durable: bool = True) -> Iterator[IO]:
    """Yield a file that replaces `path` only when the block finishes without error.

    With `durable` the data is flushed to disk (fsync) before the rename; writers of
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
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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


CACHE_ENV = "KAGGLEKIT_CACHE"
CACHE_DIRNAME = ".kagglekit-cache"


def default_cache_dir() -> Path:
    """Return kagglekit's cache folder: $KAGGLEKIT_CACHE, else `.kagglekit-cache` in the working folder."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.cwd() / CACHE_DIRNAME


def file_digest(path: str | os.PathLike, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Return the hex digest of a file's content."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
