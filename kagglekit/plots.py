"""PNG plots: training curves, the learning-rate finder, and predictions (confusion matrix, top losses, threshold against F-beta).

Each function draws with matplotlib's Agg renderer (no display, no pyplot
state), writes the PNG atomically and returns its path. Inputs are either
`predict()`'s frame and the labelled table (matched by id) or arrays.
The learner draws its curves and its learning-rate sweep through the functions here.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError
from .io import atomic_open
from .table import LabelTable


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    return path


def plot_history(history: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Return `path` after drawing loss, metric and learning rate per epoch (one row per epoch) to a PNG.

    `history` has the learner's columns: ``epoch``, ``stage_index``, ``lr``, ``loss``
    and ``accuracy`` or ``binary_accuracy`` (with their ``val_*``). Stage starts are
    marked by grey lines.
    """
    fig = _figure(12, 3.5)
    axes = fig.subplots(1, 3)
    x = history["epoch"] + 1
    for ax, key in zip(axes[:2], ("loss", "accuracy" if "accuracy" in history else "binary_accuracy")):
        for col in (key, f"val_{key}"):
            if col in history:
                ax.plot(x, history[col], marker="o", label=col)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    axes[2].plot(x, history["lr"], marker="o")
    axes[2].set_yscale("log")
    axes[2].set_title("learning rate (end of epoch)")
    for _, row in history.drop_duplicates("stage_index").iterrows():
        for ax in axes:
            ax.axvline(row["epoch"] + 0.5, color="grey", lw=0.5)
    return _save(fig, path)


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], suggestion: float, path: str | os.PathLike) -> Path:
    """Return `path` after drawing smoothed loss against learning rate (log scale) with `suggestion` marked."""
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(lrs, losses)
    ax.axvline(suggestion, color="red", ls="--", label=f"suggestion {suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    ax.legend()
    return _save(fig, path)


def _targets_probs(y, p, classes):
    """Return (y, p, classes) from (predictions, table) or from arrays."""
    if isinstance(y, pd.DataFrame) and isinstance(p, LabelTable):
        from .predict import align

        classes = [c for c in y.columns if c != "id"]
        multilabel = p.multilabel
        y, p = align(y, p)
        return np.asarray(y), np.asarray(p, dtype="float64"), list(classes), multilabel
    y, p = np.asarray(y), np.asarray(p, dtype="float64")
    if classes is None:
        k = p.shape[1] if p.ndim == 2 else int(max(y.max(), p.max())) + 1
        classes = [str(i) for i in range(k)]
    multilabel = y.ndim == 2 and not np.all(y.sum(axis=1) == 1)
    return y, p, [str(c) for c in classes], multilabel


def plot_confusion_matrix(
    y: object,
    p: object,
    classes: Sequence[str] | None = None,
    path: str | os.PathLike = "confusion_matrix.png",
    normalize: bool = False,
) -> Path:
    """Return the path of a PNG confusion matrix (rows: true class, columns: predicted class).

    Pass `predict()`'s frame and the labelled table, or `y` (class indices) and
    `p` (probabilities (n, k) or predicted indices (n,)) with `classes`.
    """
    from sklearn.metrics import confusion_matrix

    y, p, classes, multilabel = _targets_probs(y, p, classes)
    if multilabel:
        raise ConfigError("A confusion matrix needs single-label targets; for multi-label use plot_threshold_curve.")
    truth = y.argmax(axis=1) if y.ndim == 2 else y.astype(int)
    pred = p.argmax(axis=1) if p.ndim == 2 else p.astype(int)
    cm = confusion_matrix(truth, pred, labels=np.arange(len(classes)))
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    k = len(classes)
    side = min(14.0, 2.5 + 0.55 * k)
    fig = _figure(side + 1, side)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), classes, rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"Confusion matrix ({cm.sum()} images, accuracy {acc:.3f})")
    if k <= 30:
        top = shown.max() if shown.size else 0
        for i in range(k):
            for j in range(k):
                text = f"{shown[i, j]:.2f}" if normalize else str(cm[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if shown[i, j] > top / 2 else "black")
    return _save(fig, path)


def per_image_loss(y: np.ndarray, p: np.ndarray, multilabel: bool, eps: float = 1e-7) -> np.ndarray:
    """Return each image's loss: -log p(true class), or mean binary cross-entropy over the labels (multi-label)."""
    q = np.clip(np.asarray(p, dtype="float64"), eps, 1 - eps)
    if multilabel:
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q), axis=1)
    truth = y.argmax(axis=1) if y.ndim == 2 else y.astype(int)
    return -np.log(q[np.arange(len(q)), truth])


