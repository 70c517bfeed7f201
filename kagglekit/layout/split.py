"""Splits: `split` (stratified; iterative stratification for multi-label), `kfold` (their K-fold versions), `sample` and `split_arrays`, seeded and deterministic."""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, TableError, list_offenders
from ..logs import logger
from ..table import LabelTable, natural_key


def _check_fraction(value: float | int, name: str, total: int, rounding: Callable[[float], float] = round) -> int:
    """Return `value` (a float fraction in (0, 1) or an int count) as a count in [1, total - 1].

    A fraction becomes ``rounding(value * total)`` images (`split` rounds; scikit-learn, so `split_arrays`, takes the ceiling).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}={value!r} must be a fraction in (0, 1) or a whole number of images.")
    if isinstance(value, (float, np.floating)):
        if not 0 < value < 1:
            raise ConfigError(f"{name}={value} is not a fraction in (0, 1); e.g. {name}=0.2 (or an int count of images).")
        count = int(rounding(float(value) * total))
    else:
        count = int(value)
    if not 1 <= count <= total - 1:
        raise ConfigError(
            f"{name}={value} gives {count} of {total} images; each side needs at least one image (a stratified split: "
            f"one of each class). Use a fraction in (0, 1), e.g. --{name} 0.2, or a count of images below {total}."
        )
    return count


def _labelled_or_error(table: LabelTable, what: str) -> None:
    if len(table) < 2:
        raise TableError(f"The table has {len(table)} images; {what} needs at least 2.")


def _single_label_split(table: LabelTable, n_valid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    y = np.array([x[0] if x else "" for x in table.labels], dtype=object)
    counts = pd.Series(y).value_counts()
    singles = counts[counts < 2].index.tolist()
    rows = np.arange(len(table))
    keep_train = rows[np.isin(y, singles)]
    rest = rows[~np.isin(y, singles)]
    if singles:
        warnings.warn(
            f"{len(singles)} classes have a single image, so they cannot appear on both sides of the split: "
            f"{list_offenders(sorted(singles, key=natural_key))}. Their images stay in train; add images to validate them.",
            stacklevel=3,
        )
    n_classes = len(set(y[rest]))
    if n_classes < 2:
        raise TableError(
            f"{len(singles)} of the {len(counts)} classes have a single image ({list_offenders(sorted(singles, key=natural_key))}), "
            "so no stratified validation split is possible: add a second image to those classes (or drop them)."
        )
    if n_valid > len(rest) - n_classes or n_valid < n_classes:
        want = n_classes if n_valid < n_classes else max(len(rest) - n_classes, 0)
        frac = math.ceil(want / len(table) * 100) / 100 if n_valid < n_classes else math.floor(want / len(table) * 100) / 100
        raise TableError(
            f"A stratified split of {len(rest)} images in {n_classes} classes needs between {n_classes} and "
            f"{max(len(rest) - n_classes, 0)} validation images, not {n_valid} (at least one per class, and one per class "
            f"left in train): give --valid {frac:g} (recipe: train.valid; or a count of images, valid={want}), or add images."
        )
    train, valid = train_test_split(rest, test_size=n_valid, random_state=seed, stratify=y[rest])
    return np.sort(np.concatenate([train, keep_train])), np.sort(valid)


def _multilabel_split(
    table: LabelTable, n_valid: int, seed: int, both_sides: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    y = table.targets("multihot").astype(np.uint8)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
    train, valid = next(splitter.split(np.zeros((len(y), 1)), y))
    side = np.zeros(len(y), dtype=bool)  # True = valid
    side[valid] = True
    rng = np.random.default_rng(seed)
    if both_sides:
        _fix_sides(y, side, rng)
    _resize_side(y, side, n_valid, rng)
    rows = np.arange(len(y))
    return rows[~side], rows[side]


def _safe_rows(y: np.ndarray, rows: np.ndarray, counts: np.ndarray, totals: np.ndarray, fixing: int = -1) -> np.ndarray:
    """Return the `rows` that can leave their side: each of their labels (but `fixing`) keeps an image there.

    Among those, only the rows with the fewest labels (they disturb the balance least).
    """
    fragile = (counts <= 1) & (totals >= 2)
    if fixing >= 0:
        fragile[fixing] = False
    ok = rows[~y[np.ix_(rows, np.flatnonzero(fragile))].any(axis=1)] if fragile.any() else rows
    if not len(ok):
        return ok
    n_labels = y[ok].sum(axis=1)
    return ok[n_labels == n_labels.min()]


def _fix_sides(y: np.ndarray, side: np.ndarray, rng: np.random.Generator) -> None:
    """Swap images (in place) so every label with >= 2 images is on both sides, keeping the side sizes.

    The library's iterative stratification usually gets there alone; this catches the rest.
    """
    totals = y.sum(axis=0)
    for _ in range(2 * y.shape[1] + 10):
        in_valid = y[side].sum(axis=0)
        in_train = totals - in_valid
        lacking = [(j, True) for j in np.flatnonzero((totals >= 2) & (in_valid == 0))]
        lacking += [(j, False) for j in np.flatnonzero((totals >= 2) & (in_train == 0))]
        if not lacking:
            return
        label, to_valid = lacking[0]
        source_counts, dest_counts = (in_train, in_valid) if to_valid else (in_valid, in_train)
        donors = np.flatnonzero((y[:, label] == 1) & (side != to_valid))
        pool = _safe_rows(y, donors, source_counts, totals, fixing=label)
        pool = pool if len(pool) else donors
        donor = pool[int(rng.integers(len(pool)))]
        side[donor] = to_valid
        # Send one image back the other way so both sides keep their size.
        dest_counts = dest_counts + y[donor]
        back = np.flatnonzero((side == to_valid) & (y[:, label] == 0))
        pool = _safe_rows(y, back, dest_counts, totals)
        if len(pool):
            side[pool[int(rng.integers(len(pool)))]] = not to_valid


def _resize_side(y: np.ndarray, side: np.ndarray, n_valid: int, rng: np.random.Generator) -> None:
    """Move images (in place) until `n_valid` are on the valid side; the library can miss by a few with rare labels.

    Only images whose labels all keep an image on the side they leave are moved, fewest labels first.
    """
    totals = y.sum(axis=0)
    for _ in range(len(y)):
        excess = int(side.sum()) - n_valid
        if excess == 0:
            return
        leaving = excess > 0  # True: move valid -> train
        counts = y[side].sum(axis=0) if leaving else totals - y[side].sum(axis=0)
        pool = _safe_rows(y, np.flatnonzero(side == leaving), counts, totals)
        if not len(pool):
            return
        side[pool[int(rng.integers(len(pool)))]] = not leaving


def _group_split(table: LabelTable, groups: list[str], n_valid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (train rows, valid rows) with no group on both sides, stratified by class where scikit-learn can.

    Single-label tables use `StratifiedGroupKFold` with about ``len / n_valid`` folds and take
    the fold whose size is closest to `n_valid`; multi-label tables (or when stratification
    is impossible) use `GroupShuffleSplit`. The validation size is approximate: whole groups move.
    """
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    g = np.asarray(groups, dtype=object)
    n_groups = len(set(groups))
    if n_groups < 2:
        raise TableError(f"A group split needs at least 2 groups; the table has {n_groups}. "
                         "Pass groups=None (or group_col=None) to split by image.")
    rows = np.arange(len(table))
    if not table.multilabel and all(len(x) == 1 for x in table.labels):
        y = np.array([x[0] for x in table.labels], dtype=object)
        k = int(min(n_groups, max(2, round(len(table) / n_valid))))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "The least populated class has only n members": expected with groups
                folds = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, y, g))
            train, valid = min(folds, key=lambda f: (abs(len(f[1]) - n_valid), f[1][0]))
            return np.sort(train), np.sort(valid)
        except ValueError:
            pass
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_valid / len(table), random_state=seed)
    train, valid = next(splitter.split(rows, groups=g))
    return np.sort(train), np.sort(valid)


