"""Batches for Keras from a `LabelTable`: decode on all cores, cache resized images on disk.

`ImageBatches` is a `keras.utils.PyDataset`, so it works with every Keras backend
(tensorflow, jax, torch) and never imports TensorFlow itself. Each batch is
decoded by a pool of threads (the JPEG and PNG decoders release the GIL), written
into one preallocated uint8 array, and, when a cache is on, into a flat file of
resized images on disk that later epochs, runs and processes read instead of
decoding again. The next batches are decoded in the background while the current
one trains, and memory stays bounded: only a few batches are in memory at once.

Augmentation is not done here: `augmentation()` returns Keras preprocessing layers
that go inside the model, so they run on the accelerator and only in training.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import ConfigError, ImageError, list_offenders
from .flips import FlipCheck, flip_check  # noqa: F401 (the flip decision, kept importable from here)
from .hardware import cores
from .images import DECODER_VERSION, as_size, check_resize, load_image, scan_images
from .io import CACHE_ENV, default_cache_dir
from .logs import logger
from .table import LabelTable

if TYPE_CHECKING:
    import keras

try:  # a PyDataset when Keras is importable (it always is for training)
    from keras.callbacks import Callback as _Callback
    from keras.utils import PyDataset as _Base
except ImportError:  # pragma: no cover - Keras is a hard dependency
    _Base = _Callback = object

_INDEX = np.dtype([("size", "<i8"), ("mtime", "<i8"), ("crc", "<u4"), ("state", "<u4")])
_EMPTY, _FILLED, _BAD = 0, 1, 2


def clear_cache(root: str | os.PathLike | None = None) -> int:
    """Return the bytes freed by deleting the image cache folder (default: `default_cache_dir()`)."""
    root = Path(root) if root is not None else default_cache_dir()
    if not root.is_dir():
        return 0
    freed = sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file())
    shutil.rmtree(root)
    return freed


def _create_exclusively(path: Path, nbytes: int) -> None:
    """Create `path` as a zero-filled (sparse) file of `nbytes`, unless it already exists."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    with open(tmp, "wb") as fh:
        fh.truncate(nbytes)
    try:
        os.link(tmp, path)  # fails if another process won the race: keep theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


