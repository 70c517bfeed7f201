"""What every zoo builder shares: the `ZooCompetition` record and the real-image helpers.

Pictures are made of real images only: scikit-learn's handwritten digits (the class
signal, via `kagglekit.testing.competitions.digits`) drawn over crops of scikit-learn's
two sample photos (``china.jpg``, ``flower.jpg``: texture, and for some competitions a
second, learnable cue). Everything is drawn from one seeded generator, so a build is
deterministic for a seed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .competitions import digits, mosaic, to_rgb

__all__ = ["ZooCompetition", "DigitPool", "picture", "photo_crop", "hex_ids", "sized", "mosaic", "to_rgb"]


@dataclass
class ZooCompetition:
    """One built competition: where it is, how it is scored, and what a reader should infer from it."""

    path: Path
    name: str
    metric: str
    answers: pd.DataFrame  # the held-back answers, in the submission's exact shape and row order
    id_column: str
    label_columns: tuple[str, ...]
    label_kind: str  # "single" | "multi" | "ordinal" | "binary-probability"
    classes: tuple[str, ...]
    test_source: str  # where the test images come from, e.g. "test/", "test.json + test/"
    submission_columns: tuple[str, ...]
    submission_kind: str  # "label" | "labels" (space-separated) | "probability" | "probabilities" | "top5"
    train_source: str  # where the train labels come from, e.g. "train.csv", "file names", "class folders"
    id_has_extension: bool = False
    positive_class: str | None = None
    sample_submission: str = "sample_submission.csv"  # its file name in `path`
    notes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(np.asarray(im, dtype="uint8") for im in load_sample_images().images)  # china, flower: 427×640×3


def photo_crop(rng: np.random.Generator, size: tuple[int, int], photo: int | None = None,
               window: int | None = None, at: tuple[int, int] | None = None) -> np.ndarray:
    """Return an H×W×3 uint8 crop of a scikit-learn sample photo resized to `size` (w, h)."""
    photos = _photos()
    src = photos[int(rng.integers(len(photos))) if photo is None else photo % len(photos)]
    w, h = size
    side = window or int(rng.integers(90, 200))
    cw, ch = (side, max(8, side * h // w)) if w >= h else (max(8, side * w // h), side)
    cw, ch = min(cw, src.shape[1]), min(ch, src.shape[0])
    if at is None:
        x, y = int(rng.integers(0, src.shape[1] - cw + 1)), int(rng.integers(0, src.shape[0] - ch + 1))
    else:
        x, y = min(at[0], src.shape[1] - cw), min(at[1], src.shape[0] - ch)
    crop = Image.fromarray(src[y:y + ch, x:x + cw]).resize((w, h), Image.BILINEAR)
    return np.asarray(crop)


class DigitPool:
    """Real handwritten digits by class, split so test pictures use digit samples train never sees."""

    def __init__(self, seed: int) -> None:
        images, labels = digits(None, seed)
        self.by_digit: dict[int, dict[str, list[np.ndarray]]] = {}
        for d in range(10):
            ims = list(images[labels == d])
            cut = int(len(ims) * 0.8)
            self.by_digit[d] = {"train": ims[:cut], "test": ims[cut:]}

    def draw(self, rng: np.random.Generator, digit: int, split: str) -> np.ndarray:
        """Return one 8×8 uint8 digit image (255 = ink) of `digit` from the `split` half."""
        ims = self.by_digit[int(digit)]["test" if split == "test" else "train"]
        return ims[int(rng.integers(len(ims)))]


def picture(rng: np.random.Generator, digit_image: np.ndarray | None, size: tuple[int, int], photo: int | None = None,
            scale: float = 0.7, ink: tuple[int, int, int] = (25, 20, 35), fade: float = 0.55,
            background: np.ndarray | None = None, center: tuple[float, float] = (0.5, 0.5), jitter: float = 0.06) -> Image.Image:
    """Return an RGB picture: a photo crop (faded toward white) with a real digit drawn over it in `ink`."""
    w, h = size
    bg = photo_crop(rng, size, photo) if background is None else background
    bg = 255.0 - (255.0 - bg.astype("float32")) * (1.0 - fade)
    if digit_image is not None:
        side = max(4, int(min(w, h) * scale))
        glyph = np.asarray(Image.fromarray(digit_image).resize((side, side), Image.BILINEAR), dtype="float32") / 255.0
        cx = int(w * center[0] + rng.uniform(-jitter, jitter) * w) - side // 2
        cy = int(h * center[1] + rng.uniform(-jitter, jitter) * h) - side // 2
        cx, cy = int(np.clip(cx, 0, w - side)), int(np.clip(cy, 0, h - side))
        region = bg[cy:cy + side, cx:cx + side]
        alpha = glyph[..., None]
        bg[cy:cy + side, cx:cx + side] = region * (1 - alpha) + np.asarray(ink, "float32") * alpha
    return Image.fromarray(np.clip(bg, 0, 255).astype("uint8"), mode="RGB")


def hex_ids(rng: np.random.Generator, n: int, length: int, taken: set[str] | None = None) -> list[str]:
    """Return `n` distinct lowercase hex ids of `length` characters (Kaggle's hashed image names)."""
    taken = set() if taken is None else taken
    out: list[str] = []
    while len(out) < n:
        candidate = rng.bytes((length + 1) // 2).hex()[:length]
        if candidate not in taken:
            taken.add(candidate)
            out.append(candidate)
    return out


def sized(image_size: int | tuple[int, int] | None, default: tuple[int, int]) -> tuple[int, int]:
    """Return the (w, h) to draw at: `default` when `image_size` is None, an int keeps the default's aspect (longest side)."""
    if image_size is None:
        return default
    if isinstance(image_size, int):
        w, h = default
        k = image_size / max(w, h)
        return max(1, round(w * k)), max(1, round(h * k))
    return int(image_size[0]), int(image_size[1])


def split_counts(n: int, fractions: dict, rng: np.random.Generator) -> list:
    """Return `n` class keys drawn with the given frequencies, each key at least once when n allows (shuffled)."""
    keys = list(fractions)
    p = np.asarray([fractions[k] for k in keys], dtype="float64")
    p = p / p.sum()
    base = keys[: min(n, len(keys))]
    rest = list(rng.choice(len(keys), size=n - len(base), p=p)) if n > len(base) else []
    out = base + [keys[int(i)] for i in rest]
    order = rng.permutation(len(out))
    return [out[i] for i in order]
