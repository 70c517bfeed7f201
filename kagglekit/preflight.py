"""What `kagglekit run` checks before any training (and `--dry-run` checks too): everything that can be known without training.

Each check is one function. It raises the package's own error (one line naming the input
and the fix) when the run cannot succeed, and returns the lines it states otherwise (what
was found and how it is treated). `preflight` runs them all and returns what they found.

=================  ==========================================================================
check              refuses
=================  ==========================================================================
check_writable     a run folder or ledger that cannot be written (nothing is created to test it)
check_tta          ``--tta`` outside 0..the number of views there are (12; 6 with --no-flip)
check_backbone     a backbone name that is not registered (naming the closest one)
check_classes      one class only; classes whose single images leave no class to validate on
check_sample       a sample submission with no rows, repeated ids, ids in another column than
                   the first, ids that name no test image, test images it does not list
check_positive     one probability column when nothing says which class it holds (``--positive``)
check_fine_tune    a class_weight naming classes the labels lack (or for multi-label); a monitor never logged
check_folds        a ``--folds K`` split the labelled images cannot make (e.g. more folds than any class has images)
check_budget       a ``--time`` too short to train one epoch (naming the minimum)
=================  ==========================================================================

See docs/dry-run.md for each message and its fix.
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, PlanError, SubmissionError, TableError, list_offenders
from .table import LabelTable, natural_key


@dataclass
class Preflight:
    """What the checks found: the lines they state (nothing refused), and the plan the budget check made (or None)."""

    notes: list[str] = field(default_factory=list)
    plan: Any = None

    def __bool__(self) -> bool:
        return True


# ------------------------------------------------------------------ settings and places
def _nearest_existing(path: Path) -> Path:
    """Return `path` or its closest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(path: Path, what: str, fix: str, folder: bool) -> None:
    """Raise `ConfigError` unless `path` (a folder or a file, existing or not) can be created or written."""
    there = _nearest_existing(path)
    if there == path.absolute():
        if folder and not there.is_dir():
            raise ConfigError(f"{what} {path} is a file, not a folder; {fix}.")
        if not folder and there.is_dir():
            raise ConfigError(f"{what} {path} is a folder, not a file; {fix}.")
        if not os.access(there, os.W_OK):
            raise ConfigError(f"{what} {path} cannot be written (no write permission); {fix}.")
        return
    if not there.is_dir():
        raise ConfigError(f"{what} {path} cannot be created: {there} is a file, not a folder; {fix}.")
    if not os.access(there, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path} cannot be created: {there} is not writable; {fix}.")


def check_writable(workdir: str | os.PathLike, ledger: str | os.PathLike | bool | None = None) -> list[str]:
    """Return [] after checking the run folder and the ledger can be written (creating nothing); raise `ConfigError` otherwise.

    `ledger`: its path, or None / True for the default (``ledger.csv`` beside the run folder), False for none.
    """
    workdir = Path(workdir)
    _writable(workdir, "The run folder", "give a writable --workdir (kk.run(workdir=...))", folder=True)
    if ledger is not False:
        path = Path(ledger) if ledger not in (None, True) else workdir.parent / "ledger.csv"
        _writable(path, "The run ledger", "give a writable --ledger PATH (kk.run(ledger=...))", folder=False)
    return []


def check_tta(tta: Any, flip: bool | None = None) -> list[str]:
    """Return [] after checking the TTA setting is 'auto' or a number of views there are; raise `ConfigError` otherwise."""
    if tta is None or tta == "auto":
        return []
    try:
        n = int(tta)
        if isinstance(tta, bool) or float(tta) != n:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"--tta {tta!r} is not a number of views; give 0 (none) .. 12, or auto "
                          "(recipe: train.tta).") from None
    most = _views(flip is not False)
    if not 0 <= n <= most:
        hint = " (--no-flip leaves only the unflipped views)" if flip is False else ""
        raise ConfigError(f"--tta {n} is outside 0..{most}: there are {most} test-time views{hint}; "
                          f"give --tta between 0 and {most}, or auto (recipe: train.tta).")
    unflipped = _views(False)
    if flip is None and n > unflipped:  # judged from the images during training (fine_tune's flip_check)
        return [f"--tta {n} needs flipped views: if training judges flips wrong for these images (digits, text), only "
                f"{unflipped} views exist and prediction stops; give --flip to keep them, or --tta {unflipped} or fewer"]
    return []


