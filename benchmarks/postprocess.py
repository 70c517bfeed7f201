"""Post-processing and prediction benchmark: threshold searches and the cost of TTA.

1. Global threshold search for samples-F2 over 97 candidates, iMaterialist-sized
   (228 classes): scikit-learn's `fbeta_score` per candidate, kagglekit's
   per-candidate loop (`metrics.fbeta`), and kagglekit's `search_threshold`
   (one histogram for all candidates).
2. Per-class search (`search_thresholds`, one sort per class) against a
   per-class loop scoring each candidate with `metrics.fbeta`, on fewer classes.
3. `predict` on real digit images with a small convolutional Keras model at
   tta = 0, 2, 6, 12: seconds and the ratio to tta=0.

    python benchmarks/postprocess.py            # n=3000 rows
    python benchmarks/postprocess.py --n 500    # a quick smoke run

Not a test: it asserts nothing and prints markdown tables (ratios measured side by side).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def multilabel_case(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Skewed multi-hot targets (about 3 labels per image) and noisy probabilities that track them."""
    rng = np.random.default_rng(seed)
    rate = np.clip(rng.zipf(1.6, k) / 60.0, 0.002, 0.3)
    y = (rng.random((n, k)) < rate).astype(float)
    p = np.clip(0.55 * y * rng.random((n, k)) + 0.45 * rng.random((n, k)) ** 4 + 0.1 * y, 0, 1)
    return y, p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="validation rows for the threshold searches")
    parser.add_argument("--images", type=int, default=512, help="digit images for the TTA timing")
    args = parser.parse_args()

    from sklearn.metrics import fbeta_score

    from kagglekit import metrics as M

    grid = M.DEFAULT_THRESHOLDS
    y, p = multilabel_case(args.n, 228)
    rows = []
    t_sk, sk = timed(lambda: max((fbeta_score(y, (p >= g).astype(int), beta=2, average="samples", zero_division=0), g) for g in grid))
    t_loop, loop = timed(lambda: max((M.f2(y, p, threshold=float(g)), g) for g in grid))
    t_kk, kk = timed(lambda: M.search_threshold(y, p, grid=grid, fallback=False), repeat=3)
    assert abs(kk[1] - sk[0]) < 1e-9 and abs(loop[0] - sk[0]) < 1e-9
    rows += [("scikit-learn fbeta_score per candidate", t_sk), ("kagglekit metrics.fbeta per candidate", t_loop), ("kagglekit search_threshold", t_kk)]
    print(f"\n### Global threshold search: {args.n} rows x 228 classes, {len(grid)} candidates (F2 {kk[1]:.4f} at {kk[0]:.2f})\n")
    print("| method | seconds | speed-up vs row 1 |\n| --- | ---: | ---: |")
    for name, sec in rows:
        print(f"| {name} | {sec:.3f} | {t_sk / sec:.1f}x |")

    k_small = 20
    y2, p2 = multilabel_case(args.n, k_small, seed=1)
    start = 0.3

    def per_class_loop():
        thr = np.full(k_small, start)
        best = M.f2(y2, p2, threshold=thr, fallback=True)
        for j in range(k_small):
            for g in grid:
                trial = thr.copy()
                trial[j] = g
                score = M.f2(y2, p2, threshold=trial, fallback=True)
                if score > best + 1e-12:
                    best, thr = score, trial
        return thr, best

    t_naive, naive = timed(per_class_loop)
    t_fast, fast = timed(lambda: M.search_thresholds(y2, p2, grid=grid, start=start, passes=1), repeat=3)
    assert abs(naive[1] - fast[1]) < 1e-9, (naive[1], fast[1])
    print(f"\n### Per-class threshold search, one sweep: {args.n} rows x {k_small} classes (F2 {fast[1]:.4f})\n")
    print("| method | seconds | speed-up vs row 1 |\n| --- | ---: | ---: |")
    print(f"| loop scoring each candidate with metrics.fbeta | {t_naive:.3f} | 1.0x |")
    print(f"| kagglekit search_thresholds | {t_fast:.4f} | {t_naive / t_fast:.0f}x |")

    import keras

    from kagglekit.predict import predict
    from kagglekit.testing.competitions import digits, to_rgb

    images, _ = digits(args.images)
    x = np.stack([np.asarray(to_rgb(im, 64)) for im in images])
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inputs)
    for filters in (16, 32, 64):
        h = keras.layers.Conv2D(filters, 3, strides=2, activation="relu", padding="same")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))

    class L:
        classes, multilabel, size, settings = [str(d) for d in range(10)], False, 64, {}

    L.model = model
    predict(L, x[:64], tta=12, progress=False)  # warm up (tracing)
    print(f"\n### predict with TTA: {len(x)} digit images at 64x64, backend {keras.backend.backend()}\n")
    print("| tta | views | seconds | ratio to tta=0 |\n| ---: | ---: | ---: | ---: |")
    base = None
    for tta in (0, 2, 6, 12):
        sec, _ = timed(lambda: predict(L, x, tta=tta, batch_size=64, progress=False), repeat=2)
        base = base or sec
        print(f"| {tta} | {max(1, tta)} | {sec:.3f} | {sec / base:.1f}x |")


if __name__ == "__main__":
    main()
