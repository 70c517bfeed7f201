"""`kagglekit run`: fetch → layout → fine-tune → predict → post-process → submission → submit.

Every step leaves its result in the run folder, so running the same command again
after an interruption continues where it stopped (training resumes from its last
completed epoch; finished steps are not repeated).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..folds import parse_folds
from ..io import atomic_write_text, in_kaggle_notebook, working_root
from ..logs import logger, shown
from .. import runfolder
from ..runfolder import RunResult
from ..runstate import (RunState, TUNED_KEYS, file_hash, files_digest, load_learner, read_saved,
                       read_saved_tables, remove_partial_files, submit_once, table_digest, unchanged)
from ..table import LabelTable
from .inferred import Inference, _check_saved, _infer, _read_tables
from ..settings import check_keywords, check_recipe, check_run_arguments
from .recipe import DEFAULTS, LAYOUT_KEYS, _layout_settings, load_recipe
from . import processes

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
    replay: str | os.PathLike | None = None,
    started_at: float | None = None,
    **overrides: Any,
) -> RunResult | Inference:
    """Return a `RunResult` after taking a competition from its source to a validated submission file.

    Before any training the run logs what it inferred (an `Inference`): the layout and files
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
        dry_run: stop after the inference and return it (an `Inference`); only the run
            folder's tables are written.
        model: a learner folder saved by an earlier run (``Learner.save``; e.g. a
            notebook dataset under /kaggle/input): no training, only prediction.
        replay: an earlier run folder: train its plan for the steps it trained (per stage), not
            for a time (a code competition's re-run); no deadline (`kagglekit.timeline`).
        started_at: the ``time.time()`` the budget is counted from (default: now; the command line
            passes the process's start, so start-up counts).
        **overrides: layout overrides passed to `kagglekit.layout.detect` (multilabel,
            positive, group_col, id_col, label_col, id_extension, test, tag_sep; they win
            over the recipe's [layout] keys), and training settings (backbone, sizes, epochs, weights, valid,
            tta, seed, batch_size, lr, metric, folds: K models on K folds or "auto", see
            `kagglekit.folds`) that win over the recipe; None
            means "not given" (use ``weights="none"`` to train from scratch).

    Every argument, keyword and recipe value is checked against `kagglekit.settings` before
    anything is fetched or read (docs/settings.md lists them): a wrong type, range or name is
    a `ConfigError` naming the setting, the value and the fix (with the closest valid name).
    """
    role = processes.join()  # several processes (multi-host JAX): joined before anything touches the backend
    workdir, submit, ledger = role.places(workdir, submit, ledger)
    with shown(None if role.follower else log), role.quiet(), contextlib.ExitStack() as held:  # held: the lock
        held.callback(role.cleanup)
        processes.announce(role)
        return _run(source, workdir, recipe, submit, message, overrides, time_budget, ledger, dry_run, model,
                    replay, started_at, held, role)


@dataclass
class _Context:
    """One run's settings and places, made once before any work; every stage reads it."""

    comp: Any  # the fetched competition (`kagglekit.sources`)
    name: str
    workdir: Path
    state: RunState
    cfg: dict  # the [train] settings: DEFAULTS < recipe < arguments
    spec: dict  # the recipe's reader form {reader, args, test} or {}
    given: dict  # the layout overrides passed to `layout.detect`
    extra: dict  # further fine_tune arguments (recipe [fine_tune] and run(fine_tune=...))
    budget_given: float | None
    notebook: bool
    model: str | os.PathLike | None
    started: float  # time.time() when the run began: importing the backend counts too
    before: float = 0.0  # seconds earlier sessions of this run spent
    replay: Any = None  # (plan, steps) of an earlier run folder to replay (kagglekit.timeline.read_replay), or None
    head: str = "softmax"  # how classes are ranked: "softmax", or "knn" (identification: `kagglekit.identify`)
    role: processes.Role = processes.Role()  # this process among several (multi-host JAX); 0 of 1 usually

    def spent(self) -> float:
        """Return the seconds this run has spent, earlier sessions included."""
        return self.before + time.time() - self.started

    @property
    def deadline_path(self) -> Path:
        return self.workdir / "deadline.json"


def _fresh_result(state: RunState, step: str, inputs: dict, read: Callable[[], Any]) -> Any:
    """Return what `read` gives back for `step` when its recorded inputs equal `inputs`; None when the step must run."""
    return read() if state.fresh(step, inputs) else None


def _settings(recipe: Any, overrides: dict) -> tuple[dict, dict, dict, dict]:
    """Return (cfg, layout spec, layout overrides, fine_tune extras), every value checked (`kagglekit.settings`) before any work."""
    import inspect

    from ..learner import fine_tune

    params = inspect.signature(fine_tune).parameters
    recipe = check_recipe(recipe, "the recipe", params) if isinstance(recipe, dict) else load_recipe(recipe)
    overrides = check_keywords(overrides, params)  # a misspelt keyword names the closest one
    spec, given = _layout_settings(recipe, overrides)
    overrides = {k: v for k, v in overrides.items() if k not in LAYOUT_KEYS}
    cfg = {**DEFAULTS, **recipe.get("train", {}), **{k: v for k, v in overrides.items() if v is not None}}
    if isinstance(cfg["weights"], str) and cfg["weights"].lower() in ("none", ""):
        cfg["weights"] = None  # from scratch
    cfg["folds"] = parse_folds(cfg["folds"])
    extra = {**recipe.get("fine_tune", {}), **(overrides.get("fine_tune") or {})}
    return cfg, spec, given, extra


def _open(source: Any, workdir: Any, settings: tuple, budget_given: float | None, model: Any,
          started: float, ledger: Any = None, held: contextlib.ExitStack | None = None) -> _Context:
    """Return the run's context: the competition fetched, its run folder chosen and locked (`runfolder.claim`), its state read."""
    from .. import preflight, sources

    cfg, spec, given, extra = settings
    if model is not None and not (Path(model) / "learner.json").is_file():
        raise ConfigError(f"--model {model}: no saved learner there (learner.json and model.keras, as Learner.save "
                          "writes them). Name the folder an earlier run saved (its run folder's learner/).")
    runfolder.check_ledger(ledger)  # anything but a ledger is refused before any download or training
    if model is not None and cfg["folds"] not in (1, "auto"):
        raise ConfigError(f"--folds {cfg['folds']} trains {cfg['folds']} models, but --model {model} only predicts; "
                          "give one of them.")
    notebook = in_kaggle_notebook()
    comp = sources.fetch(str(source), spare=Path(workdir) / "data" if workdir is not None else None)
    name = Path(str(source)).stem if os.path.exists(str(source)) else str(source)
    workdir, state, _ = runfolder.claim(workdir, working_root() / "runs" if notebook else Path("runs"), name, comp,
                                        ledger, held)
    preflight.check_settings(cfg, workdir, ledger)  # the rest of `preflight` once the data is read (_stage_preflight)
    remove_partial_files(workdir, skip=[comp.path])  # never inside the competition folder, when the run folder holds it
    return _Context(comp=comp, name=name, workdir=workdir, state=state, cfg=cfg, spec=spec, given=given,
                    extra=extra, budget_given=budget_given, notebook=notebook, model=model, started=started)


def _stage_layout(ctx: _Context) -> tuple[LabelTable, LabelTable, LabelTable | None, dict]:
    """Return (train, valid, test or None, what was inferred): read and split once, then read back from the run folder."""
    from .. import layout, preflight

    state, cfg = ctx.state, ctx.cfg
    tables = {k: ctx.workdir / f"{k}.table.csv" for k in ("train", "valid", "test")}
    layout_inputs = {"source": str(ctx.comp.path), "layout_recipe": {**ctx.spec, **ctx.given},
                     "files": files_digest(ctx.comp, ctx.workdir)}
    split_inputs = {"valid": cfg["valid"], "seed": cfg["seed"], "layout": state.result("layout")}
    if state.fresh("layout", layout_inputs):
        read_back = _fresh_result(state, "split", split_inputs, lambda: read_saved_tables(state, tables))
        if read_back is not None:
            return (*read_back, state.result("layout").get("inferred", {}))
    full, valid, test, inferred = _read_tables(ctx.comp.path, ctx.spec, ctx.given)
    preflight.check_classes(full, valid)  # one class, or no class to validate: refused before the split
    if valid is None:
        full.validate()
        with warnings.catch_warnings():  # classes with one image: stated in the notes (kagglekit.preflight)
            warnings.filterwarnings("ignore", message=r"\d+ classes have a single image")
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
    return train, valid, test, inferred


def _stage_infer(ctx: _Context, train: LabelTable, valid: LabelTable, test: LabelTable | None, inferred: dict,
                 saved: Any) -> Inference:
    """Return what the run inferred (logged before any time is spent); raise ConfigError when there is no test set."""
    sample = ctx.comp.sample_submission
    out_path = (working_root() / "submission.csv" if ctx.notebook else
                ctx.workdir / Path(sample).name.replace("sample_", "")) if sample is not None else None
    inference = _infer(ctx.name, ctx.workdir, train, valid, test, inferred, ctx.cfg, sample, out_path, saved, ctx.model)
    if ctx.given.get("positive") is not None and inference.submission_kind != "probability":  # taken, so said
        inference.notes.append(f"--positive {ctx.given['positive']} does nothing here: the submission has no single "
                               f"probability column ({'no sample submission' if sample is None else 'it holds ' + str(inference.submission_kind) + 's'})")
    for line in inference.lines():
        logger.info(line)
    if test is None:
        raise ConfigError(f"No test images found in {ctx.comp.path}; name the test folder or CSV with --test PATH "
                          "(recipe: layout.test).")
    return inference


def _stage_preflight(ctx: _Context, train: LabelTable, valid: LabelTable, test: LabelTable, saved: Any,
                     inference: Inference, ledger: Any) -> None:
    """Run every check that needs no training (`kagglekit.preflight`): raise on a refusal, state the rest as notes."""
    from .. import preflight

    checked = preflight.preflight(ctx.cfg, workdir=ctx.workdir, train=train, valid=valid, test=test,
                                  sample=ctx.comp.sample_submission, budget=ctx.budget_given, ledger=ledger,
                                  trains=saved is None, inference=inference, fine_tune=ctx.extra)
    for note in checked.notes:
        logger.info(f"  note: {note}")
    inference.notes += checked.notes


def _stage_plan(ctx: _Context, train: LabelTable, valid: LabelTable, test: LabelTable) -> Any:
    """Return the time-budget `Plan` (backbone, sizes, epochs, batch), made once and kept in run.json.

    A resumed run trains to the same plan (a new one would restart it); printed before any training.
    """
    from ..durations import format_duration
    from ..hardware import Hardware
    from ..plan import ImageStats, Plan, make_plan

    state, cfg = ctx.state, ctx.cfg
    plan_inputs = {"time_budget": ctx.budget_given, "split": state.result("split"),
                   **{k: cfg[k] for k in ("backbone", "sizes", "epochs", "batch_size", "weights")}}
    if ctx.replay is not None:
        plan_inputs["replay"] = ctx.replay[1]
    if not state.fresh("plan", plan_inputs):
        ctx.deadline_path.unlink(missing_ok=True)  # an older plan's clock is not this one's
        state.put("time_spent_s", 0.0)
    ctx.before = max(float(state.get("time_spent_s") or 0.0), _saved_spent(ctx.deadline_path))
    if ctx.replay is not None and not state.result("plan"):
        plan = Plan.from_dict(ctx.replay[0])
        logger.info(f"replay: the earlier run's plan, {sum(ctx.replay[1]['steps'])} training steps "
                    f"({', '.join(map(str, ctx.replay[1]['steps']))} per stage), not its time")
        state.finish("plan", plan_inputs, plan.to_dict())
    elif state.result("plan"):
        plan = Plan.from_dict(state.result("plan"))
        head = plan.describe(time_driven=_time_driven(ctx)).splitlines()[0].removeprefix("plan: ")
        logger.info(f"plan (made earlier; {format_duration(ctx.spent())} of the budget spent): {head}")
    else:
        plan = make_plan(len(train), ImageStats.from_table(train), Hardware.probe(), ctx.budget_given,
                         weights=cfg["weights"], backbone=cfg["backbone"], epochs=cfg["epochs"], sizes=cfg["sizes"],
                         batch_size=cfg["batch_size"], n_valid=len(valid), n_test=len(test),
                         tta=4 if cfg["tta"] == "auto" else int(cfg["tta"]), spent_s=ctx.spent())
        logger.info(plan.describe(time_driven=_time_driven(ctx)))
        state.finish("plan", plan_inputs, plan.to_dict())
    state.put("time_spent_s", round(ctx.spent(), 3))
    return plan


def _timed(ctx: _Context) -> bool:
    """Return whether a deadline holds the run (explicit epochs without --time train exactly those epochs)."""
    return (ctx.budget_given is not None or ctx.cfg["epochs"] is None) and ctx.replay is None


def _time_driven(ctx: _Context) -> bool:
    """Return whether training runs until the deadline (no epochs asked, no replay): its epochs are an outcome."""
    return _timed(ctx) and ctx.cfg["epochs"] is None


def _by_time(ctx: _Context) -> dict:
    """Return the fine_tune arguments of time-driven training: epochs None (an outcome), or a replay's steps."""
    if ctx.replay is not None:
        return {"epochs": None, "replay": ctx.replay[1]}
    return {"epochs": None} if _time_driven(ctx) else {}


def _stage_train(ctx: _Context, plan: Any, train: LabelTable, valid: LabelTable, saved: Any, n_test: int = 0) -> Any:
    """Return the learner: the saved one (--model), the one trained earlier, or one fine-tuned now inside the deadline."""
    from ..learner import Learner, fine_tune
    from ..timeline import ended, trained_steps

    state, cfg, learner_dir = ctx.state, ctx.cfg, ctx.workdir / "learner"
    extra = dict(ctx.extra)
    callbacks = list(extra.pop("callbacks", None) or [])
    train_inputs = {k: cfg[k] for k in ("valid", "seed", "lr", "flip")}
    train_inputs.update(plan=state.result("plan"), resize=extra.get("resize", "squash"), fine_tune=extra,
                        layout_recipe={**ctx.spec, **ctx.given}, data=state.result("split"),
                        model=str(Path(ctx.model).resolve()) if ctx.model is not None else None)
    if saved is not None:
        logger.info(f"model: {saved} (loaded from {ctx.model}; not trained here)")
        return saved
    learner = _fresh_result(state, "train", train_inputs, lambda: load_learner(state, learner_dir))
    if processes.trained_before(ctx.role, learner is not None):  # several processes: process 0's run folder says
        if learner is not None:
            logger.info(f"model: {learner} (trained earlier, loaded from {learner_dir})")
        return learner
    gallery = len(train) + len(valid) if ctx.head == "knn" else 0  # the nearest-neighbour head embeds them after training
    deadline = _deadline(ctx, plan, len(valid), n_test, gallery) if _timed(ctx) else None
    if deadline is not None:
        callbacks.insert(0, deadline)
    kwargs = {**plan.fine_tune_kwargs(), "seed": cfg["seed"], **({"lr": cfg["lr"]} if cfg["lr"] else {}),
              **({"flip": cfg["flip"]} if cfg["flip"] is not None else {}), **_by_time(ctx), **extra,
              **({"verbose": 0} if ctx.role.follower else {})}
    learner = fine_tune(train, valid=valid, workdir=ctx.workdir / "train", callbacks=callbacks, **kwargs)
    learner.save(learner_dir)
    if ctx.role.several and not ctx.role.follower:  # predict on this process's devices, from the weights just saved
        learner = Learner.load(learner_dir)
    state.put("epochs_done", len(learner.history))
    if deadline is not None:
        deadline.save()
        if deadline.stopped:
            logger.info("deadline: " + ended(len(learner.history), plan.total_epochs, deadline.stopped, _time_driven(ctx)))
    state.put("time_spent_s", round(ctx.spent(), 3))
    state.finish("train", train_inputs, {"fingerprint": learner.settings.get("fingerprint"),
                                         "best": learner.settings.get("best"), "epochs": len(learner.history),
                                         **trained_steps(learner.history)})
    return learner


def _deadline(ctx: _Context, plan: Any, n_valid: int, n_test: int, n_gallery: int = 0) -> Any:
    """Return the `Deadline` callback that keeps training inside what is left of the budget."""
    from ..deadline import Deadline
    from ..timeline import measured_reserve

    saved_s = _saved_spent(ctx.deadline_path)
    return Deadline.load(ctx.deadline_path, budget_s=plan.budget_s, extra_s=max(0.0, ctx.spent() - saved_s),
                         reserve_s=plan.reserve_s, batch_size=plan.batch_size, size=plan.sizes[-1],
                         valid_s=plan.valid_s, **measured_reserve(plan, n_valid, n_test, n_gallery))


def _stage_tune(ctx: _Context, plan: Any, learner: Any, valid: LabelTable, metric: str, saved: Any,
                train: LabelTable | None = None) -> float:
    """Return the validation score after tuning post-processing (clip / thresholds / cut-points) and TTA on validation.

    The validation images are predicted once, for tuning and for the score; the settings are saved with the model.
    Unreadable validation images are left out of both (`predict.readable`), their count kept in the tune step.
    With the "knn" head the validation images are ranked against `train` (`kagglekit.identify`).
    """
    from .. import identify, predict
    from ..durations import format_duration

    state = ctx.state
    tune_inputs = {"metric": metric, "tta": ctx.cfg["tta"], "train": state.result("train"), "head": ctx.head}
    if saved is not None:  # tuned (or not) where it was trained; its validation images are not known here
        return float("nan")
    if state.fresh("tune", tune_inputs) and learner.settings.get("tuned_for") == metric:
        return state.result("tune")["score"]
    for key in TUNED_KEYS:  # what an earlier tuning (maybe for another metric) chose
        learner.settings.pop(key, None)
    tta, left = ctx.cfg["tta"], plan.budget_s - ctx.spent()
    reserve_s = _saved_reserve(ctx.deadline_path, plan.reserve_s)  # measured while training (kagglekit.timeline)
    if ctx.head == "knn":  # ranked by nearest neighbours among the training images: no TTA views
        tta = 0
    elif tta == "auto" and _timed(ctx) and left < 0.8 * reserve_s:  # time-driven training leaves about the reserve
        logger.info(f"TTA: off, {format_duration(max(0.0, left))} left of the budget, less than the "
                    f"{format_duration(reserve_s)} kept for predicting with it")
        tta = 0
    elif tta == "auto" and plan.tta <= 1:
        tta = 0
    elif tta == "auto":
        tta, _ = predict.choose_tta(learner, valid, metric, max_tta=plan.tta, batch_size=plan.batch_size, progress=False)
    valid_probs = (identify.predict_knn(learner, train, valid, batch_size=plan.batch_size) if ctx.head == "knn" else
                   predict.predict(learner, valid, tta=tta, batch_size=plan.batch_size, progress=False))
    predict.tune_settings(learner, valid_probs, metric, table=valid)
    learner.settings["tuned_for"] = metric
    learner.save(ctx.workdir / "learner")
    score = predict.score(valid_probs, valid, metric, settings=learner.settings)
    state.finish("tune", tune_inputs, {"score": float(score), "left_out": len(valid_probs.attrs.get("unreadable") or ()),
                                       **{k: learner.settings[k] for k in TUNED_KEYS if k in learner.settings}})
    return score


def _choose_head(ctx: _Context, train: LabelTable, metric: str) -> str:
    """Return how classes are ranked ("knn" for identification, else "softmax"), logged with the reason before training."""
    from .. import identify

    head, why = identify.choose_head(ctx.cfg["head"], train, metric)
    logger.info(f"head: {head} ({why})")
    return head


def _log_score(ctx: _Context, learner: Any, metric: str, score: float, saved: Any) -> None:
    settings = learner.settings
    shown_settings = {k: settings[k] for k in ("clip", "threshold", "cuts", "new_threshold", "tta") if k in settings}
    described = ", ".join(f"{k}={v}" for k, v in shown_settings.items())
    if saved is not None:
        logger.info(f"validation {metric}: not measured (the learner from {ctx.model} was trained elsewhere)"
                    + (f"; its settings: {described}" if described else ""))
    else:
        left_out = (ctx.state.result("tune") or {}).get("left_out")
        logger.info(f"validation {metric}: {score:.4f}" + (f" ({described})" if described else "")
                    + (f"; {left_out} unreadable validation image(s) left out" if left_out else ""))


def _stage_predict(ctx: _Context, learner: Any, test: LabelTable, batch_size: int, gallery: tuple = ()) -> Any:
    """Return the test predictions (ids and one probability per class), predicted once and kept in the run folder.

    With the "knn" head the test images are ranked against the labelled tables in `gallery` (train, valid).
    """
    from .. import identify, predict

    state, probs_path = ctx.state, ctx.workdir / "test_predictions.csv"
    settings = learner.settings
    predict_inputs = {"tune": state.result("tune"), "test": table_digest(test), "train": state.result("train"), "head": ctx.head,
                      "settings": {k: settings[k] for k in TUNED_KEYS if k in settings}}
    test_probs = _fresh_result(state, "predict", predict_inputs,
                               lambda: read_saved(state, "predict", probs_path, predict.read_predictions))
    if test_probs is None:
        test_probs = (identify.predict_knn(learner, identify.gallery_of(*gallery), test, batch_size=batch_size)
                      if ctx.head == "knn" else predict.predict(learner, test, batch_size=batch_size))
        predict.save_predictions(test_probs, probs_path)
        state.finish("predict", predict_inputs, {"file": probs_path.name, "md5": file_hash(probs_path)})
    return test_probs


def _stage_write(ctx: _Context, inference: Inference, learner: Any, test_probs: Any) -> Path:
    """Return the submission file: written in the sample's exact shape and validated (kept when nothing changed)."""
    from .. import submission

    state, sample, out = ctx.state, ctx.comp.sample_submission, inference.submission_path
    if sample is None:
        raise ConfigError(f"{ctx.comp.path} has no sample_submission.csv, so the submission's shape is unknown; "
                          f"the test predictions are in {ctx.workdir / 'test_predictions.csv'}.")
    write_inputs = {"predictions": state.result("predict"), "sample": file_hash(sample), "tune": state.result("tune"),
                    "positive": inference.positive, "kind": inference.submission_kind, "path": str(out)}
    if not (state.fresh("write", write_inputs) and unchanged(state, out)):
        out = submission.write_submission(test_probs, like=sample, path=out, settings=learner.settings,
                                          positive=inference.positive, kind=inference.submission_kind,
                                          metric=inference.metric, **({"zip": False} if ctx.notebook else {}))
        state.finish("write", write_inputs, {"file": Path(out).name, "md5": file_hash(out)})
    logger.info(f"submission: {out} (validated against {Path(sample).name})")
    return Path(out)


def _stage_submit(ctx: _Context, out: Path, text: str) -> dict:
    """Return what Kaggle said of the upload of `out` (made once per file, even across re-runs)."""
    from .. import kaggle

    slug = getattr(ctx.comp, "slug", None) or ctx.name
    if ctx.state.submission(file_hash(out)) is None:
        _warn_when_no_submissions_left(kaggle, slug)
    answer = submit_once(ctx.state, slug, out, text, like=ctx.comp.sample_submission)
    return {"public_score": getattr(answer, "public_score", None), "submission_ref": getattr(answer, "ref", None),
            "message": text}


def _stage_record(ctx: _Context, plan: Any, result: RunResult, learner: Any, submitted: dict | None,
                  ledger_path: Any) -> None:
    """Add the run's row to the ledger (again only when this session submitted what an earlier one recorded)."""
    from ..durations import format_duration

    row = runfolder.record(ctx.state, ctx.workdir, {
        "competition": getattr(ctx.comp, "slug", None) or ctx.name,
        "backbone": plan.backbone, "weights": plan.weights or "none", "sizes": plan.sizes, "epochs": plan.epochs,
        "epochs_done": ctx.state.get("epochs_done"), "batch_size": plan.batch_size,
        "budget_s": plan.budget_s if _timed(ctx) else None, "seconds": round(result.seconds, 1),
        "outside_share": result.outside_share, "hardware": plan.hardware, "metric": result.metric,
        "valid_score": float(result.valid_score), "tta": learner.settings.get("tta", 0),
        "submission": result.submission, "extra": {"budget_given": plan.budget_given},
    }, ledger_path, submitted)
    if row is not None:
        logger.info(f"ledger: run {row['run_id']} recorded in {row['path']} ({format_duration(result.seconds)} spent"
                    + (f" of a {format_duration(plan.budget_s)} budget" if _timed(ctx) else "")
                    + (f", {result.outside_share:.0%} of it outside training steps)"
                       if result.outside_share is not None else ")"))


def _run(source, workdir, recipe, submit: bool, message: str | None, overrides: dict,
         time_budget: str | float | None = None, ledger_path: str | os.PathLike | bool | None = None,
         dry_run: bool = False, model: str | os.PathLike | None = None, replay: Any = None,
         started_at: float | None = None, held: contextlib.ExitStack | None = None,
         role: processes.Role = processes.Role()) -> RunResult | Inference:
    """Return the `RunResult` of `run`: its stages in order (messages go to the kagglekit logger)."""
    started = started_at or time.time()  # the budget's clock: importing the backend counts too
    from .. import ledger as run_ledger
    from ..durations import parse_duration
    from ..learner import Learner
    from ..timeline import outside_share

    if not isinstance(source, (str, os.PathLike)) or not str(source).strip():
        raise ConfigError(f"The competition to run is {source!r}: give a competition slug (e.g. 'dogs-vs-cats') or the "
                          "path of its folder or zip (kagglekit run SOURCE, kk.run(source)).")
    check_run_arguments(workdir=workdir, recipe=recipe, submit=submit, message=message, time_budget=time_budget,
                        ledger=ledger_path, dry_run=dry_run, model=model,
                        replay=replay)  # before any work, as every other setting
    budget_given = parse_duration(time_budget) if time_budget is not None else None
    ctx = _open(source, workdir, _settings(recipe, overrides), budget_given, model, started, ledger_path, held)
    ctx.role = role
    if replay is not None:
        from ..timeline import read_replay

        ctx.replay = read_replay(replay)  # (plan, steps): train the same steps, no deadline
    train, valid, test, inferred = _stage_layout(ctx)
    saved = Learner.load(model) if model is not None else None
    inference = _stage_infer(ctx, train, valid, test, inferred, saved)
    _stage_preflight(ctx, train, valid, test, saved, inference, ledger_path)
    k = processes.check_folds(role, _stage_folds_wanted(ctx, train, valid, test, saved), ctx.cfg["folds"])
    ctx.head = _choose_head(ctx, train, inference.metric)
    if dry_run:
        logger.info("dry run: stopped before training (nothing trained or predicted)")
        return inference
    if saved is not None:
        _check_saved(saved, train, model)
    if k > 1:  # K models on K folds: kagglekit.folds takes over (its own per-fold steps, then one submission)
        return _stage_folds(ctx, k, train, valid, test, inference, submit, message, ledger_path)
    plan = processes.shared_plan(role, _stage_plan(ctx, train, valid, test))
    learner = _stage_train(ctx, plan, train, valid, saved, len(test))
    if role.follower:  # it trained in step with process 0, which predicts, writes and submits
        return processes.follower_result(role, ctx.workdir, inference.metric, ctx.spent(), inference)
    score = _stage_tune(ctx, plan, learner, valid, inference.metric, saved, train)
    _log_score(ctx, learner, inference.metric, score, saved)
    test_probs = _stage_predict(ctx, learner, test, plan.batch_size, gallery=(train, valid))
    out = _stage_write(ctx, inference, learner, test_probs)
    run_id = runfolder.run_id_for(ctx.state, file_hash(out), run_ledger.new_run_id)  # a new submission: a new run id
    result = RunResult(workdir=ctx.workdir, metric=inference.metric, valid_score=float(score), submission=out,
                       settings={k: v for k, v in learner.settings.items() if k in TUNED_KEYS and k != "tuned_for"},
                       seconds=ctx.spent(), inference=inference)
    submitted = None
    if submit:
        # The default description names the run (its id), so a re-run finds its own submission and the ledger its row.
        text = message or f"kagglekit {plan.backbone} {inference.metric}={score:.4f} [{run_id}]"
        submitted = _stage_submit(ctx, out, text)
        result.public_score = submitted["public_score"]
    result.seconds = ctx.spent()
    result.outside_share = outside_share(ctx.deadline_path, result.seconds)
    ctx.state.put("time_spent_s", round(result.seconds, 3))
    atomic_write_text(ctx.workdir / "result.json", json.dumps(asdict(result), indent=1, default=str))
    _stage_record(ctx, plan, result, learner, submitted, ledger_path)
    return result


def _stage_folds_wanted(ctx: _Context, train: LabelTable, valid: LabelTable, test: LabelTable, saved: Any) -> int:
    """Return the number of folds to train (`kagglekit.folds.resolve`: asked, or "auto" decided), said with its reason."""
    from .. import folds, preflight

    if saved is not None:
        return 1
    k, why = folds.resolve(ctx.cfg["folds"], len(train) + len(valid), train, len(test), ctx.cfg, ctx.budget_given)
    if ctx.cfg["folds"] != 1:
        logger.info(f"folds: {k} ({why})")
    preflight.check_folds(k, train, valid, int(ctx.cfg["seed"]))  # refused here, not once the dry run has passed
    return k


def _stage_folds(ctx: _Context, k: int, train: LabelTable, valid: LabelTable, test: LabelTable, inference: Inference,
                 submit: bool, message: str | None, ledger_path: Any) -> Any:
    """Return the `kagglekit.folds.FoldsResult` of K models on K folds (each resumed per fold; one submission)."""
    from .. import folds

    extra = dict(ctx.extra)
    callbacks = list(extra.pop("callbacks", None) or [])
    return folds.run_folds(folds.FoldJob(
        workdir=ctx.workdir, state=ctx.state, comp=ctx.comp, name=ctx.name, cfg=ctx.cfg, k=k, train=train,
        valid=valid, test=test, inference=inference, sample=ctx.comp.sample_submission,
        out_path=inference.submission_path, budget_given=ctx.budget_given, started=ctx.started, extra=extra,
        callbacks=callbacks, layout_recipe={**ctx.spec, **ctx.given}, submit=submit, message=message,
        ledger_path=ledger_path, notebook=ctx.notebook,
        spent_before=folds.prepare(ctx.state, ctx.workdir, k, ctx.budget_given, ctx.cfg)))


def _saved_spent(path: Path) -> float:
    """Return the seconds a `Deadline` state file at `path` says were spent (0 when there is none or it is unreadable)."""
    try:
        return float(json.loads(path.read_text(encoding="utf-8")).get("spent_s", 0.0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0.0


def _saved_reserve(path: Path, default: float) -> float:
    """Return the reserve a `Deadline` state file at `path` ended with (measured), else `default`."""
    try:
        return float(json.loads(path.read_text(encoding="utf-8")).get("reserve_s", default))
    except (OSError, ValueError, AttributeError, TypeError):
        return float(default)


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
