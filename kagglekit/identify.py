"""Identification competitions: nearest neighbours over the training images in the classifier's embedding.

Humpback Whale Identification has thousands of individuals with one to a few
photos each and a "new_whale" class for the ones never seen. A softmax over
classes seen once learns little about each; what works there is an embedding
(here: the trained classifier's pooled penultimate features, L2-normalised, joined
with a standardised 24x24 thumbnail of the image: `LOOK_WEIGHT` of the squared
distance, since a classifier trained for minutes on classes seen once learns
little of what tells individuals apart, and their look is a strong cue)
and nearest neighbours over every labelled image: each known class is scored by
the cosine similarity of its most similar image, and the "new" class is inserted
into the top-k guesses by the threshold `kagglekit.metrics.tune` tunes on
validation (`kagglekit.postprocess.search_new_threshold`), as for the softmax.

`choose_head` decides from the label statistics (many classes, few images per
class, a "new"-like class or a MAP@k metric) and says why; ``--head knn`` or
``--head softmax`` (recipe ``[train] head``) decides instead.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError
from .logs import logger
from .postprocess import infer_new_class
from .table import LabelTable

HEADS = ("auto", "knn", "softmax")
#: Identification needs at least this many known classes ...
MIN_CLASSES = 30
#: ... with at most this median number of training images each.
MAX_MEDIAN_IMAGES = 3
#: The share of the squared distance given to the image's look (a standardised THUMB x THUMB thumbnail); the rest
#: to the classifier's embedding. On the zoo's Humpback (2,000 images, 5 min from scratch) validation MAP@5 was
#: 0.659 with the embedding alone, 0.701 with the thumbnail alone; 0.741, 0.736, 0.733 with 0.3, 0.5, 0.7 of it.
LOOK_WEIGHT = 0.3
THUMB = 24


def choose_head(asked: str | None, train: LabelTable, metric: str) -> tuple[str, str]:
    """Return ("knn" or "softmax", the reason): nearest neighbours for identification label statistics, else the softmax."""
    if asked not in (None, *HEADS):
        raise ConfigError(f"head={asked!r} is not known; use {', '.join(HEADS)} (--head, recipe [train] head).")
    if asked in ("knn", "softmax"):
        return asked, "set by --head (recipe: train.head)"
    if train.multilabel:
        return "softmax", "multi-label classes: identification needs one individual per image (--head knn forces it)"
    new_class, _ = infer_new_class(train.classes)
    counts = train.counts().drop(labels=[new_class] if new_class else [], errors="ignore")
    counts = counts[counts > 0]
    median = float(np.median(counts)) if len(counts) else 0.0
    facts = (f"{len(counts)} classes, median {median:g} training images per class"
             + (f", a {new_class!r} class for unseen ones" if new_class else "") + f", metric {metric}")
    ranked = str(metric).startswith("map@")
    if len(counts) >= MIN_CLASSES and median <= MAX_MEDIAN_IMAGES and (new_class or ranked):
        return "knn", (f"identification ({facts}): nearest neighbours over the training images in the classifier's "
                       "embedding; --head softmax turns it off")
    return "softmax", (f"classification ({facts}; identification needs {MIN_CLASSES}+ classes, a median of "
                       f"{MAX_MEDIAN_IMAGES} or fewer images each and a 'new' class or MAP@k); --head knn forces it")


def embedder(model: Any) -> Any:
    """Return a keras.Model mapping pixels to the classifier's pooled features (the input of its last layer)."""
    import keras

    try:
        features = model.get_layer("pool").output
    except ValueError:  # not built by kagglekit.backbones.build_model: the last layer's input
        features = model.layers[-1].input
    return keras.Model(model.inputs, features, name="embedding")


