"""`kagglekit run`: fetch → layout → fine-tune → predict → post-process → submission → submit.

Every step leaves its result in the run folder, so running the same command again
after an interruption continues where it stopped (training resumes from its last
completed epoch; finished steps are not repeated). ``run.json`` (`kagglekit.runstate`)
records each step with the inputs that determine it: a step whose inputs changed
is done again with every step after it, and the run says which and why. A
submission is recorded before its upload, so a run stopped after the upload waits
for that submission's score instead of uploading again.
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
from .runstate import RunState, digest, file_hash, remove_partial_files, set_aside, submit_once
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


# What tuning writes into the learner's settings (cleared before tuning again, e.g. for another metric).
TUNED_KEYS = ("metric", "valid_score", "valid_score_raw", "clip", "threshold", "thresholds", "fallback",
              "tta", "tta_flip", "tta_crop", "tuned_for")
SMALL_FILE = 64 << 20  # top-level competition files up to this size (label CSVs, JSON) are hashed whole


def _files_digest(comp, workdir: Path) -> str:
    """Return a hash of the competition's files: every name and size, and the bytes of the small top-level ones.

    Hidden files and folders (caches, manifests) and the run folder itself (when it lies inside) are left out.
    """
    import hashlib

    h = hashlib.md5()
    root, skip = Path(os.path.abspath(comp.path)), Path(os.path.abspath(workdir))  # links kept as links
    for path in sorted(getattr(comp, "files", None) or []):
        path = Path(os.path.abspath(path))
        try:
            relative = path.relative_to(root)
            size = path.stat().st_size
        except (OSError, ValueError):
            continue
        if any(part.startswith(".") for part in relative.parts) or (skip != root and skip in path.parents):
            continue
        h.update(f"{relative.as_posix()}\0{size}\n".encode())
        if path.parent == root and size <= SMALL_FILE and path.suffix.lower() in (".csv", ".json", ".txt", ".tsv"):
            h.update(file_hash(path).encode())
    return h.hexdigest()[:12]


def _table_digest(table: LabelTable | None) -> str | None:
    """Return a hash of a table's rows (id, path, labels), vocabulary and kind (None for no table)."""
    if table is None:
        return None
    import hashlib

    import pandas as pd

    frame = table.frame[["id", "path", "labels"]].astype(str)
    rows = pd.util.hash_pandas_object(frame, index=False).values.tobytes()
    return hashlib.md5(rows + json.dumps([list(table.classes), table.multilabel]).encode()).hexdigest()[:12]


def _read_saved(state: RunState, step: str, path: Path, reader: Callable[[Path], Any]) -> Any:
    """Return what `reader` reads from the saved `path`; None (the file set aside, `step` to be done again) when it cannot."""
    if not path.is_file():
        state.redo(step, f"{path} is missing")
        return None
    try:
        return reader(path)
    except Exception as exc:  # a damaged file, whatever the parser says
        set_aside(path, f"{type(exc).__name__}: {exc}")
        state.redo(step, f"{path.name} could not be read")
        return None


def _read_saved_tables(state: RunState, tables: dict[str, Path]) -> tuple | None:
    """Return the saved (train, valid, test) tables; None (layout and split to be done again) when one cannot be read."""
    names = ["train", "valid"] + (["test"] if (state.result("layout") or {}).get("test") else [])
    read = {}
    for name in names:
        read[name] = _read_saved(state, "layout", tables[name], LabelTable.read_csv)
        if read[name] is None:
            return None
    return read["train"], read["valid"], read.get("test")


def _load_learner(state: RunState, folder: Path):
    """Return the saved learner; None (set aside when damaged, training to be done again) when it cannot be loaded."""
    from .errors import StateError
    from .learner import Learner

    if not (folder / "model.keras").is_file() or not (folder / "learner.json").is_file():
        state.redo("train", f"the saved model in {folder} is missing")
        return None
    try:
        return Learner.load(folder)
    except (StateError, ValueError, OSError, KeyError) as exc:
        set_aside(folder, f"{type(exc).__name__}: {exc}")
        state.redo("train", f"the saved model in {folder} could not be loaded")
        return None