def split(
    table: LabelTable, valid: float | int = 0.2, seed: int = 0, groups: Sequence[object] | str | None = "auto"
) -> tuple[LabelTable, LabelTable]:
    """Return (train, valid) tables, stratified by class (iterative stratification for multi-label), group-aware.

    Args:
        table: the labelled table.
        valid: the validation share, a fraction in (0, 1) or a number of images.
        seed: the random seed; the same seed gives the same split.
        groups: one group per row (driver, patient) kept on one side; ``"auto"`` (default)
            uses the table's own groups when it has them, None ignores them.

    Single-label classes with one image stay in train (with a warning). In multi-label
    tables every label with at least 2 images appears on both sides. Rows keep their
    original order within each side; both sides keep the full class vocabulary. With
    groups, no group is on both sides and the validation size is approximate.
    """
    _labelled_or_error(table, "a split")
    n_valid = _check_fraction(valid, "valid", len(table))
    if isinstance(groups, str):
        if groups != "auto":
            raise ConfigError(f"groups={groups!r} is not supported; pass one group per row, 'auto' or None.")
        groups = table.groups
    if groups is not None:
        groups = [str(x) for x in groups]
        if len(groups) != len(table):
            raise TableError(f"groups has {len(groups)} values for {len(table)} rows; give one group per row.")
        train, held = _group_split(table, groups, n_valid, seed)
        logger.info("split by group: %d groups, %d train / %d valid images (no group on both sides)",
                    len(set(groups)), len(train), len(held))
        return table.take(train), table.take(held)
    if table.multilabel:
        train, held = _multilabel_split(table, n_valid, seed)
    elif all(len(x) == 1 for x in table.labels):
        train, held = _single_label_split(table, n_valid, seed)
    else:
        unl = [i for i, x in zip(table.ids, table.labels) if len(x) != 1]
        if len(unl) != len(table):
            raise TableError(
                f"{len(unl)} rows have no label in a single-label table: {list_offenders(unl)}. Drop or label them before splitting."
            )
        order = np.random.default_rng(seed).permutation(len(table))
        held, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    return table.take(train), table.take(held)


