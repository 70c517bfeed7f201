"""The schema: `Setting` and `SETTINGS`, every setting a run takes (see `kagglekit.settings`)."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..errors import KaggleKitError

SECTIONS = ("layout", "train", "fine_tune")  # the recipe's sections, in the order the docs show them
# fine_tune arguments the run passes itself: the data and the [train] settings (a [fine_tune] section may not repeat them)
SET_BY_RUN = frozenset({"data", "valid", "backbone", "sizes", "epochs", "weights", "batch_size", "seed", "workdir", "lr",
                        "flip", "replay"})


@dataclass(frozen=True)
class Setting:
    """One setting: its name, type and range or choices, default, recipe section, CLI flags and help text.

    kind: "int", "float", "bool", "str", "path", "duration" (seconds or "10m"), "sizes" / "ints" (whole numbers),
    "floats" (numbers), "texts" (a list of texts), "fraction" (in (0, 1), or a whole number of images), "table" (a TOML table / dict),
    "recipe" (a path or a dict), "ledger" (a path, or false for none), "objects" (Python objects, kk.run only)
    or "any" (not checked).
    """

    name: str
    kind: str
    help: str
    default: Any = None
    section: str | None = None  # the recipe section ("layout", "train", "fine_tune"); None: the CLI and kk.run only
    flags: tuple[str, ...] = ()  # CLI flags of `kagglekit run`; a bool's pair is (--on, --off)
    keyword: bool = True  # a keyword of kk.run (fine_tune's are keys of run(fine_tune={...}))
    low: float | None = None  # the smallest value (or list item) allowed
    high: float | None = None  # the largest
    open_low: bool = False  # the bound itself is not allowed
    open_high: bool = False
    choices: tuple[str, ...] = ()  # the allowed texts ("auto" beside a number: see `also`)
    also: tuple[str, ...] = ()  # texts accepted beside the kind's values ("auto")
    check: Callable[[Any], str | None] | None = None  # a further check: returns why the value is refused, or None
    example: Any = None  # a valid value, shown in the fixes
    metavar: str | None = None
    flag_help: tuple[str, ...] = ()  # a bool pair's help, one per flag
    aliases: tuple[str, ...] = ()  # names users try for it ("learning_rate" for lr): "did you mean" finds them
    objects: tuple[str, ...] = ()  # class names (in the value's MRO) kk.run also accepts: a Keras Layer, Callbacks
    text_ok: bool = False  # a "str" setting that also takes a number, read as its text (a class named 1)
    takes: str = ""  # what it takes, in words, where the kind says too little ("a registered backbone name")
    default_text: str = ""  # the default in words, where it is worked out ("from the submission format")

    @property
    def flag(self) -> str:
        """Return the CLI flag that names this setting in messages (the first long one), or ''."""
        return next((f for f in self.flags if f.startswith("--")), "")

    def describe(self) -> str:
        """Return what the setting takes, in words ("a whole number >= 1", "true or false", ...)."""
        what = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a text",
                "path": "a path", "duration": "a duration such as 90s, 10m, 1h30m (or seconds)",
                "sizes": "a list of whole numbers", "ints": "a list of whole numbers", "floats": "a list of numbers",
                "texts": "a list of texts",
                "fraction": "a fraction in (0, 1) or a whole number of images", "table": "a table (key = value)",
                "recipe": "a .toml/.json path (or a dict)", "ledger": "a CSV path, or false for no ledger",
                "objects": "a list of objects (kk.run only)", "any": "any value"}[self.kind]
        if self.choices:
            what = "one of " + ", ".join(self.choices)
        if self.takes:
            what = self.takes
        bounds = _bounds_text(self)
        if bounds:
            what += (", each " if self.kind in ("sizes", "floats", "ints") else " ") + bounds
        if self.also:
            what += " or " + " or ".join(repr(a) for a in self.also)
        if self.objects and self.kind != "objects":
            what += " (kk.run: or a " + " / ".join(self.objects) + ")"
        return what


def _bounds_text(s: Setting) -> str:
    """Return the range of `s` in words ('>= 1', 'from 0 to 12', '> 0'), or ''."""
    fmt = lambda v: str(int(v)) if float(v).is_integer() else f"{v:g}"  # noqa: E731
    if s.low is not None and s.high is not None:
        if not s.open_low and not s.open_high:
            return f"from {fmt(s.low)} to {fmt(s.high)}"
        return f"{'>' if s.open_low else '>='} {fmt(s.low)} and {'<' if s.open_high else '<='} {fmt(s.high)}"
    if s.low is not None:
        return f"{'>' if s.open_low else '>='} {fmt(s.low)}"
    if s.high is not None:
        return f"{'<' if s.open_high else '<='} {fmt(s.high)}"
    return ""


# ------------------------------------------------------------------ checks that need the rest of the package
def _known_backbone(value: str) -> str | None:
    """Return why `value` is not a registered backbone, or None."""
    from .. import backbones

    try:
        backbones.get(value)
    except KaggleKitError:
        return f"no backbone is registered under that name{suggest(value, backbones.names())} (`kagglekit backbones` lists them)"
    return None


def _known_metric(value: str) -> str | None:
    """Return why `value` is not a known metric, or None."""
    from .. import metrics

    try:
        metrics.get_metric(value)
    except KaggleKitError:
        return f"no such metric{suggest(value, sorted(metrics.METRICS))}; known: {', '.join(sorted(metrics.METRICS))}"
    return None


def _weights_source(value: str) -> str | None:
    """Return why `value` is neither 'imagenet', 'none' nor an existing weights file, or None."""
    if value.lower() in ("imagenet", "none"):
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        return f"it is not 'imagenet', 'none' nor an existing weights file{suggest(value.lower(), ['imagenet', 'none'])}"
    kinds = "a *_notop.h5 (keras.applications), *.weights.h5 (model.save_weights) or *.keras file"
    if path.suffix.lower() not in (".h5", ".keras"):
        return f"{value} is not a weights file: kagglekit loads {kinds}"
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return f"{value} cannot be read ({exc.strerror or exc})"
    if path.suffix.lower() == ".keras" and head[:2] != b"PK":
        return f"{value} is not a .keras file (a .keras file is a zip archive){' : it is empty' if not head else ''}; give {kinds}"
    if path.suffix.lower() == ".h5" and not _hdf5(path):
        return f"{value} is not an HDF5 file{' (it is empty)' if not head else ''}; give {kinds}"
    return None


def _hdf5(path: Path) -> bool:
    """Return whether `path` holds HDF5's signature (at 0, or at 512, 1024, 2048, ... after a user block)."""
    with open(path, "rb") as fh:
        offset = 0
        while True:
            fh.seek(offset)
            head = fh.read(8)
            if head == b"\x89HDF\r\n\x1a\n":
                return True
            if len(head) < 8:
                return False
            offset = 512 if offset == 0 else offset * 2


