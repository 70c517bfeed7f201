#!/usr/bin/env python
"""iMaterialist Challenge (Fashion) 2018 with ResNet50: JSON annotations -> multi-hot CSV,
progressive resizing 64 -> 128 -> 300, F2 threshold tuning, TTA, `image_id,label_id` submission.

    python examples/imaterialist_fashion.py --weights imagenet
    python examples/imaterialist_fashion.py --weights /kaggle/input/resnet50/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 --submit
    python examples/imaterialist_fashion.py --backbone efficientnetb3 --time 55m   # training stops in time

Kaggle ships the images as URLs in train.json / validation.json / test.json; put the
downloaded images in train/, validation/ and test/ beside them (images that failed to
download are dropped from the tables with a warning).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.replace(",", " ").split()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--slug", default="imaterialist-challenge-fashion-2018", help="Kaggle competition (or a local folder/zip)")
    p.add_argument("--data", help="where the competition is downloaded (default ./data/<slug>)")
    p.add_argument("--out", default="runs/imaterialist", help="tables, model and submission go here")
    p.add_argument("--backbone", default="resnet50", help="backbone (see `kagglekit backbones`)")
    p.add_argument("--weights", default="imagenet", help="'imagenet', a *_notop.h5 / .weights.h5 / .keras file, or 'none'")
    p.add_argument("--sizes", type=_sizes, default=[64, 128, 300], help="progressive input sizes")
    p.add_argument("--epochs", type=int, default=2, help="epochs per size after unfreezing")
    p.add_argument("--freeze-epochs", type=int, default=1, help="epochs per size with the backbone frozen")
    p.add_argument("--batch-size", type=int, default=64)
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

    # JSON annotations -> multi-hot CSVs (image,labels with space-separated label ids), then tables
    tables = {}
    for split in ("train", "validation"):
        csv = layout.imaterialist_to_csv(comp.path / f"{split}.json", out / f"{split}_labels.csv")
        tables[split] = layout.from_csv(csv, images=comp.path / split, missing="drop")
    classes = sorted(set(tables["train"].classes) | set(tables["validation"].classes), key=int)
    train, valid = (tables[s].with_classes(classes) for s in ("train", "validation"))
    test = layout.from_imaterialist_json(comp.path / "test.json", images=comp.path / "test")
    print(f"{len(train)} train, {len(valid)} validation, {len(test)} test images; {len(classes)} labels, "
          f"{train.frame['labels'].map(len).mean():.2f} per image")

    weights = None if args.weights.lower() == "none" else args.weights
    learner = kk.fine_tune(train, valid=valid, backbone=args.backbone, sizes=args.sizes, weights=weights,
                           freeze_epochs=args.freeze_epochs, epochs=args.epochs, batch_size=args.batch_size,
                           workdir=out / "train",
                           callbacks=[Deadline(budget, spent_s=time.monotonic() - started, reserve_s=0.15 * budget,
                                               batch_size=args.batch_size)] if budget else ())
    tta = args.tta if args.tta == "auto" else int(args.tta)
    settings = kk.predict.tune_settings(learner, valid, "f2", tta=tta, batch_size=args.batch_size)
    learner.save(out / "model")
    preds = learner.predict(valid, batch_size=args.batch_size)
    print(f"validation F2 {kk.predict.score(preds, valid, 'f2'):.4f} with tuned thresholds "
          f"(F2 at 0.5: {kk.predict.score(preds, valid, 'f2', settings={}):.4f}; tta {settings['tta']})")
    y, p = kk.predict.align(preds, valid)
    print(f"threshold curve: {kk.plots.plot_threshold_curve(y, p, path=out / 'threshold_f2.png', settings=settings)}")

    path = kk.write_submission(learner.predict(test, batch_size=args.batch_size), like=comp.sample_submission,
                               path=out / "submission.csv")
    print(f"submission: {path}")
    if args.submit:
        result = kk.submit(args.slug, path, f"kagglekit {args.backbone} {args.sizes}", wait=True)
        print(f"public score: {result.public_score}")
    return 0


if __name__ == "__main__":
    from kagglekit.errors import KaggleKitError

    try:
        sys.exit(main())
    except KaggleKitError as exc:  # one line: what is wrong and how to fix it
        sys.exit(f"imaterialist_fashion: {exc}")
