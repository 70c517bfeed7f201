"""`kagglekit push SLUG`: run `kagglekit run` on Kaggle's own GPU or TPU from a laptop.

Everything goes through the official ``kaggle`` client (``KaggleApi``):

1. kagglekit itself travels as a wheel in a private dataset ``<user>/kagglekit-wheels``
   (created with ``dataset_create_new``, then a new version with ``dataset_create_version``
   on each push), with any extra wheels given (``--wheels DIR``: pure-Python dependencies the
   Kaggle image lacks). The notebook installs them with ``pip install --no-index --no-deps``,
   so it needs no internet.
2. A notebook (``.ipynb``) whose cells install the wheels and run
   ``kagglekit run SLUG --time ... [--backbone ...]`` in ``/kaggle/working``, with a
   ``kernel-metadata.json``: the competition in ``competition_sources``, the wheels dataset and
   any weights datasets in ``dataset_sources``, Kaggle Models in ``model_sources``,
   ``enable_internet`` false, ``enable_gpu`` / ``enable_tpu`` and ``machine_shape`` from
   ``--accelerator``. It is pushed with ``kernels_push``.
3. ``kernels_status`` is polled until the session is COMPLETE or ERROR (each change printed).
4. ``kernels_output`` downloads what the session wrote (``submission.csv``, the run folder,
   ``runs/ledger.csv``) into the local run folder ``runs/<slug>-kaggle/``; the submission is
   checked against the competition's sample submission and the ledger row is appended to the
   local ledger.
5. For a code competition (``isKernelsSubmissionsOnly``) ``--submit`` submits the notebook
   version (``competition_submit_code``); for others it uploads the downloaded file.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import ConfigError, KaggleApiError
from .logs import logger

if TYPE_CHECKING:  # pragma: no cover
    from kaggle.api.kaggle_api_extended import KaggleApi

# --accelerator: (enable_gpu, enable_tpu, Kaggle machine shape). Shapes as the kaggle client names them
# (`kaggle kernels push --accelerator`): 'NvidiaTeslaT4' is "GPU T4 x2", 'TpuV5E8' is "TPU v5e-8".
ACCELERATORS: dict[str, tuple[bool, bool, str | None]] = {
    "gpu": (True, False, "NvidiaTeslaT4"),
    "tpu": (False, True, "TpuV5E8"),
    "none": (False, False, None),
}
WHEELS_DATASET = "kagglekit-wheels"
FINAL_STATES = ("COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED")
_MODEL_REF = re.compile(r"^[^/\s]+/[^/\s]+/[^/\s]+/[^/\s]+/\d+$")
_DATASET_REF = re.compile(r"^[^/\s]+/[^/\s]+$")


@dataclass
class PushPlan:
    """What `push` will send: the notebook's command, its inputs and its machine."""

    competition: str
    user: str
    kernel_slug: str
    accelerator: str
    command: list[str]
    datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    timeout_s: int | None = None

    def shell_command(self) -> list[str]:
        """Return the shell command the notebook runs: a TPU trains through JAX (KERAS_BACKEND=jax), else Keras' default."""
        tpu = ACCELERATORS.get(self.accelerator, (False, False, ""))[1] or "tpu" in self.accelerator.lower()
        # `python -m kagglekit`: the wheel's console script may land outside the notebook's PATH
        return (["KERAS_BACKEND=jax"] if tpu else []) + ["python", "-m"] + self.command

    @property
    def kernel_ref(self) -> str:
        """Return 'user/kernel-slug'."""
        return f"{self.user}/{self.kernel_slug}"

    @property
    def wheels_ref(self) -> str:
        """Return the wheels dataset 'user/kagglekit-wheels'."""
        return f"{self.user}/{WHEELS_DATASET}"

    def describe(self) -> list[str]:
        """Return the lines that say what will be pushed (printed before anything is sent)."""
        gpu, tpu, shape = ACCELERATORS.get(self.accelerator, (False, False, self.accelerator))
        machine = f"{'GPU' if gpu else 'TPU' if tpu else 'CPU'}" + (f" (machine shape {shape})" if shape else "")
        return [
            f"push: notebook {self.kernel_ref} on Kaggle, {machine}, internet off",
            f"push: runs `{shlex.join(self.shell_command())}` in /kaggle/working",
            f"push: inputs: competition {self.competition}; datasets {', '.join([self.wheels_ref, *self.datasets])}"
            + (f"; models {', '.join(self.models)}" if self.models else ""),
        ]


