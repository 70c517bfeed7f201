"""The notebook (kernels), dataset-upload and code-submission side of the Kaggle emulator.

`KaggleEmulator` (``kaggle_emulator.py``) hands these API methods to `KernelsEmulation`:

* ``blobs.BlobApiService/StartBlobUpload`` (then a PUT of the file, as for submissions),
* ``datasets.DatasetApiService/GetDatasetStatus``, ``CreateDataset``, ``CreateDatasetVersion``,
* ``kernels.KernelsApiService/SaveKernel`` (``kaggle kernels push``), ``GetKernelSessionStatus``
  (``kernels status``), ``ListKernelSessionOutput`` (``kernels output``; the files are then
  fetched with a GET from the URLs it lists),
* ``competitions.CompetitionApiService/CreateCodeSubmission`` (``competition_submit_code``).

The wire format is what ``kagglesdk`` 0.1.x sends and parses (camelCase JSON, enums by name).

A pushed notebook version goes QUEUED -> RUNNING -> COMPLETE (or ERROR), advancing one step per
status poll after `queued_polls` / `running_polls` polls. When it completes, the emulator "runs"
it: `run_notebook` checks what a real session would need (the notebook parses, internet is off
yet the command has everything it needs attached: the competition it names among the competition
sources, a dataset holding a kagglekit wheel), and writes a deterministic output: the
competition's sample submission as ``submission.csv``, a run folder with ``run.json`` and a row
in ``runs/ledger.csv`` (in kagglekit's ledger format). It does not train anything: it emulates
the server, not Kaggle's machines. Set `runner` to replace it, `fail_next_run` to make the next
run end in ERROR with that message.
"""
from __future__ import annotations

import io
import json
import re
import secrets
import shlex
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

OUTPUTS_PREFIX = "/_emulator/outputs/"
UPLOADS_PREFIX = "/_emulator/uploads/"
METHODS = frozenset({
    "StartBlobUpload", "GetDatasetStatus", "CreateDataset", "CreateDatasetVersion",
    "SaveKernel", "GetKernelSessionStatus", "ListKernelSessionOutput", "CreateCodeSubmission",
})


class ApiError(Exception):
    """An API error the emulator answers as JSON ``{"code": N, "message": ...}`` with HTTP status N."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Dataset:
    """A dataset: its versions, each {file name: bytes}."""

    ref: str
    title: str
    private: bool
    versions: list[dict[str, bytes]] = field(default_factory=list)

    def files(self) -> dict[str, bytes]:
        """Return the files of the latest version."""
        return self.versions[-1] if self.versions else {}


@dataclass
class KernelVersion:
    """One pushed version of a notebook and its session."""

    number: int
    request: dict
    status: str = "QUEUED"
    polls: int = 0
    failure: str = ""
    outputs: dict[str, bytes] = field(default_factory=dict)
    log: str = ""


def _split_ref(ref: str, what: str) -> tuple[str, str]:
    owner, sep, slug = (ref or "").partition("/")
    if not sep or not owner or not slug:
        raise ApiError(400, f"{what} must be 'owner/slug', got {ref!r}")
    return owner, slug


def notebook_source(text: str) -> str:
    """Return the code of a notebook's code cells joined by newlines (ValueError if it is not a notebook)."""
    nb = json.loads(text)
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise ValueError("the notebook has no cells")
    out = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    return "\n".join(out)


def _run_command(code: str) -> list[str]:
    for line in code.splitlines():
        words = shlex.split(line.strip().lstrip("!"), comments=True) if "kagglekit" in line else []
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value before the command
            words.pop(0)
        if words[:2] == ["kagglekit", "run"] or words[1:4] == ["-m", "kagglekit", "run"]:
            return words[words.index("run") + 1:]
    raise ValueError("the notebook never runs `kagglekit run`")