def embed(learner: Any, table: LabelTable, batch_size: int = 64) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Return (L2-normalised embeddings (n, d) in table order, the ids served black (unreadable files), thumbnails (n, THUMB*THUMB*3))."""
    import keras

    from .images import resize_images
    from .pipeline import ImageBatches
    from .predict import resize_mode

    settings = dict(getattr(learner, "settings", None) or {})
    model = embedder(learner.model)
    batches = ImageBatches(table, learner.size, batch_size=batch_size, targets=None, shuffle=False,
                           resize=resize_mode(settings), cache=None, unreadable="black", verbose=False)
    try:
        parts, thumbs = [], []
        for b in range(len(batches)):
            x = batches[b][0]
            parts.append(np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(x)), dtype="float32"))
            thumbs.append(resize_images(x, THUMB, dtype="float32").reshape(len(x), -1))
        black = [str(b[0]) for b in batches.served_black]
    finally:
        batches.close()
    z = np.concatenate(parts).reshape(len(table), -1) if parts else np.zeros((0, 1), "float32")
    look = np.concatenate(thumbs) if thumbs else np.zeros((0, THUMB * THUMB * 3), "float32")
    return _unit(z), black, look


def _unit(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def combine(emb: np.ndarray, look: np.ndarray, mean: np.ndarray, std: np.ndarray, weight: float = LOOK_WEIGHT) -> np.ndarray:
    """Return unit vectors joining the embedding (1 - weight of the squared distance) and the standardised thumbnail (weight)."""
    return _unit(np.hstack([np.sqrt(1 - weight) * emb, np.sqrt(weight) * _unit((look - mean) / std)]))


def class_scores(query: np.ndarray, gallery: np.ndarray, gallery_class: np.ndarray, n_classes: int) -> np.ndarray:
    """Return (n_query, n_classes) scores in [0, 1]: (1 + the best cosine similarity to an image of each class) / 2; 0 for classes with no image."""
    out = np.zeros((len(query), n_classes), dtype="float64")
    if not len(gallery):
        return out
    order = np.argsort(gallery_class, kind="stable")
    cls = gallery_class[order]
    starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    for lo in range(0, len(query), 512):
        sim = query[lo:lo + 512] @ gallery[order].T
        out[lo:lo + 512, cls[starts]] = (1.0 + np.maximum.reduceat(sim, starts, axis=1)) / 2.0
    return out


def predict_knn(learner: Any, gallery: LabelTable, query: LabelTable, batch_size: int = 64) -> pd.DataFrame:
    """Return predictions framed as `kagglekit.predict.predict` frames them: one score column per class, from nearest neighbours.

    `gallery` holds the labelled images whose classes are ranked (its "new"
    class rows and unreadable files left out); the "new" class column is 0, so
    the threshold tuned for MAP@k inserts it. The frame's attrs say
    ``head="knn"`` and list the query's unreadable ids (``unreadable``).
    """
    from .predict import _frame

    classes = [str(c) for c in learner.classes]
    new_class, _ = infer_new_class(classes)
    index = {c: i for i, c in enumerate(classes)}
    g_emb, g_black, g_look = embed(learner, gallery, batch_size)
    g_class = np.asarray([index.get(labels[0], -1) if labels else -1 for labels in gallery.labels])
    keep = (g_class >= 0) & ~np.isin(np.asarray(gallery.ids, dtype=object), g_black)
    if new_class is not None:
        keep &= g_class != index[new_class]
    q_emb, q_black, q_look = embed(learner, query, batch_size)
    ref = g_look[keep] if keep.any() else g_look
    mean, std = ref.mean(axis=0), ref.std(axis=0) + 1.0  # pixels 0..255: +1 keeps flat pixels from dominating
    scores = class_scores(combine(q_emb, q_look, mean, std), combine(g_emb[keep], g_look[keep], mean, std),
                          g_class[keep], len(classes))
    settings = dict(getattr(learner, "settings", None) or {})
    if q_black:
        logger.warning(f"kagglekit: {len(q_black)} of {len(query)} images cannot be decoded: ranked from a black image")
    return _frame(learner, query.ids, scores, settings, tta=0, tta_flip=False, tta_crop=None, unreadable=q_black,
                  head="knn")


def gallery_of(*tables: LabelTable) -> LabelTable:
    """Return the labelled tables as one (the training images, then the validation ones: every known image for the test)."""
    frames = [t.frame for t in tables if t is not None]
    return LabelTable(pd.concat(frames, ignore_index=True), tables[0].classes, tables[0].multilabel)