def _class_weights(value: dict) -> str | None:
    """Return why a {class: weight} table is refused (a weight that is not a positive number), or None."""
    bad = [k for k, w in value.items() if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0]
    return (f"class_weight takes 'balanced' or {{class = weight}} with positive numbers as weights; "
            f"{bad[0]!r} has {value[bad[0]]!r}") if bad else None


def _three(value: list) -> str | None:
    """Return why a list of learning-rate factors does not hold three (early layers, late layers, head), or None."""
    return None if len(value) == 3 else (f"lr_mult takes three factors (early layers, late layers, head), "
                                         f"not {len(value)}")


# What Keras logs each epoch, so what can pick the best one (kagglekit.learner.loss_and_metrics: accuracy for
# single-label, binary_accuracy for multi-label); another name is never found and no epoch is ever "best".
MONITORS = ("val_loss", "val_accuracy", "val_binary_accuracy", "loss", "accuracy", "binary_accuracy")
LAYOUT_READERS = ("from_csv", "from_filenames", "from_folders", "from_ids", "from_imaterialist_json", "from_pixel_csv")
PRECISIONS = ("auto", "mixed_float16", "mixed_bfloat16", "float16", "bfloat16", "float32")

_RUN, _LAYOUT, _TRAIN = "run", "layout", "train"
SETTINGS: tuple[Setting, ...] = (
    # ---- the run itself: CLI flags and kk.run arguments (no recipe section)
    Setting("workdir", "path", "run folder (default runs/<slug>); re-running continues there", flags=("--workdir",),
            example="runs/my-run"),
    Setting("recipe", "recipe", "TOML/JSON recipe: layout reader and training settings", flags=("--recipe",),
            example="recipe.toml"),
    Setting("submit", "bool", "submit through the Kaggle API and wait for the score", default=False,
            flags=("--submit",), example=True),
    Setting("message", "str", "submission message (default: backbone, validation score and run id)",
            flags=("-m", "--message"), example="first try"),
    Setting("time_budget", "duration", "time budget for the whole run, e.g. 90s, 10m, 1h30m (default: 10m on CPU, "
            "20m on a GPU/TPU); the plan (backbone, size, epochs, batch) is made for it", flags=("--time",),
            metavar="DURATION", example="10m", aliases=("time", "budget")),
    Setting("ledger", "ledger", "run ledger CSV a row is added to (default: ledger.csv beside the run folder, "
            "runs/ledger.csv); none: no ledger", flags=("--ledger",), metavar="PATH", example="runs/ledger.csv"),
    Setting("dry_run", "bool", "print the plan (what was inferred, and the flags that change it) and stop before "
            "training", default=False, flags=("--dry-run",), example=True),
    Setting("model", "path", "a learner folder saved by an earlier run (its learner/): no training, only prediction",
            flags=("--model",), metavar="DIR", example="runs/comp/learner"),
    Setting("replay", "path", "an earlier run folder: train its plan for the steps it trained (not for a time), as a "
            "code competition's re-run does", flags=("--replay",), metavar="RUN_DIR", example="runs/comp"),
    # ---- [layout]: what layout detection would infer (kagglekit.layout.detect's overrides), or the reader to use
    Setting("multilabel", "bool", "read the labels as multi-label (several per image) or single-label (one class "
            "per image)", section=_LAYOUT, flags=("--multilabel", "--single-label"), example=True,
            flag_help=("read the labels as multi-label (several per image)",
                       "read the labels as single-label (one class per image)")),
    Setting("positive", "str", "the class a single probability column holds (binary problems)", section=_LAYOUT,
            flags=("--positive",), metavar="CLASS", example="dog", text_ok=True),
    Setting("group_col", "str", "column of groups (driver, patient) kept whole in validation", section=_LAYOUT,
            flags=("--group-col",), metavar="NAME", example="subject"),
    Setting("id_col", "str", "column of the train CSV holding the image ids", section=_LAYOUT, flags=("--id-col",),
            metavar="NAME", example="id"),
    Setting("label_col", "str", "column of the train CSV holding the labels", section=_LAYOUT,
            flags=("--label-col",), metavar="NAME", example="label"),
    Setting("id_extension", "bool", "submission ids keep the image extension (abc.jpg) or drop it (abc)",
            section=_LAYOUT, flags=("--id-extension", "--no-id-extension"), example=False,
            flag_help=("submission ids keep the image extension (abc.jpg)",
                       "submission ids drop the image extension (abc)")),
    Setting("test", "path", "the test image folder or a CSV of test ids", section=_LAYOUT, flags=("--test",),
            metavar="PATH", example="test"),
    Setting("tag_sep", "str", "what separates the tags of one image in a multi-label column (default: a space, or a "
            "comma when the cells hold tags split by commas)", section=_LAYOUT, flags=("--tag-sep",), metavar="SEP",
            example=",", text_ok=True),
    Setting("reader", "str", "the kagglekit.layout reader to use instead of detection (its arguments in args)",
            section=_LAYOUT, keyword=False, choices=LAYOUT_READERS, example="from_csv"),
    Setting("args", "table", "the reader's keyword arguments (paths relative to the competition folder)",
            section=_LAYOUT, keyword=False, example={"csv": "labels.csv"}),
    # ---- [train]: the training settings the run plans with (None: planned from the budget, hardware and images)
    Setting("backbone", "str", "backbone name (see `kagglekit backbones`); default: planned", section=_TRAIN,
            flags=("--backbone",), check=_known_backbone, takes="a registered backbone name (`kagglekit backbones`)", example="resnet_tiny", aliases=("model_name", "arch")),
    Setting("sizes", "sizes", "progressive input sizes, e.g. 64,128,300; default: planned from the images",
            section=_TRAIN, flags=("--sizes",), low=8, high=4096, example=[64, 128],
            aliases=("size", "image_size", "img_size")),
    Setting("epochs", "int", "epochs per stage; default: planned from the time budget", section=_TRAIN,
            flags=("--epochs",), low=1, high=100_000, example=3, aliases=("epoch", "n_epochs", "num_epochs")),
    Setting("weights", "str", "'imagenet', 'none' or a weights file (e.g. a *_notop.h5 attached to a notebook)",
            default="imagenet", section=_TRAIN, flags=("--weights",), check=_weights_source,
            takes="'imagenet', 'none' or the path of an existing weights file", example="none"),
    Setting("lr", "float", "peak learning rate of the head; default: the recipe's (1e-3 pretrained, 3e-3 from scratch)",
            section=_TRAIN, flags=("--lr",), low=0, high=10, open_low=True, default_text="the recipe's", example=0.001,
            aliases=("learning_rate", "lr_max", "max_lr")),
    Setting("batch_size", "int", "images per batch; default: planned", section=_TRAIN, flags=("--batch-size",),
            low=1, high=65_536, example=32, aliases=("batch", "bs")),
    Setting("valid", "fraction", "validation fraction (default 0.2), or a number of images", default=0.2,
            section=_TRAIN, flags=("--valid",), example=0.2, aliases=("validation", "val", "valid_frac")),
    Setting("tta", "int", "test-time views averaged: 0 (none) .. 12, or 'auto' (chosen on validation; default)",
            default="auto", section=_TRAIN, flags=("--tta",), low=0, high=12, also=("auto",), example=4),
    Setting("metric", "str", "competition metric: accuracy, logloss, f2, ... (default: from the submission format)",
            section=_TRAIN, flags=("--metric",), check=_known_metric, default_text="from the submission format",
            takes="a metric name (accuracy, logloss, f1, f2, f1_micro, f2_micro, auc, qwk, map@K, or an alias)", example="logloss"),
    Setting("folds", "int", "train K models on K folds: out-of-fold predictions (oof.csv), the CV score, test "
            "predictions averaged; 'auto': 5 when the budget affords them, else 1", default=1, section=_TRAIN,
            flags=("--folds",), low=1, high=20, also=("auto",), metavar="K|auto", example=5, aliases=("kfold", "n_folds", "num_folds")),
    Setting("head", "str", "how classes are ranked: 'knn' (nearest training images in the classifier's embedding: "
            "identification, e.g. Humpback Whale) or 'softmax'; default auto, from the label statistics",
            section=_TRAIN, flags=("--head",), choices=("auto", "knn", "softmax"), default_text="auto", example="knn"),
    Setting("seed", "int", "random seed of the split, the initial weights and the augmentation", default=0,
            section=_TRAIN, flags=("--seed",), low=0, high=2**32 - 1, example=1),
    Setting("flip", "bool", "flip images in training and TTA (default: judged from the images: off for digits, text)",
            section=_TRAIN, flags=("--flip", "--no-flip"), example=False, default_text="judged from the images",
            flag_help=("flip images in training and TTA (default: judged from the images: off for digits, text)",
                       "never flip images (a mirror image would be another class)")),
    # ---- [fine_tune]: further kagglekit.learner.fine_tune arguments (kk.run: fine_tune={...})
    Setting("freeze_epochs", "int", "epochs of the frozen (head only) stage per size", default=1, section="fine_tune",
            keyword=False, low=0, high=100_000, example=1),
    Setting("lr_mult", "floats", "learning-rate factors for the early layers, the late layers and the head (default 1/9, 1/3, 1)",
            section="fine_tune", keyword=False, low=0, open_low=True, example=[0.1, 0.3, 1.0], check=_three,
            takes="a list of three numbers"),
    Setting("schedule", "str", "learning-rate schedule of each stage", default="one_cycle", section="fine_tune", keyword=False,
            choices=("one_cycle", "sgdr", "constant"), example="sgdr"),
    Setting("cycle_len", "float", "SGDR: epochs of the first cycle", default=1, section="fine_tune", keyword=False, low=0,
            open_low=True, example=1.0),
    Setting("cycle_mult", "float", "SGDR: growth of each cycle's length", default=1, section="fine_tune", keyword=False, low=1,
            example=2.0),
    Setting("optimizer", "str", "optimizer", default="adamw", section="fine_tune", keyword=False, choices=("adamw", "sgd"),
            example="sgd"),
    Setting("weight_decay", "float", "decoupled weight decay", default=1e-4, section="fine_tune", keyword=False, low=0, high=1,
            example=0.0001),
    Setting("label_smoothing", "float", "label smoothing of the loss", default=0.0, section="fine_tune", keyword=False, low=0,
            high=1, open_high=True, example=0.1),
    Setting("class_weight", "table", "per-class loss weights: 'balanced' (scikit-learn's rule) or {class = weight}",
            section="fine_tune", keyword=False, also=("balanced",), check=_class_weights, example="balanced"),
    Setting("dropout", "float", "dropout before the classifier", default=0.25, section="fine_tune", keyword=False, low=0, high=1,
            open_high=True, example=0.25),
    Setting("augment", "bool", "the default augmentation (flip, small rotation, zoom, contrast) or none",
            default=True, section="fine_tune", keyword=False, objects=("Layer",), example=False),
    Setting("mixed_precision", "bool", "mixed precision: 'auto' (on with a GPU), true, false or a policy name",
            default="auto", section="fine_tune", keyword=False, also=PRECISIONS, example="auto"),
    Setting("distribute", "bool", "data-parallel training: 'auto' (over 2+ GPUs), true (all devices) or false",
            default="auto", section="fine_tune", keyword=False, also=("auto",), example="auto"),
    Setting("resume", "bool", "continue an interrupted training found in the run folder", default=True, section="fine_tune",
            keyword=False, example=True),
    Setting("restore_best", "bool", "end with the weights of the best epoch", default=True, section="fine_tune", keyword=False,
            example=True),
    Setting("monitor", "str", "the quantity that picks the best epoch (default val_accuracy, a tie going to the lower "
                              "val_loss; or val_loss)",
            section="fine_tune", keyword=False, example="val_loss", choices=MONITORS),
    Setting("verbose", "int", "Keras progress output: 0, 1, 2 or 'auto'", default="auto", section="fine_tune", keyword=False, low=0,
            high=2, also=("auto",), example=2),
    Setting("callbacks", "objects", "extra Keras callbacks (kk.run only: run(fine_tune={'callbacks': [...]}))",
            section="fine_tune", keyword=False, objects=("Callback",), example=[]),
    Setting("resize", "str", "how images are brought to size: squash (ignore the aspect ratio), crop (fill, cut the "
            "centre) or pad (fit inside, black borders)", default="squash", section="fine_tune", keyword=False,
            choices=("squash", "crop", "pad"), example="pad", aliases=("fit", "resize_mode")),
    Setting("head_on_features", "bool", "train the frozen stage's head on features computed once", default=True, section="fine_tune",
            keyword=False, example=False),
)
_BY_SECTION: dict[str | None, dict[str, Setting]] = {}
for _s in SETTINGS:
    _BY_SECTION.setdefault(_s.section, {})[_s.name] = _s


