"""Transfer through a weights file: pre-train on Fashion-MNIST classes 0-4, fine-tune on 1,000 images of 5-9.

    python benchmarks/transfer.py [--n-pre 30000] [--pre-epochs 3] [--n 1000] [--epochs 4]

1. fine_tune resnet_small from scratch on classes 0-4, then `Learner.save_backbone("pretrained.weights.h5")`;
2. fine_tune on `--n` images of classes 5-9 with `weights=<that file>` (frozen head stage, then
   discriminative learning rates);
3. the same from scratch (`weights=None`, the same number of epochs in all);
accuracies on the test images of classes 5-9 are printed side by side. The file-based run must win clearly.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _data import fashion_mnist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-pre", type=int, default=30000, help="pre-training images of classes 0-4")
    ap.add_argument("--pre-epochs", type=int, default=3)
    ap.add_argument("--n", type=int, default=1000, help="fine-tuning images of classes 5-9")
    ap.add_argument("--epochs", type=int, default=4, help="unfrozen epochs (+1 frozen; scratch gets the sum)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()

    import keras
    from kagglekit import learner as L

    x, y = fashion_mnist("train", args.data)
    xs, ys = fashion_mnist("test", args.data)
    pre = np.flatnonzero(y < 5)[: args.n_pre]
    rng = np.random.default_rng(0)
    target = rng.permutation(np.flatnonzero(y >= 5))[: args.n]
    test = np.flatnonzero(ys >= 5)
    common = dict(backbone="resnet_small", batch_size=64, lr=3e-3, augment=False, resume=False, verbose=0)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = L.fine_tune((x[pre], y[pre]), weights=None, epochs=args.pre_epochs, valid=0.1,
                             workdir=tmp / "pre", **{**common, "batch_size": 128})
        weights = source.save_backbone(tmp / "pretrained.weights.h5")
        t_pre = time.perf_counter() - t0

        def score(learner):
            probs = learner.model.predict(xs[test], batch_size=512, verbose=0)
            return float(np.mean(probs.argmax(1) == ys[test] - 5))

        results = {}
        for name, w, freeze, epochs in [("weights file", weights, 1, args.epochs),
                                         ("from scratch", None, 0, args.epochs + 1)]:
            t = time.perf_counter()
            learner = L.fine_tune((x[target], y[target] - 5), weights=w, freeze_epochs=freeze, epochs=epochs,
                                  valid=0.2, workdir=tmp / name.replace(" ", "-"), **common)
            results[name] = (score(learner), time.perf_counter() - t, list(learner.history["stage"]))
    print(f"transfer backend={keras.backend.backend()} pre-train {len(pre)} images of classes 0-4, "
          f"{args.pre_epochs} epochs ({t_pre:.0f}s); fine-tune {len(target)} images of classes 5-9; "
          f"test {len(test)} images")
    for name, (acc, secs, stages) in results.items():
        print(f"  {name:13s} test accuracy {acc:.4f}  ({secs:.0f}s, stages {stages})")
    gain = results["weights file"][0] - results["from scratch"][0]
    print(f"weights-file run minus scratch: {gain:+.4f} ({'wins' if gain > 0.02 else 'DOES NOT win clearly'})")


if __name__ == "__main__":
    main()
