"""Flips auto / on / off at equal time: `kagglekit run --time T --weights none` with no flag, --flip and --no-flip.

    python benchmarks/flips.py                       # Fashion-MNIST, Tux Paint stamps, digits; --time 1m each
    python benchmarks/flips.py --time 2m --only fashion --n-train 3000

Data sets (each written as a competition in the digits layout: train/<id>.png, train.csv `id,label`,
test/<id>.png, sample_submission.csv; the held-back test labels scored by accuracy with scikit-learn):

* fashion: Fashion-MNIST's training images (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist):
  a mirrored garment is the same garment.
* stamps: Tux Paint's stamps (Debian's tuxpaint-stamps-default, /usr/share/tuxpaint/stamps), labelled by their
  folder (animals, food, vehicles, ...; folders with 20+ pictures), on white, 64x64: a mirrored stamp keeps its
  category. Falls back to crops of scikit-learn's and scikit-image's sample photos labelled by photo.
* digits: scikit-learn's handwritten digits at 32x32: a mirrored 2 is no 2.

Each run's flip decision is read from its log. One run per setting: differences of a point or two are noise.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FASHION = Path("/usr/share/datasets/fashion-mnist")
STAMPS = Path("/usr/share/tuxpaint/stamps")


def fashion(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (n grey 28x28 images, labels) sampled from Fashion-MNIST's training set."""
    from kagglekit.testing.competitions import fashion_mnist

    x, y, _, _ = fashion_mnist(FASHION)
    rows = np.random.default_rng(0).permutation(len(x))[:n]
    return x[rows], y[rows].astype(int)


def stamps(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (up to n RGB 64x64 Tux Paint stamps on white, folder labels), or sample-photo crops without the package."""
    if not STAMPS.is_dir():
        return photos(n)
    xs, ys = [], []
    folders = sorted(p for p in STAMPS.iterdir() if p.is_dir())
    for k, folder in enumerate(folders):
        files = sorted(folder.rglob("*.png"))
        if len(files) < 20:
            continue
        for path in files:
            im = Image.open(path).convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            bg.alpha_composite(im)
            xs.append(np.asarray(bg.convert("RGB").resize((64, 64), Image.BILINEAR)))
            ys.append(k)
    rows = np.random.default_rng(0).permutation(len(xs))[:n]
    _, y = np.unique(np.asarray(ys)[rows], return_inverse=True)
    return np.stack(xs)[rows], y


def photos(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return n 48x48 crops of scikit-learn's and scikit-image's sample photos, labelled by their photo."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    from kagglekit.images import resize_images

    pics = [np.asarray(p) for p in load_sample_images().images]
    pics += [np.asarray(getattr(skdata, k)()) for k in ("astronaut", "coffee", "chelsea", "rocket")]
    rng, xs = np.random.default_rng(0), []
    for i in range(n):
        p = pics[i % len(pics)]
        s = int(rng.integers(60, min(p.shape[:2]) - 1))
        t, left = int(rng.integers(0, p.shape[0] - s)), int(rng.integers(0, p.shape[1] - s))
        xs.append(resize_images(p[None, t:t + s, left:left + s], 48)[0])
    return np.stack(xs), np.arange(n) % len(pics)


def digits_set(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (n RGB 32x32 handwritten digits, labels) from scikit-learn."""
    from kagglekit.demo import digits, to_rgb

    images, labels = digits(min(n, 1797))
    return np.stack([np.asarray(to_rgb(im, 32)) for im in images]), labels.astype(int)


def write(root: Path, x: np.ndarray, y: np.ndarray, test_share: float = 0.2) -> pd.DataFrame:
    """Return the held-back answers after writing (x, y) as a digits-layout competition in `root`."""
    n_test = int(len(x) * test_share)
    for sub in ("train", "test"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, label) in enumerate(zip(x, y)):
        sub = "test" if i < n_test else "train"
        Image.fromarray(np.asarray(img, dtype="uint8")).convert("RGB").save(root / sub / f"{i}.png")
        rows.append((sub, str(i), str(label)))
    frame = pd.DataFrame(rows, columns=["sub", "id", "label"])
    frame[frame["sub"] == "train"][["id", "label"]].to_csv(root / "train.csv", index=False)
    answers = frame[frame["sub"] == "test"][["id", "label"]].reset_index(drop=True)
    answers.assign(label=answers["label"].iloc[0]).to_csv(root / "sample_submission.csv", index=False)
    return answers


def run(comp: Path, workdir: Path, budget: str, flag: list[str]) -> tuple[float, float, str]:
    """Return (test accuracy, seconds, the flip decision's log line) of one `kagglekit run`."""
    from sklearn.metrics import accuracy_score

    cmd = [sys.executable, "-m", "kagglekit", "run", str(comp), "--workdir", str(workdir), "--weights", "none",
           "--time", budget, "--ledger", str(workdir.parent / "ledger.csv"), *flag]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    log = done.stdout + done.stderr
    (workdir.parent / f"{workdir.name}.log").write_text(log)
    if done.returncode != 0:
        raise RuntimeError(f"kagglekit run failed (exit {done.returncode}):\n{log[-3000:]}")
    answers = pd.read_csv(comp / "answers.csv", dtype=str)
    sub = pd.read_csv(next(workdir.glob("submission*.csv")), dtype=str).set_index("id").loc[answers["id"]]
    said = [line for line in log.splitlines() if "augmentation: flip" in line]
    return accuracy_score(answers["label"], sub["label"]), seconds, (said[0].split("augmentation: ", 1)[1] if said else "")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time", default="1m", help="kagglekit's --time budget per run (default 1m)")
    ap.add_argument("--n-train", type=int, default=2000, help="images per data set (train + 20%% test)")
    ap.add_argument("--only", help="comma-separated: fashion, stamps, digits")
    ap.add_argument("--out", help="folder for the competitions and runs (default: a temporary folder)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sets = {"fashion": fashion, "stamps": stamps, "digits": digits_set}
    names = args.only.split(",") if args.only else list(sets)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out or tmp)
        for name in names:
            x, y = sets[name](args.n_train)
            comp = base / name / "data"
            write(comp, x, y).to_csv(comp / "answers.csv", index=False)
            for setting, flag in (("auto", []), ("on", ["--flip"]), ("off", ["--no-flip"])):
                acc, seconds, said = run(comp, base / name / setting, args.time, flag)
                said = re.sub(r"\s+", " ", said)
                lines.append(f"| {name} ({len(x)} images) | {setting} | {acc:.4f} | {seconds:.0f} | {said} |")
                print(lines[-1], flush=True)
    print(f"\nflips at --time {args.time}, --weights none, {os.cpu_count()} CPU cores, one run each\n")
    print("| data | flips | test accuracy | s | the decision (auto) |\n| --- | --- | --- | --- | --- |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
