"""`kagglekit run`: fetch → layout → fine-tune → predict → post-process → submission → submit.

Every step leaves its result in the run folder, so running the same command again
after an interruption continues where it stopped (training resumes from its last
completed epoch; finished steps are not repeated).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, StateError
from .io import atomic_write_text, in_kaggle_notebook, working_root
from .logs import logger, shown
from .runstate import (RunState, TUNED_KEYS, file_hash, files_digest, load_learner, read_saved,
                       read_saved_tables, remove_partial_files, submit_once, table_digest, unchanged)
from .table import LabelTable

# Settings a run starts from. None for backbone, sizes, epochs and batch_size: planned from the time
# budget, the hardware and the images (`kagglekit.plan.make_plan`); a value given always wins.
DEFAULTS: dict[str, Any] = {
    "backbone": None,
    "sizes": None,
    "epochs": None,
    "weights": "imagenet",
    "valid": 0.2,
    "tta": "auto",  # the number of TTA views that helps on validation (0 up to the plan's cap)
    "seed": 0,
    "batch_size": None,
    "lr": None,  # the recipe's default
    "metric": None,  # inferred from the submission format
    "flip": None,  # horizontal flips in training and TTA; None: judged from the images (fine_tune's flip_check)
    "head": None,  # "knn" (identification: nearest neighbours) or "softmax"; None: from the labels (identify.choose_head)
}

# What `run` passes to `kagglekit.layout.detect` when given (CLI flags / the recipe's [layout] keys:
# `kagglekit.layout.OVERRIDES` names each one's flag).
LAYOUT_KEYS = ("multilabel", "positive", "group_col", "id_col", "label_col", "id_extension", "test")


# fine_tune arguments the run passes itself: the data and the [train] settings (a [fine_tune] section may not repeat them)
_SET_BY_RUN = frozenset({"data", "valid", "backbone", "sizes", "epochs", "weights", "batch_size", "seed", "workdir", "lr",
                        "flip"})


@dataclass
class RunResult:
    """What a run produced: the validation score, the submission file and, when submitted, the public score."""

    workdir: Path
    metric: str
    valid_score: float
    submission: Path
    settings: dict = field(default_factory=dict)
    public_score: float | None = None
    seconds: float = 0.0
    plan: RunPlan | None = None

    def __str__(self) -> str:
        lines = [f"validation {self.metric}: {self.valid_score:.4f}", f"submission: {self.submission}"]
        if self.public_score is not None:
            lines.append(f"public score: {self.public_score}")
        return "\n".join(lines)


@dataclass
class RunPlan:
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
        """Return the plan as the lines a user reads before any time is spent."""
        kind = "multi-label" if self.multilabel else "single-label"
        shown = ", ".join(self.classes[:8]) + (", ..." if len(self.classes) > 8 else "")
        out = [f"plan for {self.name} (run folder {self.workdir}):",
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


def load_recipe(path: str | os.PathLike | None) -> dict:
    """Return the settings in a recipe file (TOML or JSON), or {} when no file is given."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No recipe file at {path}; give the path of a .toml or .json recipe.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The recipe {path} cannot be read as UTF-8 text ({exc}); save it as a UTF-8 .toml or .json file.") from None
    toml = _toml_parser(path) if path.suffix == ".toml" else None
    try:
        return toml.loads(text) if toml is not None else json.loads(text)
    except Exception as exc:  # tomllib.TOMLDecodeError / json.JSONDecodeError
        raise ConfigError(f"The recipe {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: "
                          f"{' '.join(str(exc).split())}; fix the line it names.") from None


def _toml_parser(path: Path) -> Any:
    """Return the TOML parser: `tomllib` (Python 3.11+), else `tomli` (its backport, installed with kagglekit on 3.10)."""
    try:
        import tomllib

        return tomllib
    except ImportError:
        pass
    try:
        import tomli

        return tomli
    except ImportError:
        raise ConfigError(f"Reading the TOML recipe {path} needs Python 3.11+ or the tomli package; "
                          "pip install 'tomli>=2' (or write the recipe as JSON).") from None


