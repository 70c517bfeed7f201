"""A local emulator of the Kaggle API, for running the real `kaggle` client offline.

It speaks the wire format of ``kaggle`` 2.x / ``kagglesdk`` (every call is
``POST /api/v1/<service>/<Method>`` with a JSON body; errors are JSON
``{"code": N, "message": ...}`` with that HTTP status), serves competitions
from local folders, and keeps submissions in memory, scored against the answers
that `kagglekit.testing.competitions.build_competition` writes beside each folder
(``<folder>.solution.csv``).

Point a client at it with ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` (the client then
calls ``http://localhost/api/v1/...``) and ``HTTP_PROXY=http://127.0.0.1:<port>``:
the emulator answers absolute-form proxy requests, so it works on any port
without root. `KaggleEmulator.environ` / `KaggleEmulator.activate` set this up,
with a temporary ``kaggle.json`` (mode 600).

From Python::

    from kagglekit.testing.kaggle_emulator import KaggleEmulator
    with KaggleEmulator({"digits": "path/to/digits"}) as emu, emu.activate(tmp_home):
        kagglekit.fetch("digits", path="data/digits")

From a shell::

    python -m kagglekit.testing.kaggle_emulator --competition digits=path/to/digits
    # prints the environment variables to export, then serves until Ctrl-C

Failure injection (attributes, change them at any time): `reject_credentials`
(401 everywhere), `rules_not_accepted` (set of slugs answered 403 on download),
`drop_after` (``{file name: bytes}``: the connection is cut after that many
bytes of a file, `drop_times` times), `fail_uploads` (the upload PUT answers
500). Unknown competitions get 404. Notebooks, dataset uploads and code submissions:
`kernels` (`kagglekit.testing.kaggle_kernels.KernelsEmulation`). `log` records every request (method, path,
range, status, file, bytes sent); `bytes_served(name)` sums the bytes sent of
one file.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import email.utils
import hashlib
import json
import math
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Mapping

from .emulator_scoring import score_submission
from .kaggle_kernels import METHODS as KERNEL_METHODS, OUTPUTS_PREFIX, ApiError as _ApiError, KernelsEmulation

SERVICE = "competitions.CompetitionApiService"
FILES_PREFIX = "/_emulator/files/"
ARCHIVES_PREFIX = "/_emulator/archives/"
UPLOADS_PREFIX = "/_emulator/uploads/"


# --------------------------------------------------------------------------- state
@dataclass
class _Competition:
    slug: str
    folder: Path
    solution: Path | None
    created: float = field(default_factory=time.time)
    archive: Path | None = None

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*") if p.is_file() and not p.name.startswith("."))

    def name_of(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()


@dataclass
class _Submission:
    ref: int
    slug: str
    file_name: str
    description: str
    date: datetime
    size: int
    status: str = "PENDING"
    public: float | None = None
    private: float | None = None
    error: str = ""
    polls_left: int = 0


@dataclass
class _Faults:
    """The failures a `KaggleEmulator` injects (see the module docstring); change them at any time."""

    reject_credentials: bool = False  # 401 everywhere
    rules_not_accepted: set[str] = field(default_factory=set)  # slugs answered 403 on download
    drop_after: dict[str, int] = field(default_factory=dict)  # file name -> bytes sent before the connection is cut
    drop_times: int = 1  # how many times each file in drop_after is cut
    fail_uploads: bool = False  # the upload PUT answers 500
    drops_done: dict[str, int] = field(default_factory=dict)  # file name -> times cut so far


class _Fault:
    """A `KaggleEmulator` attribute kept in its `faults` record: reading and setting it reads and sets the field."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, emu: "KaggleEmulator | None", owner: type | None = None):
        return self if emu is None else getattr(emu.faults, self.name)

    def __set__(self, emu: "KaggleEmulator", value) -> None:
        setattr(emu.faults, self.name, value)


