"""Transfer through a weights file: pre-train on Fashion-MNIST classes 0-4, fine-tune on 1,000 images of 5-9.

    python benchmarks/transfer.py [--backbone resnet_compact] [--n-pre 30000] [--pre-epochs 3] [--n 1000]
                                  [--epochs 2,4] [--seeds 3]
    python benchmarks/transfer.py --time 45s,90s     # each fine-tuning run planned for a time budget instead

1. fine_tune the backbone from scratch on classes 0-4, then `Learner.save_backbone("pretrained.weights.h5")`;
2. fine_tune on `--n` images of classes 5-9 with `weights=<that file>` (frozen head stage, then
   discriminative learning rates);
3. the same from scratch (`weights=None`, the same number of epochs in all);
steps 2 and 3 are repeated for `--seeds` draws of the `--n` images (a seed also sets the model's
initialisation), since a from-scratch run on 1,000 images varies a lot from draw to draw, and for each
epoch budget in `--epochs` (transfer shows most where the budget is short: from scratch, a small ResNet
catches up on this easy 5-class problem within about 5 epochs). Accuracies on the 5,000 test images of
classes 5-9 are printed side by side: each draw, the mean and the range. "Wins clearly" means: by more
than 0.02 on the mean and on every draw.

With `--time`, each fine-tuning run (both kinds) is planned as `kagglekit run --time` plans one
(``kagglekit.plan.make_plan`` for the images, the hardware and its weights: epochs, batch, frozen stage;
fine_tune's default learning rates) and kept inside the budget by the plan's `Deadline`.
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
    ap.add_argument("--epochs", default="2,4",
                    help="unfrozen epochs, one budget per value, comma-separated (+1 frozen; scratch gets the sum)")
    ap.add_argument("--time", help="time budgets per fine-tuning run, comma-separated (e.g. 45s,90s): planned "
                                   "by kagglekit.plan instead of --epochs")
    ap.add_argument("--seeds", type=int, default=3, help="draws of the fine-tuning images")
    ap.add_argument("--backbone", default="resnet_compact")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    timed = bool(args.time)
    budgets = str(args.time).split(",") if timed else [int(e) for e in str(args.epochs).split(",")]

    import keras
    from kagglekit import learner as L
    from kagglekit.plan import Hardware, ImageStats, make_plan

    x, y = fashion_mnist("train", args.data)
    xs, ys = fashion_mnist("test", args.data)
    pre = np.flatnonzero(y < 5)[: args.n_pre]
    test = np.flatnonzero(ys >= 5)
    common = dict(backbone=args.backbone, batch_size=64, lr=3e-3, augment=False, resume=False, verbose=0)
    n_train, stats = int(args.n * 0.8), ImageStats.from_sizes([(28, 28)], count=args.n)  # what --time plans for
    t0 = time.perf_counter()
    names = ("weights file", "from scratch")
    results = {(b, n): [] for b in budgets for n in names}
    seconds = {(b, n): 0.0 for b in budgets for n in names}
    stages: dict[tuple, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = L.fine_tune((x[pre], y[pre]), weights=None, epochs=args.pre_epochs, valid=0.1,
                             workdir=tmp / "pre", **{**common, "batch_size": 128})
        weights = source.save_backbone(tmp / "pretrained.weights.h5")
        t_pre = time.perf_counter() - t0

        def score(learner):
            probs = learner.model.predict(xs[test], batch_size=512, verbose=0)
            return float(np.mean(probs.argmax(1) == ys[test] - 5))

        for budget in budgets:
            for seed in range(args.seeds):
                target = np.random.default_rng(seed).permutation(np.flatnonzero(y >= 5))[: args.n]
                for name in names:
                    file_run = name == "weights file"
                    t = time.perf_counter()
                    if not timed:
                        run_args = dict(freeze_epochs=1 if file_run else 0, epochs=budget if file_run else budget + 1)
                    else:  # as `kagglekit run --time` plans it: epochs, batch, frozen stage; default rates
                        plan = make_plan(n_train, stats, Hardware.probe(),
                                         budget, weights=str(weights) if file_run else None, backbone=args.backbone,
                                         sizes=[28], n_valid=args.n - n_train, n_test=0, tta=0)
                        run_args = dict(epochs=plan.epochs, freeze_epochs=plan.freeze_epochs,
                                        batch_size=plan.batch_size, callbacks=[plan.deadline()])
                    learner = L.fine_tune((x[target], y[target] - 5), weights=weights if file_run else None,
                                          valid=0.2, seed=seed, workdir=tmp / f"{name.replace(' ', '-')}-{budget}-{seed}",
                                          **{**common, **({"lr": None} if timed else {}), **run_args})
                    results[budget, name].append(score(learner))
                    seconds[budget, name] += time.perf_counter() - t
                    stages[budget, name] = list(learner.history["stage"])
    print(f"transfer backend={keras.backend.backend()} backbone={args.backbone}: pre-train {len(pre)} images of "
          f"classes 0-4, {args.pre_epochs} epochs ({t_pre:.0f}s); fine-tune {args.n} images of classes 5-9 "
          f"(80% train, 20% valid), {args.seeds} draws; test {len(test)} images of classes 5-9\n")
    print(f"| {'budget' if timed else 'epochs'} | run | test accuracy, mean | range | per draw | s per run |")
    print("| --- | --- | --- | --- | --- | --- |")
    verdicts = []
    for budget in budgets:
        for name in names:
            accs = results[budget, name]
            plan = " + ".join(f"{stages[budget, name].count(s)} {s}" for s in ("frozen", "unfrozen")
                              if s in stages[budget, name])
            print(f"| {budget if timed else budget + 1} ({plan}) | {name} | **{np.mean(accs):.4f}** | {min(accs):.4f}-{max(accs):.4f} | "
                  f"{' '.join(f'{a:.4f}' for a in accs)} | {seconds[budget, name] / args.seeds:.0f} |")
        gains = np.array(results[budget, "weights file"]) - np.array(results[budget, "from scratch"])
        clear = gains.mean() > 0.02 and (gains > 0).all()
        verdicts.append(f"{budget if timed else f'{budget + 1} epochs'}: weights file minus scratch {gains.mean():+.4f} "
                        f"(per draw {' '.join(f'{g:+.4f}' for g in gains)}): "
                        f"{'wins clearly' if clear else 'does NOT win clearly'}")
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