def _check_folds(k: object, n: int) -> int:
    """Return `k` as a number of folds in [2, n], else raise `ConfigError` naming the fix."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= int(k) <= n:
        raise ConfigError(f"folds={k!r} must be a whole number of folds between 2 and the {n} images "
                          "(e.g. --folds 5); use 1 for a single train/validation split.")
    return int(k)


def kfold(table: LabelTable, k: int = 5, seed: int = 0, groups: Sequence[object] | str | None = "auto") -> np.ndarray:
    """Return each row's fold (0..k-1): K-fold versions of `split`'s rules, seeded and deterministic.

    Single-label tables: scikit-learn's ``StratifiedKFold`` (shuffled; a class with fewer images
    than folds is spread as far as it goes, with a warning). Multi-label: iterative stratification
    (iterstrat's ``MultilabelStratifiedKFold``). With groups (``"auto"``: the table's own, as in
    `split`): ``StratifiedGroupKFold`` (single-label), else ``GroupKFold``; no group spans two
    folds. Every row is in exactly one fold, except the images of a class that would be held out
    by one fold only (one image): -1, trained in every fold (with a warning), as `split` keeps them in train.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    _labelled_or_error(table, "k-fold splitting")
    k = _check_folds(k, len(table))
    if isinstance(groups, str):
        if groups != "auto":
            raise ConfigError(f"groups={groups!r} is not supported; pass one group per row, 'auto' or None.")
        groups = table.groups
    rows = np.arange(len(table))
    single = not table.multilabel and all(len(x) == 1 for x in table.labels)
    y = np.array([x[0] for x in table.labels], dtype=object) if single else None
    if groups is not None:
        g = np.asarray([str(x) for x in groups], dtype=object)
        if len(g) != len(table):
            raise TableError(f"groups has {len(g)} values for {len(table)} rows; give one group per row.")
        if len(set(g)) < k:
            raise ConfigError(f"folds={k} needs at least {k} groups; the table has {len(set(g))}. "
                              f"Use --folds {max(2, len(set(g)))} or fewer (or split by image: no --group-col).")
        splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed) if single else GroupKFold(k)
        parts = _folds_of(splitter, rows, y, g)
        logger.info("k-fold split by group: %d groups in %d folds (no group in two folds)", len(set(g)), k)
    elif table.multilabel:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = _folds_of(splitter, rows, table.targets("multihot").astype(np.uint8), None)
    elif single:
        small = [c for c, n in pd.Series(y).value_counts().items() if n < k]
        if small:
            warnings.warn(f"{len(small)} classes have fewer images than the {k} folds, so some folds validate "
                          f"without them: {list_offenders(sorted(small, key=natural_key))}.", stacklevel=2)
        parts = _folds_of(StratifiedKFold(k, shuffle=True, random_state=seed), rows, y, None)
    else:
        parts = _folds_of(KFold(k, shuffle=True, random_state=seed), rows, None, None)
    fold = np.full(len(table), -1, dtype=int)
    for i, held in enumerate(parts):
        fold[held] = i
    if single or table.multilabel:
        _train_always(table, fold)
    return fold


def _train_always(table: LabelTable, fold: np.ndarray) -> None:
    """Mark -1 (in place) the images of each class held out by one fold only: every fold's training must see every class.

    A class with one image (or, with groups, all of its images in one group) cannot be held out
    without one fold's model never seeing it; those images are trained in every fold and not
    predicted out of fold (as `split` keeps single-image classes in train), with a warning.
    """
    y = table.targets("multihot") > 0
    lonely = []
    for c, name in enumerate(table.classes):
        rows = np.flatnonzero(y[:, c] & (fold >= 0))
        if len(rows) and len(set(fold[rows].tolist())) == 1 and not (y[:, c] & (fold < 0)).any():
            fold[rows] = -1
            lonely.append(name)
    if lonely:
        warnings.warn(f"{len(lonely)} classes have all their images in one fold, so those images are trained in "
                      f"every fold and get no out-of-fold prediction: {list_offenders(sorted(lonely, key=natural_key))}. "
                      "Add images to score them.", stacklevel=3)