def _views(flip: bool) -> int:
    """Return how many TTA views there are with or without flips."""
    from .predict import tta_views

    n = 1
    while True:
        try:
            tta_views(n + 1, flip=flip)
        except ConfigError:
            return n
        n += 1


def check_backbone(name: str | None) -> list[str]:
    """Return [] after checking `name` is a registered backbone (None: planned); raise `ConfigError` naming the closest one."""
    if name is None:
        return []
    from . import backbones

    known = backbones.names()
    if str(name).lower() in known:
        return []
    close = difflib.get_close_matches(str(name).lower(), known, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"--backbone {name!r} is not a registered backbone: {hint}`kagglekit backbones` lists them "
                      f"({', '.join(known)}).")


# ------------------------------------------------------------------ the data
def check_classes(table: LabelTable, valid: LabelTable | None = None, where: str = "the train labels") -> list[str]:
    """Return notes on classes with one image; raise `TableError` for one class only or when no class can be validated.

    `valid`: the validation part when `table` is the train part of a split (the classes are counted over both).
    """
    counts = table.counts()
    if valid is not None:
        counts = counts.add(valid.counts(), fill_value=0).astype(int)
    present = [c for c in counts.index if counts[c] > 0]
    if not table.multilabel and len(present) < 2:
        what = (f"only one class, {present[0]!r} ({int(counts[present[0]])} images)" if present else "no labelled image")
        raise TableError(f"{where} hold {what}: a classifier needs at least two classes; add the other classes' images "
                         "(class folders: one folder per class), or check the label column (--label-col NAME).")
    if table.multilabel:
        sets = {tuple(sorted(x)) for x in table.labels}
        if len(sets) < 2:
            raise TableError(f"every image of {where} has the same labels ({' '.join(next(iter(sets))) or 'none'}): "
                             "there is nothing to learn; check the label column (--label-col NAME) and --tag-sep.")
        return []
    singles = sorted((c for c in present if counts[c] == 1), key=natural_key)
    if not singles:
        return []
    if len(present) - len(singles) < 2 and table.groups is None:
        raise TableError(f"{len(singles)} of the {len(present)} classes in {where} have a single image "
                         f"({list_offenders(singles)}), so no stratified validation split is possible: add a second "
                         "image to those classes (or drop them); every class needs 2 images to be validated.")
    return [f"{len(singles)} classes have a single image ({list_offenders(singles)}): kept in train, never validated; "
            "add images to those classes to validate them"]


def _norm(ids: Sequence[str]) -> list[str]:
    from .submission.write import _norm_id

    return [_norm_id(i) for i in ids]