@dataclass
class _Store:
    """What the emulator serves and holds: competitions, pending uploads, the scratch folder, the lock over them."""

    tmp: tempfile.TemporaryDirectory
    competitions: dict[str, _Competition] = field(default_factory=dict)
    uploads: dict[str, dict] = field(default_factory=dict)  # upload token -> {"slug", "fileName", "data"}
    next_ref: int = 1000  # the last submission ref given
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Serving:
    """The HTTP server: the port asked for (0: any free one) and, while running, the server and its thread."""

    port: int = 0
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


class KaggleEmulator:
    """A running local Kaggle API (a context manager); see the module docstring."""

    def __init__(
        self,
        competitions: Mapping[str, str | os.PathLike] | None = None,
        username: str = "kagglekit-tester",
        key: str | None = None,
        daily_limit: int = 5,
        pending_polls: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.username = username
        self.key = key or secrets.token_hex(16)
        self.token = "KGAT_" + secrets.token_hex(16)  # for KAGGLE_API_TOKEN clients
        self.daily_limit = daily_limit
        self.pending_polls = pending_polls
        self.host = host
        self.faults = _Faults()
        self.log: list[dict] = []
        self.submissions: dict[str, list[_Submission]] = {}
        self._store = _Store(tempfile.TemporaryDirectory(prefix="kaggle-emulator-"))
        self._serving = _Serving(port)
        self.kernels = KernelsEmulation(self)
        for slug, folder in (competitions or {}).items():
            self.add_competition(slug, folder)

    reject_credentials = _Fault()  # the failures injected, kept in `faults`: set them at any time
    rules_not_accepted = _Fault()
    drop_after = _Fault()
    drop_times = _Fault()
    fail_uploads = _Fault()

    # ------------------------------------------------------------------ setup
    def add_competition(self, slug: str, folder: str | os.PathLike, solution: str | os.PathLike | None = None) -> None:
        """Serve the files under `folder` as competition `slug`, scored against `solution`."""
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"competition folder {folder} does not exist")
        if solution is None:
            guess = folder.parent / f"{folder.name}.solution.csv"
            solution = guess if guess.exists() else None
        self._store.competitions[slug] = _Competition(slug, folder, Path(solution) if solution else None)

    @property
    def port(self) -> int:
        """Return the port the emulator listens on."""
        if self._serving.server is None:
            raise RuntimeError("the emulator is not running; use it as a context manager or call start()")
        return self._serving.server.server_address[1]

    @property
    def proxy_url(self) -> str:
        """Return the URL to put in HTTP_PROXY."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> "KaggleEmulator":
        """Return self after starting the server thread."""
        handler = type("Handler", (_Handler,), {"emulator": self})
        serving = self._serving
        serving.server = _Server((self.host, serving.port), handler)
        serving.thread = threading.Thread(target=serving.server.serve_forever, name="kaggle-emulator", daemon=True)
        serving.thread.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._serving.server is not None:
            self._serving.server.shutdown()
            self._serving.server.server_close()
            self._serving.server = None

    def __enter__(self) -> "KaggleEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._store.tmp.cleanup()

    def write_credentials(self, config_dir: str | os.PathLike, mode: int = 0o600) -> Path:
        """Return the path of a kaggle.json holding this emulator's credentials (mode 600)."""
        config_dir = Path(config_dir)
        config_dir.mkdir(parents=True, exist_ok=True)
        path = config_dir / "kaggle.json"
        path.write_text(json.dumps({"username": self.username, "key": self.key}))
        os.chmod(path, mode)
        return path

    def environ(self, home: str | os.PathLike, credentials: bool = True) -> dict[str, str]:
        """Return the environment variables that point a kaggle client here, with `home` as HOME.

        Writes ``home/.kaggle/kaggle.json`` (mode 600) unless `credentials` is False.
        """
        home = Path(home)
        config_dir = home / ".kaggle"
        if credentials:
            self.write_credentials(config_dir)
        else:
            config_dir.mkdir(parents=True, exist_ok=True)
        return {
            "HOME": str(home),
            "KAGGLE_CONFIG_DIR": str(config_dir),
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "HTTP_PROXY": self.proxy_url,
            "http_proxy": self.proxy_url,
            "NO_PROXY": "",
            "no_proxy": "",
        }

    @contextlib.contextmanager
    def activate(self, home: str | os.PathLike, credentials: bool = True) -> Iterator[dict[str, str]]:
        """Yield the client environment after setting it in os.environ; restore it afterwards.

        Kaggle credentials already in the environment (KAGGLE_USERNAME, KAGGLE_KEY,
        KAGGLE_API_TOKEN) and notebook markers are hidden meanwhile.
        """
        env = self.environ(home, credentials)
        hidden = ["KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE", "XDG_CONFIG_HOME"]
        saved = {k: os.environ.get(k) for k in [*env, *hidden]}
        try:
            for k in hidden:
                os.environ.pop(k, None)
            os.environ.update(env)
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # ------------------------------------------------------------------ queries
    def bytes_served(self, name: str) -> int:
        """Return the total body bytes sent for file (or archive) `name`."""
        return sum(e["bytes"] for e in self.log if e.get("file") == name)

    def requests_for(self, name: str) -> list[dict]:
        """Return the log entries of the downloads of file (or archive) `name`."""
        return [e for e in self.log if e.get("file") == name]

    def calls(self, method: str) -> int:
        """Return how many times API method `method` (e.g. 'DownloadDataFile') was called."""
        return sum(1 for e in self.log if e.get("api") == method)

    # ------------------------------------------------------------------ internals
    def _competition(self, slug: str) -> _Competition:
        comp = self._store.competitions.get(slug)
        if comp is None:
            raise _ApiError(404, f"Competition '{slug}' not found")
        return comp

    def _archive(self, comp: _Competition) -> Path:
        with self._store.lock:
            if comp.archive is None or not comp.archive.exists():
                out = Path(self._store.tmp.name) / f"{comp.slug}.zip"
                with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
                    for path in comp.files():
                        zf.write(path, comp.name_of(path))
                comp.archive = out
            return comp.archive

    def _competition_json(self, comp: _Competition) -> dict:
        return {
            "id": abs(hash(comp.slug)) % 100000,
            "ref": f"https://www.kaggle.com/competitions/{comp.slug}",
            "title": comp.slug.replace("-", " ").title(),
            "url": f"https://www.kaggle.com/competitions/{comp.slug}",
            "category": "Getting Started",
            "reward": "Knowledge",
            "deadline": "2030-01-01T00:00:00.000Z",
            "teamCount": 1,
            "userHasEntered": comp.slug not in self.rules_not_accepted,
            "isKernelsSubmissionsOnly": comp.slug in self.kernels.code_competitions,
            "maxDailySubmissions": self.daily_limit,
            "evaluationMetric": "emulated",
            "hostName": "kagglekit",
        }

    def _submission_json(self, s: _Submission) -> dict:
        out = {
            "ref": s.ref,
            "totalBytes": s.size,
            "date": s.date.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "description": s.description,
            "fileName": s.file_name,
            "status": s.status,
            "submittedBy": self.username,
            "teamName": self.username,
            "url": f"/submissions/{s.ref}/{s.file_name}",
        }
        if s.status == "COMPLETE":
            out["publicScore"] = f"{s.public:.5f}"
            out["privateScore"] = f"{s.private:.5f}"
        if s.error:
            out["errorDescription"] = s.error
        return out

    def _today(self, slug: str) -> list[_Submission]:
        today = datetime.now(timezone.utc).date()
        return [s for s in self.submissions.get(slug, []) if s.date.date() == today]

    def api(self, method: str, body: dict, authorized: bool) -> dict:
        """Return the JSON answer of API `method` (raises _ApiError)."""
        if method == "IntrospectToken":
            ok = body.get("token") == self.token and not self.reject_credentials
            return {"active": True, "username": self.username} if ok else {"active": False}
        if not authorized:
            raise _ApiError(401, "Unauthenticated: invalid API credentials")
        answer = {
            "ListCompetitions": self._list_competitions,
            "GetCompetition": lambda slug, body: self._competition_json(self._competition(slug)),
            "ListDataFiles": self._list_data_files,
            "DownloadDataFiles": self._download_data_files,
            "DownloadDataFile": self._download_data_file,
            "StartSubmissionUpload": self._start_submission_upload,
            "CreateSubmission": self._create_submission,
            "GetSubmissionLimits": self._submission_limits,
            "ListSubmissions": self._list_submissions,
            "GetSubmission": self._get_submission,
        }.get(method)
        if answer is None:
            raise _ApiError(404, f"The emulator does not implement {method}")
        return answer(body.get("competitionName", ""), body)

    # ------------------------------------------------------------------ API methods: (slug, body) -> answer
    def _list_competitions(self, slug: str, body: dict) -> dict:
        search = body.get("search", "")
        return {"competitions": [self._competition_json(c) for s, c in sorted(self._store.competitions.items())
                                 if search in s]}

    def _list_data_files(self, slug: str, body: dict) -> dict:
        comp = self._competition(slug)
        files = comp.files()
        size = int(body.get("pageSize") or 20)
        start = int(body.get("pageToken") or 0)
        page = files[start : start + size]
        out = {
            "files": [
                {
                    "ref": comp.name_of(p),
                    "name": comp.name_of(p),
                    "totalBytes": p.stat().st_size,
                    "creationDate": datetime.fromtimestamp(p.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "url": f"https://www.kaggle.com/competitions/{slug}/data?select={urllib.parse.quote(comp.name_of(p))}",
                }
                for p in page
            ]
        }
        if start + size < len(files):
            out["nextPageToken"] = str(start + size)
        return out

    def _downloadable(self, slug: str) -> _Competition:
        comp = self._competition(slug)
        if slug in self.rules_not_accepted:
            raise _ApiError(403, "You must accept this competition's rules before you'll be able to download files.")
        return comp

    def _download_data_files(self, slug: str, body: dict) -> dict:
        self._archive(self._downloadable(slug))
        raise _Redirect(f"http://localhost{ARCHIVES_PREFIX}{urllib.parse.quote(slug)}.zip")

    def _download_data_file(self, slug: str, body: dict) -> dict:
        comp = self._downloadable(slug)
        name = body.get("fileName", "")
        target = (comp.folder / name).resolve()
        if comp.folder not in target.parents or not target.is_file():
            raise _ApiError(404, f"File '{name}' not found in competition '{slug}'")
        raise _Redirect(f"http://localhost{FILES_PREFIX}{urllib.parse.quote(slug)}/{urllib.parse.quote(name)}")

    def _start_submission_upload(self, slug: str, body: dict) -> dict:
        self._competition(slug)
        token = secrets.token_hex(12)
        self._store.uploads[token] = {"slug": slug, "fileName": body.get("fileName", "submission.csv"), "data": None}
        return {"token": token, "createUrl": f"http://localhost{UPLOADS_PREFIX}{token}"}

    def _create_submission(self, slug: str, body: dict) -> dict:
        comp = self._competition(slug)
        upload = self._store.uploads.get(body.get("blobFileTokens", ""))
        if upload is None or upload["data"] is None or upload["slug"] != slug:
            raise _ApiError(400, "No uploaded file for this submission token")
        if len(self._today(slug)) >= self.daily_limit:
            raise _ApiError(400, f"Submission not allowed: your team has used its daily submission allowance ({self.daily_limit}) today.")
        with self._store.lock:
            self._store.next_ref += 1
            ref = self._store.next_ref
        sub = _Submission(ref, slug, upload["fileName"], body.get("submissionDescription", ""), datetime.now(timezone.utc),
                          len(upload["data"]), polls_left=self.pending_polls)
        try:
            if comp.solution is None:
                raise ValueError("this competition has no solution file to score against")
            sub.public, sub.private = score_submission(comp.solution, upload["data"], upload["fileName"])
        except Exception as e:  # a bad submission is an ERROR status, as on Kaggle
            sub.error = f"Submission scoring failed: {e}"
        self.submissions.setdefault(slug, []).insert(0, sub)
        return {"message": "Successfully submitted to " + slug, "ref": ref}

    def _submission_limits(self, slug: str, body: dict) -> dict:
        self._competition(slug)
        n = len(self._today(slug))
        return {"numToday": n, "numTotal": len(self.submissions.get(slug, [])), "numAllowedNow": max(0, self.daily_limit - n)}

    def _list_submissions(self, slug: str, body: dict) -> dict:
        self._competition(slug)
        out = []
        for s in self.submissions.get(slug, []):
            if s.polls_left > 0:
                s.polls_left -= 1
            elif s.status == "PENDING":
                s.status = "ERROR" if s.error else "COMPLETE"
            out.append(self._submission_json(s))
        return {"submissions": out}

    def _get_submission(self, slug: str, body: dict) -> dict:
        for s in self.submissions.get(slug, []) if slug else [x for v in self.submissions.values() for x in v]:
            if s.ref == int(body.get("ref", -1)):
                return self._submission_json(s)
        raise _ApiError(404, "Submission not found")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hangs up early (or a dropped connection we injected)
        super().handle_error(request, client_address)


class _Redirect(Exception):
    def __init__(self, url: str):
        super().__init__(url)
        self.url = url


class _Handler(BaseHTTPRequestHandler):
    emulator: KaggleEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output clean
        pass

    # -- helpers
    def _path(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        emu = self.emulator
        if emu.reject_credentials:
            return False
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                return False
            return user == emu.username and key == emu.key
        if auth.startswith("Bearer "):
            return auth[7:] == emu.token
        return False

    def _send(self, status: int, payload: bytes = b"", ctype: str = "application/json", headers: dict | None = None, entry: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self._log(status, entry)

    def _log(self, status: int, entry: dict | None = None) -> None:
        rec = {"method": self.command, "path": self._path(), "status": status, "bytes": 0, "time": time.time()}
        rec.update(entry or {})
        with self.emulator._store.lock:
            self.emulator.log.append(rec)

    def _json(self, status: int, obj: dict, entry: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), entry=entry)

    # -- verbs
    def do_POST(self) -> None:
        path = self._path()
        body = self._body()
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["api", "v1"]:
            return self._json(404, {"code": 404, "message": f"Unknown path {path}"})
        method = parts[3]
        entry = {"api": method}
        try:
            request = json.loads(body or b"{}")
            answer = (self.emulator.kernels if method in KERNEL_METHODS else self.emulator).api(method, request, self._authorized())
        except _Redirect as r:
            self.send_response(302)
            self.send_header("Location", r.url)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return self._log(302, entry)
        except _ApiError as e:
            return self._json(e.code, {"code": e.code, "message": e.message}, entry)
        except Exception as e:  # a bug in the emulator: say so plainly
            return self._json(500, {"code": 500, "message": f"emulator error: {type(e).__name__}: {e}"}, entry)
        self._json(200, answer, entry)

    def do_PUT(self) -> None:
        path = self._path()
        data = self._body()
        if not path.startswith(UPLOADS_PREFIX):
            return self._json(404, {"code": 404, "message": "not found"})
        token = path[len(UPLOADS_PREFIX):]
        upload = self.emulator._store.uploads.get(token)
        entry = {"upload": token, "bytes_received": len(data)}
        if upload is None:
            return self._json(404, {"code": 404, "message": "upload expired"}, entry)
        if self.emulator.fail_uploads:
            return self._json(500, {"code": 500, "message": "upload failed (injected)"}, entry)
        upload["data"] = data
        self._json(200, {}, entry)

    def do_GET(self) -> None:
        path = self._path()
        emu = self.emulator
        try:
            if path.startswith(ARCHIVES_PREFIX):
                slug = path[len(ARCHIVES_PREFIX):].removesuffix(".zip")
                comp = emu._competition(slug)
                if slug in emu.rules_not_accepted:
                    raise _ApiError(403, "rules not accepted")
                file, name = emu._archive(comp), f"{slug}.zip"
            elif path.startswith(FILES_PREFIX):
                slug, _, name = path[len(FILES_PREFIX):].partition("/")
                comp = emu._competition(slug)
                if slug in emu.rules_not_accepted:
                    raise _ApiError(403, "rules not accepted")
                file = (comp.folder / name).resolve()
                if comp.folder not in file.parents or not file.is_file():
                    raise _ApiError(404, f"no file {name}")
            elif path.startswith(OUTPUTS_PREFIX):
                file, name = emu.kernels.output_file(path[len(OUTPUTS_PREFIX):])
            else:
                raise _ApiError(404, f"Unknown path {path}")
        except _ApiError as e:
            return self._json(e.code, {"code": e.code, "message": e.message})
        self._serve_file(file, name)

    do_HEAD = do_GET

    def _serve_file(self, file: Path, name: str) -> None:
        emu = self.emulator
        data = file.read_bytes()
        size = len(data)
        md5 = hashlib.md5(data).digest()
        etag = f'"{md5.hex()}"'
        last_modified = _http_date(math.floor(file.stat().st_mtime))
        start = 0
        rng = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if rng.startswith("bytes=") and (if_range is None or if_range in (etag, last_modified)):
            first = rng[6:].split("-")[0]
            start = int(first) if first.isdigit() else 0
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return self._log(416, {"file": name, "range": rng})
        status = 206 if start else 200
        headers = {
            "Content-Type": "application/zip" if name.endswith(".zip") else "application/octet-stream",
            "Content-Length": str(size - start),
            "Last-Modified": last_modified,
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "x-goog-hash": f"md5={base64.b64encode(md5).decode()}",
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        body = data[start:]
        entry = {"file": name, "range": rng or None, "start": start}
        if self.command == "HEAD":
            return self._log(status, entry)
        cut = None
        with emu._store.lock:
            faults = emu.faults
            limit = faults.drop_after.get(name)
            if limit is not None and faults.drops_done.get(name, 0) < faults.drop_times and start < limit < size:
                faults.drops_done[name] = faults.drops_done.get(name, 0) + 1
                cut = limit - start
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            entry.update(bytes=cut, dropped=True)
            self._log(status, entry)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
        entry["bytes"] = len(body)
        self._log(status, entry)


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """Serve competitions from folders until interrupted; print the environment to use."""
    parser = argparse.ArgumentParser(prog="python -m kagglekit.testing.kaggle_emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--competition", action="append", default=[], metavar="SLUG=DIR", help="serve DIR as competition SLUG (repeatable)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--home", default=None, help="folder for the client's kaggle.json (default: a new temporary folder)")
    args = parser.parse_args(argv)
    comps = {}
    for spec in args.competition:
        slug, sep, folder = spec.partition("=")
        if not sep or not slug or not folder:
            parser.error(f"--competition wants SLUG=DIR, got {spec!r}")
        comps[slug] = folder
    home = Path(args.home or tempfile.mkdtemp(prefix="kaggle-emulator-home-"))
    with KaggleEmulator(comps, port=args.port) as emu:
        env = emu.environ(home)
        print(f"Kaggle emulator serving {', '.join(comps) or 'no competitions'} on {emu.proxy_url}")
        print("Point a kaggle client here with:")
        for k, v in env.items():
            print(f"  export {k}={v!s}" if v else f"  export {k}=")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