class ImageCache:
    """Resized images of one set of files at one (size, resize mode), kept in a flat file on disk.

    Layout under `root/<h>x<w>-<resize>/`: `<key>.pixels` (N slots of h*w*3 bytes),
    `<key>.index` (per slot: source size, source mtime, Adler-32 checksum of the pixels, state)
    and `<key>.json` (what the key stands for). A slot is written pixels first, then
    its index record; a read checks the state, the source's size and mtime and the
    checksum, so a changed source or a run killed mid-write never serves wrong pixels:
    the entry is simply decoded again. Several processes may share a cache.
    """

    def __init__(self, root: str | os.PathLike, paths: Sequence[str], size: tuple[int, int], resize: str) -> None:
        self.size, self.resize = size, resize
        unique = sorted(set(paths))
        self.slot_of = {p: i for i, p in enumerate(unique)}
        digest = hashlib.sha1()
        digest.update(f"{DECODER_VERSION}|{size}|{resize}\n".encode())
        for p in unique:
            digest.update(p.encode("utf-8", "surrogateescape") + b"\n")
        self.key = digest.hexdigest()[:20]
        self.folder = Path(root) / f"{size[0]}x{size[1]}-{resize}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n = len(unique)
        self.nbytes = size[0] * size[1] * 3
        self.pixels_path = self.folder / f"{self.key}.pixels"
        self.index_path = self.folder / f"{self.key}.index"
        meta = self.folder / f"{self.key}.json"
        if not meta.exists():
            from .io import atomic_write_text

            atomic_write_text(meta, json.dumps({
                "decoder": DECODER_VERSION, "size": list(size), "resize": resize, "images": self.n,
                "first_paths": unique[:3],
            }, indent=1))
        _create_exclusively(self.pixels_path, self.n * self.nbytes)
        _create_exclusively(self.index_path, self.n * _INDEX.itemsize)
        self._pixels = os.open(self.pixels_path, os.O_RDWR)
        self._index = os.open(self.index_path, os.O_RDWR)
        raw = os.pread(self._index, self.n * _INDEX.itemsize, 0)
        self.index = np.frombuffer(bytearray(raw), dtype=_INDEX).copy()
        if len(self.index) != self.n:  # a foreign or damaged index: start it afresh
            self.index = np.zeros(self.n, dtype=_INDEX)

    @staticmethod
    def estimate_bytes(n: int, size: tuple[int, int]) -> int:
        """Return the bytes a full cache of `n` images at `size` takes on disk."""
        return n * (size[0] * size[1] * 3 + _INDEX.itemsize)

    def known(self, slot: int, fingerprint: tuple[int, int]) -> int:
        """Return the slot's state (empty, filled, bad) when it matches the source's fingerprint."""
        rec = self.index[slot]
        if (int(rec["size"]), int(rec["mtime"])) != fingerprint:
            return _EMPTY
        return int(rec["state"])

    def read(self, slot: int, out: np.ndarray) -> bool:
        """Return True after reading the slot's pixels into `out` (False when they fail the checksum)."""
        view = memoryview(out.reshape(-1))
        got = os.preadv(self._pixels, [view], slot * self.nbytes)
        return got == self.nbytes and zlib.adler32(view) == int(self.index[slot]["crc"])

    def write(self, slot: int, pixels: np.ndarray | None, fingerprint: tuple[int, int]) -> None:
        """Store a slot's pixels (None marks the source unreadable), then its index record."""
        rec = np.zeros(1, dtype=_INDEX)
        rec["size"], rec["mtime"] = fingerprint
        if pixels is None:
            rec["state"] = _BAD
        else:
            data = memoryview(np.ascontiguousarray(pixels).reshape(-1))
            os.pwrite(self._pixels, data, slot * self.nbytes)
            rec["crc"], rec["state"] = zlib.adler32(data), _FILLED
        os.pwrite(self._index, rec.tobytes(), slot * _INDEX.itemsize)
        self.index[slot] = rec[0]

    def close(self) -> None:
        """Close the cache files."""
        for name in ("_pixels", "_index"):
            fd = getattr(self, name, None)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def _check_arguments(table: Any, resize: str, batch_size: Any, unreadable: str) -> None:
    """Raise ConfigError naming the first `ImageBatches` argument that cannot be used."""
    if not isinstance(table, LabelTable):
        raise ConfigError(
            f"ImageBatches needs a kagglekit.LabelTable (got {type(table).__name__}); "
            "build one with kagglekit.layout readers or LabelTable.from_records."
        )
    check_resize(resize)
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be at least 1.")
    if unreadable not in ("skip", "black"):
        raise ConfigError(f"unreadable={unreadable!r}: use 'skip' (drop the rows) or 'black' (keep them, black images).")


@dataclass
class _Rows:
    """The rows an `ImageBatches` serves (positions in its `.table`): files, targets, and those it cannot read."""

    paths: list[str]  # absolute image paths
    fingerprints: np.ndarray  # (size, mtime) of each file, as scanned
    slots: np.ndarray | None  # each row's slot in the cache (None without one)
    y: np.ndarray | None  # the targets (None: images only)
    black: dict[int, str]  # rows served as black images -> why (the scan's, then files failing to decode)
    skipped: list[tuple[str, str]]  # (path, reason) of the table's rows dropped (unreadable="skip")
    failures: list[tuple[str, str]] = field(default_factory=list)  # decode errors found after the scan


@dataclass
class _Decoding:
    """The background decoding: its threads, this epoch's order and the batches decoded ahead of it."""

    workers: int
    prefetch: int
    order: np.ndarray
    lock: threading.Lock = field(default_factory=threading.Lock)
    pool: ThreadPoolExecutor | None = None
    pending: dict[int, tuple[np.ndarray, list[Future], np.ndarray]] = field(default_factory=dict)
    last: int = -1  # the batch served last (-1: none this epoch)