@dataclass
class PushResult:
    """What came back: the notebook version, its final status, the files downloaded, the submission."""

    kernel_ref: str
    version: int | None
    status: str
    output_dir: Path
    files: list[Path]
    submission: Path | None = None
    submission_ref: int | None = None
    public_score: float | None = None
    ledger_rows: int = 0

    def __str__(self) -> str:
        lines = [f"notebook {self.kernel_ref} version {self.version}: {self.status}",
                 f"output: {self.output_dir} ({len(self.files)} files)"]
        if self.submission:
            lines.append(f"submission: {self.submission}")
        if self.submission_ref:
            score = f", public score {self.public_score:.5f}" if self.public_score is not None else ""
            lines.append(f"submitted: ref {self.submission_ref}{score}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the wheel
def _package_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".pyc", ".pyo"))


def build_wheel(dest: str | os.PathLike) -> Path:
    """Return the path of a pure-Python wheel of the installed kagglekit package, written into `dest`.

    Built directly (a zip with the package, METADATA, WHEEL, RECORD and the console script),
    offline and in well under a second; it declares no dependencies: on Kaggle they come from
    the image (Keras, TensorFlow/JAX, pandas, scikit-learn, Pillow, kaggle) or from ``--wheels``.
    """
    from . import __version__

    root = Path(__file__).resolve().parent
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dist = f"kagglekit-{__version__}.dist-info"
    meta = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: kagglekit\nVersion: {__version__}\n"
                            "Summary: From a Kaggle image-classification competition to a scored submission.\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: kagglekit.push\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\nkagglekit = kagglekit.cli:main\n",
        f"{dist}/top_level.txt": "kagglekit\n",
    }
    path = dest / f"kagglekit-{__version__}-py3-none-any.whl"
    tmp = path.with_name(path.name + ".part")
    record = []
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        entries = [(f"kagglekit/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in _package_files(root)]
        entries += [(name, text.encode()) for name, text in meta.items()]
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        zf.writestr(zipfile.ZipInfo(f"{dist}/RECORD", (2020, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
    os.replace(tmp, path)
    return path


def write_wheels_folder(folder: str | os.PathLike, ref: str, extra_wheels: str | os.PathLike | None = None) -> list[Path]:
    """Return the wheels written into `folder` (kagglekit's and those in `extra_wheels`) beside its dataset-metadata.json.

    From a source checkout the example scripts (``examples/*.py``) are copied there too, so a notebook
    can run ``python /kaggle/input/kagglekit-wheels/dogs_vs_cats.py ...``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wheels = [build_wheel(folder)]
    if extra_wheels:
        extra = Path(extra_wheels)
        found = sorted(extra.glob("*.whl")) if extra.is_dir() else []
        if not found:
            raise ConfigError(f"--wheels {extra}: no .whl files there. Fix: fill it with "
                              "`pip download --only-binary=:all: --no-deps PACKAGE -d DIR`, or leave --wheels out.")
        for w in found:
            wheels.append(Path(shutil.copy2(w, folder / w.name)))
    examples = Path(__file__).resolve().parent.parent / "examples"  # a source checkout: its example scripts too
    for script in sorted(examples.glob("*.py")) if examples.is_dir() else []:
        shutil.copy2(script, folder / script.name)
    meta = {"title": "kagglekit wheels", "id": ref, "licenses": [{"name": "Apache 2.0"}],
            "subtitle": "kagglekit and its extra wheels, for notebooks without internet"}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=1))
    return wheels


# --------------------------------------------------------------------------- the notebook
def notebook(plan: PushPlan) -> dict:
    """Return the .ipynb (nbformat 4) that installs the attached wheels and runs the plan's command."""
    wheels_dir = f"/kaggle/input/{WHEELS_DATASET}"
    install = ("import glob, subprocess, sys\n"
               f"wheels = sorted(glob.glob('{wheels_dir}/**/*.whl', recursive=True))\n"
               f"assert wheels, 'no wheels under {wheels_dir}: attach the dataset {plan.wheels_ref}'\n"
               "subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-index', '--no-deps', *wheels], check=True)")
    run = f"%cd /kaggle/working\n!{shlex.join(plan.shell_command())}"
    show = "!ls -la /kaggle/working /kaggle/working/runs\n!tail -n 3 runs/ledger.csv"

    def cell(src: str) -> dict:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}

    header = {"cell_type": "markdown", "metadata": {},
              "source": f"# kagglekit: {plan.competition}\nPushed by `kagglekit push`; runs `{shlex.join(plan.command)}`."}
    return {"cells": [header, cell(install), cell(run), cell(show)], "nbformat": 4, "nbformat_minor": 4,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}}


def kernel_metadata(plan: PushPlan) -> dict:
    """Return the kernel-metadata.json of the plan's notebook (the fields ``kaggle kernels push`` reads)."""
    gpu, tpu, shape = ACCELERATORS.get(plan.accelerator, (False, False, plan.accelerator))
    meta = {
        "id": plan.kernel_ref,
        "title": plan.kernel_slug,
        "code_file": "notebook.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": gpu,
        "enable_tpu": tpu,
        "enable_internet": False,
        "competition_sources": [plan.competition],
        "dataset_sources": [plan.wheels_ref, *plan.datasets],
        "kernel_sources": [],
        "model_sources": list(plan.models),
    }
    if shape:
        meta["machine_shape"] = shape
    return meta


def make_plan(competition: str, user: str, accelerator: str = "gpu", time_budget: str | None = None,
              backbone: str | None = None, run_args: Sequence[str] = (), datasets: Sequence[str] = (),
              models: Sequence[str] = (), kernel_slug: str | None = None) -> PushPlan:
    """Return the push plan, every input checked (a `ConfigError` naming the flag otherwise)."""
    from .durations import parse_duration

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,99}", competition or ""):
        raise ConfigError(f"push needs a competition slug (lower case, digits, '-'), not {competition!r}. "
                          "Fix: the last part of https://www.kaggle.com/competitions/<slug>.")
    if not user:
        raise ConfigError("push could not tell the Kaggle user name from the credentials. Fix: put \"username\" in "
                          "~/.kaggle/kaggle.json (or set KAGGLE_USERNAME).")
    if accelerator not in ACCELERATORS and not re.fullmatch(r"[A-Za-z0-9]+", accelerator or ""):
        raise ConfigError(f"--accelerator {accelerator!r}: use gpu, tpu, none or a Kaggle machine shape such as NvidiaTeslaT4.")
    for d in datasets:
        if not _DATASET_REF.match(d):
            raise ConfigError(f"--dataset {d!r}: use owner/dataset-slug (as in kaggle.com/datasets/owner/dataset-slug).")
    for m in models:
        if not _MODEL_REF.match(m):
            raise ConfigError(f"--kaggle-model {m!r}: use owner/model/framework/variation/version, e.g. keras/efficientnetv2/keras/efficientnetv2_s_imagenet/1.")
    seconds = None
    command = ["kagglekit", "run", competition]
    if time_budget:
        seconds = parse_duration(time_budget)  # raises ConfigError naming the fix
        command += ["--time", str(time_budget)]
    if backbone:
        command += ["--backbone", backbone]
    command += list(run_args)
    slug = kernel_slug or f"kagglekit-{competition}"[:50].rstrip("-")
    # Kaggle stops a session at 12 h (9 h for TPU); ask for the budget plus room to set up and predict.
    cap = 9 * 3600 if "tpu" in accelerator.lower() else 12 * 3600
    timeout = int(min(cap, seconds * 1.5 + 900)) if seconds else None
    return PushPlan(competition, user, slug, accelerator, command, datasets=list(datasets), models=list(models), timeout_s=timeout)


# --------------------------------------------------------------------------- talking to Kaggle
def _client_call(action: str, fn: Callable, *args, **kwargs):
    """Return fn(*args, **kwargs) with the client's prints kept off the terminal and its errors translated."""
    from .kaggle import _quiet, _translate

    with _translate(None, action), _quiet():
        try:
            return fn(*args, **kwargs)
        except ValueError as e:  # the client's own checks (metadata, slugs): say which step
            raise KaggleApiError(f"The kaggle client refused to {action}: {e}") from None


def publish_wheels(api: "KaggleApi", plan: PushPlan, workdir: Path, extra_wheels: str | os.PathLike | None = None) -> str:
    """Return "created" or "updated" after uploading kagglekit's wheel (and extra wheels) as the plan's wheels dataset."""
    import requests

    folder = workdir / "wheels"
    if folder.exists():  # remove only what an earlier push wrote there
        meta = folder / "dataset-metadata.json"
        try:
            ours = json.loads(meta.read_text()).get("title") == "kagglekit wheels"
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise ConfigError(f"{folder} exists and was not written by kagglekit push. Fix: move it, or pass another --workdir.")
        shutil.rmtree(folder)
    wheels = write_wheels_folder(folder, plan.wheels_ref, extra_wheels)
    exists = True
    try:
        with _quiet_client():
            api.dataset_status(plan.wheels_ref)
    except (requests.ConnectionError, requests.Timeout) as e:
        raise KaggleApiError(f"Could not reach the Kaggle API to read dataset {plan.wheels_ref} ({type(e).__name__}). "
                             "Fix: check the internet connection and any proxy settings, then try again.") from None
    except requests.HTTPError as e:
        if e.response is None or e.response.status_code != 404:
            raise KaggleApiError(f"Could not read dataset {plan.wheels_ref} ({e}). Fix: try again later.") from None
        exists = False
    if exists:
        result = _client_call(f"upload a new version of dataset {plan.wheels_ref}", api.dataset_create_version,
                              str(folder), f"kagglekit push {time.strftime('%Y-%m-%d %H:%M:%S')}", quiet=True)
    else:
        result = _client_call(f"create dataset {plan.wheels_ref}", api.dataset_create_new, str(folder), public=False, quiet=True)
    if getattr(result, "error", None):
        raise KaggleApiError(f"Kaggle did not accept dataset {plan.wheels_ref}: {result.error}")
    logger.info(f"push: dataset {plan.wheels_ref} {'updated' if exists else 'created'} ({', '.join(w.name for w in wheels)})")
    return "updated" if exists else "created"


def _quiet_client():
    from .kaggle import _quiet

    return _quiet()


def push_notebook(api: "KaggleApi", plan: PushPlan, workdir: Path) -> int | None:
    """Return the version number Kaggle gave the pushed notebook (the folder it was pushed from is `workdir`/notebook)."""
    folder = workdir / "notebook"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notebook.ipynb").write_text(json.dumps(notebook(plan), indent=1))
    (folder / "kernel-metadata.json").write_text(json.dumps(kernel_metadata(plan), indent=1))
    timeout = str(plan.timeout_s) if plan.timeout_s else None
    result = _client_call(f"push notebook {plan.kernel_ref}", api.kernels_push, str(folder), timeout)
    if result is None or getattr(result, "error", None):
        raise KaggleApiError(f"Kaggle did not accept notebook {plan.kernel_ref}: {getattr(result, 'error', 'no answer')}")
    invalid = [*(result.invalid_competition_sources or []), *(result.invalid_dataset_sources or []),
               *(getattr(result, "invalid_model_sources", None) or [])]
    if invalid:
        raise KaggleApiError(f"Kaggle could not attach {', '.join(invalid)} to notebook {plan.kernel_ref}. Fix: check the "
                             "slugs, accept the competition's rules, and make sure this account can read those datasets/models.")
    logger.info(f"push: notebook {plan.kernel_ref} version {result.version_number} pushed ({result.url})")
    return result.version_number


def follow(api: "KaggleApi", kernel_ref: str, poll: float = 30.0, timeout: float | None = None) -> str:
    """Return the final status of the notebook's latest session (COMPLETE, ERROR, ...), logging each change."""
    start = time.monotonic()
    last = None
    while True:
        response = _client_call(f"read the status of notebook {kernel_ref}", api.kernels_status, kernel_ref)
        status = getattr(response.status, "name", str(response.status))
        if status != last:
            took = time.monotonic() - start
            logger.info(f"push: {kernel_ref} is {status} ({took:.0f} s)" + (f": {response.failure_message}" if response.failure_message else ""))
            last = status
        if status in FINAL_STATES:
            if status != "COMPLETE":
                raise KaggleApiError(f"Notebook {kernel_ref} ended {status}: {response.failure_message or 'no message'}. "
                                     f"Fix: read its log (`kaggle kernels output {kernel_ref} -p DIR` writes it), fix, push again.")
            return status
        if timeout is not None and time.monotonic() - start > timeout:
            raise KaggleApiError(f"Notebook {kernel_ref} is still {status} after {timeout:.0f} s. Fix: it keeps running on "
                                 f"Kaggle; `kaggle kernels status {kernel_ref}` follows it and `kaggle kernels output {kernel_ref} -p DIR` fetches its output.")
        time.sleep(poll)


def fetch_output(api: "KaggleApi", kernel_ref: str, dest: Path) -> list[Path]:
    """Return the files the notebook's session wrote, downloaded into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    files, _ = _client_call(f"download the output of notebook {kernel_ref}", api.kernels_output, kernel_ref, str(dest), force=True)
    return [Path(f) for f in files]


def _merge_ledger(files: list[Path], ledger_path: Path) -> int:
    """Return how many rows of the session's runs/ledger.csv were appended to the local ledger (none twice)."""
    from . import ledger

    remote = next((f for f in files if f.as_posix().endswith("runs/ledger.csv")), None)
    if remote is None or not remote.exists():
        return 0
    have = set(ledger.read(ledger_path)["run_id"]) if ledger_path.exists() else set()
    added = 0
    for row in ledger.read(remote).to_dict("records"):
        if row.get("run_id") in have:
            continue
        try:
            extra = json.loads(row.get("extra") or "{}")
            extra = extra if isinstance(extra, dict) else {"remote_extra": extra}
        except (TypeError, ValueError):
            extra = {"remote_extra": row.get("extra")}
        ledger.append({**row, "extra": json.dumps({**extra, "pushed": True})}, ledger_path)
        added += 1
    return added


def is_code_competition(api: "KaggleApi", slug: str) -> bool:
    """Return whether competition `slug` takes notebook submissions only (Kaggle's isKernelsSubmissionsOnly)."""
    from kagglesdk.competitions.types.competition_api_service import ApiGetCompetitionRequest

    request = ApiGetCompetitionRequest()
    request.competition_name = slug
    with _quiet_client():
        client = api.build_kaggle_client()
    from .kaggle import _translate

    with _translate(slug, "read the competition"), client as c:
        return bool(c.competitions.competition_api_client.get_competition(request).is_kernels_submissions_only)


def _submit(api: "KaggleApi", plan: PushPlan, version: int | None, submission: Path, message: str, wait: bool) -> tuple[int, float | None]:
    """Return (submission ref, public score or None): the notebook version for a code competition, else the file."""
    from . import kaggle as kg

    if is_code_competition(api, plan.competition):
        result = _client_call(f"submit notebook {plan.kernel_ref} version {version} to {plan.competition}",
                              api.competition_submit_code, "submission.csv", message, plan.competition,
                              plan.kernel_ref, version, quiet=True)
        ref = int(result.ref)
        logger.info(f"push: submitted notebook {plan.kernel_ref} version {version} to {plan.competition} (code competition; ref {ref})")
    else:
        ref = kg.submit(plan.competition, submission, message, quiet=True).ref
        logger.info(f"push: submitted {submission} to {plan.competition} (ref {ref})")
    score = kg.wait_for_score(plan.competition, ref, api=api, quiet=True).public_score if wait else None
    return ref, score


def push(competition: str, accelerator: str = "gpu", time_budget: str | None = None, backbone: str | None = None,
         run_args: Sequence[str] = (), datasets: Sequence[str] = (), models: Sequence[str] = (),
         wheels: str | os.PathLike | None = None, workdir: str | os.PathLike | None = None,
         ledger: str | os.PathLike | None = None, submit: bool = False, message: str | None = None,
         wait: bool = True, poll: float = 30.0, timeout: float | None = None, kernel_slug: str | None = None) -> PushResult:
    """Return the outcome of running `kagglekit run COMPETITION` as a Kaggle notebook (see the module docstring).

    Everything is checked and the plan printed before anything is sent. `wait` False returns
    right after the push (status "PUSHED"); otherwise the session is followed every `poll`
    seconds (at most `timeout`), its output downloaded into `workdir` (default
    ``runs/<competition>-kaggle``), the submission validated, its ledger row appended to
    `ledger` (default ``runs/ledger.csv``), and with `submit` the result submitted.
    """
    from .kaggle import _api, check_submission_file

    api = _api()
    user = api.get_config_value("username") or ""
    plan = make_plan(competition, user, accelerator, time_budget, backbone, run_args, datasets, models, kernel_slug)
    for line in plan.describe():
        logger.info(line)
    workdir = Path(workdir or Path("runs") / f"{competition}-kaggle").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    publish_wheels(api, plan, workdir, wheels)
    version = push_notebook(api, plan, workdir)
    if not wait:
        return PushResult(plan.kernel_ref, version, "PUSHED", workdir / "output", [])
    status = follow(api, plan.kernel_ref, poll, timeout)
    out = workdir / "output"
    files = fetch_output(api, plan.kernel_ref, out)
    submission = out / "submission.csv"
    if not submission.exists():
        raise KaggleApiError(f"Notebook {plan.kernel_ref} completed without writing submission.csv (files: "
                             f"{', '.join(sorted(f.name for f in files)) or 'none'}). Fix: read its log in {out}.")
    sample = next((f for f in _local_samples(competition)), None)
    check_submission_file(submission, sample)
    rows = _merge_ledger(files, Path(ledger) if ledger else Path("runs") / "ledger.csv")
    logger.info(f"push: output of {plan.kernel_ref} in {out} ({len(files)} files; submission checked"
                + (f" against {sample}" if sample else "") + f"; {rows} ledger row(s) added)")
    result = PushResult(plan.kernel_ref, version, status, out, files, submission, ledger_rows=rows)
    if submit:
        msg = message or f"kagglekit push {plan.kernel_ref} v{version}"
        result.submission_ref, result.public_score = _submit(api, plan, version, submission, msg, wait=True)
    return result


def _local_samples(competition: str) -> list[Path]:
    """Return the sample submission of `competition` found locally (none when it was never fetched)."""
    from .submission import find_sample_submission

    found = find_sample_submission(competition)
    return [Path(found)] if found else []
