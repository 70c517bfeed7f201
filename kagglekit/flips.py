"""Whether a mirrored image keeps its label: the flip decision for training augmentation and TTA.

`flip_check` fits a quick classifier (a ridge classifier on `size` x `size`
pixels, scikit-learn) on part of a sample of the training images and scores it
on the held-out rest twice: on the images as they are, and on their mirror
images. Where the label survives a mirror (clothes, shoes, animals, photos) the
mirrored images are still recognised: most of the classifier's skill above
chance is kept (a pixel classifier is not mirror-invariant, so it keeps about
0.60-0.68 of it on Fashion-MNIST, where all shoes face one way, 0.80-0.88 on
crops of photos, 0.95-0.98 on Tux Paint's stamps). Where a mirror changes the
label (digits, text, "texting, right hand" becoming "left hand") the skill
collapses (0.25-0.29 kept on scikit-learn's handwritten digits). Flips are on
when at least `KEEP_SKILL` of the skill is kept. (Ranges: three sampling seeds
of 600 images each, measured for docs/quality.md.)

"Easy to tell from the original" is not "the label changes": a linear probe
telling mirror images from originals (the rule before this one) turned flips
off for Fashion-MNIST and product photos, where the label survives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ImageError
from .images import load_image, resize_images
from .table import LabelTable

#: Flips are on when the classifier keeps at least this share of its skill above chance on mirrored images.
KEEP_SKILL = 0.45
#: The ridge classifier's regularisation (on standardised pixels).
ALPHA = 1000.0
#: Below this much accuracy (or AUC) above chance on the originals the classifier cannot judge: flips stay on.
MIN_SKILL = 0.05


@dataclass(frozen=True)
class FlipCheck:
    """Whether horizontal flips keep images' labels, as `flip_check` judged it, with the scores behind it."""

    flip: bool
    reason: str
    original: float | None = None  # held-out accuracy (multi-label: macro ROC AUC) on the images as they are
    mirrored: float | None = None  # the same classifier's score on their mirror images
    chance: float | None = None  # the score of always guessing the commonest class (AUC: 0.5)

    @property
    def kept(self) -> float | None:
        """Return the share of the classifier's skill above chance kept on mirror images (None when unjudged)."""
        if self.original is None or self.mirrored is None or self.chance is None:
            return None
        return (self.mirrored - self.chance) / max(self.original - self.chance, 1e-12)


def _pixels(data: LabelTable | np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Return the images of `rows` at `size` x `size`, float 0..1, flat per image as (n, size, size, 3)."""
    if isinstance(data, LabelTable):
        x = np.zeros((len(rows), size, size, 3), dtype="uint8")
        paths = data.paths
        for out, row in zip(x, rows):
            try:
                load_image(paths[row], size, out=out)
            except ImageError:
                pass  # an unreadable image stays black in both views
    else:
        x = np.asarray(data)[rows]
        if x.ndim == 3:  # grey images (n, h, w)
            x = np.repeat(x[..., None], 3, axis=-1)
        x = resize_images(x, size, dtype="uint8")
    return x.astype("float32") / 255.0


def _labels(data: LabelTable | np.ndarray | tuple) -> tuple[object, np.ndarray | None]:
    """Return (the images, their labels as ints (n,) or multi-hot (n, k), or None when unlabelled)."""
    if isinstance(data, tuple):
        x, y = data[0], data[1] if len(data) > 1 else None
        return x, None if y is None else np.asarray(y)
    if isinstance(data, LabelTable):
        if not any(len(v) for v in data.labels):
            return data, None
        return data, data.targets("multihot" if data.multilabel else "int")
    return data, None


def _scores(x_fit, y_fit, x_held, y_held) -> tuple[float, float, float]:
    """Return (score on originals, score on mirror images, chance score) of a ridge classifier fitted on `x_fit`."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=ALPHA))  # one linear solve: milliseconds
    if y_fit.ndim == 2:  # multi-label: one score per label, macro ROC AUC over the labels present both ways
        cols = np.flatnonzero((y_fit.min(0) < y_fit.max(0)) & (y_held.min(0) < y_held.max(0)))
        if not len(cols):
            return 0.0, 0.0, 0.0
        clf.fit(flat(x_fit), y_fit[:, cols])
        auc = lambda a: float(roc_auc_score(y_held[:, cols], clf.decision_function(flat(a)), average="macro"))  # noqa: E731
        return auc(x_held), auc(x_held[:, :, ::-1]), 0.5
    clf.fit(flat(x_fit), y_fit)
    chance = float(np.bincount(y_held).max() / len(y_held))
    return float(clf.score(flat(x_held), y_held)), float(clf.score(flat(x_held[:, :, ::-1]), y_held)), chance


def flip_check(data: LabelTable | np.ndarray | tuple, n: int = 600, seed: int = 0, size: int = 16) -> FlipCheck:
    """Return whether training and TTA should flip images horizontally: on when a mirrored image keeps its label.

    `data` is a labelled `LabelTable` or (images (n, h, w, 3) 0..255, labels) with
    int labels (n,) or multi-hot (n, k). Up to `n` images are sampled (seeded): a
    ridge classifier on `size` x `size` pixels is fitted on two thirds and scored
    on the rest, as they are and mirrored (see the module's docstring). Fewer than
    40 labelled images, unlabelled images, or a classifier with no skill: flips stay
    on, unjudged, and the reason says so.
    """
    from sklearn.model_selection import train_test_split

    data, y = _labels(data)
    count = len(data)
    if y is None or count < 40:
        why = f"{count} images are too few to judge" if count < 40 else "the images have no labels to judge by"
        return FlipCheck(True, f"flip on: {why} (--no-flip turns it off)")
    rows = np.sort(np.random.default_rng(seed).permutation(count)[: min(n, count)])
    x, y = _pixels(data, rows, size), y[rows]
    strata = y if y.ndim == 1 and np.bincount(y).min(initial=count) >= 2 else None
    try:
        fit_x, held_x, fit_y, held_y = train_test_split(x, y, test_size=1 / 3, random_state=seed, stratify=strata)
    except ValueError:  # a class too rare to stratify
        fit_x, held_x, fit_y, held_y = train_test_split(x, y, test_size=1 / 3, random_state=seed)
    if fit_y.ndim == 1 and len(np.unique(fit_y)) < 2:
        return FlipCheck(True, "flip on: the sample holds one class, nothing to judge by (--no-flip turns it off)")
    original, mirrored, chance = _scores(fit_x, fit_y, held_x, held_y)
    what = "macro ROC AUC" if y.ndim == 2 else "accuracy"
    numbers = (f"a quick classifier's held-out {what} {original:.3f} on the images, {mirrored:.3f} on their mirror "
               f"images, chance {chance:.3f}; {len(x)} train images")
    if original - chance < MIN_SKILL:
        return FlipCheck(True, f"flip on: cannot judge, the quick classifier learns too little ({numbers}); "
                               "--no-flip turns it off", original, mirrored, chance)
    check = FlipCheck(True, "", original, mirrored, chance)
    kept = check.kept
    if kept >= KEEP_SKILL:
        return FlipCheck(True, f"flip on: mirrored images keep their labels ({kept:.0%} of the skill above chance "
                               f"kept: {numbers}; --no-flip turns it off)", original, mirrored, chance)
    return FlipCheck(False, f"flip off: mirroring changes the labels, as with digits, text or left/right classes "
                            f"(only {kept:.0%} of the skill above chance kept: {numbers}; --flip forces flips)",
                     original, mirrored, chance)
