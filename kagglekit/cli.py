"""The `kagglekit` command. Thin: parses, calls the library, prints.

A `KaggleKitError` is printed as one line (what is wrong and how to fix it) with
exit code 2; it never shows a traceback. The library's messages (the ``kagglekit``
logger) are shown on stdout, one plain line each.

Only `run` and `demo` need a model: they import Keras (and so its backend) and start
it quietly (`start_backend_quietly`). The other commands import no backend at all,
so this module imports nothing heavy at module level.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
import warnings
from typing import Any, Sequence

# Environment that keeps a backend's C++ logging quiet once it is initialised; a value the user set wins.
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}
# What TensorFlow/XLA/absl write to stderr while they load, before their log level applies:
# "WARNING: All log messages before absl::InitializeLog() ...", then lines such as
# "I0000 00:00:1795898967.68 10254 port.cc:153] oneDNN custom operations are on ..." (oneDNN,
# the CUDA stub, the CPU feature guard and its "To enable the following instructions" line).
_ABSL_PREINIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
LEDGER_DEFAULT = os.path.join("runs", "ledger.csv")  # kagglekit.ledger.LEDGER_PATH (that module imports pandas)
_FEATURE_GUARD = re.compile(r"^To enable the following instructions: .* with the appropriate compiler flags\.$")


def _is_startup_noise(line: str, min_level: int) -> bool:
    """Return whether a line a backend wrote while loading is below the log level `min_level` (0 I, 1 W, 2 E, 3 F)."""
    match = _ABSL_LINE.match(line)
    if match:
        return "IWEF".index(match[1]) < min_level
    return min_level >= 1 and (line.strip() == _ABSL_PREINIT or bool(_FEATURE_GUARD.match(line.strip())))


def start_backend_quietly() -> str:
    """Return the name of the Keras backend, imported with its start-up noise kept off the terminal.

    Sets `QUIET_ENV` where the user has not, then imports Keras with stderr (file
    descriptor 2) captured: lines below ``$TF_CPP_MIN_LOG_LEVEL`` (absl's
    "All log messages before absl::InitializeLog()...", oneDNN, the CUDA stub) are
    dropped and everything else is written back. ``TF_CPP_MIN_LOG_LEVEL=0`` shows it all.
    """
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        min_level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        min_level = 0
    if min_level <= 0:
        return _import_backend()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return _import_backend()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                    if not _is_startup_noise(line, min_level)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def _import_backend() -> str:
    """Return the name of the Keras backend after importing it; a missing backend is a `ConfigError` naming the fix."""
    try:
        import keras
    except ImportError as exc:
        from .errors import ConfigError

        wanted = os.environ.get("KERAS_BACKEND", "tensorflow")
        raise ConfigError(f"Keras could not load its backend {wanted!r} ({exc}). Fix: install one, e.g. "
                          f"pip install 'kagglekit[{wanted if wanted in ('tensorflow', 'jax', 'torch') else 'tensorflow'}]', "
                          "and name it in $KERAS_BACKEND (tensorflow, jax or torch).") from None
    return keras.backend.backend()


def _layout_kwargs(args: argparse.Namespace) -> dict:
    """Return the layout overrides given on the command line, checked (`kagglekit.settings`); None: not given."""
    from . import settings

    return {k: v for k, v in settings.from_cli(args).items() if k in settings.section_settings("layout")}


def _training_kwargs(args: argparse.Namespace) -> dict:
    """Return the training settings given on the command line, checked (`kagglekit.settings`); None: not given."""
    from . import settings

    return {k: v for k, v in settings.from_cli(args).items() if k in settings.section_settings("train")}


def cmd_demo(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit demo`."""
    if args.epochs is not None:  # checked as `kagglekit run --epochs` is (the demo passes it to kk.run)
        from .settings import Origin, check_value, get

        check_value(get("epochs"), str(args.epochs), Origin("cli"))
    start_backend_quietly()
    from .demo import demo

    result = demo(args.dir, epochs=args.epochs, log=None)  # its messages: the handler main() attached
    print(result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit run`."""
    from .durations import process_started
    from .settings import from_cli

    started = process_started()  # the budget counts the interpreter's and the backend's start-up

    given = from_cli(args)  # every flag checked (kagglekit.settings) before the backend starts
    start_backend_quietly()
    from .job import run

    result = run(args.source, log=None, started_at=started, **given)
    if given["dry_run"]:
        return 0  # the plan was shown by the run's messages
    print(result)
    return 0


def cmd_blend(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit blend`: K-fold runs averaged with weights tuned on their OOF predictions."""
    from .blend import blend

    print(blend(args.runs, out=args.out, log=None))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit fetch`."""
    from .sources import fetch

    comp = fetch(args.slug, path=args.path, files=args.file or None)
    print(f"{comp.path}  ({len(comp.files)} files; sample submission: {comp.sample_submission})")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit submit`."""
    from .kaggle import submit

    submit(args.slug, args.file, args.message, wait=args.wait, timeout=args.timeout)
    return 0


def cmd_submissions(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit submissions`: Kaggle's submissions, each with the run that made it."""
    from .kaggle import format_submissions, submissions
    from .ledger import format_runs, join_submissions, read

    subs = submissions(args.slug)
    runs = read(args.ledger)
    if not len(runs):
        print(format_submissions(subs))
        print(f"(no runs in {args.ledger} to join them to)")
        return 0
    print(format_runs(join_submissions(runs, subs, competition=args.slug)))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit runs`: the run ledger as a table."""
    from .ledger import format_runs, read

    print(format_runs(read(args.ledger), last=args.last))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit doctor`."""
    from .health import doctor

    print(doctor(args.directory))
    return 0


def cmd_organise(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit organise`."""
    from . import layout
    from .errors import ConfigError
    from .layout.writers import check_outside

    if args.wide and not args.csv:
        raise ConfigError("--wide shapes the CSV that --csv writes; give --csv --wide, or leave --wide out for class folders.")
    check_outside(args.out, args.directory)
    found = layout.detect(args.directory)
    train, _ = found.read()
    if args.csv:
        inputs = [os.path.join(args.directory, f) for f in found.files_read]
        layout.write_multihot_csv(train, args.out, wide=args.wide, overwrite=args.overwrite, inputs=inputs)
    else:
        layout.write_class_folders(train, args.out, mode=args.mode, overwrite=args.overwrite)
    print(f"wrote {args.out} ({len(train)} images, {len(train.classes)} classes)")
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit backbones`."""
    from .backbones import describe

    print(describe(markdown=getattr(args, "markdown", False)))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Return the exit code of `kagglekit push`: run `kagglekit run` as a Kaggle notebook on its GPU/TPU."""
    from .push import push
    from .settings import from_cli

    # The flags the notebook passes to `kagglekit run` are checked here, not after a session started on Kaggle.
    run_flags = [*(["--time", args.time] if args.time else []), *(["--backbone", args.backbone] if args.backbone else []),
                 *args.run_args]
    given = from_cli(build_parser().parse_args(["run", args.slug, *run_flags]))
    if given["dry_run"] or given["submit"]:
        from .errors import ConfigError

        flag = "--dry-run" if given["dry_run"] else "--submit"
        fix = ("a pushed session that only dry-runs trains nothing: run `kagglekit run SLUG --dry-run` here"
               if given["dry_run"] else "submitting is push's own flag: give `kagglekit push SLUG --submit`")
        raise ConfigError(f"--run-args {flag}: {fix}, and leave {flag} out of --run-args.")
    try:
        result = push(args.slug, accelerator=args.accelerator, time_budget=args.time, backbone=args.backbone,
                      run_args=args.run_args, datasets=args.dataset or (), models=args.kaggle_model or (), wheels=args.wheels,
                      workdir=args.workdir, ledger=args.ledger, submit=args.submit, message=args.message,
                      wait=not args.no_wait, poll=args.poll, timeout=args.timeout)
    except KeyboardInterrupt:  # not "run it again": that would push a new version
        print(f"kagglekit push: stopped following; the notebook goes on running on Kaggle. Follow it with "
              f"`kaggle kernels status <you>/kagglekit-{args.slug}`, fetch its output with "
              f"`kaggle kernels output <you>/kagglekit-{args.slug} -p DIR`.", file=sys.stderr)
        return 130
    print(result)
    return 0


def _add_push(sub) -> None:
    """Add the `push` subcommand to the subparsers `sub`."""
    p = sub.add_parser("push", help="run `kagglekit run SLUG` as a Kaggle notebook on Kaggle's GPU or TPU, then fetch its output")
    p.add_argument("slug", help="competition slug")
    p.add_argument("--accelerator", default="gpu", metavar="gpu|tpu|none|SHAPE",
                   help="gpu: GPU T4 x2 (NvidiaTeslaT4, default); tpu: TPU v5e-8 (TpuV5E8); none: CPU; or a Kaggle machine shape")
    p.add_argument("--time", metavar="DURATION", help="time budget of the run on Kaggle, e.g. 1h (passed to `kagglekit run --time`)")
    p.add_argument("--backbone", help="backbone for the run (passed to `kagglekit run --backbone`)")
    p.add_argument("--dataset", action="append", metavar="OWNER/SLUG", help="attach a dataset (e.g. weights files; repeatable)")
    p.add_argument("--kaggle-model", action="append", metavar="OWNER/MODEL/FRAMEWORK/VARIATION/VERSION",
                   help="attach a Kaggle Model (repeatable)")
    p.add_argument("--wheels", metavar="DIR", help="extra .whl files to attach beside kagglekit's (dependencies the Kaggle image lacks)")
    p.add_argument("--workdir", help="local folder for the notebook, wheels and output (default runs/<slug>-kaggle)")
    p.add_argument("--ledger", default=None, metavar="PATH", help=f"ledger the session's row is added to (default {LEDGER_DEFAULT})")
    p.add_argument("--submit", action="store_true", help="submit: the notebook version (code competitions) or its submission.csv")
    p.add_argument("-m", "--message", help="submission message (default: the notebook and its version)")
    p.add_argument("--no-wait", action="store_true", help="push and return; do not follow the session")
    p.add_argument("--poll", type=_pause, default=30.0, help="seconds between status checks (default 30)")
    p.add_argument("--timeout", type=_positive_float, default=None, help="stop following after this many seconds (the session goes on)")
    p.add_argument("--run-args", type=shlex.split, default=[], metavar="'FLAGS'", help="more `kagglekit run` flags, quoted, e.g. --run-args '--epochs 1 --sizes 224'")
    p.set_defaults(func=cmd_push)


def _positive_int(text: str) -> int:
    """Return `text` as a whole number >= 1 (argparse's type: anything else is its one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give N >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1; give N >= 1 (the last N runs)")
    return value


def _seconds(text: str, zero: bool = False) -> float:
    """Return `text` as a finite number of seconds > 0 (>= 0 with `zero`): argparse's type."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value >= 0 if zero else value > 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds {'>= 0' if zero else '> 0'}")
    return value


def _positive_float(text: str) -> float:
    """Return `text` as a number of seconds > 0 (argparse's type)."""
    return _seconds(text)


def _pause(text: str) -> float:
    """Return `text` as a number of seconds >= 0 (argparse's type: a pause between polls)."""
    return _seconds(text, zero=True)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `kagglekit` command."""
    from . import __version__, settings

    parser = argparse.ArgumentParser(prog="kagglekit", description="From a Kaggle image competition to a scored submission.")
    parser.add_argument("--version", action="version", version=f"kagglekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="the whole job offline on an embedded real-digits competition")
    p.add_argument("--dir", default="kagglekit-demo", help="folder for the competition and the run (default ./kagglekit-demo)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per stage (default: the demo's quick setting)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="fetch, lay out, fine-tune, predict and write (and optionally submit) a submission")
    p.add_argument("source", help="competition slug, or a local folder/zip with its files")
    settings.add_arguments(p)  # every run setting's flags, from the one schema (kagglekit.settings)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("blend", help="average K-fold runs that share their folds, weights tuned on their OOF predictions")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders made with the same --folds K and --seed")
    p.add_argument("-o", "--out", default="submission.csv", help="the blended submission (default ./submission.csv)")
    p.set_defaults(func=cmd_blend)

    p = sub.add_parser("fetch", help="download and unpack a competition (or use /kaggle/input)")
    p.add_argument("slug")
    p.add_argument("--path", help="download folder (default ./data/<slug>, or $KAGGLEKIT_DATA/<slug>)")
    p.add_argument("--file", action="append", help="only this file (repeatable)")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("submit", help="check a submission file and upload it")
    p.add_argument("slug")
    p.add_argument("file")
    p.add_argument("-m", "--message", required=True)
    p.add_argument("--wait", action="store_true", help="wait for the score")
    p.add_argument("--timeout", type=_positive_float, default=600, help="seconds to wait for the score")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("submissions", help="list your submissions and their scores, each with the run that made it")
    p.add_argument("slug")
    p.add_argument("--ledger", default=str(LEDGER_DEFAULT), metavar="PATH", help=f"run ledger (default {LEDGER_DEFAULT})")
    p.set_defaults(func=cmd_submissions)

    p = sub.add_parser("runs", help="list the runs recorded in the ledger (time, settings, budget, scores)")
    p.add_argument("--ledger", default=str(LEDGER_DEFAULT), metavar="PATH", help=f"run ledger (default {LEDGER_DEFAULT})")
    p.add_argument("--last", type=_positive_int, default=None, metavar="N", help="only the last N runs")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("doctor", help="check a competition folder: layout, balance, bad images, duplicates, sizes")
    p.add_argument("directory")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("organise", help="write the training images as class folders or a multi-hot CSV")
    p.add_argument("directory", help="competition folder")
    p.add_argument("out", help="output folder (class folders) or CSV path (--csv)")
    p.add_argument("--mode", choices=["symlink", "hardlink", "copy"], default="symlink")
    p.add_argument("--csv", action="store_true", help="write a multi-hot CSV (image,labels) instead")
    p.add_argument("--wide", action="store_true", help="with --csv: one 0/1 column per label")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing files that differ from what organise writes (never the competition's own files)")
    p.set_defaults(func=cmd_organise)

    _add_push(sub)

    p = sub.add_parser("backbones", help="list the registered backbones: family, parameters, size, cost, weights")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (as in docs/backbones.md)")
    p.set_defaults(func=cmd_backbones)
    return parser


def _warning_as_one_line(message: Warning | str, category: type, filename: str, lineno: int, file: Any = None,
                         line: str | None = None) -> None:
    """Show a Python warning as one plain line of the kagglekit logger (no file path or source line)."""
    from .logs import logger

    logger.warning("warning: " + " ".join(str(message).split()))


def main(argv: Sequence[str] | None = None) -> int:
    """Return the exit code of the `kagglekit` command."""
    from .errors import KaggleKitError
    from .logs import to_stream

    args = build_parser().parse_args(argv)
    handler = to_stream(sys.stdout)  # for this command only: main() called in-process leaves the logger as it was
    shown_before = warnings.showwarning
    warnings.showwarning = _warning_as_one_line  # no "path/to/file.py:272: UserWarning:" and its source line
    try:
        return args.func(args)
    except KaggleKitError as exc:
        print(f"kagglekit {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kagglekit {args.command}: interrupted; run the same command again to continue.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kagglekit doctor DIR | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout once more at exit
        return 0
    finally:
        from .logs import logger

        warnings.showwarning = shown_before
        logger.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