def check_fine_tune_keys(section: Any, fine_tune: Callable, where: str = "the recipe's [fine_tune] section") -> dict:
    """Return `section` (the recipe's extra ``fine_tune`` arguments) after checking each key against `fine_tune`'s signature.

    Keys the run sets itself (backbone, sizes, epochs, ...: the [train] settings) and
    unknown keys are a `ConfigError` naming the key and the valid ones.
    """
    import inspect

    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where[:1].upper()}{where[1:]} must be a table of fine_tune arguments "
                          f"(key = value), not {type(section).__name__}.")
    params = inspect.signature(fine_tune).parameters
    valid = sorted(k for k in params if k not in _SET_BY_RUN)
    for key in section:
        if key in _SET_BY_RUN:
            fix = (f"put it in the [train] section or give --{key.replace('_', '-')}" if key in DEFAULTS else
                   "give --workdir" if key == "workdir" else "the run passes the competition's table itself")
            raise ConfigError(f"{key!r} in {where} is set by the run ({fix}); "
                              f"valid [fine_tune] keys: {', '.join(valid)}.")
        if key not in params:
            raise ConfigError(f"Unknown key {key!r} in {where}: fine_tune has no such argument; "
                              f"valid keys: {', '.join(valid)}.")
    return dict(section)


def _layout_settings(recipe: dict, overrides: dict) -> tuple[dict, dict]:
    """Return (the recipe's reader form {reader, args, test} or {}, the `detect` overrides), overrides winning over the recipe."""
    spec = dict(recipe.get("layout") or {})
    unknown = set(spec) - set(LAYOUT_KEYS) - {"reader", "args"}
    if unknown:
        raise ConfigError(f"Unknown keys {sorted(unknown)} in the recipe's [layout] section; known: reader, args, "
                          f"{', '.join(LAYOUT_KEYS)}.")
    given = {k: spec.pop(k) for k in LAYOUT_KEYS if k in spec}
    given.update({k: overrides[k] for k in LAYOUT_KEYS if overrides.get(k) is not None})
    return spec, given


def _read_tables(comp_path: Path, spec: dict, given: dict) -> tuple[LabelTable, LabelTable | None, LabelTable | None, dict]:
    """Return (train, validation or None, test or None, what was inferred) as the recipe's reader or `layout.detect` says."""
    from . import layout

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


