"""Inference from the data alone: single- or multi-label, the positive class, the id convention; each with its reason.

Pure functions over strings (cells of a label column, ids, column names): no files are
read here. Each returns a `Guess`: the value, why, and whether the evidence settles it
(``sure=False`` means `detect` reports an ambiguity naming the override).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

from ..table import is_number
from .readers import IMAGE_EXTENSIONS

_POSITIVE_COLUMN = re.compile(r"^(has|is|contains|with|any)_?(.+)$", re.IGNORECASE)
_BINARY_PAIRS = ({"0", "1"}, {"false", "true"}, {"no", "yes"}, {"n", "y"}, {"-1", "1"})


@dataclass(frozen=True)
class Guess:
    """One inferred value, the reason a user reads, and whether the evidence settles it."""

    value: object
    reason: str
    sure: bool = True


def _quote(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(repr(x) for x in list(items)[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def label_kind(cells: Sequence[str], sep: str = " ", sample_cells: Sequence[str] | None = None) -> Guess:
    """Return a `Guess` whose value is True (multi-label) or False (single-label) for the cells of one label column.

    Evidence, strongest first: a sample submission whose label column holds numbers
    (a probability) means single-label; a word that is a label on its own and also
    part of a longer cell means tags split consistently (multi-label); more distinct
    multi-word cells than words means tags combine (multi-label); otherwise the whole
    cells form a vocabulary of names with spaces in them (single-label: "Ankle boot"),
    settled when many rows share few distinct cells or the sample's one label is a
    whole train cell, else reported as unsure.
    """
    cells = [c.strip() for c in cells]
    filled = [c for c in cells if c]
    if not sep:
        return Guess(False, "no label separator: one label per row")
    spaced = sorted({c for c in filled if sep in c})
    if not spaced:
        return Guess(False, f"no label cell holds {sep!r}: one label per row")
    sample = [str(c).strip() for c in (sample_cells or []) if str(c).strip()]
    if sample and all(is_number(c) for c in sample):
        return Guess(False, f"the sample submission's label column holds numbers (a probability), and cells such as "
                            f"{_quote(spaced)} are whole class names")
    whole = {c for c in filled if sep not in c}
    words: dict[str, str] = {}
    for cell in spaced:
        for w in cell.split(sep):
            if w:
                words.setdefault(w, cell)
    alone = sorted(w for w in words if w in whole)
    if alone:
        w = alone[0]
        return Guess(True, f"tags split consistently: {w!r} is a label on its own and part of {words[w]!r}")
    if len(spaced) > len(words):
        return Guess(True, f"{len(spaced)} distinct multi-word cells combine only {len(words)} words: tags")
    distinct = set(filled)
    many = len(filled) >= 3 * len(distinct) and len(filled) >= 20
    reason = (f"whole cells form a vocabulary ({len(distinct)} distinct cells over {len(filled)} rows; words such as "
              f"{_quote(sorted(words))} never stand alone): class names with spaces, e.g. {_quote(spaced)}")
    if many:
        return Guess(False, reason)
    if sample:
        if set(sample) <= distinct:
            return Guess(False, reason + "; the sample submission holds one whole label per row")
        if any(sep in c for c in sample):
            return Guess(True, f"the sample submission's labels hold {sep!r}-separated tags ({_quote(sorted(set(sample)), 1)}), "
                               "and too few rows to tell from the cells", sure=False)
    return Guess(False, reason + "; too few rows to be sure", sure=False)


def wide_kind(rows_on: Sequence[int]) -> Guess:
    """Return a `Guess` (True: multi-label) for wide 0/1 columns, given the number of 1s in each row."""
    counts = list(rows_on)
    if counts and all(n == 1 for n in counts):
        return Guess(False, f"one-hot columns: every one of the {len(counts)} rows has exactly one 1",
                     sure=len(counts) >= 20)
    several = sum(1 for n in counts if n > 1)
    none = sum(1 for n in counts if n == 0)
    return Guess(True, f"0/1 columns: {several} rows have several 1s and {none} have none")


def positive_class(classes: Sequence[str], label_columns: Sequence[str], sample_columns: Sequence[str] = (),
                   sample_values: Sequence[str] = ()) -> Guess:
    """Return a `Guess` whose value is the positive class of a binary problem (None when the data cannot tell).

    A column named like a class (``dog``) or ``has_<x>``/``is_<x>`` with 0/1 classes, or
    0/1 (true/false, yes/no) classes under a plain ``label``/``target`` column, name it;
    other class names (``cat``/``dog``) under a plain column do not.
    """
    classes = [str(c) for c in classes]
    if len(classes) != 2:
        return Guess(None, f"not a binary problem ({len(classes)} classes)")
    value_columns = [c for c in sample_columns[1:]] if sample_columns else []
    for column in [*value_columns, *label_columns]:
        if column in classes:
            return Guess(column, f"the column {column!r} is named after the class {column!r}")
    lowered = {c.lower(): c for c in classes}
    pair = next((p for p in _BINARY_PAIRS if set(lowered) == p), None)
    for column in [*value_columns, *label_columns]:
        m = _POSITIVE_COLUMN.match(column)
        if m and pair is not None:
            yes = lowered["1" if "1" in pair else sorted(pair - {"0", "false", "no", "n", "-1"})[0]]
            return Guess(yes, f"the column {column!r} asks a yes/no question: {yes!r} means yes")
        if m and m.group(2).lower() in lowered:
            name = lowered[m.group(2).lower()]
            return Guess(name, f"the column {column!r} names the class {name!r}")
    if pair is not None:
        no = {"0", "false", "no", "n", "-1"}
        yes = lowered[sorted(set(lowered) - no)[0]]
        column = (value_columns or list(label_columns) or ["label"])[0]
        return Guess(yes, f"the classes are {_quote(sorted(classes))} under the column {column!r}: {yes!r} is the positive one")
    column = (value_columns or list(label_columns) or ["label"])[0]
    return Guess(None, f"the classes {_quote(classes)} do not say which one the column {column!r} holds the probability of",
                 sure=False)


def id_extension(sample_ids: Sequence[str], train_ids: Sequence[str] = ()) -> Guess:
    """Return a `Guess` whose value is True when submission ids keep the image extension (``abc.jpg``), else False."""
    sample_ids = [str(i) for i in sample_ids]
    if sample_ids:
        with_ext = [i for i in sample_ids if os.path.splitext(i)[1].lower() in IMAGE_EXTENSIONS]
        if len(with_ext) == len(sample_ids):
            return Guess(True, f"the sample submission's ids keep the extension (e.g. {sample_ids[0]!r})")
        if not with_ext:
            return Guess(False, f"the sample submission's ids have no extension (e.g. {sample_ids[0]!r})")
        return Guess(False, f"{len(with_ext)} of {len(sample_ids)} sample ids carry an extension", sure=False)
    train_ids = [str(i) for i in train_ids]
    if train_ids and all(os.path.splitext(i)[1].lower() in IMAGE_EXTENSIONS for i in train_ids[:50]):
        return Guess(True, f"no sample submission; the train ids keep the extension (e.g. {train_ids[0]!r})", sure=False)
    return Guess(False, "no sample submission; ids are file names without extension", sure=False)
