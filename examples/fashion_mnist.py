#!/usr/bin/env python
"""Fashion-MNIST as a Kaggle competition: a ResNet trained from scratch through kagglekit's stages.

    python examples/fashion_mnist.py                          # CPU profile: resnet_compact, 11 epochs (2 cores)
    KERAS_BACKEND=jax python examples/fashion_mnist.py --profile gpu   # wide_resnet + random erasing, for a GPU
    python examples/fashion_mnist.py --time 10m                # no profile: kagglekit plans for a 10-minute budget
    python examples/fashion_mnist.py --slug my-fashion-competition --submit   # fetched and submitted through Kaggle

Without --slug the original idx files (Debian's dataset-fashion-mnist puts them in
/usr/share/datasets/fashion-mnist/, or pass --idx DIR) are written as a competition in
Kaggle's Digit Recognizer layout (train.csv / test.csv of pixels, sample_submission.csv),
and the test accuracy is computed from the real test labels. `kagglekit.run` does the rest:
layout detection, split, fine-tuning, prediction and the validated submission file.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_IDX = "/usr/share/datasets/fashion-mnist"

# Recipes measured on Fashion-MNIST (benchmarks/fashion_mnist.py reports what they reach).
PROFILES = {
    "cpu": {"backbone": "resnet_compact", "epochs": 11, "batch_size": 128, "lr": 4e-3, "augment": "flip", "label_smoothing": 0.1},
    "gpu": {"backbone": "wide_resnet", "epochs": 40, "batch_size": 256, "lr": 4e-3, "augment": "erasing", "label_smoothing": 0.1},
}


def augmentation(kind: str):
    """Return the Keras augmentation layers of a profile (they run inside the model, on the accelerator)."""
    import keras

    layers = [keras.layers.RandomFlip("horizontal")]
    if kind == "erasing":
        layers += [keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
                   keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.25), fill_value=0, value_range=(0, 255))]
    return keras.Sequential(layers, name="augmentation")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--slug", help="a Kaggle competition in this layout (default: build one from the idx files)")
    p.add_argument("--idx", default=DEFAULT_IDX, help="folder holding the Fashion-MNIST idx files")
    p.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    p.add_argument("--backbone", help="backbone (default: the profile's)")
    p.add_argument("--epochs", type=int, help="epochs (default: the profile's)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the profile's)")
    p.add_argument("--n", type=int, help="use only the first N training images (quick runs)")
    p.add_argument("--n-test", type=int, help="use only the first N test images")
    p.add_argument("--time", help="a time budget (e.g. 10m): kagglekit plans backbone, size, epochs and batch "
                                  "for it with its defaults; the profile is not used")
    p.add_argument("--out", default="runs/fashion-mnist", help="competition, model and submission go here")
    p.add_argument("--submit", action="store_true", help="with --slug: submit through the Kaggle API and wait for the score")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Return {'valid_accuracy', 'test_accuracy' (or None), 'public_score', 'seconds', ...} of one run."""
    args = parse_args(argv)
    import pandas as pd

    import kagglekit as kk
    from kagglekit.plan import Plan
    from kagglekit.runstate import RunState
    from kagglekit.testing.competitions import build_competition

    started = time.time()
    out = Path(args.out)
    profile = dict(PROFILES[args.profile])
    if args.backbone:
        profile["backbone"] = args.backbone
    solution = None
    if args.slug:
        source = args.slug
    else:
        folder = out / "fashion-mnist"
        if not (folder / "sample_submission.csv").is_file():
            print(f"writing Fashion-MNIST from {args.idx} as a competition in {folder}")
            build_competition("fashion-mnist", folder, n_train=args.n, n_test=args.n_test, source=args.idx)
        source, solution = folder, out / "fashion-mnist.solution.csv"
    common = dict(workdir=out / "run", submit=args.submit and bool(args.slug), weights="none", valid=0.05, tta="auto",
                  metric="accuracy")
    if args.time:  # kagglekit's defaults, planned for the budget (explicit choices still win)
        chosen = {k: v for k, v in (("backbone", args.backbone), ("epochs", args.epochs),
                                    ("batch_size", args.batch_size)) if v}
        result = kk.run(source, time_budget=args.time, message=f"kagglekit --time {args.time}", **chosen, **common)
        planned = Plan.from_dict(RunState(out / "run").result("plan"))  # what the run planned, as it saved it
        profile = {"backbone": planned.backbone, "epochs": planned.epochs, "batch_size": planned.batch_size,
                   "sizes": planned.sizes, "time_budget": args.time}
    else:
        result = kk.run(
            source, message=f"kagglekit {profile['backbone']}", backbone=profile["backbone"], sizes=[28],
            epochs=args.epochs or profile["epochs"], batch_size=args.batch_size or profile["batch_size"], lr=profile["lr"],
            fine_tune={"augment": augmentation(profile["augment"]), "label_smoothing": profile["label_smoothing"]},
            **common,
        )
    report = {"valid_accuracy": result.valid_score, "test_accuracy": None, "public_score": result.public_score,
              "seconds": time.time() - started, "submission": str(result.submission), **profile}
    if solution is not None and solution.is_file():
        truth = pd.read_csv(solution, dtype=str).set_index("ImageId")["Label"]
        predicted = pd.read_csv(result.submission, dtype=str).set_index("ImageId")["Label"]
        report["test_accuracy"] = float((predicted.reindex(truth.index) == truth).mean())
        print(f"test accuracy: {report['test_accuracy']:.4f} on {len(truth)} images")
    if result.public_score is not None:
        print(f"public score: {result.public_score}")
    print(f"done in {report['seconds']:.0f} s")
    return report


if __name__ == "__main__":
    from kagglekit.errors import KaggleKitError

    try:
        main()
    except KaggleKitError as exc:  # one line: what is wrong and how to fix it
        sys.exit(f"fashion_mnist: {exc}")