def _option(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words and words.index(name) + 1 < len(words) else None


class KernelsEmulation:
    """Datasets, notebooks and code submissions held by one `KaggleEmulator`."""

    def __init__(self, emulator: Any, queued_polls: int = 1, running_polls: int = 2) -> None:
        self.emu = emulator
        self.queued_polls, self.running_polls = queued_polls, running_polls
        self.datasets: dict[str, Dataset] = {}
        self.kernels: dict[str, list[KernelVersion]] = {}
        self.models: set[str] = set()  # model sources ("owner/model/framework/variation/version") that exist
        self.code_submissions: list[dict] = []
        self.code_competitions: set[str] = set()  # slugs answered isKernelsSubmissionsOnly (file uploads refused)
        self.fail_next_run: str | None = None
        self.runner: Callable[["KernelsEmulation", KernelVersion], dict[str, bytes]] = run_notebook
        self._blobs: dict[str, str] = {}  # blob token -> upload token

    # ------------------------------------------------------------------ dispatch
    def api(self, method: str, body: dict, authorized: bool = True) -> dict:
        """Return the JSON answer of `method` (raises ApiError; 401 when not `authorized`)."""
        if not authorized:
            raise ApiError(401, "Unauthenticated: invalid API credentials")
        return getattr(self, "_" + method)(body)

    def _StartBlobUpload(self, body: dict) -> dict:
        token = secrets.token_hex(12)
        self.emu._store.uploads[token] = {"slug": None, "fileName": body.get("name", "file"), "data": None}
        return {"token": token, "createUrl": f"http://localhost{UPLOADS_PREFIX}{token}"}

    def _uploaded_files(self, files: list[dict]) -> dict[str, bytes]:
        out = {}
        for f in files or []:
            upload = self.emu._store.uploads.get(f.get("token", ""))
            if upload is None or upload["data"] is None:
                raise ApiError(400, f"No uploaded file for blob token {f.get('token')!r}")
            out[upload["fileName"]] = upload["data"]
        if not out:
            raise ApiError(400, "A dataset version needs at least one file")
        return out

    def _GetDatasetStatus(self, body: dict) -> dict:
        ref = f"{body.get('ownerSlug', '')}/{body.get('datasetSlug', '')}"
        if ref not in self.datasets:
            raise ApiError(404, f"Dataset '{ref}' not found")
        return {"status": "READY"}

    def _CreateDataset(self, body: dict) -> dict:
        ref = f"{body.get('ownerSlug', '')}/{body.get('slug', '')}"
        if body.get("ownerSlug") != self.emu.username:
            raise ApiError(403, f"You cannot create datasets for {body.get('ownerSlug')!r}")
        if ref in self.datasets:
            return {"status": "error", "error": f"The requested slug is already in use by a dataset: {ref}"}
        ds = Dataset(ref, body.get("title", ""), bool(body.get("isPrivate", False)))
        ds.versions.append(self._uploaded_files(body.get("files", [])))
        self.datasets[ref] = ds
        return {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "ok"}

    def _CreateDatasetVersion(self, body: dict) -> dict:
        ref = f"{body.get('ownerSlug', '')}/{body.get('datasetSlug', '')}"
        ds = self.datasets.get(ref)
        if ds is None:
            raise ApiError(404, f"Dataset '{ref}' not found")
        ds.versions.append(self._uploaded_files((body.get("body") or {}).get("files", [])))
        return {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "ok"}

    # ------------------------------------------------------------------ notebooks
    def _SaveKernel(self, body: dict) -> dict:
        owner, slug = _split_ref(body.get("slug", ""), "The kernel id")
        if owner != self.emu.username:
            raise ApiError(403, f"You cannot push notebooks for {owner!r}")
        if body.get("enableGpu") and body.get("enableTpu"):
            return {"error": "A notebook cannot enable both a GPU and a TPU"}
        if body.get("kernelType") == "notebook":
            try:
                notebook_source(body.get("text", ""))
            except (ValueError, AttributeError) as e:
                return {"error": f"Notebook is not valid: {e}"}
        ref = f"{owner}/{slug}"
        invalid = {
            "invalidCompetitionSources": [c for c in body.get("competitionDataSources", []) if c not in self.emu._store.competitions],
            "invalidDatasetSources": [d for d in body.get("datasetDataSources", []) if d not in self.datasets],
            "invalidModelSources": [m for m in body.get("modelDataSources", []) if m not in self.models],
        }
        versions = self.kernels.setdefault(ref, [])
        version = KernelVersion(len(versions) + 1, dict(body))
        if body.get("kernelExecutionType") == "QUICK_SAVE":
            version.status = "COMPLETE"
        versions.append(version)
        return {"ref": f"/code/{ref}", "url": f"https://www.kaggle.com/code/{ref}", "versionNumber": version.number,
                "kernelId": abs(hash(ref)) % 10**6, **{k: v for k, v in invalid.items() if v}}

    def _version(self, body: dict) -> KernelVersion:
        ref = f"{body.get('userName', '')}/{body.get('kernelSlug', '')}"
        versions = self.kernels.get(ref)
        if not versions:
            raise ApiError(404, f"Notebook '{ref}' not found")
        label = body.get("versionLabel")
        if not label:
            return versions[-1]
        number = int(str(label).lstrip("v")) if str(label).lstrip("v").isdigit() else -1
        if not 1 <= number <= len(versions):
            raise ApiError(404, f"Notebook '{ref}' has no version {label}")
        return versions[number - 1]

    def _advance(self, v: KernelVersion) -> None:
        if v.status in ("COMPLETE", "ERROR"):
            return
        v.polls += 1
        if v.status == "QUEUED" and v.polls > self.queued_polls:
            v.status, v.polls = "RUNNING", 1
        if v.status == "RUNNING" and v.polls > self.running_polls:
            self._finish(v)

    def _finish(self, v: KernelVersion) -> None:
        try:
            if self.fail_next_run is not None:
                message, self.fail_next_run = self.fail_next_run, None
                raise RuntimeError(message)
            v.outputs = self.runner(self, v)
            v.status = "COMPLETE"
            v.log = json.dumps([{"stream_name": "stdout", "time": 1.0, "data": "emulated run complete\n"}])
        except Exception as e:  # the notebook failed: ERROR with its message, as on Kaggle
            v.status, v.failure = "ERROR", f"{type(e).__name__}: {e}"
            v.log = json.dumps([{"stream_name": "stderr", "time": 1.0, "data": v.failure + "\n"}])

    def _GetKernelSessionStatus(self, body: dict) -> dict:
        v = self._version(body)
        self._advance(v)
        return {"status": v.status, **({"failureMessage": v.failure} if v.failure else {})}

    def _ListKernelSessionOutput(self, body: dict) -> dict:
        ref = f"{body.get('userName', '')}/{body.get('kernelSlug', '')}"
        v = self._version(body)
        if v.status != "COMPLETE":  # Kaggle lists the output of a finished session only
            return {"files": [], **({"log": v.log} if v.log else {})}
        files = [{"fileName": name, "url": f"http://localhost{OUTPUTS_PREFIX}{ref}/{v.number}/{name}"}
                 for name in sorted(v.outputs)]
        return {"files": files, "log": v.log}

    def output_file(self, rest: str) -> tuple[Path, str]:
        """Return (a temporary file holding it, its name) for an output URL path after OUTPUTS_PREFIX."""
        owner, slug, number, name = (rest.split("/", 3) + ["", "", "", ""])[:4]
        versions = self.kernels.get(f"{owner}/{slug}") or []
        if not number.isdigit() or not 1 <= int(number) <= len(versions) or name not in versions[int(number) - 1].outputs:
            raise ApiError(404, f"no output {rest}")
        tmp = Path(self.emu._store.tmp.name) / "outputs" / owner / slug / number / name
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(versions[int(number) - 1].outputs[name])
        return tmp, Path(name).name

    def _CreateCodeSubmission(self, body: dict) -> dict:
        slug = body.get("competitionName", "")
        self.emu._competition(slug)
        v = self._version({"userName": body.get("kernelOwner"), "kernelSlug": body.get("kernelSlug"),
                           "versionLabel": str(body.get("kernelVersion") or "")})
        if v.status != "COMPLETE":
            raise ApiError(400, f"Notebook version {v.number} has not completed successfully (status {v.status})")
        if slug not in v.request.get("competitionDataSources", []):
            raise ApiError(400, f"The notebook does not have competition '{slug}' attached")
        name = body.get("fileName") or "submission.csv"
        if name not in v.outputs:
            raise ApiError(400, f"The notebook version has no output file {name!r}")
        self.code_submissions.append(dict(body))
        # scored like an uploaded file: the emulator "re-runs" the notebook on the hidden test set as Kaggle does
        token = secrets.token_hex(12)
        self.emu._store.uploads[token] = {"slug": slug, "fileName": name, "data": v.outputs[name]}
        return self.emu.api("CreateSubmission", {"competitionName": slug, "blobFileTokens": token,
                                                 "submissionDescription": body.get("submissionDescription", "")}, True)


def _sample_submission(folder: Path) -> bytes:
    """Return the bytes of the sample submission CSV in a competition folder (also inside a zip)."""
    for path in sorted(folder.rglob("*")):
        low = path.name.lower()
        if re.match(r"sample_?submission.*\.csv$", low):
            return path.read_bytes()
        if low.startswith("sample") and low.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if names:
                    return zf.read(names[0])
    raise FileNotFoundError(f"no sample submission in {folder}")


def run_notebook(emulation: KernelsEmulation, v: KernelVersion) -> dict[str, bytes]:
    """Return the output files of an emulated run of notebook version `v` (raises why it would fail on Kaggle)."""
    from .. import ledger

    req = v.request
    words = _run_command(notebook_source(req.get("text", "")))
    slug = words[0] if words else ""
    if slug not in req.get("competitionDataSources", []):
        raise FileNotFoundError(f"/kaggle/input/{slug} does not exist: the competition is not attached")
    wheels = [n for d in req.get("datasetDataSources", []) if d in emulation.datasets
              for n in emulation.datasets[d].files() if n.startswith("kagglekit-") and n.endswith(".whl")]
    if not wheels:
        raise ModuleNotFoundError("No module named 'kagglekit' (no dataset with a kagglekit wheel is attached, "
                                  "and the internet is off)" if not req.get("enableInternet") else "No module named 'kagglekit'")
    comp = emulation.emu._competition(slug)
    sample = _sample_submission(comp.folder)
    shape = req.get("machineShape") or ("Tpu" if req.get("enableTpu") else "NvidiaTeslaT4" if req.get("enableGpu") else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        row = ledger.append({"run_id": ledger.new_run_id(), "competition": slug, "backbone": _option(words, "--backbone") or "",
                             "budget_s": "", "hardware": f"emulated Kaggle session ({shape})",
                             "submission": "/kaggle/working/submission.csv", "workdir": f"runs/{slug}"},
                            Path(tmp) / "ledger.csv")
        ledger_bytes = (Path(tmp) / "ledger.csv").read_bytes()
    run_json = json.dumps({"run_id": row["run_id"], "source": slug, "emulated": True, "argv": words}, indent=1)
    buf = io.StringIO()
    buf.write(f"kagglekit run {shlex.join(words)}\n")
    return {"submission.csv": sample, f"runs/{slug}/run.json": run_json.encode(), "runs/ledger.csv": ledger_bytes,
            "run.log": buf.getvalue().encode()}
