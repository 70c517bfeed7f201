"""What a run infers before training: the tables read, the metric, the submission format, each with its reason."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, StateError
from ..table import LabelTable

@dataclass
class Inference:
    """What a run inferred before training (layout, labels, test set, metric, submission format), each with its reason."""

    name: str
    workdir: Path
    layout: str  # the layout kind ("csv", "class-folders", ...) or the recipe's reader
    files_read: list[str]
    multilabel: bool
    label_kind_reason: str
    classes: list[str]
    train: int
    valid: int
    test_sources: list[str]
    test: int
    metric: str
    metric_reason: str
    submission_columns: list[str] = field(default_factory=list)
    submission_kind: str | None = None
    submission_path: Path | None = None
    positive: str | None = None
    positive_reason: str = ""
    ambiguities: list[str] = field(default_factory=list)
    model: str = ""  # what produces the predictions: training settings, or the saved learner loaded
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return what was inferred as the lines a user reads before any time is spent."""
        kind = "multi-label" if self.multilabel else "single-label"
        shown = ", ".join(self.classes[:8]) + (", ..." if len(self.classes) > 8 else "")
        out = [f"inferred for {self.name} (run folder {self.workdir}):",
               f"  layout: {self.layout}; files read: {', '.join(self.files_read) or '-'}",
               f"  labels: {kind} ({self.label_kind_reason}); {len(self.classes)} classes ({shown})",
               f"  images: {self.train} train, {self.valid} valid, {self.test} test (from {', '.join(self.test_sources) or '-'})",
               f"  metric: {self.metric} ({self.metric_reason})"]
        if self.submission_columns:
            what = {"probability": "one probability column", "per_class": "one probability column per class",
                    "label": "one class name per row", "label_id": "one class index per row",
                    "labels": "space-separated labels per row"}.get(self.submission_kind or "", self.submission_kind)
            out.append(f"  submission: columns {', '.join(self.submission_columns[:6])}"
                       f"{', ...' if len(self.submission_columns) > 6 else ''} ({what}) -> {self.submission_path}")
        else:
            out.append("  submission: no sample submission, so no submission file (test predictions only)")
        if self.positive is not None:
            out.append(f"  positive class: {self.submission_columns[1] if self.submission_kind == 'probability' else 'the probability'}"
                       f" holds P({self.positive}) ({self.positive_reason})")
        out.append(f"  model: {self.model}")
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  AMBIGUOUS {a}" for a in self.ambiguities]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _read_tables(comp_path: Path, spec: dict, given: dict) -> tuple[LabelTable, LabelTable | None, LabelTable | None, dict]:
    """Return (train, validation or None, test or None, what was inferred) as the recipe's reader or `layout.detect` says."""
    from .. import layout

    if given.get("test") is not None:  # relative to the competition folder, else to the current folder
        test = Path(str(given["test"])).expanduser()
        given = {**given, "test": str(test if test.is_absolute() or (comp_path / test).exists() or not test.exists()
                                      else test.resolve())}
    if not spec.get("reader"):
        if spec.get("args"):
            raise ConfigError("The recipe's layout.args need a layout.reader (from_csv, from_folders, ...) to pass them to.")
        found = layout.detect(comp_path, **given)
        train, test = found.read()
        valid = found.valid.read() if found.valid is not None else None
        kind_fact = found.fact("multilabel")
        positive = found.fact("positive")
        info = {"layout": found.kind, "files_read": list(found.files_read), "test_sources": list(found.test_sources),
                "label_kind_reason": kind_fact.reason if kind_fact is not None else "",
                "positive": positive.value if positive is not None else None,
                "positive_reason": positive.reason if positive is not None else "",
                "ambiguities": [str(a) for a in found.ambiguities]}
        return train, valid, test, info
    reader = getattr(layout, spec.get("reader", ""), None)
    if not spec.get("reader", "").startswith("from_") or not callable(reader):
        raise ConfigError(f"The recipe's layout.reader {spec.get('reader')!r} is not a kagglekit.layout reader; "
                          "use from_csv, from_filenames, from_folders, from_imaterialist_json or from_pixel_csv.")
    misplaced = sorted(set(given) - {"test", "positive"})
    if misplaced:
        raise ConfigError(f"{', '.join(misplaced)} settle what layout detection infers, but the recipe names its reader "
                          f"({spec['reader']}); pass them in the recipe's layout.args instead.")
    resolve = lambda v: str(comp_path / v) if isinstance(v, str) and (comp_path / v).exists() else v  # noqa: E731
    try:
        train = reader(**{k: resolve(v) for k, v in spec.get("args", {}).items()})
    except TypeError as exc:  # a misspelt argument
        raise ConfigError(f"The recipe's layout.args do not fit kagglekit.layout.{spec['reader']}: {exc}.") from None
    test_spec = given.get("test", spec.get("test"))
    test = layout.unlabelled(resolve(test_spec)) if test_spec else None
    files = [str(v) for v in spec.get("args", {}).values() if isinstance(v, str) and (comp_path / v).is_file()]
    info = {"layout": f"the recipe's reader {spec['reader']}", "files_read": files,
            "test_sources": [str(test_spec)] if test_spec else [],
            "label_kind_reason": f"as {spec['reader']} reads it",
            "positive": given.get("positive"), "positive_reason": "set by positive=" if given.get("positive") else "",
            "ambiguities": [] if test_spec else ["test: the recipe names no test folder; settle it with --test FOLDER (recipe: layout.test)"]}
    return train, None, test, info


