"""The plan's cost model against measured training speed on this machine; prints both and their ratio.

    python benchmarks/plan_speed.py [--backbones resnet_tiny,resnet_compact,resnet_small] [--sizes 32,64] [--steps 8]

For each backbone and size: build kagglekit's classifier (from scratch, the default augmentation
inside), compile AdamW, train `--steps` steps of one batch of random pixels after two warm-up steps
(tracing), and compare the measured seconds per training image with
``kagglekit.plan.estimate_seconds_per_image`` on ``Hardware.probe()``. A ratio above 1 means the model
is optimistic on this machine; pass the measured value to ``make_plan(seconds_per_image=...)``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", default="resnet_tiny,resnet_compact,resnet_small")
    ap.add_argument("--sizes", default="32,64")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    import keras

    from kagglekit import backbones
    from kagglekit.pipeline import augmentation
    from kagglekit.plan import Hardware, estimate_seconds_per_image

    hw = Hardware.probe(keras.backend.backend())
    print(hw.describe())
    print(f"{'backbone':16} {'size':>4} {'measured ms/img':>16} {'model ms/img':>13} {'ratio':>6} {'predict ms/img':>15}")
    rng = np.random.default_rng(0)
    for name in args.backbones.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            model = backbones.build_model(name, 10, augment=augmentation())
            model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy")
            x = rng.integers(0, 255, (args.batch_size, size, size, 3), dtype=np.uint8)
            y = rng.integers(0, 10, args.batch_size)
            for _ in range(2):
                model.train_on_batch(x, y)
            t = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            train = (time.perf_counter() - t) / args.steps / args.batch_size
            model.predict_on_batch(x)
            t = time.perf_counter()
            for _ in range(args.steps):
                model.predict_on_batch(x)
            infer = (time.perf_counter() - t) / args.steps / args.batch_size
            est = estimate_seconds_per_image(name, size, hw)
            print(f"{name:16} {size:4d} {train * 1e3:16.2f} {est * 1e3:13.2f} {train / est:6.2f} {infer * 1e3:15.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