def _plan(name: str, workdir: Path, train: LabelTable, valid: LabelTable, test: LabelTable | None, inferred: dict,
          cfg: dict, sample: Path | None, out_path: Path | None, saved: Any, model: Any) -> RunPlan:
    """Return the `RunPlan`: what the layout step inferred, the metric and why, the submission format and its positive class."""
    from . import submission

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
    return RunPlan(
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


def run(
    source: str | os.PathLike,
    *,
    workdir: str | os.PathLike | None = None,
    recipe: str | os.PathLike | dict | None = None,
    submit: bool = False,
    message: str | None = None,
    log: Callable[[str], None] | bool | None = print,
    time_budget: str | float | None = None,
    ledger: str | os.PathLike | bool | None = None,
    dry_run: bool = False,
    model: str | os.PathLike | None = None,
    **overrides: Any,
) -> RunResult | RunPlan:
    """Return a `RunResult` after taking a competition from its source to a validated submission file.

    Before any training the run logs its plan (a `RunPlan`): the layout and files
    read, the label kind and classes, the test set, the metric and why, the
    submission's columns and, for a probability column, the class it holds, and
    every ambiguity with the flag that settles it. In a Kaggle notebook
    (``$KAGGLE_KERNEL_RUN_TYPE``) the run folder is ``/kaggle/working/runs/<name>``
    (``$KAGGLEKIT_WORKING``) and the file Kaggle scores is written to
    ``/kaggle/working/submission.csv``; nothing needs the internet.

    Args:
        source: a competition slug (Kaggle API, or /kaggle/input in a notebook),
            or a local folder or zip holding the competition's files.
        workdir: where the run keeps its state, model and outputs
            (default ``runs/<name>``); re-running continues from there.
        recipe: a TOML/JSON file (or dict) with a ``layout`` section
            (``reader`` + ``args``, ``test``) and training settings.
        submit: upload the file through the Kaggle API and wait for the score.
        message: the submission's description (default names the backbone, the
            validation score and the run id, so ``kagglekit submissions`` finds the run).
        log: where the run's messages go (every step's, the ``kagglekit`` logger's):
            a callable gets each one as a line of text (default ``print``: stdout);
            None or False adds no output of its own (they then go only where
            the application's logging sends them; see ``kagglekit.logs``).
        time_budget: the whole run's time, seconds or a duration text ("10m", "1h30m");
            default `kagglekit.plan.DEFAULT_BUDGET_S` for the hardware (or, with explicit
            epochs, what they take). The plan (backbone, sizes, epochs, batch) is made
            for it and a `Deadline` keeps training inside it; a resumed run spends only
            what is left.
        ledger: the run ledger CSV a row is appended to at the end (default
            ``ledger.csv`` beside the run folder, i.e. ``runs/ledger.csv``); False: none.
        dry_run: stop after the plan and return it (a `RunPlan`); only the run
            folder's tables are written.
        model: a learner folder saved by an earlier run (``Learner.save``; e.g. a
            notebook dataset under /kaggle/input): no training, only prediction.
        **overrides: layout overrides passed to `kagglekit.layout.detect` (multilabel,
            positive, group_col, id_col, label_col, id_extension, test; they win
            over the recipe's [layout] keys), and training settings (backbone, sizes, epochs, weights, valid,
            tta, seed, batch_size, lr, metric) that win over the recipe; None
            means "not given" (use ``weights="none"`` to train from scratch).
    """
    with shown(log):
        return _run(source, workdir, recipe, submit, message, overrides, time_budget, ledger, dry_run, model)


def _run(source, workdir, recipe, submit: bool, message: str | None, overrides: dict,
         time_budget: str | float | None = None, ledger_path: str | os.PathLike | bool | None = None,
         dry_run: bool = False, model: str | os.PathLike | None = None) -> RunResult | RunPlan:
    """Return the `RunResult` of `run` (its body; messages go to the kagglekit logger)."""
    started = time.time()  # the budget's clock: importing the backend counts too
    from . import layout, predict, sources, submission
    from . import ledger as run_ledger
    from .durations import format_duration, parse_duration
    from .hardware import Hardware
    from .learner import Learner, fine_tune
    from .deadline import Deadline
    from .plan import ImageStats, Plan, make_plan

    budget_given = parse_duration(time_budget) if time_budget is not None else None  # a bad one fails before any work
    section = "the recipe's [fine_tune] section" if recipe is None or isinstance(recipe, dict) else \
        f"the [fine_tune] section of the recipe {recipe}"
    recipe = recipe if isinstance(recipe, dict) else load_recipe(recipe)
    unknown = set(overrides) - set(DEFAULTS) - set(LAYOUT_KEYS) - {"fine_tune"}
    if unknown:
        raise ConfigError(f"Unknown run settings {sorted(unknown)}; known: {sorted(DEFAULTS)} and the layout's "
                          f"{', '.join(LAYOUT_KEYS)}.")
    spec, given = _layout_settings(recipe, overrides)
    overrides = {k: v for k, v in overrides.items() if k not in LAYOUT_KEYS}
    unknown = set(recipe.get("train", {})) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"Unknown settings {sorted(unknown)} in the recipe's [train] section; known: {sorted(DEFAULTS)} "
                          "(other fine_tune arguments go in a [fine_tune] section).")
    check_fine_tune_keys(recipe.get("fine_tune"), fine_tune, section)  # up front: a misspelt key fails before any download
    check_fine_tune_keys(overrides.get("fine_tune"), fine_tune, "run(fine_tune=...)")
    cfg = {**DEFAULTS, **recipe.get("train", {}), **{k: v for k, v in overrides.items() if v is not None}}
    if isinstance(cfg["weights"], str) and cfg["weights"].lower() in ("none", ""):
        cfg["weights"] = None  # from scratch

    if model is not None and not (Path(model) / "learner.json").is_file():
        raise ConfigError(f"--model {model}: no saved learner there (learner.json and model.keras, as Learner.save "
                          "writes them). Name the folder an earlier run saved (its run folder's learner/).")
    notebook = in_kaggle_notebook()
    comp = sources.fetch(str(source))
    name = Path(str(source)).stem if os.path.exists(str(source)) else str(source)
    workdir = Path(workdir or (working_root() / "runs" if notebook else Path("runs")) / name)
    workdir.mkdir(parents=True, exist_ok=True)
    state = RunState(workdir)
    remove_partial_files(workdir)
    deadline_path = workdir / "deadline.json"

    # 1. layout and split (saved, so a re-run reads the same split); each step records the inputs that determine it
    tables = {k: workdir / f"{k}.table.csv" for k in ("train", "valid", "test")}
    layout_inputs = {"source": str(comp.path), "layout_recipe": {**spec, **given}, "files": files_digest(comp, workdir)}
    split_inputs = {"valid": cfg["valid"], "seed": cfg["seed"], "layout": state.result("layout")}
    read_back = None
    if state.fresh("layout", layout_inputs) and state.fresh("split", split_inputs):
        read_back = read_saved_tables(state, tables)
    if read_back is not None:
        train, valid, test = read_back
        inferred = state.result("layout").get("inferred", {})
    else:
        full, valid, test, inferred = _read_tables(comp.path, spec, given)
        if valid is None:
            full.validate()
            train, valid = layout.split(full, valid=cfg["valid"], seed=cfg["seed"])
        else:  # the competition ships its own validation set (iMaterialist): one vocabulary for both
            classes = sorted(set(full.classes) | set(valid.classes), key=layout.natural_key)
            train, valid = full.with_classes(classes), valid.with_classes(classes)
            train.validate(require_all_classes=False)
        train.to_csv(tables["train"])
        valid.to_csv(tables["valid"])
        if test is not None:
            test.to_csv(tables["test"])
        elif tables["test"].is_file():
            tables["test"].unlink()  # a test table of an earlier layout
        layout_result = {"full": table_digest(full), "test": table_digest(test) if test is not None else None,
                         "inferred": inferred}
        state.finish("layout", layout_inputs, layout_result)
        state.finish("split", {**split_inputs, "layout": layout_result},
                     {"train": table_digest(train), "valid": table_digest(valid), "rows": [len(train), len(valid)]})

    saved = Learner.load(model) if model is not None else None
    sample = comp.sample_submission
    out_path = (working_root() / "submission.csv" if notebook else
                workdir / Path(sample).name.replace("sample_", "")) if sample is not None else None
    inference = _plan(name, workdir, train, valid, test, inferred, cfg, sample, out_path, saved, model)
    for line in inference.lines():
        logger.info(line)
    if test is None:
        raise ConfigError(f"No test images found in {comp.path}; name the test folder or CSV with --test PATH "
                          "(recipe: layout.test).")
    from . import identify

    head, head_why = identify.choose_head(cfg["head"], train, inference.metric)
    logger.info(f"head: {head} ({head_why})")
    if dry_run:
        logger.info("dry run: stopped before training (nothing trained or predicted)")
        return inference
    metric = inference.metric
    if saved is not None:
        _check_saved(saved, train, model)

    # 2. the plan: backbone, sizes, epochs, batch for the budget, the hardware and the images (printed before
    #    any training); kept in run.json, so a resumed run trains to the same plan (a new one would restart it)
    plan_inputs = {"time_budget": budget_given, "split": state.result("split"),
                   **{k: cfg[k] for k in ("backbone", "sizes", "epochs", "batch_size", "weights")}}
    if not state.fresh("plan", plan_inputs):
        deadline_path.unlink(missing_ok=True)  # an older plan's clock is not this one's
        state.put("time_spent_s", 0.0)
    before = max(float(state.get("time_spent_s") or 0.0), _saved_spent(deadline_path))

    def spent() -> float:
        """Return the seconds this run has spent, earlier sessions included."""
        return before + time.time() - started

    run_id = state.get("run_id") or state.put("run_id", run_ledger.new_run_id())
    if state.result("plan"):
        plan = Plan.from_dict(state.result("plan"))
        head = plan.describe().splitlines()[0].removeprefix("plan: ")
        logger.info(f"plan (made earlier; {format_duration(spent())} of the budget spent): {head}")
    else:
        plan = make_plan(len(train), ImageStats.from_table(train), Hardware.probe(), budget_given,
                         weights=cfg["weights"], backbone=cfg["backbone"], epochs=cfg["epochs"], sizes=cfg["sizes"],
                         batch_size=cfg["batch_size"], n_valid=len(valid), n_test=len(test),
                         tta=4 if cfg["tta"] == "auto" else int(cfg["tta"]), spent_s=spent())
        logger.info(plan.describe())
        state.finish("plan", plan_inputs, plan.to_dict())
    # Explicit epochs without --time: the epochs asked are trained, whatever the clock says (no deadline).
    timed = budget_given is not None or cfg["epochs"] is None
    state.put("time_spent_s", round(spent(), 3))

    # 3. fine-tune (fine_tune itself resumes from its checkpoints in workdir/train) inside the deadline
    learner_dir = workdir / "learner"
    extra = {**recipe.get("fine_tune", {}), **(overrides.get("fine_tune") or {})}
    callbacks = list(extra.pop("callbacks", None) or [])
    train_inputs = {k: cfg[k] for k in ("valid", "seed", "lr", "flip")}
    train_inputs.update(plan=state.result("plan"), fit=extra.get("fit", "squash"), fine_tune=extra,
                        layout_recipe={**spec, **given}, data=state.result("split"),
                        model=str(Path(model).resolve()) if model is not None else None)
    learner = None
    if saved is not None:
        learner = saved
        logger.info(f"model: {learner} (loaded from {model}; not trained here)")
    elif state.fresh("train", train_inputs):
        learner = load_learner(state, learner_dir)
        if learner is not None:
            logger.info(f"model: {learner} (trained earlier, loaded from {learner_dir})")
    if learner is None:
        deadline = None
        if timed:
            saved_s = _saved_spent(deadline_path)
            deadline = Deadline.load(deadline_path, budget_s=plan.budget_s, extra_s=max(0.0, spent() - saved_s),
                                     reserve_s=plan.reserve_s, batch_size=plan.batch_size, size=plan.sizes[-1],
                                     valid_s=plan.valid_s)
            callbacks.insert(0, deadline)
        kwargs = {**plan.fine_tune_kwargs(), "seed": cfg["seed"], **({"lr": cfg["lr"]} if cfg["lr"] else {}),
                  **({"flip": cfg["flip"]} if cfg["flip"] is not None else {}), **extra}
        learner = fine_tune(train, valid=valid, workdir=workdir / "train", callbacks=callbacks, **kwargs)
        learner.save(learner_dir)
        state.put("epochs_done", len(learner.history))
        if deadline is not None:
            deadline.save()
            if deadline.stopped:
                logger.info(f"deadline: training ended after {len(learner.history)} epoch(s) of the "
                            f"{plan.total_epochs} planned ({deadline.stopped})")
        state.put("time_spent_s", round(spent(), 3))
        state.finish("train", train_inputs, {"fingerprint": learner.settings.get("fingerprint"),
                                             "best": learner.settings.get("best"), "epochs": len(learner.history)})

    # 4. post-processing (clip / thresholds / cut-points) and TTA tuned on validation, saved with the model;
    #    the validation images are predicted once, for tuning and for the score
    batch = plan.batch_size
    tune_inputs = {"metric": metric, "tta": cfg["tta"], "train": state.result("train"), "head": head}
    if saved is not None:  # tuned (or not) where it was trained; its validation images are not known here
        score = float("nan")
    elif state.fresh("tune", tune_inputs) and learner.settings.get("tuned_for") == metric:
        score = state.result("tune")["score"]
    else:
        for key in TUNED_KEYS:  # what an earlier tuning (maybe for another metric) chose
            learner.settings.pop(key, None)
        tta = cfg["tta"]
        left = plan.budget_s - spent()
        if head == "knn":  # ranked by nearest neighbours among the training images: no TTA views
            tta = 0
        elif tta == "auto" and timed and left < plan.reserve_s:
            logger.info(f"TTA: off, {format_duration(max(0.0, left))} left of the budget, less than the "
                        f"{format_duration(plan.reserve_s)} kept for predicting with it")
            tta = 0
        elif tta == "auto" and plan.tta <= 1:
            tta = 0
        elif tta == "auto":
            tta, _ = predict.choose_tta(learner, valid, metric, max_tta=plan.tta, batch_size=batch, progress=False)
        valid_probs = (identify.predict_knn(learner, train, valid, batch_size=batch) if head == "knn" else
                       predict.predict(learner, valid, tta=tta, batch_size=batch, progress=False))
        predict.tune_settings(learner, valid_probs, metric, table=valid)
        learner.settings["tuned_for"] = metric
        learner.save(learner_dir)
        score = predict.score(valid_probs, valid, metric, settings=learner.settings)
        state.finish("tune", tune_inputs, {"score": float(score), "left_out": len(valid_probs.attrs.get("unreadable") or ()),
                                           **{k: learner.settings[k] for k in TUNED_KEYS if k in learner.settings}})
    settings = learner.settings
    shown_settings = {k: settings[k] for k in ("clip", "threshold", "cuts", "new_threshold", "tta") if k in settings}
    described = ", ".join(f"{k}={v}" for k, v in shown_settings.items())
    if saved is not None:
        logger.info(f"validation {metric}: not measured (the learner from {model} was trained elsewhere)"
                    + (f"; its settings: {described}" if described else ""))
    else:
        left_out = (state.result("tune") or {}).get("left_out")
        logger.info(f"validation {metric}: {score:.4f}" + (f" ({described})" if described else "")
                    + (f"; {left_out} unreadable validation image(s) left out" if left_out else ""))

    # 5. test predictions -> submission, written in the sample's exact shape and validated
    probs_path = workdir / "test_predictions.csv"
    predict_inputs = {"tune": state.result("tune"), "test": table_digest(test), "train": state.result("train"), "head": head,
                      "settings": {k: settings[k] for k in TUNED_KEYS if k in settings}}
    test_probs = None
    if state.fresh("predict", predict_inputs):
        test_probs = read_saved(state, "predict", probs_path, predict.read_predictions)
    if test_probs is None:
        test_probs = (identify.predict_knn(learner, identify.gallery_of(train, valid), test, batch_size=batch)
                      if head == "knn" else predict.predict(learner, test, batch_size=batch))
        predict.save_predictions(test_probs, probs_path)
        state.finish("predict", predict_inputs, {"file": probs_path.name, "md5": file_hash(probs_path)})
    if sample is None:
        raise ConfigError(f"{comp.path} has no sample_submission.csv, so the submission's shape is unknown; "
                          f"the test predictions are in {probs_path}.")
    out = out_path
    write_inputs = {"predictions": state.result("predict"), "sample": file_hash(sample), "tune": state.result("tune"),
                    "positive": inference.positive, "kind": inference.submission_kind, "path": str(out_path)}
    if not (state.fresh("write", write_inputs) and unchanged(state, out)):
        out = submission.write_submission(test_probs, like=sample, path=out_path, settings=learner.settings,
                                          positive=inference.positive, kind=inference.submission_kind, metric=metric,
                                          **({"zip": False} if notebook else {}))
        state.finish("write", write_inputs, {"file": Path(out).name, "md5": file_hash(out)})
    logger.info(f"submission: {out} (validated against {Path(sample).name})")

    result = RunResult(workdir=workdir, metric=metric, valid_score=float(score), submission=Path(out),
                       settings={k: v for k, v in learner.settings.items() if k in TUNED_KEYS and k != "tuned_for"},
                       seconds=spent(), plan=inference)
    submitted = None
    if submit:
        from . import kaggle

        slug = getattr(comp, "slug", None) or name
        if state.submission(file_hash(out)) is None:
            _warn_when_no_submissions_left(kaggle, slug)
        # The default description names the run (its id), so a re-run finds its own submission and the ledger its row.
        text = message or f"kagglekit {plan.backbone} {metric}={score:.4f} [{run_id}]"
        answer = submit_once(state, slug, out, text, like=sample)
        result.public_score = getattr(answer, "public_score", None)
        submitted = {"public_score": result.public_score, "submission_ref": getattr(answer, "ref", None),
                     "message": text}
    result.seconds = spent()
    state.put("time_spent_s", round(result.seconds, 3))
    atomic_write_text(workdir / "result.json", json.dumps(asdict(result), indent=1, default=str))

    # 6. the ledger: one row per run (again only when this session submitted what an earlier one recorded)
    if ledger_path is not False and (not state.get("ledger") or submitted):
        path = Path(ledger_path) if ledger_path not in (None, True) else workdir.parent / "ledger.csv"
        sub = submitted or {}
        row = run_ledger.append({
            "run_id": run_id, "competition": getattr(comp, "slug", None) or name, "backbone": plan.backbone,
            "weights": plan.weights or "none", "sizes": plan.sizes, "epochs": plan.epochs,
            "epochs_done": state.get("epochs_done"), "batch_size": plan.batch_size,
            "budget_s": plan.budget_s if timed else None, "seconds": round(result.seconds, 1),
            "hardware": plan.hardware, "metric": metric, "valid_score": float(score),
            "tta": learner.settings.get("tta", 0), "submission": out, "message": sub.get("message"),
            "submission_ref": sub.get("submission_ref"), "public_score": sub.get("public_score"),
            "workdir": workdir, "extra": {"budget_given": plan.budget_given},
        }, path)
        state.put("ledger", str(path))
        logger.info(f"ledger: run {row['run_id']} recorded in {path} ({format_duration(result.seconds)} spent"
                    + (f" of a {format_duration(plan.budget_s)} budget)" if timed else ")"))
    return result


def _saved_spent(path: Path) -> float:
    """Return the seconds a `Deadline` state file at `path` says were spent (0 when there is none or it is unreadable)."""
    try:
        return float(json.loads(path.read_text(encoding="utf-8")).get("spent_s", 0.0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0.0


def _warn_when_no_submissions_left(kaggle: Any, slug: str) -> None:
    """Log a warning when Kaggle says no submissions are left today for `slug` (silent when it cannot tell)."""
    try:
        remaining = kaggle.submission_limits(slug)["remaining_today"]
    except Exception as exc:  # noqa: BLE001 - a warning only: the submission itself reports real errors
        logger.debug(f"could not read today's submission limits for {slug}: {exc}")
        return
    if remaining is not None and int(remaining) <= 0:
        logger.warning(f"Kaggle reports 0 submissions remaining today for {slug}: this upload will likely be "
                       "refused; the submission file is kept, submit it tomorrow with `kagglekit submit`.")