def _unchanged(state: RunState, out: Path) -> bool:
    """Return whether the submission file is still as the write step left it (a changed one is set aside)."""
    if not out.is_file():
        return False
    if file_hash(out) == (state.result("write") or {}).get("md5"):
        return True
    set_aside(out, "its MD5 differs from the one recorded", problem="changed after kagglekit wrote it")
    return False


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
        submit: upload the file through the Kaggle API and wait for the score
            (once per run folder and file: a re-run does not upload the same file again).
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
    state = RunState(workdir)
    remove_partial_files(workdir)

    # 1. layout and split (saved, so a re-run reads the same split)
    tables = {k: workdir / f"{k}.table.csv" for k in ("train", "valid", "test")}
    layout_inputs = {"source": str(comp.path), "layout_recipe": recipe.get("layout"), "files": _files_digest(comp, workdir)}
    split_inputs = {"valid": cfg["valid"], "seed": cfg["seed"], "layout": state.result("layout")}
    saved = None
    if state.fresh("layout", layout_inputs) and state.fresh("split", split_inputs):
        saved = _read_saved_tables(state, tables)
    if saved is not None:
        train, valid, test = saved
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
        elif tables["test"].is_file():
            tables["test"].unlink()  # a test table of an earlier layout
        layout_result = {"full": _table_digest(full), "test": _table_digest(test) if test is not None else None}
        state.finish("layout", layout_inputs, layout_result)
        state.finish("split", {**split_inputs, "layout": layout_result},
                     {"train": _table_digest(train), "valid": _table_digest(valid), "rows": [len(train), len(valid)]})
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
    extra = {**recipe.get("fine_tune", {}), **(overrides.get("fine_tune") or {})}
    train_inputs = {k: cfg[k] for k in ("backbone", "sizes", "epochs", "weights", "valid", "seed", "lr", "batch_size")}
    train_inputs.update(fit=extra.get("fit", "squash"), fine_tune=extra, layout_recipe=recipe.get("layout"),
                        data=state.result("split"))
    learner = None
    if state.fresh("train", train_inputs):
        learner = _load_learner(state, learner_dir)
        if learner is not None:
            logger.info(f"model: {learner} (trained earlier, loaded from {learner_dir})")
    if learner is None:
        learner = fine_tune(
            train, valid=valid, backbone=cfg["backbone"], sizes=cfg["sizes"], epochs=cfg["epochs"],
            weights=cfg["weights"], batch_size=cfg["batch_size"], seed=cfg["seed"],
            workdir=workdir / "train", **({"lr": cfg["lr"]} if cfg["lr"] else {}), **extra,
        )
        learner.save(learner_dir)
        state.finish("train", train_inputs, {"fingerprint": learner.settings.get("fingerprint"),
                                             "best": learner.settings.get("best"), "epochs": len(learner.history)})

    # 3. post-processing (clip / thresholds) and TTA tuned on validation, saved with the model;
    #    the validation images are predicted once, for tuning and for the score
    batch = cfg["batch_size"]
    tune_inputs = {"metric": metric, "tta": cfg["tta"], "train": state.result("train")}
    if state.fresh("tune", tune_inputs) and learner.settings.get("tuned_for") == metric:
        score = state.result("tune")["score"]
    else:
        for key in TUNED_KEYS:  # what an earlier tuning (maybe for another metric) chose
            learner.settings.pop(key, None)
        tta = cfg["tta"]
        if tta == "auto":
            tta, _ = predict.choose_tta(learner, valid, metric, batch_size=batch, progress=False)
        valid_probs = predict.predict(learner, valid, tta=tta, batch_size=batch, progress=False)
        predict.tune_settings(learner, valid_probs, metric, table=valid)
        learner.settings["tuned_for"] = metric
        learner.save(learner_dir)
        score = predict.score(valid_probs, valid, metric, settings=learner.settings)
        state.finish("tune", tune_inputs, {"score": float(score),
                                           **{k: learner.settings[k] for k in TUNED_KEYS if k in learner.settings}})
    settings = learner.settings
    shown = {k: settings[k] for k in ("clip", "threshold", "tta") if k in settings}
    logger.info(f"validation {metric}: {score:.4f}" + (f" ({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else ""))

    # 4. test predictions -> submission, written in the sample's exact shape and validated
    probs_path = workdir / "test_predictions.csv"
    predict_inputs = {"tune": state.result("tune"), "test": _table_digest(test), "train": state.result("train")}
    test_probs = None
    if state.fresh("predict", predict_inputs):
        test_probs = _read_saved(state, "predict", probs_path, predict.read_predictions)
    if test_probs is None:
        test_probs = predict.predict(learner, test, batch_size=cfg["batch_size"])
        predict.save_predictions(test_probs, probs_path)
        state.finish("predict", predict_inputs, {"file": probs_path.name, "md5": file_hash(probs_path)})
    if sample is None:
        raise ConfigError(f"{comp.path} has no sample_submission.csv, so the submission's shape is unknown; "
                          f"the test predictions are in {probs_path}.")
    out = workdir / Path(sample).name.replace("sample_", "")
    write_inputs = {"predictions": state.result("predict"), "sample": file_hash(sample), "tune": state.result("tune")}
    if not (state.fresh("write", write_inputs) and _unchanged(state, out)):
        out = submission.write_submission(test_probs, like=sample, path=out, settings=learner.settings)
        submission.validate_submission(out, like=sample)
        state.finish("write", write_inputs, {"file": Path(out).name, "md5": file_hash(out)})
    logger.info(f"submission: {out} (validated against {Path(sample).name})")

    result = RunResult(workdir=workdir, metric=metric, valid_score=float(score), submission=Path(out),
                       settings={k: v for k, v in learner.settings.items() if k in ("clip", "threshold", "thresholds", "tta")},
                       seconds=time.time() - started)
    if submit:
        # The default description names this run folder (a short hash), so a re-run finds its own submission.
        run_id = digest([str(workdir.resolve()), file_hash(out)])[:6]
        description = message or f"kagglekit {cfg['backbone']} {metric}={score:.4f} (run {run_id})"
        answer = submit_once(state, getattr(comp, "slug", None) or name, out, description, like=sample)
        result.public_score = getattr(answer, "public_score", None)
    result.seconds = time.time() - started
    atomic_write_text(workdir / "result.json", json.dumps(asdict(result), indent=1, default=str))
    return result