def check_sample(sample: str | os.PathLike | None, test: LabelTable | None) -> list[str]:
    """Return [] after checking the sample submission's rows against the test images; raise `SubmissionError` otherwise.

    Refused: no rows, repeated ids, ids in another column than the first, sample ids that
    name no test image, test images the sample does not list (the submission could not be written).
    Ids match as the submission writer matches them: exactly, else without extension and leading zeros.
    """
    if sample is None or test is None:
        return []
    from .layout.readers import read_label_frame

    path = Path(sample)
    frame = read_label_frame(path)
    name = path.name
    if not len(frame):
        raise SubmissionError(f"{path} has a header but no rows, so the ids to predict are unknown; "
                              "download the sample submission again (kagglekit fetch SLUG).")
    columns = list(frame.columns)
    ids = frame[columns[0]].str.strip().tolist()
    test_ids = list(test.ids)
    exact, normed = set(test_ids), set(_norm(test_ids))
    hits = [i in exact or n in normed for i, n in zip(ids, _norm(ids))]
    if not any(hits):
        for k, col in enumerate(columns[1:], start=2):
            values = frame[col].str.strip().tolist()
            if sum(v in exact or n in normed for v, n in zip(values, _norm(values))) >= 0.5 * len(values):
                raise SubmissionError(
                    f"{name} holds the test ids in its column {col!r} (column {k} of {len(columns)}), not in the first "
                    f"column ({columns[0]!r}); kagglekit writes the sample's first column as the ids: put the id column "
                    "first in the sample (as Kaggle's samples have it), or check it is the right file.")
    dupes = sorted({i for i in ids if ids.count(i) > 1}, key=natural_key) if len(set(ids)) < len(ids) else []
    if dupes:
        raise SubmissionError(f"{len(dupes)} ids appear more than once in {name}: {list_offenders(dupes)}; Kaggle scores "
                              "one row per id: download the sample submission again.")
    unknown = [i for i, hit in zip(ids, hits) if not hit]
    if unknown:
        how = "none of its" if len(unknown) == len(ids) else f"{len(unknown)} of its {len(ids)}"
        raise SubmissionError(
            f"{how} ids of {name} name a test image ({list_offenders(unknown)}; the test images are "
            f"{len(test_ids)}, e.g. {list_offenders(test_ids, 3)}): name the folder holding them with --test PATH "
            "(recipe: layout.test), or settle the id convention with --id-extension / --no-id-extension.")
    listed, listed_norm = set(ids), set(_norm(ids))
    extra = [t for t, n in zip(test_ids, _norm(test_ids)) if t not in listed and n not in listed_norm]
    if extra:
        raise SubmissionError(
            f"{len(extra)} of the {len(test_ids)} test images are not listed in {name} ({list_offenders(extra)}), so "
            f"their predictions could not be written: predict only the sample's ids with --test {name} "
            "(recipe: layout.test), or name the right test folder with --test PATH.")
    return []


def check_positive(kind: str | None, positive: str | None, columns: Sequence[str], classes: Sequence[str]) -> list[str]:
    """Return [] after checking a single probability column knows its class; raise `PositiveClassError` otherwise.

    `kind`, `positive`, `columns`: the submission format the plan read from the sample (`Inference`).
    """
    if kind != "probability" or positive is not None:
        return []
    from .errors import PositiveClassError

    column = columns[1] if len(columns) > 1 else "its value column"
    raise PositiveClassError(f"the sample submission's {column!r} holds one probability, and nothing says which class "
                             f"it is of ({', '.join(map(str, classes))}): give --positive CLASS (recipe: layout.positive).")


def check_budget(budget: float | None, train: LabelTable, valid: LabelTable | None, test: LabelTable | None,
                 cfg: dict, hardware: Any = None) -> Any:
    """Return the plan of one epoch (or None when no budget is given) after checking `budget` trains one; raise `PlanError` otherwise.

    The plan is made as the run makes it (backbone, weights, sizes, batch as asked), for one
    epoch and nothing spent yet; the minimum named is what that one epoch, starting and
    predicting the test images need.
    """
    if budget is None:
        return None
    from .durations import format_duration
    from .hardware import Hardware
    from .plan import FILL, ImageStats, make_plan

    tta = cfg.get("tta", "auto")
    plan = make_plan(len(train), ImageStats.from_table(train), hardware or Hardware.probe(), budget,
                     weights=cfg.get("weights"), backbone=cfg.get("backbone"), epochs=1, sizes=cfg.get("sizes"),
                     batch_size=cfg.get("batch_size"), n_valid=len(valid) if valid is not None else None, n_test=len(test) if test is not None else 0,
                     tta=4 if tta in (None, "auto") else int(tta), spent_s=0.0)
    need = plan.startup_s + plan.reserve_s + plan.train_s / FILL
    if budget < need:
        cheaper = " (or --weights none: a from-scratch model is cheaper)" if plan.weights else ""
        raise PlanError(f"--time {format_duration(budget)} is too short to train at all: one epoch of {plan.backbone} at "
                        f"{plan.sizes[-1]} px on {len(train)} images, with starting and predicting {len(test) if test is not None else 0} "
                        f"test images, needs ~{format_duration(need)}; give at least --time {math.ceil(need / 60)}m"
                        f"{cheaper}.")
    return plan


