"""kagglekit's fine_tune against a bare `model.fit` on the same model and in-memory data; prints the ratio.

    python benchmarks/overhead.py [--n 8000] [--epochs 3] [--repeats 2]

Both sides build the same resnet_small classifier from scratch, compile AdamW with the same one-cycle
schedule and loss, and train the same epochs with the same validation data; kagglekit adds its
callbacks (history row, atomic checkpoint + optimizer state + state.json per epoch, curves PNG per
stage). Runs alternate so machine-load drift hits both sides. Target: ratio <= 1.05.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
from _data import fashion_mnist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()

    import keras
    from kagglekit import backbones as bb
    from kagglekit import learner as L
    from kagglekit.learner import OneCycle

    x, y = fashion_mnist("train", args.data)
    xt, yt = x[: args.n], y[: args.n]
    xv, yv = x[-1000:], y[-1000:]
    lr, bs, epochs = 3e-3, args.batch_size, args.epochs

    def bare(n_epochs):
        keras.utils.set_random_seed(0)
        model = bb.build_model("resnet_small", 10, weights=None, dropout=0.25)
        steps = math.ceil(len(xt) / bs)
        model.compile(optimizer=keras.optimizers.AdamW(OneCycle(lr, steps * n_epochs), weight_decay=1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        model.fit(xt, yt, batch_size=bs, epochs=n_epochs, validation_data=(xv, yv), shuffle=True, verbose=0)

    def kagglekit(n_epochs):
        with tempfile.TemporaryDirectory() as tmp:
            L.fine_tune((xt, yt), backbone="resnet_small", weights=None, valid=(xv, yv), epochs=n_epochs, lr=lr,
                        batch_size=bs, augment=False, workdir=tmp, resume=False, verbose=0, restore_best=True)

    bare(1), kagglekit(1)  # warm-up: backend start, first traces
    times = {"bare": [], "kagglekit": []}
    for rep in range(args.repeats):
        order = [("bare", bare), ("kagglekit", kagglekit)]
        for name, fn in order if rep % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            fn(epochs)
            times[name].append(time.perf_counter() - t)
    b, k = sum(times["bare"]), sum(times["kagglekit"])
    print(f"overhead backend={keras.backend.backend()} n={len(xt)} epochs={epochs} repeats={args.repeats}")
    paired = sorted(kk / bb_ for kk, bb_ in zip(times["kagglekit"], times["bare"]))
    print(f"bare model.fit {b:.1f}s | kagglekit fine_tune {k:.1f}s | ratio of totals {k / b:.3f}, "
          f"median of paired ratios {paired[len(paired) // 2]:.3f} (target <= 1.05)")
    print("per run:", {n: [round(v, 1) for v in t] for n, t in times.items()})


if __name__ == "__main__":
    main()