def plot_top_losses(
    predictions: pd.DataFrame,
    table: LabelTable,
    path: str | os.PathLike = "top_losses.png",
    k: int = 9,
    settings: Mapping | None = None,
) -> Path:
    """Return the path of a PNG grid of the `k` images the model got most wrong, titled true / predicted / probability."""
    from PIL import Image

    from .metrics import decide

    y, p, classes, multilabel = _targets_probs(predictions, table, None)
    if len(y) == 0:
        raise ConfigError("No predictions to draw; predict on a labelled table first.")
    losses = per_image_loss(y, p, multilabel)
    order = np.argsort(-losses, kind="stable")[: max(1, int(k))]
    settings = dict(predictions.attrs.get("settings") or {}) if settings is None else dict(settings)
    decisions = decide(p, settings, multilabel=multilabel)
    paths = dict(zip(table.ids, table.paths))
    ids = predictions["id"].astype(str).tolist()
    cols = int(np.ceil(np.sqrt(len(order))))
    rows = int(np.ceil(len(order) / cols))
    fig = _figure(2.6 * cols, 2.9 * rows)
    for n, r in enumerate(order):
        ax = fig.add_subplot(rows, cols, n + 1)
        try:
            with Image.open(paths[ids[r]]) as im:
                im = im.convert("RGB")
                im.thumbnail((256, 256))
                ax.imshow(np.asarray(im))
        except (OSError, KeyError):
            ax.text(0.5, 0.5, "unreadable", ha="center", va="center")
        ax.set_axis_off()
        if multilabel:
            true = " ".join(c for c, v in zip(classes, y[r]) if v) or "-"
            pred = " ".join(c for c, v in zip(classes, decisions[r]) if v) or "-"
            title = f"{ids[r]}\ntrue: {true}\npred: {pred}\nloss {losses[r]:.2f}"
        else:
            t = int(y[r].argmax() if y.ndim == 2 else y[r])
            j = int(p[r].argmax())
            title = f"{ids[r]}\ntrue: {classes[t]} ({p[r, t]:.2f})\npred: {classes[j]} ({p[r, j]:.2f})"
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"Top {len(order)} losses")
    return _save(fig, path)


def plot_threshold_curve(
    y: object,
    p: object,
    path: str | os.PathLike = "threshold_fbeta.png",
    beta: float = 2.0,
    settings: Mapping | None = None,
    thresholds: Sequence[float] | None = None,
    classes: Sequence[str] | None = None,
) -> Path:
    """Return the path of a PNG of samples F-beta against a global threshold, marking the best and any tuned per-class score.

    Pass `predict()`'s frame and the labelled (multi-label) table, or multi-hot
    `y` and probabilities `p`.
    """
    from . import metrics

    if isinstance(y, pd.DataFrame) and settings is None:
        settings = y.attrs.get("settings")
    y, p, classes, _ = _targets_probs(y, p, classes)
    grid = np.asarray(thresholds if thresholds is not None else metrics.DEFAULT_THRESHOLDS, dtype="float64")
    plain = [metrics.fbeta(y, p, beta=beta, threshold=float(t), fallback=False) for t in grid]
    with_fb = [metrics.fbeta(y, p, beta=beta, threshold=float(t), fallback=True) for t in grid]
    best = int(np.argmax(with_fb))
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    ax.plot(grid, plain, label=f"F{beta:g}", color="tab:blue")
    ax.plot(grid, with_fb, label=f"F{beta:g} with at-least-one-label fallback", color="tab:orange")
    ax.axvline(grid[best], color="grey", linestyle=":")
    ax.scatter([grid[best]], [with_fb[best]], color="tab:orange", zorder=3)
    ax.annotate(f"best {grid[best]:.2f}: {with_fb[best]:.4f}", (grid[best], with_fb[best]), textcoords="offset points", xytext=(8, -14))
    thr = (settings or {}).get("threshold")
    if isinstance(thr, (list, tuple, np.ndarray)) and len(thr) == p.shape[1]:
        tuned = metrics.fbeta(y, p, beta=beta, threshold=np.asarray(thr), fallback=bool((settings or {}).get("fallback", True)))
        ax.axhline(tuned, color="tab:green", linestyle="--", label=f"per-class thresholds: {tuned:.4f}")
    ax.set_xlabel("threshold")
    ax.set_ylabel(f"F{beta:g} (samples average)")
    ax.set_xlim(0, 1)
    ax.set_title(f"Threshold against F{beta:g} ({len(y)} images, {p.shape[1]} classes)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
