"""`kagglekit doctor DIR`: what a competition folder holds, and what is wrong with it."""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .io import file_digest
from .table import LabelTable


@dataclass
class DoctorReport:
    """Findings about one competition folder; `str()` renders them for a person."""

    directory: Path
    layout: str
    train: LabelTable
    test: LabelTable | None
    class_counts: pd.Series
    labels_per_image: pd.Series
    bad_images: pd.DataFrame
    duplicates_train: list[list[str]] = field(default_factory=list)
    duplicates_cross: list[tuple[str, str]] = field(default_factory=list)
    sizes: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def problems(self) -> list[str]:
        """Return one line per problem found (empty when the folder looks healthy)."""
        out = []
        if len(self.bad_images):
            out.append(f"{len(self.bad_images)} unreadable images (they will be skipped)")
        if self.duplicates_train:
            out.append(f"{len(self.duplicates_train)} groups of identical images within train")
        if self.duplicates_cross:
            out.append(f"{len(self.duplicates_cross)} test images identical to a train image")
        counts = self.class_counts[self.class_counts > 0]
        if not self.train.multilabel and len(counts) < 2:
            out.append(f"only one class ({', '.join(map(str, counts.index)) or 'none'}): a classifier needs at least two; "
                       "add the other classes' images")
        singles = [str(c) for c in counts.index if counts[c] == 1]
        if singles and len(counts) >= 2:
            out.append(f"{len(singles)} classes have a single image ({', '.join(singles[:5])}"
                       f"{', ...' if len(singles) > 5 else ''}): they cannot be validated; add images to them")
        if len(counts) > 1 and counts.max() > 10 * counts.min():
            out.append(f"classes are imbalanced: {counts.idxmax()} has {counts.max()} images, "
                       f"{counts.idxmin()} has {counts.min()} (consider class_weight='balanced')")
        return out

    def __str__(self) -> str:
        lines = [f"kagglekit doctor: {self.directory}", f"layout      {self.layout}"]
        n_test = len(self.test) if self.test is not None else 0
        kind = "multi-label" if self.train.multilabel else "single-label"
        lines.append(f"images      {len(self.train)} train, {n_test} test; {len(self.train.classes)} classes, {kind}")
        counts = self.class_counts
        top = ", ".join(f"{k}: {v}" for k, v in counts.sort_values(ascending=False).head(8).items())
        lines.append(f"per class   min {counts.min()}, median {int(counts.median())}, max {counts.max()}  ({top}{', ...' if len(counts) > 8 else ''})")
        if self.train.multilabel:
            lpi = self.labels_per_image
            lines.append(f"labels/img  mean {lpi.mean():.2f}, min {lpi.min()}, max {lpi.max()}")
        if len(self.sizes):
            w, h = self.sizes["width"], self.sizes["height"]
            common = Counter(zip(w, h)).most_common(3)
            lines.append(
                f"image size  width {w.min()}..{w.max()} (median {int(w.median())}), height {h.min()}..{h.max()} "
                f"(median {int(h.median())}); most common " + ", ".join(f"{a}x{b} ({n})" for (a, b), n in common)
            )
        lines.append(f"unreadable  {len(self.bad_images)}" + (
            ": " + ", ".join(f"{Path(p).name} ({r})" for p, r in self.bad_images[["path", "reason"]].head(5).values)
            if len(self.bad_images) else ""))
        lines.append(f"duplicates  {sum(len(g) - 1 for g in self.duplicates_train)} within train, "
                     f"{len(self.duplicates_cross)} across train/test")
        for group in self.duplicates_train[:3]:
            lines.append("            same content: " + ", ".join(Path(p).name for p in group[:4]))
        for a, b in self.duplicates_cross[:3]:
            lines.append(f"            test {Path(b).name} == train {Path(a).name}")
        problems = self.problems
        lines.append("verdict     " + ("healthy" if not problems else "; ".join(problems)))
        return "\n".join(lines)


def _digests(paths: list[str]) -> list[str | None]:
    def one(p: str) -> str | None:
        try:
            return file_digest(p)
        except OSError:
            return None

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        return list(pool.map(one, paths, chunksize=64))


def _sizes(paths: list[str], limit: int) -> pd.DataFrame:
    from PIL import Image

    rng = np.random.default_rng(0)
    pick = paths if len(paths) <= limit else [paths[i] for i in rng.choice(len(paths), limit, replace=False)]
    rows = []
    for p in pick:
        try:
            with Image.open(p) as im:
                rows.append((p, im.width, im.height))
        except Exception:  # unreadable: reported by the image scan
            continue
    return pd.DataFrame(rows, columns=["path", "width", "height"])


def doctor(directory: str | os.PathLike, size_sample: int = 2000) -> DoctorReport:
    """Return a `DoctorReport` on a competition folder: layout, counts, balance, bad files, duplicates, sizes."""
    from . import images, layout

    directory = Path(directory)
    found = layout.detect(directory)
    train, test = found.read()  # detected once: the layout above, read
    all_paths = train.paths + (test.paths if test is not None else [])
    scan = images.scan_images(all_paths, verbose=False)
    bad = pd.DataFrame(scan.problems, columns=["path", "reason"])
    digests = _digests(all_paths)
    train_digests = digests[: len(train)]
    groups: dict[str, list[str]] = {}
    for path, d in zip(train.paths, train_digests):
        if d is not None:
            groups.setdefault(d, []).append(path)
    dup_train = [g for g in groups.values() if len(g) > 1]
    cross = []
    if test is not None:
        for path, d in zip(test.paths, digests[len(train):]):
            if d is not None and d in groups:
                cross.append((groups[d][0], path))
    return DoctorReport(
        directory=directory,
        layout=str(found),
        train=train,
        test=test,
        class_counts=train.counts(),
        labels_per_image=train.frame["labels"].map(len),
        bad_images=bad,
        duplicates_train=dup_train,
        duplicates_cross=cross,
        sizes=_sizes(all_paths, size_sample),
    )