def get(name: str, section: str | None = "*") -> Setting:
    """Return the `Setting` called `name` (in `section` when given; "*": any section)."""
    for s in SETTINGS:
        if s.name == name and (section == "*" or s.section == section):
            return s
    raise KeyError(name)


def section_settings(section: str | None) -> dict[str, Setting]:
    """Return {name: Setting} of one recipe section (None: the run's own arguments, set by the CLI and kk.run only)."""
    return dict(_BY_SECTION.get(section, {}))


def defaults(section: str | None) -> dict[str, Any]:
    """Return {name: default} of one recipe section's settings."""
    return {name: s.default for name, s in _BY_SECTION.get(section, {}).items()}


# ------------------------------------------------------------------ did you mean
def suggest(name: str, candidates: Iterable[str], aliases: Mapping[str, str] | None = None, form: str = "{}") -> str:
    """Return "; did you mean X?" for the candidate closest to `name` (difflib, or a known alias), or ''.

    `form` shapes the name shown ("[{}]" for a section).
    """
    candidates = [str(c) for c in candidates]
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    found = aliases.get(key) if aliases else None
    if found is None:
        found = key if key in candidates else next(iter(difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)), None)
    return f"; did you mean {form.format(found)}?" if found is not None and found != name else ""


def _aliases(settings: Iterable[Setting]) -> dict[str, str]:
    """Return {alias: setting name} of `settings`."""
    return {a: s.name for s in settings for a in s.aliases}