class ImageBatches(_Base):
    """Keras-ready batches `(x, y)` of a LabelTable's images, decoded on all cores and cached.

    Args:
        table: the images (and labels) to serve.
        size: target size, an int or (height, width).
        batch_size: images per batch; the last batch may be shorter.
        targets: "auto" (the table's default kind), "int", "onehot", "multihot", or None
            for images only. Unlabelled tables give images only.
        shuffle: serve rows in a new seeded order each epoch (reproducible from `seed`).
        seed: the shuffling seed.
        cache: "auto" (a `.kagglekit-cache` folder, or $KAGGLEKIT_CACHE, when the disk
            has room), a folder, or None for no cache.
        resize: "squash", "crop" or "pad" (see `kagglekit.images`).
        workers: decoding threads (default: all cores).
        prefetch: batches decoded ahead in the background when reading in order.
        strict: raise ImageError listing unreadable files instead of skipping them.
        unreadable: what happens to a row whose image cannot be decoded: "skip" (the row
            is dropped: training) or "black" (the row is kept and served as a black
            image: prediction, where every id needs a row); `.served_black` lists them.
        report: CSV path for the list of skipped files (default: in the cache folder,
            or the working folder without a cache).
        verbose: print the count of skipped files.

    `x` is uint8 (n, h, w, 3) holding raw pixels 0..255. `.table` is the table
    actually served (unreadable images dropped unless `unreadable="black"`); `.skipped`
    lists the dropped ones with reasons. An image that passes the scan but fails to
    decode later is served black (and listed in `.served_black`) in either mode.
    With Keras, pass `shuffle=False` to `fit`: the batches are already shuffled per
    epoch by `seed`, and reading in order lets the next batches decode in advance.
    """

    def __init__(
        self,
        table: LabelTable,
        size: int | Sequence[int],
        batch_size: int = 32,
        targets: str | None = "auto",
        shuffle: bool = False,
        seed: int = 0,
        cache: str | os.PathLike | None = "auto",
        resize: str = "squash",
        workers: int | None = None,
        *,
        prefetch: int = 2,
        strict: bool = False,
        report: str | os.PathLike | None = None,
        verbose: bool = True,
        unreadable: str = "skip",
    ) -> None:
        if _Base is not object:
            super().__init__()
        _check_arguments(table, resize, batch_size, unreadable)
        self.size = as_size(size)
        self.batch_size = int(batch_size)
        self.resize = resize
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        workers = int(workers) if workers else cores()
        keep_all = unreadable == "black"
        all_paths = [os.path.abspath(p) for p in table.paths]
        self._cache = self._open_cache(cache, all_paths, len(table))
        self.scan = self._scan(all_paths, workers, report, strict=strict, verbose=verbose, keep_all=keep_all)
        keep = np.arange(len(table)) if keep_all else np.flatnonzero(self.scan.ok)
        self.table = table if len(keep) == len(table) else table.take(keep)
        self._rows = self._served_rows(all_paths, keep, targets, keep_all)
        self.targets = targets if self._rows.y is not None else None
        self._decoding = _Decoding(workers=workers, prefetch=max(0, int(prefetch)), order=self._make_order())

    def _scan(self, paths: list[str], workers: int, report: str | os.PathLike | None, *, strict: bool,
              verbose: bool, keep_all: bool) -> Any:
        """Return the scan of `paths` (files the cache holds as good are not opened); raise ImageError when none decodes."""
        known_good = None
        if self._cache is not None:
            c, slot_of = self._cache, self._cache.slot_of
            known_good = lambda i, fp: c.known(slot_of[paths[i]], fp) == _FILLED  # noqa: E731
        if report is None:
            where = self._cache.folder if self._cache is not None else Path.cwd()
            report = where / "skipped-images.csv"
        scan = scan_images(paths, strict=strict, report=report, workers=workers,
                           verbose=verbose, known_good=known_good,
                           action="served as black images" if keep_all else "skipped")
        if not scan.ok.any():
            raise ImageError(
                f"None of the {len(paths)} images can be decoded (e.g. {list_offenders(scan.bad, 3)}); "
                "check the image folder."
            )
        return scan

    def _served_rows(self, all_paths: list[str], keep: np.ndarray, targets: str | None, keep_all: bool) -> "_Rows":
        """Return the rows served: the table's rows at `keep` (positions in `all_paths`), from `.scan` and `.table`."""
        scan = self.scan
        paths = [all_paths[i] for i in keep]
        why = dict(scan.problems)
        labelled = targets is not None and any(len(x) for x in self.table.labels)
        rows = _Rows(
            paths=paths,
            fingerprints=scan.fingerprints[keep],
            slots=(np.array([self._cache.slot_of[p] for p in paths], dtype=np.int64)
                   if self._cache is not None else None),
            y=self.table.targets(targets) if labelled else None,
            # served rows known to be unreadable -> the reason (from the scan; decoding adds the files that fail later)
            black={int(r): why[all_paths[i]] for r, i in enumerate(keep) if not scan.ok[i]},
            skipped=[] if keep_all else list(scan.problems),
        )
        scan.fingerprints = None  # kept above for the served rows only
        return rows

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Return (path, reason) of the table's rows dropped because their image cannot be decoded."""
        return self._rows.skipped

    @property
    def failures(self) -> list[tuple[str, str]]:
        """Return (path, error) of the images that passed the scan but failed to decode when served."""
        return self._rows.failures

    @property
    def decode_workers(self) -> int:
        """Return the number of decoding threads."""
        return self._decoding.workers

    @property
    def prefetch(self) -> int:
        """Return the number of batches decoded ahead in the background when reading in order."""
        return self._decoding.prefetch

    # ---------------------------------------------------------------- cache
    def _open_cache(self, cache, paths: list[str], n: int) -> ImageCache | None:
        if cache is None or cache is False:
            return None
        auto = isinstance(cache, str) and cache == "auto"
        root = default_cache_dir() if auto else Path(cache)
        need = ImageCache.estimate_bytes(len(set(paths)), self.size)
        try:
            root.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(root).free
        except OSError as exc:
            if auto:
                logger.warning("kagglekit: no image cache (%s is not writable: %s)", root, exc)
                return None
            raise ConfigError(f"cache={str(cache)!r} cannot be used ({exc}); give a writable folder or None.") from None
        if auto and need > 0.5 * free:
            logger.warning(
                f"kagglekit: no image cache: {n} images at {self.size[0]}x{self.size[1]} need "
                f"{need / 2**30:.1f} GiB and {root} has {free / 2**30:.1f} GiB free; pass cache=<folder> "
                f"or set {CACHE_ENV} to a bigger disk."
            )
            return None
        return ImageCache(root, paths, self.size, self.resize)

    @property
    def cache(self) -> ImageCache | None:
        """The on-disk cache in use, or None."""
        return self._cache

    # ---------------------------------------------------------------- order
    def _make_order(self) -> np.ndarray:
        n = len(self._rows.paths)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch `epoch`'s order next (orders depend only on seed and epoch); the epoch served already is kept."""
        with self._decoding.lock:
            if int(epoch) == self.epoch:  # its order, and the batches decoded ahead in it, stay
                return
            self.epoch = int(epoch)
            self._decoding.order = self._make_order()
            self._drop_pending()

    def on_epoch_end(self) -> None:
        """Advance to the next epoch: a new seeded order when shuffling."""
        self.set_epoch(self.epoch + 1)

    def order(self) -> np.ndarray:
        """Return the row positions (in `.table`) served this epoch, in order."""
        return self._decoding.order.copy()

    # ------------------------------------------------------------ batching
    def __len__(self) -> int:
        return (len(self._rows.paths) + self.batch_size - 1) // self.batch_size

    @property
    def num_batches(self) -> int:
        return len(self)

    def _pool_get(self) -> ThreadPoolExecutor:
        decoding = self._decoding
        if decoding.pool is None:
            decoding.pool = ThreadPoolExecutor(decoding.workers, thread_name_prefix="kagglekit-decode")
        return decoding.pool

    def _drop_pending(self) -> None:
        for _, futures, _rows in self._decoding.pending.values():
            for f in futures:
                f.cancel()
        self._decoding.pending.clear()
        self._decoding.last = -1

    def _fill(self, out: np.ndarray, rows: np.ndarray, start: int, stop: int) -> None:
        """Put the images of rows[start:stop] into out[start:stop] (cache first, else decode)."""
        cache, served = self._cache, self._rows
        for j in range(start, stop):
            r = int(rows[j])
            if r in served.black:  # known unreadable (unreadable="black"): a black image, no decoding
                out[j] = 0
                continue
            path, fp = served.paths[r], (int(served.fingerprints[r, 0]), int(served.fingerprints[r, 1]))
            slot = int(served.slots[r]) if cache is not None else -1
            if cache is not None and cache.known(slot, fp) == _FILLED and cache.read(slot, out[j]):
                continue
            try:
                load_image(path, self.size, self.resize, out=out[j])
            except ImageError as exc:
                out[j] = 0
                with self._decoding.lock:
                    served.failures.append((path, str(exc)))
                    served.black[r] = str(exc)
                logger.warning("kagglekit: %s (served as a black image)", exc)
                if cache is not None:
                    cache.write(slot, None, fp)
                continue
            if cache is not None:
                try:
                    cache.write(slot, out[j], fp)
                except OSError as exc:  # a full disk must not stop training
                    logger.warning("kagglekit: image cache write failed (%s); continuing without it", exc)
                    self._cache = cache = None

    def _submit(self, index: int) -> tuple[np.ndarray, list[Future], np.ndarray]:
        lo = index * self.batch_size
        rows = self._decoding.order[lo:lo + self.batch_size]
        h, w = self.size
        out = np.empty((len(rows), h, w, 3), dtype=np.uint8)
        pool = self._pool_get()
        parts = min(len(rows), self._decoding.workers * 2)
        bounds = np.linspace(0, len(rows), parts + 1).astype(int)
        futures = [pool.submit(self._fill, out, rows, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        return out, futures, rows

    def _batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (images, row positions) of batch `index` in this epoch's order."""
        decoding = self._decoding
        with decoding.lock:
            job = decoding.pending.pop(index, None)
            if job is None:
                job = self._submit(index)
            sequential = index == decoding.last + 1 or index == 0
            decoding.last = index
            if sequential and decoding.prefetch:
                for nxt in range(index + 1, min(index + 1 + decoding.prefetch, len(self))):
                    if nxt not in decoding.pending:
                        decoding.pending[nxt] = self._submit(nxt)
            # never hold more than the prefetch window
            for stale in [k for k in decoding.pending if not index < k <= index + decoding.prefetch]:
                for f in decoding.pending.pop(stale)[1]:
                    f.cancel()
        out, futures, rows = job
        for f in futures:
            f.result()
        return out, rows

    def __getitem__(self, index: int):
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"batch {index} is out of range: there are {n} batches.")
        x, rows = self._batch(index)  # images and targets of the same rows, even if the epoch moves on
        if self._rows.y is None:
            return (x,)
        return x, self._rows.y[rows]

    @property
    def served_black(self) -> list[tuple[str, str, str]]:
        """Return (id, path, reason) of the rows served as black images because their file cannot be decoded.

        With ``unreadable="black"`` the files the scan found unreadable are listed from
        the start; files that fail only when decoded join once their batch is served.
        """
        ids = self.table.ids
        return [(ids[r], self._rows.paths[r], why) for r, why in sorted(self._rows.black.items())]

    def epoch_batch(self, epoch: int, index: int):
        """Return batch `index` of epoch `epoch` (that epoch's seeded order), as ``self[index]`` returns it."""
        self.set_epoch(epoch)
        return self[index]

    def images(self, index: int) -> np.ndarray:
        """Return the uint8 images of batch `index` (no targets)."""
        return self[index][0]

    def targets_in_order(self) -> np.ndarray | None:
        """Return the targets of this epoch's rows in serving order (None without targets)."""
        return None if self._rows.y is None else self._rows.y[self._decoding.order]

    def warm(self, progress: bool = True) -> "ImageBatches":
        """Return self after decoding every image into the cache (a cold pass, with progress)."""
        it = range(len(self))
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"decode {self.size[0]}x{self.size[1]}", unit="batch")
        for i in it:
            self._batch(i)
        return self

    def close(self) -> None:
        """Stop the decoding threads and close the cache files."""
        with self._decoding.lock:
            self._drop_pending()
        if self._decoding.pool is not None:
            self._decoding.pool.shutdown(wait=True, cancel_futures=True)
            self._decoding.pool = None
        if self._cache is not None:
            self._cache.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._decoding.pool is not None:
                self._decoding.pool.shutdown(wait=False, cancel_futures=True)
        except Exception:
            pass

    def __repr__(self) -> str:
        return (
            f"ImageBatches({len(self._rows.paths)} images, {len(self)} batches of {self.batch_size}, "
            f"size={self.size}, resize={self.resize!r}, shuffle={self.shuffle}, "
            f"cache={str(self._cache.folder) if self._cache is not None else None})"
        )


