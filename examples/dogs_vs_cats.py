#!/usr/bin/env python
"""Dogs vs. Cats with VGG16: class folders from file names, one epoch of fine-tuning,
clipped probabilities, and an `id,label` submission holding P(dog).

    python examples/dogs_vs_cats.py                      # ImageNet weights (internet needed)
    python examples/dogs_vs_cats.py --weights /kaggle/input/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
    python examples/dogs_vs_cats.py --submit             # and send it to Kaggle
    python examples/dogs_vs_cats.py --backbone efficientnetb0 --time 20m   # another backbone, inside 20 minutes

The competition is Dogs vs. Cats Redux (scored by log loss), so the probabilities are
clipped by the amount that gives the best log loss on the validation images.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--slug", default="dogs-vs-cats-redux-kernels-edition", help="Kaggle competition (or a local folder/zip)")
    p.add_argument("--data", help="where the competition is downloaded (default ./data/<slug>)")
    p.add_argument("--out", default="runs/dogs-vs-cats", help="class folders, model and submission go here")
    p.add_argument("--backbone", default="vgg16", help="backbone (see `kagglekit backbones`; default vgg16, the 97%% story)")
    p.add_argument("--weights", default="imagenet", help="'imagenet', a *_notop.h5 / .weights.h5 / .keras file, or 'none'")
    p.add_argument("--size", type=int, default=224, help="input size (VGG16 was trained at 224)")
    p.add_argument("--epochs", type=int, default=1, help="epochs with the backbone frozen (the head learns)")
    p.add_argument("--unfreeze-epochs", type=int, default=0, help="epochs after unfreezing, with per-group learning rates")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--tta", default="auto", help="test-time views (0..12) or 'auto' (chosen on validation)")
    p.add_argument("--time", help="time budget of the whole script, e.g. 55m: training stops early (kagglekit's Deadline) "
                   "leaving 15%% of it for prediction, TTA and the submission; the epochs are then the most it trains")
    p.add_argument("--submit", action="store_true", help="submit through the Kaggle API and wait for the score")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import time

    import kagglekit as kk
    from kagglekit.deadline import Deadline
    from kagglekit.durations import parse_duration

    from kagglekit import layout

    budget = parse_duration(args.time) if args.time else None  # a bad value: one line naming the fix
    started = time.monotonic()

    out = Path(args.out)
    comp = kk.fetch(args.slug, path=args.data)
    test_dir = next(comp.path / d for d in ("test", "test1") if (comp.path / d).is_dir())

    # cat.1.jpg -> cats/cat.1.jpg (symlinks: nothing is copied, the download is never modified)
    by_name = layout.from_filenames(comp.path / "train", pattern=r"^(cat|dog)\.", mapping={"cat": "cats", "dog": "dogs"})
    layout.write_class_folders(by_name, out / "folders")
    table = layout.from_folders(out / "folders")
    train, valid = layout.split(table, valid=0.2, seed=0)
    print(f"{len(train)} training and {len(valid)} validation images; classes {table.classes}")

    weights = None if args.weights.lower() == "none" else args.weights
    learner = kk.fine_tune(train, valid=valid, backbone=args.backbone, sizes=[args.size], weights=weights,
                           freeze_epochs=args.epochs, epochs=args.unfreeze_epochs, batch_size=args.batch_size,
                           workdir=out / "train",
                           callbacks=[Deadline(budget, spent_s=time.monotonic() - started, reserve_s=0.15 * budget,
                                               batch_size=args.batch_size)] if budget else ())
    tta = args.tta if args.tta == "auto" else int(args.tta)
    settings = kk.predict.tune_settings(learner, valid, "logloss", tta=tta, batch_size=args.batch_size)
    learner.save(out / "model")
    preds = learner.predict(valid, batch_size=args.batch_size)
    print(f"validation accuracy {kk.predict.score(preds, valid, 'accuracy'):.4f}, "
          f"log loss {kk.predict.score(preds, valid, 'logloss'):.4f} (clip {settings['clip']}, tta {settings['tta']})")

    test = layout.unlabelled(test_dir)
    path = kk.write_submission(learner.predict(test, batch_size=args.batch_size), like=comp.sample_submission,
                               path=out / "submission.csv", positive="dogs")
    print(f"submission: {path}")
    if args.submit:
        result = kk.submit(args.slug, path, f"kagglekit {args.backbone} {args.size}px", wait=True)
        print(f"public score: {result.public_score}")
    return 0


if __name__ == "__main__":
    from kagglekit.errors import KaggleKitError

    try:
        sys.exit(main())
    except KaggleKitError as exc:  # one line: what is wrong and how to fix it
        sys.exit(f"dogs_vs_cats: {exc}")
