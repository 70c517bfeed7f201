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

# Defaults per backbone family: quick, strong baselines.
DEFAULTS: dict[str, Any] = {
    "backbone": "resnet50",
    "sizes": None,  # the backbone's default size
    "epochs": 3,
    "weights": "imagenet",
    "valid": 0.2,
    "tta": "auto",  # the number of TTA views that helps on validation (0 to 4)
    "seed": 0,
    "batch_size": 32,
    "lr": None,  # the recipe's default
    "metric": None,  # inferred from the submission format
}


# fine_tune arguments the run passes itself: the data and the [train] settings (a [fine_tune] section may not repeat them)
_SET_BY_RUN = frozenset({"data", "valid", "backbone", "sizes", "epochs", "weights", "batch_size", "seed", "workdir", "lr"})


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
        log: where the run's messages go (every step's, the ``kagglekit`` logger's):
            a callable gets each one as a line of text (default ``print``: stdout);
            None or False adds no output of its own (they then go only where
            the application's logging sends them; see ``kagglekit.logs``).
        **overrides: training settings (backbone, sizes, epochs, weights, valid,
            tta, seed, batch_size, lr, metric) that win over the recipe; None
            means "not given" (use ``weights="none"`` to train from scratch).
    """
    with shown(log):
        return _run(source, workdir, recipe, submit, message, overrides)


def _run(source, workdir, recipe, submit: bool, message: str | None, overrides: dict) -> RunResult:
    """Return the `RunResult` of `run` (its body; messages go to the kagglekit logger)."""
    from . import layout, predict, sources, submission
    from .learner import Learner, fine_tune

    started = time.time()
    section = "the recipe's [fine_tune] section" if recipe is None or isinstance(recipe, dict) else \
        f"the [fine_tune] section of the recipe {recipe}"
    recipe = recipe if isinstance(recipe, dict) else load_recipe(recipe)
    unknown = set(overrides) - set(DEFAULTS) - {"fine_tune"}
    if unknown:
        raise ConfigError(f"Unknown run settings {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    unknown = set(recipe.get("train", {})) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"Unknown settings {sorted(unknown)} in the recipe's [train] section; known: {sorted(DEFAULTS)} "
                          "(other fine_tune arguments go in a [fine_tune] section).")
    check_fine_tune_keys(recipe.get("fine_tune"), fine_tune, section)  # up front: a misspelt key fails before any download
    check_fine_tune_keys(overrides.get("fine_tune"), fine_tune, "run(fine_tune=...)")
    cfg = {**DEFAULTS, **recipe.get("train", {}), **{k: v for k, v in overrides.items() if v is not None}}
    if isinstance(cfg["weights"], str) and cfg["weights"].lower() in ("none", ""):
        cfg["weights"] = None  # from scratch

    comp = sources.fetch(str(source))
    name = Path(str(source)).stem if os.path.exists(str(source)) else str(source)
    workdir = Path(workdir or Path("runs") / name)
    workdir.mkdir(parents=True, exist_ok=True)
    fingerprint = {k: cfg[k] for k in ("backbone", "sizes", "epochs", "weights", "valid", "seed", "lr")}
    fingerprint["source"] = str(comp.path)
    steps = _Steps(workdir, json.loads(json.dumps(fingerprint, default=str)))

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

    # 2. fine-tune (fine_tune itself resumes from its checkpoints in workdir/train)
    learner_dir = workdir / "learner"
    if steps.done("train") and (learner_dir / "learner.json").is_file():
        learner = Learner.load(learner_dir)
        logger.info(f"model: {learner} (trained earlier, loaded from {learner_dir})")
    else:
        extra = {**recipe.get("fine_tune", {}), **(overrides.get("fine_tune") or {})}
        learner = fine_tune(
            train, valid=valid, backbone=cfg["backbone"], sizes=cfg["sizes"], epochs=cfg["epochs"],
            weights=cfg["weights"], batch_size=cfg["batch_size"], seed=cfg["seed"],
            workdir=workdir / "train", **({"lr": cfg["lr"]} if cfg["lr"] else {}), **extra,
        )
        learner.save(learner_dir)
        steps.finish("train", str(learner_dir))

    # 3. post-processing (clip / thresholds) and TTA tuned on validation, saved with the model;
    #    the validation images are predicted once, for tuning and for the score
    batch = cfg["batch_size"]
    if steps.done("tune") and "tuned_for" in learner.settings:
        valid_probs = predict.predict(learner, valid, batch_size=batch, progress=False)
    else:
        tta = cfg["tta"]
        if tta == "auto":
            tta, _ = predict.choose_tta(learner, valid, metric, batch_size=batch, progress=False)
        valid_probs = predict.predict(learner, valid, tta=tta, batch_size=batch, progress=False)
        predict.tune_settings(learner, valid_probs, metric, table=valid)
        learner.settings["tuned_for"] = metric
        learner.save(learner_dir)
        steps.finish("tune", metric)
    settings = learner.settings
    score = predict.score(valid_probs, valid, metric, settings=settings)
    shown = {k: settings[k] for k in ("clip", "threshold", "tta") if k in settings}
    logger.info(f"validation {metric}: {score:.4f}" + (f" ({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else ""))

    # 4. test predictions -> submission, written in the sample's exact shape and validated
    probs_path = workdir / "test_predictions.csv"
    if steps.done("predict") and probs_path.is_file():
        test_probs = predict.read_predictions(probs_path)
    else:
        test_probs = predict.predict(learner, test, batch_size=cfg["batch_size"])
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
                       seconds=time.time() - started)
    if submit:
        from . import kaggle

        done = steps.done("submit")
        if done:
            logger.info(f"already submitted in this run folder ({done}); delete {steps.path} to submit again")
        else:
            answer = kaggle.submit(getattr(comp, "slug", None) or name, out, message or f"kagglekit {cfg['backbone']} {metric}={score:.4f}", wait=True)
            result.public_score = getattr(answer, "public_score", None)
            steps.finish("submit", {"public_score": result.public_score})
    result.seconds = time.time() - started
    atomic_write_text(workdir / "result.json", json.dumps(asdict(result), indent=1, default=str))
    return result