def check_fine_tune(extra: dict | None, train: LabelTable) -> list[str]:
    """Return [] after checking the [fine_tune] settings that depend on the labels; raise `ConfigError` otherwise.

    Refused: ``class_weight`` naming a class the labels do not have, or given for multi-label labels;
    ``monitor`` naming a quantity this label kind does not log (``val_accuracy`` is ``val_binary_accuracy``
    for multi-label labels).
    """
    extra = extra or {}
    weights = extra.get("class_weight")
    if isinstance(weights, dict):
        if train.multilabel:
            raise ConfigError("[fine_tune] class_weight is for single-label labels; these are multi-label: "
                              "leave class_weight out (recipe [fine_tune], kk.run(fine_tune={...})).")
        unknown = sorted((str(k) for k in weights if str(k) not in set(map(str, train.classes))), key=natural_key)
        if unknown:
            raise ConfigError(f"[fine_tune] class_weight names {len(unknown)} classes the train labels do not have "
                              f"({list_offenders(unknown)}); the classes are {list_offenders(list(train.classes), 8)}: "
                              "name those (or give class_weight = \"balanced\").")
    elif weights == "balanced" and train.multilabel:
        raise ConfigError("[fine_tune] class_weight = \"balanced\" is for single-label labels; these are multi-label: "
                          "leave class_weight out.")
    monitor = extra.get("monitor")
    if monitor is not None and monitor.endswith("accuracy"):
        right = monitor.replace("binary_accuracy", "accuracy").replace("accuracy", "binary_accuracy" if train.multilabel
                                                                     else "accuracy")
        if right != monitor:
            kind = "multi-label" if train.multilabel else "single-label"
            raise ConfigError(f"[fine_tune] monitor = {monitor!r} is never logged for {kind} labels (Keras logs "
                              f"{right!r}), so no epoch would be picked as the best; give monitor = {right!r}.")
    return []


def check_folds(k: int, train: LabelTable, valid: LabelTable | None, seed: int = 0) -> list[str]:
    """Return [] after checking a K-fold split of the labelled images can be made (`layout.kfold`); raise its error otherwise."""
    if k <= 1:
        return []
    import logging
    import warnings

    import pandas as pd

    from . import layout
    from .logs import logger

    full = train if valid is None else LabelTable(pd.concat([train.frame, valid.frame], ignore_index=True),
                                                  train.classes, train.multilabel)
    level = logger.level
    logger.setLevel(logging.ERROR)  # the run's own kfold says what it finds; this one only checks it can be made
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layout.kfold(full, k, seed=seed)
    finally:
        logger.setLevel(level)
    return []


# ------------------------------------------------------------------ all of them
def check_settings(cfg: dict, workdir: str | os.PathLike, ledger: str | os.PathLike | bool | None = None) -> list[str]:
    """Return the notes of the checks that need no data (run folder and ledger, TTA, backbone); raise on a refusal."""
    return [*check_writable(workdir, ledger), *check_tta(cfg.get("tta"), cfg.get("flip")),
            *check_backbone(cfg.get("backbone"))]


def preflight(cfg: dict, *, workdir: str | os.PathLike, train: LabelTable, valid: LabelTable | None = None,
              test: LabelTable | None = None, sample: str | os.PathLike | None = None, budget: float | None = None,
              ledger: str | os.PathLike | bool | None = None, trains: bool = True, inference: Any = None,
              fine_tune: dict | None = None) -> Preflight:
    """Return a `Preflight` (notes, the budget's one-epoch plan) after every check a run can make before training.

    Raises the package's error of the first check that refuses (one line naming the fix).
    `trains`: False when nothing is trained here (``--model``): the class and budget checks are skipped.
    `inference`: the run's `Inference` (its submission format: a probability column must know its class).
    `fine_tune`: the run's further fine_tune arguments (class_weight and monitor are checked against the labels).
    """
    found = Preflight()
    found.notes += check_settings(cfg, workdir, ledger)
    if trains:
        found.notes += check_classes(train, valid)
        found.notes += check_fine_tune(fine_tune, train)
    found.notes += check_sample(sample, test)
    if inference is not None:
        found.notes += check_positive(inference.submission_kind, inference.positive, inference.submission_columns,
                                      inference.classes)
    if trains:
        found.plan = check_budget(budget, train, valid, test, cfg)
    return found
