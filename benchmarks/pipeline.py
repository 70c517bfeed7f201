"""Input-pipeline benchmark: kagglekit's ImageBatches against Keras' own loaders.

Makes real-photo JPEGs (~500x375, quality 75-95) from the photos scikit-learn and
scikit-image ship, in two class folders, then iterates one epoch in batches of 64
with each loader and prints images/s and the ratio to row 1, per target size:

1. keras.utils.image_dataset_from_directory (tf.data, parallel decode)
2. Keras' legacy ImageDataGenerator.flow_from_directory
3. kagglekit ImageBatches, cold pass (empty cache)
4. kagglekit ImageBatches, cached pass (a new ImageBatches on the same cache, as a later run)
5. the decode limit: Pillow open + decode + resize in a tight loop, times the cores

Extra rows compare decoders (one thread: Pillow full decode, Pillow draft,
simplejpeg with decode-time downscaling) and thread pools (kagglekit's own pool vs
grain, both without a cache). Peak memory (ru_maxrss) of a kagglekit pass is
measured in fresh subprocesses at several data-set sizes.

    python benchmarks/pipeline.py                       # 2,000 images, sizes 224,128,64
    python benchmarks/pipeline.py --n 300 --rss-n 300,600   # a quick smoke run

Not a test: it asserts nothing and prints a markdown table.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

BATCH = 64


# ------------------------------------------------------------------ data
def source_photos() -> list[np.ndarray]:
    """Return the real photos scikit-learn and scikit-image ship (RGB uint8)."""
    from sklearn.datasets import load_sample_images
    import skimage.data as sk

    photos = list(load_sample_images().images)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                 "retina", "camera", "coins", "moon", "clock"):
        try:
            a = getattr(sk, name)()
        except Exception:  # an image that would need a download: skip it
            continue
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        photos.append(np.ascontiguousarray(a[..., :3]))
    return photos


def make_images(folder: Path, n: int, seed: int = 0) -> Path:
    """Return `folder` holding `n` JPEGs (~500x375) in class folders `a/` and `b/` (made once)."""
    done = folder / f".complete-{n}"
    if done.exists():
        return folder
    photos = source_photos()
    rng = np.random.default_rng(seed)
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True, exist_ok=True)
    for k in range(n):
        src = int(rng.integers(len(photos)))
        photo = photos[src]
        h, w = photo.shape[:2]
        ch = int(min(h, w * 3 / 4) * rng.uniform(0.45, 1.0))
        cw = int(ch * 4 / 3)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        tw = int(500 * rng.uniform(0.95, 1.05))
        im = Image.fromarray(photo[y:y + ch, x:x + cw]).resize((tw, round(tw * 0.75)), Image.BICUBIC)
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        cls = "a" if src % 2 == 0 else "b"
        im.save(folder / cls / f"{k:06d}.jpg", "JPEG", quality=int(rng.integers(75, 96)))
    done.touch()
    return folder


def list_files(folder: Path, n: int) -> list[tuple[str, str]]:
    """Return the first `n` (path, class) pairs of the data set, in name order."""
    files = sorted((p for p in folder.glob("*/*.jpg")), key=lambda p: p.name)[:n]
    return [(str(p), p.parent.name) for p in files]


def subset_dir(folder: Path, n: int, work: Path) -> Path:
    """Return a folder of symlinks to the first `n` images, in their class folders (for Keras' loaders)."""
    out = work / f"subset-{n}"
    if out.exists():
        return out
    for path, cls in list_files(folder, n):
        (out / cls).mkdir(parents=True, exist_ok=True)
        os.symlink(path, out / cls / Path(path).name)
    return out


# --------------------------------------------------------------- loaders
def run_keras_dataset(folder: Path, size: int) -> float:
    import keras

    t = time.perf_counter()
    ds = keras.utils.image_dataset_from_directory(folder, image_size=(size, size), batch_size=BATCH,
                                                  shuffle=False, verbose=False)
    n = sum(int(x.shape[0]) for x, _ in ds)
    return n / (time.perf_counter() - t), n


def run_keras_legacy(folder: Path, size: int) -> float:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    t = time.perf_counter()
    gen = ImageDataGenerator().flow_from_directory(str(folder), target_size=(size, size), batch_size=BATCH,
                                                   class_mode="binary", shuffle=False)
    n = 0
    for i in range(len(gen)):
        n += len(gen[i][0])
    return n / (time.perf_counter() - t), n


def make_table(files):
    from kagglekit.table import LabelTable

    return LabelTable.from_records([Path(p).stem for p, _ in files], [p for p, _ in files], [c for _, c in files])


def run_kagglekit(files, size: int, cache, workers=None) -> float:
    from kagglekit.pipeline import ImageBatches

    t = time.perf_counter()
    ds = ImageBatches(make_table(files), size, batch_size=BATCH, cache=cache, workers=workers, verbose=False)
    n = 0
    for i in range(len(ds)):
        n += len(ds[i][0])
    ds.close()
    return n / (time.perf_counter() - t), n


def run_grain(files, size: int, workers: int) -> float:
    """kagglekit's decoder driven by grain's threaded MapDataset instead of kagglekit's pool."""
    import grain

    from kagglekit.images import load_image

    table = make_table(files)
    y = table.targets()
    paths = table.paths
    t = time.perf_counter()
    ds = (grain.MapDataset.range(len(paths))
          .map(lambda i: (load_image(paths[i], size), y[i]))
          .batch(BATCH)
          .to_iter_dataset(grain.ReadOptions(num_threads=workers, prefetch_buffer_size=2 * BATCH)))
    n = sum(len(x) for x, _ in ds)
    return n / (time.perf_counter() - t), n


def one_thread(fn, paths, repeat_until: float = 1.0) -> float:
    """Return images/s of `fn(path)` in one thread (at least one pass, then until `repeat_until` s)."""
    t = time.perf_counter()
    n = 0
    while True:
        for p in paths:
            fn(p)
            n += 1
        if time.perf_counter() - t > repeat_until:
            return n / (time.perf_counter() - t), n


def pillow_plain(size):
    def f(p):
        with Image.open(p) as im:
            np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
    return f


def pillow_draft(size):
    def f(p):
        with Image.open(p) as im:
            im.draft("RGB", (size, size))
            np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
    return f


def kk_load(size):
    from kagglekit.images import load_image

    return lambda p: load_image(p, size)


# ---------------------------------------------------------------- memory
def _vm(field: str) -> float:
    """Return a /proc/self/status memory figure in MiB (VmRSS now, VmHWM peak); ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_rss(folder: str, n: int, size: int) -> None:
    """(subprocess) Print RSS in MiB after imports and the peak over a cold and a cached pass over `n` images."""
    from kagglekit.pipeline import ImageBatches

    files = list_files(Path(folder), n)
    table = make_table(files)
    base = _vm("VmRSS")
    try:  # start the peak count here, so the imports' own peak does not hide the pipeline's
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):  # a cold pass, then a cached one (as a later run)
            ds = ImageBatches(table, size, batch_size=BATCH, cache=cache, verbose=False)
            for i in range(len(ds)):
                ds[i]
            ds.close()
    print(f"RSS {len(files)} {base:.0f} {_vm('VmHWM'):.0f}")


def measure_rss(folder: Path, n: int, size: int) -> tuple[int, float, float]:
    out = subprocess.run([sys.executable, __file__, "--child-rss", str(folder), str(n), str(size)],
                         capture_output=True, text=True, check=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("RSS ")][-1].split()
    return int(line[1]), float(line[2]), float(line[3])


# ------------------------------------------------------------------ main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="images in the timed epoch (default 2000)")
    ap.add_argument("--sizes", default="224,128,64", help="target sizes, comma-separated")
    ap.add_argument("--out", default=None, help="folder for the generated images (kept and reused); default a temp folder")
    ap.add_argument("--rss-n", default="2000,8000", help="data-set sizes for the peak-memory runs ('' to skip)")
    ap.add_argument("--workers", type=int, default=None, help="kagglekit decoding threads (default: all cores)")
    ap.add_argument("--no-grain", action="store_true", help="skip the grain comparison")
    ap.add_argument("--skip-keras", action="store_true", help="skip rows 1-2 (a machine without TensorFlow); ratios then use row 3")
    ap.add_argument("--child-rss", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_rss:
        child_rss(args.child_rss[0], int(args.child_rss[1]), int(args.child_rss[2]))
        return

    from kagglekit.hardware import cores as default_workers

    cores = default_workers()
    workers = args.workers or cores
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rss_ns = [int(s) for s in args.rss_n.split(",") if s]
    tmp = Path(tempfile.mkdtemp(prefix="kk-bench-"))
    data = Path(args.out) if args.out else tmp / "images"
    total = max([args.n, *rss_ns])
    t = time.perf_counter()
    make_images(data, total)
    print(f"{total} JPEGs in {data} (made or reused in {time.perf_counter() - t:.0f}s); {cores} cores", flush=True)
    files = list_files(data, args.n)
    subset = subset_dir(data, args.n, tmp)
    sample = [p for p, _ in files[:100]]

    if not args.skip_keras:
        import keras  # noqa: F401  (import cost outside the timings)

    rows: dict[str, dict[int, float]] = {}
    cpu: dict[str, dict[int, float]] = {}

    def timed(name: str, size: int, fn, *a) -> None:
        # images/s from wall time; CPU ms per image (user+sys, all threads) from getrusage,
        # which moves much less than wall time when other jobs share the cores
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = r0.ru_utime + r0.ru_stime
        rate, n = fn(*a)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        rows.setdefault(name, {})[size] = rate
        cpu.setdefault(name, {})[size] = (r1.ru_utime + r1.ru_stime - c0) / max(n, 1) * 1e3
    try:
        import grain  # noqa: F401
        have_grain = not args.no_grain
    except ImportError:
        have_grain = False
    for size in sizes:
        print(f"size {size} ...", flush=True)
        if not args.skip_keras:
            timed("1. keras image_dataset_from_directory", size, run_keras_dataset, subset, size)
            timed("2. keras ImageDataGenerator.flow_from_directory", size, run_keras_legacy, subset, size)
        cache = tmp / f"cache-{size}"
        timed("3. kagglekit cold (empty cache)", size, run_kagglekit, files, size, cache, workers)
        timed("4. kagglekit cached", size, run_kagglekit, files, size, cache, workers)
        rate, n = one_thread(pillow_plain(size), sample)
        rows.setdefault(f"5. decode limit: Pillow open+decode+resize x {cores} cores", {})[size] = rate * cores
        cpu.setdefault(f"5. decode limit: Pillow open+decode+resize x {cores} cores", {})[size] = 1e3 / rate
        timed("   kagglekit, no cache, own thread pool", size, run_kagglekit, files, size, None, workers)
        if have_grain:
            timed("   kagglekit decoder in grain (threads), no cache", size, run_grain, files, size, workers)
        timed("   1 thread: Pillow full decode + resize", size, one_thread, pillow_plain(size), sample)
        timed("   1 thread: Pillow draft (reduce-on-decode) + resize", size, one_thread, pillow_draft(size), sample)
        timed("   1 thread: kagglekit load_image (simplejpeg reduce-on-decode)", size, one_thread, kk_load(size), sample)
        shutil.rmtree(cache, ignore_errors=True)

    base = rows[next(iter(rows))]
    base_cpu = cpu[next(iter(cpu))]
    head = ("| loader (" + f"{args.n} images, batch {BATCH}, {cores} cores) | "
            + " | ".join(f"{s}px img/s (x row 1)" for s in sizes) + " | "
            + " | ".join(f"{s}px CPU ms/img (row 1 / this)" for s in sizes) + " |")
    print()
    print(head)
    print("|" + " --- |" * (2 * len(sizes) + 1))
    for name, vals in rows.items():
        cells = " | ".join(f"{vals[s]:.0f} ({vals[s] / base[s]:.2f}x)" for s in sizes)
        cells += " | " + " | ".join(f"{cpu[name][s]:.2f} ({base_cpu[s] / cpu[name][s]:.2f}x)" for s in sizes)
        print(f"| {name} | {cells} |")
    print()
    cold = rows["3. kagglekit cold (empty cache)"]
    legacy = rows.get("2. keras ImageDataGenerator.flow_from_directory")
    if legacy:
        print("cold / row 2: " + ", ".join(f"{s}px {cold[s] / legacy[s]:.2f}x" for s in sizes))
    if rss_ns:
        size = sizes[0]
        print(f"\n| peak memory, kagglekit cold + cached pass at {size}px | RSS after imports | peak RSS during the passes | growth |")
        print("| --- | --- | --- | --- |")
        for n in rss_ns:
            got, base_mb, peak_mb = measure_rss(data, n, size)
            print(f"| {got} images | {base_mb:.0f} MiB | {peak_mb:.0f} MiB | {peak_mb - base_mb:+.0f} MiB |", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