def _infer(name: str, workdir: Path, train: LabelTable, valid: LabelTable, test: LabelTable | None, inferred: dict,
           cfg: dict, sample: Path | None, out_path: Path | None, saved: Any, model: Any) -> Inference:
    """Return the `Inference`: what the layout step inferred, the metric and why, the submission format and its positive class."""
    from .. import submission

    classes = list(saved.classes) if saved is not None else list(train.classes)
    fmt, notes = None, []
    asked = cfg["metric"] or (saved.settings.get("tuned_for") if saved is not None else None)
    if sample is not None:
        choice = submission.infer_metric(sample, classes=classes, multilabel=train.multilabel, metric=asked)
        fmt = submission.read_format(sample, classes=classes, multilabel=train.multilabel,
                                     positive=inferred.get("positive"), metric=str(choice))
        notes += list(getattr(fmt, "notes", ()) or ())
        metric, why = str(choice), choice.reason
        if not cfg["metric"] and saved is not None and asked:
            why = f"the saved learner was tuned for it ({model})"
    elif asked:
        metric, why = asked, "set by --metric (recipe: train.metric)"
    else:
        metric = "f2" if train.multilabel else "accuracy"
        why = "no sample submission: the default for the label kind; --metric NAME sets it"
    ambiguities = list(inferred.get("ambiguities", ()))
    positive, positive_reason = None, ""
    if fmt is not None and fmt.kind == "probability":
        positive = fmt.positive
        positive_reason = ((inferred.get("positive_reason") if inferred.get("positive") is not None else None)
                           or getattr(fmt, "positive_reason", "") or "as inferred")
        if inferred.get("positive") is None and not any(a.startswith("positive") for a in ambiguities):
            ambiguities.append(f"positive: {fmt.columns[1]} is taken as P({positive}); settle it with --positive CLASS")
    if saved is not None:
        how = f"loaded from {model} ({saved}); no training"
    else:
        how = (f"train {cfg['backbone']} sizes {cfg['sizes'] or 'default'}, {cfg['epochs']} epochs per stage, "
               f"weights {cfg['weights'] or 'none (from scratch)'}, seed {cfg['seed']}")
    return Inference(
        name=name, workdir=workdir, layout=inferred.get("layout", "?"), files_read=list(inferred.get("files_read", ())),
        multilabel=bool(train.multilabel), label_kind_reason=inferred.get("label_kind_reason") or "as read",
        classes=classes, train=len(train), valid=len(valid), test_sources=list(inferred.get("test_sources", ())),
        test=len(test) if test is not None else 0, metric=metric, metric_reason=why,
        submission_columns=list(fmt.columns) if fmt is not None else [], submission_kind=fmt.kind if fmt is not None else None,
        submission_path=out_path, positive=positive, positive_reason=positive_reason, ambiguities=ambiguities, model=how,
        notes=notes)


def _check_saved(learner: Any, train: LabelTable, model: Any) -> None:
    """Raise `StateError` when a saved learner's classes or label kind differ from the competition's train labels."""
    if set(learner.classes) != set(train.classes) or bool(learner.multilabel) != bool(train.multilabel):
        kind = lambda m: "multi-label" if m else "single-label"  # noqa: E731
        raise StateError(f"The learner in {model} predicts {len(learner.classes)} {kind(learner.multilabel)} classes "
                         f"({', '.join(list(learner.classes)[:6])}), but this competition's train labels have "
                         f"{len(train.classes)} {kind(train.multilabel)} classes ({', '.join(list(train.classes)[:6])}). "
                         "Use a learner trained on this competition (its run folder's learner/).")


