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

from .errors import ConfigError
from .io import atomic_write_text
from .logs import logger, shown
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
}


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

    def __str__(self) -> str:
        lines = [f"validation {self.metric}: {self.valid_score:.4f}", f"submission: {self.submission}"]
        if self.public_score is not None:
            lines.append(f"public score: {self.public_score}")
        return "\n".join(lines)


def load_recipe(path: str | os.PathLike | None) -> dict:
    """Return the settings in a recipe file (TOML or JSON), or {} when no file is given."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No recipe file at {path}; give the path of a .toml or .json recipe.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except Exception as exc:  # tomllib.TOMLDecodeError / json.JSONDecodeError
        raise ConfigError(f"The recipe {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None


class _Steps:
    """A tiny record of finished steps, saved atomically in the run folder."""

    def __init__(self, workdir: Path, fingerprint: dict) -> None:
        self.path = workdir / "run.json"
        self.state: dict = {"fingerprint": fingerprint, "done": {}}
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("fingerprint") == fingerprint:
                self.state = saved

    def done(self, name: str) -> Any:
        return self.state["done"].get(name)

    def finish(self, name: str, value: Any = True) -> Any:
        self.state["done"][name] = value
        atomic_write_text(self.path, json.dumps(self.state, indent=1, default=str))
        return value


def _read_tables(comp_path: Path, recipe: dict) -> tuple[LabelTable, LabelTable | None, LabelTable | None]:
    """Return (train, validation or None, test or None) as the recipe's layout section or detection says."""
    from . import layout

    spec = recipe.get("layout")
    if not spec:
        found = layout.detect(comp_path)
        train, test = found.read()
        return train, (found.valid.read() if found.valid is not None else None), test
    reader = getattr(layout, spec.get("reader", ""), None)
    if not spec.get("reader", "").startswith("from_") or not callable(reader):
        raise ConfigError(f"The recipe's layout.reader {spec.get('reader')!r} is not a kagglekit.layout reader; "
                          "use from_csv, from_filenames, from_folders, from_imaterialist_json or from_pixel_csv.")
    resolve = lambda v: str(comp_path / v) if isinstance(v, str) and (comp_path / v).exists() else v  # noqa: E731
    try:
        train = reader(**{k: resolve(v) for k, v in spec.get("args", {}).items()})
    except TypeError as exc:  # a misspelt argument
        raise ConfigError(f"The recipe's layout.args do not fit kagglekit.layout.{spec['reader']}: {exc}.") from None
    test = layout.unlabelled(resolve(spec["test"])) if "test" in spec else None
    return train, None, test


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
    **overrides: Any,
) -> RunResult:
    """Return a `RunResult` after taking a competition from its source to a validated submission file.

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
        **overrides: training settings (backbone, sizes, epochs, weights, valid,
            tta, seed, batch_size, lr, metric) that win over the recipe; None
            means "not given" (use ``weights="none"`` to train from scratch).
    """
    with shown(log):
        return _run(source, workdir, recipe, submit, message, overrides, time_budget, ledger)