def _folds_of(splitter: Any, rows: np.ndarray, y: Any, groups: Any) -> list[np.ndarray]:
    """Return the held-out rows of each of `splitter`'s folds (scikit-learn's class-size warnings silenced: `kfold` gives its own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "The least populated class in y has only n members"
        try:
            return [np.sort(held) for _, held in splitter.split(rows.reshape(-1, 1), y, groups)]
        except ValueError as exc:  # e.g. every class smaller than the number of folds
            raise ConfigError(f"A {splitter.get_n_splits()}-fold split of {len(rows)} images is impossible ({exc}); "
                              "give fewer folds (--folds) or add images to the smallest classes.") from None


def split_arrays(x: Any, y: Any, valid: float, seed: int = 0) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Return ((x_train, y_train), (x_valid, y_valid)): in-memory arrays split by scikit-learn, stratified when `y` is 1-D.

    Exactly ``train_test_split(x, y, test_size=valid, random_state=seed, stratify=y if y.ndim == 1
    else None)``: class indices (1-D `y`) are stratified, multi-hot rows (2-D `y`) are not.

    Args:
        x: the inputs (e.g. images, shape ``(n, ...)``).
        y: the targets: ``n`` class indices or an ``(n, classes)`` multi-hot array.
        valid: the validation share, a fraction in (0, 1) (``ceil(valid * n)`` rows) or a number of rows.
        seed: the random seed; the same seed gives the same split.
    """
    from sklearn.model_selection import train_test_split

    n = len(x)
    if len(y) != n:
        raise TableError(f"x has {n} rows but y has {len(y)}; pass one target per input row.")
    _check_fraction(valid, "valid", n, rounding=math.ceil)
    stratify = y if np.ndim(y) == 1 else None
    try:
        x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=valid, random_state=seed, stratify=stratify)
    except ValueError as exc:  # e.g. stratification impossible: a class with one row, or fewer valid rows than classes
        kind = "A stratified split" if stratify is not None else "A split"
        raise TableError(
            f"{kind} of {n} rows with valid={valid} is impossible ({exc}). "
            "Change valid=, or add rows to the smallest classes."
        ) from None
    return (x_train, y_train), (x_valid, y_valid)


def sample(table: LabelTable, n: int | None = None, frac: float | None = None, seed: int = 0) -> LabelTable:
    """Return a stratified random subset of `n` images or a `frac` share, for quick experiments.

    Single-label: each class gets its share (largest remainders), and at least one image
    when `n` is at least the number of classes. Multi-label: iterative stratification.
    Rows keep their original order; the vocabulary is kept.
    """
    if (n is None) == (frac is None):
        raise ConfigError("Pass exactly one of n= (a number of images) or frac= (a fraction in (0, 1]).")
    total = len(table)
    if frac is not None:
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise ConfigError(f"frac={frac!r} must be a fraction in (0, 1]; e.g. frac=0.1.")
        n = max(1, int(round(frac * total)))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= total:
        raise ConfigError(f"n={n!r} must be a whole number of images between 1 and {total}.")
    if n == total:
        return table.take(np.arange(total))
    rng = np.random.default_rng(seed)
    if table.multilabel:
        if n == 1:
            return table.take([int(rng.integers(total))])
        return table.take(_multilabel_split(table, n, seed, both_sides=False)[1])
    y = np.array([x[0] if x else "" for x in table.labels], dtype=object)
    groups = {c: np.flatnonzero(y == c) for c in sorted(set(y), key=natural_key)}
    shares = {c: n * len(rows) / total for c, rows in groups.items()}
    quota = {c: int(np.floor(s)) for c, s in shares.items()}
    if n >= len(groups):
        for c in quota:
            quota[c] = max(quota[c], 1)
    left = n - sum(quota.values())
    by_remainder = sorted(groups, key=lambda c: (-(shares[c] - np.floor(shares[c])), natural_key(c)))
    step = 1 if left >= 0 else -1
    candidates = by_remainder if left >= 0 else sorted(groups, key=lambda c: (-quota[c], natural_key(c)))
    k = 0
    while left != 0:
        c = candidates[k % len(candidates)]
        if (step > 0 and quota[c] < len(groups[c])) or (step < 0 and quota[c] > 1):
            quota[c] += step
            left -= step
        k += 1
    picked = [rng.choice(groups[c], size=quota[c], replace=False) for c in groups if quota[c]]
    return table.take(np.sort(np.concatenate(picked)))