def augmentation(
    flip: str | None = "horizontal",
    rotation: float = 0.05,
    zoom: float = 0.1,
    contrast: float = 0.1,
    seed: int | None = None,
) -> keras.Sequential:
    """Return a keras.Sequential of preprocessing layers (flip, rotation, zoom, contrast).

    Put it first in the model: the layers run on the accelerator, only in training
    (they pass images through unchanged at inference). Set a factor to 0 (or `flip`
    to None) to leave that layer out. Pixels are expected in 0..255.
    """
    import keras

    if flip not in (None, "horizontal", "vertical", "horizontal_and_vertical"):
        raise ConfigError(f"flip={flip!r}: use 'horizontal', 'vertical', 'horizontal_and_vertical' or None.")
    for name, value in (("rotation", rotation), ("zoom", zoom), ("contrast", contrast)):
        if not 0 <= float(value) < 1:
            raise ConfigError(f"{name}={value!r} must be a fraction in [0, 1), e.g. 0.1.")
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name="augmentation")


def keras_input(batches: keras.utils.PyDataset, epochs: tuple[int, int] | None = None) -> Any:
    """Return what to hand Keras' ``fit``/``evaluate``/``predict`` for a PyDataset of batches.

    With the jax and torch backends that is `batches` itself. With TensorFlow it is
    a ``tf.data.Dataset`` that reads batch ``i`` through ``tf.numpy_function``: Keras
    would feed a PyDataset through ``Dataset.from_generator``, which on CPU spends as
    much time in the kernel (fresh pages for every step's tensors) as in compute;
    measured on 2 cores with resnet_tiny at 28 px: 306 images/s through the
    generator, 624 through this pipeline, 625 from in-memory arrays. Batches are
    read in order, so ImageBatches' background decoding keeps working.

    Without `epochs` the dataset is one pass (``evaluate``, ``predict``; for ``fit``
    the order of an epoch is then set by :class:`EpochOrder`). With ``epochs=(first,
    end)`` (training: give ``fit`` ``steps_per_epoch=len(batches)``) it serves epochs
    ``first`` .. ``end - 1`` back to back from one iterator, element ``k`` being batch
    ``k % n`` of epoch ``k // n`` in that epoch's seeded order (:meth:`ImageBatches.epoch_batch`).
    Keras makes a new iterator every epoch for a one-pass dataset, and dropping the
    old one (whose prefetch was already reading) stalls the first step of about
    half the epochs; one iterator for the whole fit has no such stall. The training
    pipeline has no tf.data prefetch, not even tf.data's injected one (ImageBatches
    decodes ahead on its own), so no thread is reading when a fit stops early and its
    iterator is dropped.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    n = len(batches)

    def arrays(item):
        return tuple(np.asarray(a) for a in (item if isinstance(item, tuple) else (item,)))

    def load(k):
        k = int(k)
        return arrays(batches[k] if epochs is None else batches.epoch_batch(k // n, k % n))

    first = arrays(batches[0])
    dtypes = [tf.as_dtype(a.dtype) for a in first]
    shapes = [(None, *a.shape[1:]) for a in first]

    def fetch(i):
        parts = tf.numpy_function(load, [i], dtypes, stateful=True)
        parts = tuple(tf.ensure_shape(p, s) for p, s in zip(parts, shapes))
        return parts if len(parts) > 1 else parts[0]

    if epochs is None:
        return tf.data.Dataset.range(n).map(fetch).prefetch(1)
    start, end = int(epochs[0]), int(epochs[1])
    # No tf.data prefetch here: ImageBatches already decodes the next batches in its own threads, and a prefetch
    # thread would be inside `load` when training stops, so dropping the iterator (after fit, or at exit) waits
    # for it: measured 40-46 s at the end of 5-minute runs.
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False  # tf.data would add the prefetch back on its own
    return tf.data.Dataset.range(start * n, max(start + 1, end) * n).map(fetch).with_options(options)


class EpochOrder(_Callback):
    """Keras callback: serve epoch ``e``'s seeded order at the start of epoch ``e`` (``batches.set_epoch``).

    This makes the order depend only on the seed and the epoch number, also for a
    run resumed at a later epoch and for the tf.data pipeline of :func:`keras_input`.
    """

    def __init__(self, batches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        setter = getattr(self.batches, "set_epoch", None)
        if setter is not None:
            setter(epoch)
