"""The peer Kaggle users reach for first, run by `benchmarks/zoo.py --fastai-python PYTHON`: fastai from scratch.

    PYTHON benchmarks/_fastai_peer.py SPEC.json

SPEC.json (written by zoo.py): the train and validation images with their labels (kagglekit's split, so
all methods see the same data), the test images, the classes, single- or multi-label, the image side and
the budget in seconds. As fastai's course and docs write it: an ``xresnet18`` from scratch,
``lr_find`` and its ``valley`` suggestion, ``fit_one_cycle`` for as many epochs as fit the budget (the
epoch time estimated from lr_find's batches), fastai's default augmentation (``aug_transforms``) and
``Normalize``; the test probabilities (softmax, or sigmoid for multi-label) are written to the spec's
``out`` as .npy, columns in the spec's class order. Runs in its own interpreter: fastai needs torch and
torchvision from the same source, which kagglekit does not depend on.
"""
from __future__ import annotations

import json
import math
import sys
import time

T0 = time.time()


def main(spec_path: str) -> None:
    spec = json.loads(open(spec_path).read())
    import numpy as np
    import pandas as pd
    import torch
    from fastai.vision.all import (BCEWithLogitsLossFlat, CategoryBlock, CrossEntropyLossFlat, DataBlock,
                                   ImageBlock, IndexSplitter, Learner, MultiCategoryBlock, Normalize, Resize,
                                   aug_transforms, imagenet_stats, valley, xresnet18)

    torch.manual_seed(0)
    multilabel, classes, size = bool(spec["multilabel"]), list(spec["classes"]), int(spec["size"])
    rows = spec["train"] + spec["valid"]
    frame = pd.DataFrame({"path": [r[0] for r in rows], "label": [r[1] for r in rows]})
    n_train = len(spec["train"])
    block = MultiCategoryBlock(vocab=classes) if multilabel else CategoryBlock(vocab=classes)
    dblock = DataBlock(blocks=(ImageBlock, block), get_x=lambda r: r["path"],
                       get_y=(lambda r: r["label"]) if multilabel else (lambda r: r["label"][0]),
                       splitter=IndexSplitter(list(range(n_train, len(rows)))), item_tfms=Resize(size),
                       batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)])
    dls = dblock.dataloaders(frame, bs=int(spec.get("batch", 64)), num_workers=0)
    loss = BCEWithLogitsLossFlat() if multilabel else CrossEntropyLossFlat()
    learn = Learner(dls, xresnet18(n_out=len(classes)), loss_func=loss)

    t = time.time()
    lr = float(learn.lr_find(suggest_funcs=(valley,), show_plot=False).valley)
    batches = max(1, len(learn.recorder.lrs))
    batch_s = (time.time() - t) / batches
    epoch_s = batch_s * (len(dls.train) + 0.5 * len(dls.valid))  # validation: forward only
    reserve = 0.05 * spec["budget_s"] + 3 * batch_s * math.ceil(len(spec["test"]) / dls.bs)  # predicting the test set
    left = spec["budget_s"] - (time.time() - T0) - reserve
    epochs = max(1, int(left // (epoch_s * 1.1)))
    learn.fit_one_cycle(epochs, lr)

    test_dl = dls.test_dl(pd.DataFrame({"path": spec["test"], "label": [[classes[0]]] * len(spec["test"])}))
    probs, _ = learn.get_preds(dl=test_dl)  # the loss's activation: softmax, or sigmoid for multi-label
    np.save(spec["out"], probs.numpy().astype("float64"))
    json.dump({"epochs": epochs, "lr": lr, "epoch_s_estimate": epoch_s, "seconds": time.time() - T0},
              open(spec["out"] + ".json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