def _run(source, workdir, recipe, submit: bool, message: str | None, overrides: dict,
         time_budget: str | float | None = None, ledger_path: str | os.PathLike | bool | None = None) -> RunResult:
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
    recipe = recipe if isinstance(recipe, dict) else load_recipe(recipe)
    unknown = set(overrides) - set(DEFAULTS) - {"fine_tune"}
    if unknown:
        raise ConfigError(f"Unknown run settings {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    unknown = set(recipe.get("train", {})) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"Unknown settings {sorted(unknown)} in the recipe's [train] section; known: {sorted(DEFAULTS)} "
                          "(other fine_tune arguments go in a [fine_tune] section).")
    cfg = {**DEFAULTS, **recipe.get("train", {}), **{k: v for k, v in overrides.items() if v is not None}}
    if isinstance(cfg["weights"], str) and cfg["weights"].lower() in ("none", ""):
        cfg["weights"] = None  # from scratch

    comp = sources.fetch(str(source))
    name = Path(str(source)).stem if os.path.exists(str(source)) else str(source)
    workdir = Path(workdir or Path("runs") / name)
    workdir.mkdir(parents=True, exist_ok=True)
    fingerprint = {k: cfg[k] for k in ("backbone", "sizes", "epochs", "weights", "valid", "seed", "lr", "batch_size")}
    fingerprint["source"] = str(comp.path)
    fingerprint["time_budget"] = budget_given
    steps = _Steps(workdir, json.loads(json.dumps(fingerprint, default=str)))
    deadline_path = workdir / "deadline.json"
    if not steps.done("plan") and deadline_path.is_file():  # a new run in this folder: an older run's clock is not ours
        deadline_path.unlink()
    # Seconds earlier sessions of this run spent (run.json; the deadline's state when killed inside training).
    before = max(float(steps.done("time_spent_s") or 0.0), _saved_spent(deadline_path))

    def spent() -> float:
        """Return the seconds this run has spent, earlier sessions included."""
        return before + time.time() - started

    run_id = steps.done("run_id") or steps.finish("run_id", run_ledger.new_run_id())

    # 1. layout and split (saved, so a re-run reads the same split)
    tables = {k: workdir / f"{k}.table.csv" for k in ("train", "valid", "test")}
    if steps.done("layout"):
        train, valid = LabelTable.read_csv(tables["train"]), LabelTable.read_csv(tables["valid"])
        test = LabelTable.read_csv(tables["test"]) if tables["test"].is_file() else None
    else:
        full, valid, test = _read_tables(comp.path, recipe)
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
        steps.finish("layout", {"train": len(train), "valid": len(valid), "test": len(test) if test is not None else 0})
    kind = "multi-label" if train.multilabel else "single-label"
    logger.info(f"data: {len(train)} train, {len(valid)} valid, {len(test) if test is not None else 0} test images; "
        f"{len(train.classes)} classes ({kind})")
    if test is None:
        raise ConfigError(f"No test images found in {comp.path}; name the test folder in the recipe (layout.test).")

    sample = comp.sample_submission
    metric = cfg["metric"] or (submission.infer_metric(sample, classes=train.classes) if sample is not None else
                               ("f2" if train.multilabel else "accuracy"))

    # 2. the plan: backbone, sizes, epochs, batch for the budget, the hardware and the images (printed before
    #    any training); kept in run.json, so a resumed run trains to the same plan (a new one would restart it)
    saved_plan = steps.done("plan")
    if saved_plan:
        plan = Plan.from_dict(saved_plan)
        head = plan.describe().splitlines()[0].removeprefix("plan: ")
        logger.info(f"plan (made earlier; {format_duration(spent())} of the budget spent): {head}")
    else:
        plan = make_plan(len(train), ImageStats.from_table(train), Hardware.probe(), budget_given,
                         weights=cfg["weights"], backbone=cfg["backbone"], epochs=cfg["epochs"], sizes=cfg["sizes"],
                         batch_size=cfg["batch_size"], n_valid=len(valid), n_test=len(test),
                         tta=4 if cfg["tta"] == "auto" else int(cfg["tta"]), spent_s=spent())
        logger.info(plan.describe())
        steps.finish("plan", plan.to_dict())
    # Explicit epochs without --time: the epochs asked are trained, whatever the clock says (no deadline).
    timed = budget_given is not None or cfg["epochs"] is None
    steps.finish("time_spent_s", round(spent(), 3))

    # 3. fine-tune (fine_tune itself resumes from its checkpoints in workdir/train) inside the deadline
    learner_dir = workdir / "learner"
    if steps.done("train") and (learner_dir / "learner.json").is_file():
        learner = Learner.load(learner_dir)
        logger.info(f"model: {learner} (trained earlier, loaded from {learner_dir})")
    else:
        extra = {**recipe.get("fine_tune", {}), **(overrides.get("fine_tune") or {})}
        callbacks = list(extra.pop("callbacks", None) or [])
        deadline = None
        if timed:
            saved = _saved_spent(deadline_path)
            deadline = Deadline.load(deadline_path, budget_s=plan.budget_s, extra_s=max(0.0, spent() - saved),
                                     reserve_s=plan.reserve_s, batch_size=plan.batch_size, size=plan.sizes[-1],
                                     valid_s=plan.valid_s)
            callbacks.insert(0, deadline)
        kwargs = {**plan.fine_tune_kwargs(), "seed": cfg["seed"], **({"lr": cfg["lr"]} if cfg["lr"] else {}), **extra}
        learner = fine_tune(train, valid=valid, workdir=workdir / "train", callbacks=callbacks, **kwargs)
        learner.save(learner_dir)
        steps.finish("epochs_done", len(learner.history))
        if deadline is not None:
            deadline.save()
            if deadline.stopped:
                logger.info(f"deadline: training ended after {len(learner.history)} epoch(s) of the "
                            f"{plan.total_epochs} planned ({deadline.stopped})")
        steps.finish("time_spent_s", round(spent(), 3))
        steps.finish("train", str(learner_dir))

    # 4. post-processing (clip / thresholds) and TTA tuned on validation, saved with the model;
    #    the validation images are predicted once, for tuning and for the score
    batch = plan.batch_size
    if steps.done("tune") and "tuned_for" in learner.settings:
        valid_probs = predict.predict(learner, valid, batch_size=batch, progress=False)
    else:
        tta = cfg["tta"]
        left = plan.budget_s - spent()
        if tta == "auto" and timed and left < plan.reserve_s:
            logger.info(f"TTA: off, {format_duration(max(0.0, left))} left of the budget, less than the "
                        f"{format_duration(plan.reserve_s)} kept for predicting with it")
            tta = 0
        elif tta == "auto" and plan.tta <= 1:
            tta = 0
        elif tta == "auto":
            tta, _ = predict.choose_tta(learner, valid, metric, max_tta=plan.tta, batch_size=batch, progress=False)
        valid_probs = predict.predict(learner, valid, tta=tta, batch_size=batch, progress=False)
        predict.tune_settings(learner, valid_probs, metric, table=valid)
        learner.settings["tuned_for"] = metric
        learner.save(learner_dir)
        steps.finish("tune", metric)
    settings = learner.settings
    score = predict.score(valid_probs, valid, metric, settings=settings)
    shown = {k: settings[k] for k in ("clip", "threshold", "tta") if k in settings}
    logger.info(f"validation {metric}: {score:.4f}" + (f" ({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else ""))

    # 5. test predictions -> submission, written in the sample's exact shape and validated
    probs_path = workdir / "test_predictions.csv"
    if steps.done("predict") and probs_path.is_file():
        test_probs = predict.read_predictions(probs_path)
    else:
        test_probs = predict.predict(learner, test, batch_size=batch)
        predict.save_predictions(test_probs, probs_path)
        steps.finish("predict", str(probs_path))
    if sample is None:
        raise ConfigError(f"{comp.path} has no sample_submission.csv, so the submission's shape is unknown; "
                          f"the test predictions are in {probs_path}.")
    out = submission.write_submission(test_probs, like=sample, path=workdir / Path(sample).name.replace("sample_", ""),
                                      settings=learner.settings)
    submission.validate_submission(out, like=sample)
    logger.info(f"submission: {out} (validated against {Path(sample).name})")

    result = RunResult(workdir=workdir, metric=metric, valid_score=float(score), submission=Path(out),
                       settings={k: v for k, v in learner.settings.items() if k in ("clip", "threshold", "thresholds", "tta")},
                       seconds=spent())
    submitted = None
    if submit:
        from . import kaggle

        done = steps.done("submit")
        slug = getattr(comp, "slug", None) or name
        if done:
            logger.info(f"already submitted in this run folder ({done}); delete {steps.path} to submit again")
        else:
            _warn_when_no_submissions_left(kaggle, slug)
            text = message or f"kagglekit {plan.backbone} {metric}={score:.4f} [{run_id}]"
            answer = kaggle.submit(slug, out, text, wait=True)
            result.public_score = getattr(answer, "public_score", None)
            submitted = {"public_score": result.public_score, "submission_ref": getattr(answer, "ref", None),
                         "message": text}
            steps.finish("submit", submitted)
    result.seconds = spent()
    steps.finish("time_spent_s", round(result.seconds, 3))
    atomic_write_text(workdir / "result.json", json.dumps(asdict(result), indent=1, default=str))

    # 6. the ledger: one row per run (again only when this session submitted what an earlier one recorded)
    if ledger_path is not False and (not steps.done("ledger") or submitted):
        path = Path(ledger_path) if ledger_path not in (None, True) else workdir.parent / "ledger.csv"
        sub = submitted or (steps.done("submit") if isinstance(steps.done("submit"), dict) else {}) or {}
        row = run_ledger.append({
            "run_id": run_id, "competition": getattr(comp, "slug", None) or name, "backbone": plan.backbone,
            "weights": plan.weights or "none", "sizes": plan.sizes, "epochs": plan.epochs,
            "epochs_done": steps.done("epochs_done"), "batch_size": plan.batch_size,
            "budget_s": plan.budget_s if timed else None, "seconds": round(result.seconds, 1),
            "hardware": plan.hardware, "metric": metric, "valid_score": float(score),
            "tta": learner.settings.get("tta", 0), "submission": out, "message": sub.get("message"),
            "submission_ref": sub.get("submission_ref"), "public_score": sub.get("public_score"),
            "workdir": workdir, "extra": {"budget_given": plan.budget_given},
        }, path)
        steps.finish("ledger", str(path))
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
