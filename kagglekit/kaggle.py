"""Kaggle through the official `kaggle` client: credentials, preflight, download, submit, track.

Every request goes through ``kaggle.KaggleApi`` (and the ``kagglesdk`` client it
builds); nothing here speaks HTTP to kaggle.com by hand. ``kaggle`` authenticates
when it is imported, so it is imported lazily, inside the functions, and each call
configures a fresh ``KaggleApi`` from the environment of that moment (config
folder, ``KAGGLE_API_ENVIRONMENT``), whatever was imported before.

The client's failures (HTTP 401/403/404, ``SystemExit`` when no credentials are
found, connection errors, an upload that "succeeds" with the message
"Could not submit to competition") become `KaggleApiError` / `CredentialsError`
/ `SubmissionError` messages that say what to do. Credentials never appear in
output, logs or error messages.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from .errors import CredentialsError, DiskSpaceError, KaggleApiError, KaggleKitError, SubmissionError, list_offenders
from .logs import logger

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from kaggle.api.kaggle_api_extended import KaggleApi

KAGGLE_WEB = "https://www.kaggle.com"
DOWNLOAD_CHUNK = 1 << 16  # bytes per write: an interruption loses at most this much
RETRY_BACKOFF_S = 2.0  # first pause before retrying an interrupted download (doubles each time)
SUBMISSION_SUFFIXES = (".csv", ".zip", ".gz")

CREDENTIALS_FIX = (
    "Create an API token at https://www.kaggle.com/settings/api, then either save kaggle.json as "
    "~/.kaggle/kaggle.json (or in $KAGGLE_CONFIG_DIR) and run `chmod 600 ~/.kaggle/kaggle.json`, "
    "or set KAGGLE_USERNAME and KAGGLE_KEY, or set KAGGLE_API_TOKEN."
)


@dataclass(frozen=True)
class RemoteFile:
    """One data file of a competition as Kaggle lists it."""

    name: str
    size: int
    created: str | None = None


@dataclass
class Submission:
    """One submission and its scores (None until scored)."""

    ref: int
    file_name: str
    description: str = ""
    status: str = "PENDING"
    public_score: float | None = None
    private_score: float | None = None
    date: str = ""
    error: str = ""
    remaining_today: int | None = field(default=None, compare=False)


def rules_url(slug: str) -> str:
    """Return the URL of a competition's rules page (where they are accepted)."""
    return f"{KAGGLE_WEB}/competitions/{slug}/rules"


# --------------------------------------------------------------------------- credentials
def config_dir() -> Path:
    """Return the folder the kaggle client reads kaggle.json from (as kaggle 2.x decides it)."""
    env = os.environ.get("KAGGLE_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    home_dir = Path(os.path.expanduser("~")) / ".kaggle"
    if sys.platform.startswith("linux") and not home_dir.exists():
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return Path(xdg) / "kaggle"
    return home_dir


def _secret_values() -> list[str]:
    values = [os.environ.get("KAGGLE_KEY"), os.environ.get("KAGGLE_API_TOKEN")]
    with contextlib.suppress(Exception):
        values.append(json.loads((config_dir() / "kaggle.json").read_text()).get("key"))
    for name in ("access_token", "access_token.txt"):
        with contextlib.suppress(Exception):
            values.append((Path(os.path.expanduser("~")) / ".kaggle" / name).read_text().strip())
    return [v for v in values if isinstance(v, str) and len(v) >= 4]


def scrub(text: str) -> str:
    """Return `text` with every known Kaggle secret (key, token) replaced by '***'."""
    for secret in _secret_values():
        text = text.replace(secret, "***")
    return text


def _warn_if_readable(path: Path) -> None:
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(
                f"{path} is readable by other users of this machine, and it holds your Kaggle key. "
                f"Fix: chmod 600 {path}",
                UserWarning,
                stacklevel=3,
            )


def find_credentials() -> str:
    """Return where Kaggle credentials were found (a description, never the secret).

    Raises `CredentialsError` saying where credentials go when there are none, and
    warns when a kaggle.json is readable by other users.
    """
    home = Path(os.path.expanduser("~"))
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "the KAGGLE_API_TOKEN environment variable"
    for name in ("access_token", "access_token.txt"):
        token = home / ".kaggle" / name
        if token.is_file() and token.stat().st_size:
            _warn_if_readable(token)
            return str(token)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "the KAGGLE_USERNAME and KAGGLE_KEY environment variables"
    config = config_dir() / "kaggle.json"
    if config.is_file():
        _warn_if_readable(config)
        try:
            data = json.loads(config.read_text() or "{}")
        except ValueError:
            raise CredentialsError(f"{config} is not valid JSON. Fix: replace it with the kaggle.json downloaded from https://www.kaggle.com/settings/api.") from None
        if isinstance(data, dict) and data.get("username") and data.get("key"):
            return str(config)
        raise CredentialsError(f"{config} lacks 'username' or 'key'. Fix: replace it with the kaggle.json downloaded from https://www.kaggle.com/settings/api.")
    if (home / ".kaggle" / "credentials.json").is_file():
        return str(home / ".kaggle" / "credentials.json")
    raise CredentialsError(f"No Kaggle credentials found (looked for {config}, KAGGLE_USERNAME/KAGGLE_KEY and KAGGLE_API_TOKEN). Fix: {CREDENTIALS_FIX}")


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield buf


def _api():
    """Return an authenticated ``kaggle.KaggleApi`` configured from the current environment."""
    where = find_credentials()
    with _quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from kaggle.api.kaggle_api_extended import KaggleApi  # authenticates at import: keep it here
    api = KaggleApi()
    folder = config_dir()
    api.config_dir = str(folder)
    api.config = str(folder / "kaggle.json")
    api.args = ["--local"] if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST" else []
    api.config_values = {}
    api.already_printed_version_warning = True
    try:
        with _quiet(), _translate(None, "sign in to Kaggle"):
            api.authenticate()
    except SystemExit:
        raise CredentialsError(f"Kaggle did not accept the credentials in {where}. Fix: {CREDENTIALS_FIX}") from None
    api._kagglekit_credentials = where
    return api


# --------------------------------------------------------------------------- errors
def _server_message(error: Exception) -> str:
    response = getattr(error, "response", None)
    text = ""
    if response is not None:
        with contextlib.suppress(Exception):
            text = response.json().get("message", "")
    return scrub(text or str(error))


def _http_error(status: int | None, slug: str | None, action: str, message: str) -> KaggleApiError:
    what = f"competition '{slug}'" if slug else "Kaggle"
    if status == 401:
        return CredentialsError(f"Kaggle rejected the credentials (401 Unauthorized) while trying to {action}. Fix: {CREDENTIALS_FIX}")
    if status == 403:
        if slug:
            return KaggleApiError(
                f"Kaggle refused access to {what} (403 Forbidden) while trying to {action}: the competition's rules "
                f"have not been accepted with this account. Fix: open {rules_url(slug)}, accept the rules "
                f"(join the competition), then run again."
            )
        return KaggleApiError(f"Kaggle refused the request (403 Forbidden) while trying to {action}: {message}")
    if status == 404:
        if slug:
            return KaggleApiError(
                f"Kaggle has no {what} (404 Not Found) while trying to {action}: {message}. Fix: check the slug, "
                f"the last part of the competition URL ({KAGGLE_WEB}/competitions/<slug>); "
                f"`kaggle competitions list -s WORD` searches for it."
            )
        return KaggleApiError(f"Not found (404) while trying to {action}: {message}")
    if status == 429:
        return KaggleApiError(f"Kaggle is rate-limiting this account (429) while trying to {action}. Fix: wait a few minutes and try again.")
    return KaggleApiError(f"The Kaggle API answered {status} while trying to {action} for {what}: {message}. Fix: try again later; if it persists, check {KAGGLE_WEB}/competitions/{slug or ''}.")


@contextlib.contextmanager
def _translate(slug: str | None, action: str) -> Iterator[None]:
    import requests

    try:
        yield
    except KaggleKitError:
        raise
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else None
        raise _http_error(status, slug, action, _server_message(e)) from None
    except (requests.ConnectionError, requests.Timeout) as e:
        raise KaggleApiError(
            f"Could not reach the Kaggle API to {action} ({type(e).__name__}). Fix: check the internet connection "
            "and any proxy settings (HTTPS_PROXY), then try again."
        ) from None


# --------------------------------------------------------------------------- listing + preflight
def list_files(slug: str, api: "KaggleApi | None" = None) -> list[RemoteFile]:
    """Return the data files of competition `slug` (all pages)."""
    api = api or _api()
    out: list[RemoteFile] = []
    token = None
    with _translate(slug, "list its files"):
        while True:
            page = api.competition_list_files(slug, page_token=token, page_size=200)
            for f in page.files or []:
                created = f.creation_date.isoformat() if getattr(f, "creation_date", None) else None
                out.append(RemoteFile(f.name, int(f.total_bytes or 0), created))
            token = page.next_page_token
            if not token:
                break
    return out


def rules_accepted(slug: str, api: "KaggleApi | None" = None) -> bool | None:
    """Return whether this account has accepted the rules of `slug` (None when Kaggle does not say)."""
    api = api or _api()
    from kagglesdk.competitions.types.competition_api_service import ApiGetCompetitionRequest

    request = ApiGetCompetitionRequest()
    request.competition_name = slug
    try:
        with _quiet(), api.build_kaggle_client() as client:
            competition = client.competitions.competition_api_client.get_competition(request)
    except Exception:
        return None
    return bool(competition.user_has_entered)


def check_disk_space(folder: str | os.PathLike, needed: int) -> int:
    """Return the free bytes at `folder`; raise `DiskSpaceError` when fewer than `needed`."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise DiskSpaceError(
            f"Not enough free disk space in {folder}: about {needed / 1e9:.2f} GB needed (download + unpacking), "
            f"{free / 1e9:.2f} GB free. Fix: free some space or pass path= (--path) on a bigger disk."
        )
    return free


def preflight(slug: str, folder: str | os.PathLike, files: Sequence[str] | None = None, skip: Sequence[str] = (), api: "KaggleApi | None" = None) -> list[RemoteFile]:
    """Return the remote files to fetch after checking credentials, the competition, its rules and disk space.

    `files` limits the download to those names; `skip` names files already complete.
    """
    api = api or _api()
    remote = list_files(slug, api)
    if rules_accepted(slug, api) is False:
        raise _http_error(403, slug, "download its data", "")
    if files:
        known = {f.name for f in remote}
        unknown = [f for f in files if f not in known]
        if unknown:
            raise KaggleApiError(
                f"Competition '{slug}' has no file {list_offenders(unknown)}. Fix: pick from its files: "
                f"{list_offenders(sorted(known), limit=12)}."
            )
        remote = [f for f in remote if f.name in set(files)]
    todo = [f for f in remote if f.name not in set(skip)]
    archive = lambda n: n.lower().endswith((".zip", ".tar", ".tgz", ".tar.gz"))  # noqa: E731
    needed = sum(f.size for f in todo)
    needed += needed if not files else sum(f.size for f in todo if archive(f.name))
    check_disk_space(folder, needed)
    return remote


# --------------------------------------------------------------------------- download
def _md5_from_headers(headers) -> str | None:
    import base64

    for part in (headers.get("x-goog-hash") or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "md5" and value:
            with contextlib.suppress(Exception):
                return base64.b64decode(value + "=" * (-len(value) % 4)).hex()
    etag = (headers.get("ETag") or "").strip('"')
    return etag.lower() if re.fullmatch(r"[0-9a-fA-F]{32}", etag) else None


@dataclass(frozen=True)
class Download:
    """A downloaded, verified file."""

    path: Path
    size: int
    md5: str


def download(slug: str, folder: str | os.PathLike, file: str | None = None, progress: bool = True, retries: int = 3, api: "KaggleApi | None" = None) -> Download:
    """Return the verified local copy of one competition file (or of all files, as `<slug>.zip`).

    Uses ``KaggleApi.download_file``, which resumes a partial file with an HTTP
    Range request when its ``.kaggle-partial`` marker proves the bytes belong to
    the same remote object; an interrupted transfer is retried `retries` times
    (a fresh download link each time) and the finished bytes are never fetched
    again. The size and, where Kaggle sends one, the MD5 must match.
    """
    import requests
    import urllib3
    from kagglesdk.competitions.types.competition_api_service import ApiDownloadDataFileRequest, ApiDownloadDataFilesRequest

    api = api or _api()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    what = f"download {file}" if file else "download its data"
    attempt = 0
    response = None
    while True:
        if response is None:  # a fresh download link (the client follows it to the file)
            with _translate(slug, what), _quiet():
                with api.build_kaggle_client() as client:
                    if file:
                        request = ApiDownloadDataFileRequest()
                        request.file_name = file
                        request.competition_name = slug
                        response = client.competitions.competition_api_client.download_data_file(request)
                    else:
                        request = ApiDownloadDataFilesRequest()
                        request.competition_name = slug
                        response = client.competitions.competition_api_client.download_data_files(request)
                    http_client = client.http_client()
            url = response.url.split("?")[0]
            name = url.split("/")[-1] if file else f"{slug}.{url.split('.')[-1]}"
            outfile = folder / requests.utils.unquote(name)
            expected_md5 = _md5_from_headers(response.headers)
            expected_size = int(response.headers.get("Content-Length") or 0) or None
        try:
            api.download_file(response, str(outfile), http_client, quiet=not progress, resume=True, chunk_size=DOWNLOAD_CHUNK, max_retries=0)
            break
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            attempt += 1
            have = outfile.stat().st_size if outfile.exists() else 0
            if attempt > retries:
                raise KaggleApiError(
                    f"The download of {name} from competition '{slug}' was interrupted ({type(e).__name__}) "
                    f"{attempt} time(s); the {have} bytes received are kept in {outfile}. Fix: run the same "
                    "fetch again: it resumes from there and does not download the finished bytes again."
                ) from None
            time.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 1))
            # A verified partial resumes on the same link with an HTTP Range request
            # (KaggleApi.download_file checks its .kaggle-partial marker); else start over.
            if not (0 < have < (expected_size or float("inf"))):
                response = None
    from .io import file_digest

    md5 = file_digest(outfile)
    if expected_md5 and md5 != expected_md5:
        outfile.unlink()
        raise KaggleApiError(f"The download of {name} from '{slug}' is corrupt (MD5 {md5} instead of {expected_md5}); it was deleted. Fix: run the same fetch again.")
    return Download(outfile, outfile.stat().st_size, md5)


# --------------------------------------------------------------------------- submit
def check_submission_file(path: str | os.PathLike, like: str | os.PathLike | None = None) -> "pd.DataFrame":
    """Return the submission as a pandas DataFrame (ids as text) after checking it can be uploaded.

    The file must be a .csv (or a .zip holding one); the checks themselves are
    `kagglekit.submission.validate_submission`'s: header, ids unique and, with
    `like` (the competition's sample_submission.csv), the same header, the same
    ids, probabilities in [0, 1] and no empty values. Raises `SubmissionError`.
    """
    from .submission import validate_submission

    path = Path(path)
    if path.is_file() and not path.name.lower().endswith(SUBMISSION_SUFFIXES):
        raise SubmissionError(f"Submission file {path} is not a .csv (or a .zip of one). Fix: save the predictions as CSV in the shape of sample_submission.csv.")
    return validate_submission(path, like=like if like is not None and Path(like).is_file() else None)


def _as_submission(s) -> Submission:
    def score(v):
        try:
            return float(v) if v not in (None, "") else None
        except (TypeError, ValueError):
            return None

    status = getattr(s.status, "name", str(s.status or "PENDING"))
    date = s.date.isoformat(sep=" ", timespec="seconds") if getattr(s, "date", None) else ""
    return Submission(int(s.ref or 0), s.file_name or "", description=s.description or "", status=status,
                      public_score=score(s.public_score), private_score=score(s.private_score), date=date,
                      error=s.error_description or "")


def submission_limits(slug: str, api: "KaggleApi | None" = None) -> dict:
    """Return {'today', 'total', 'remaining_today'} submission counts for `slug`."""
    api = api or _api()
    with _translate(slug, "read the submission limits"):
        limits = api.competition_get_submission_limits(slug)
    return {"today": limits.num_today, "total": limits.num_total, "remaining_today": limits.num_allowed_now}


def submissions(slug: str, api: "KaggleApi | None" = None) -> list[Submission]:
    """Return this account's submissions to `slug`, newest first."""
    api = api or _api()
    with _translate(slug, "list its submissions"):
        items = api.competition_submissions(slug) or []
    return [_as_submission(s) for s in items if s is not None]


def format_submissions(items: Sequence[Submission]) -> str:
    """Return submissions as a plain-text table (for printing)."""
    if not items:
        return "No submissions yet."
    rows = [("ref", "date", "file", "status", "public", "private", "description")]
    for s in items:
        fmt = lambda v: "" if v is None else f"{v:.5f}"  # noqa: E731
        rows.append((str(s.ref), s.date, s.file_name, s.status, fmt(s.public_score), fmt(s.private_score), s.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def wait_for_score(slug: str, ref: int, timeout: float = 600.0, poll: float = 10.0, api: "KaggleApi | None" = None, quiet: bool = False) -> Submission:
    """Return submission `ref` once Kaggle has scored it (status COMPLETE).

    Raises `SubmissionError` when scoring fails (status ERROR) and `KaggleApiError`
    after `timeout` seconds still pending.
    """
    api = api or _api()
    deadline = time.monotonic() + timeout
    status = "PENDING"
    while True:
        found = next((s for s in submissions(slug, api) if s.ref == int(ref)), None)
        if found is not None:
            status = found.status
            if status == "COMPLETE":
                if not quiet:
                    logger.info(f"Submission {ref} scored: public {found.public_score}" + (f", private {found.private_score}" if found.private_score is not None else ""))
                return found
            if status == "ERROR":
                raise SubmissionError(f"Kaggle could not score submission {ref} ({found.file_name}) to '{slug}': {found.error or 'no reason given'}. Fix: compare the file with sample_submission.csv (header, ids, value format) and submit again.")
        if time.monotonic() >= deadline:
            raise KaggleApiError(f"Submission {ref} to '{slug}' is still {status} after {timeout:.0f} s. Fix: it may still be scored; check later with `kagglekit submissions {slug}`.")
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def submit(
    slug: str,
    file: str | os.PathLike,
    message: str,
    wait: bool = False,
    timeout: float = 600.0,
    like: str | os.PathLike | None = None,
    poll: float = 10.0,
    quiet: bool = False,
) -> Submission:
    """Return the new submission of `file` to competition `slug` (scored when `wait`).

    The file is checked first (`check_submission_file`, against `like` or the
    competition's sample_submission.csv when one is found locally), uploaded
    through ``KaggleApi.competition_submit``, and a failed upload raises even
    though the client itself returns normally. Logs (``kagglekit`` logger, INFO;
    nothing with `quiet`) the submissions remaining today; with `wait`, polls until
    scored (or `timeout` seconds) and logs the public score.
    """
    file = Path(file)
    if like is None:
        from .submission import find_sample_submission

        like = find_sample_submission(slug)
    check_submission_file(file, like)
    if not message or not str(message).strip():
        raise SubmissionError("A submission needs a message. Fix: pass message= (-m 'what changed').")
    api = _api()
    # The client prints raw upload errors on stdout (kept for our message); its upload bar goes to stderr.
    with _translate(slug, f"submit {file.name}"), _quiet() as out:
        result = api.competition_submit(str(file), str(message), slug, quiet=quiet)
    if result is None or result.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE or not result.ref:
        detail = scrub(out.getvalue().strip().splitlines()[-1]) if out.getvalue().strip() else ""
        raise KaggleApiError(
            f"The upload of {file.name} to competition '{slug}' failed, so nothing was submitted"
            f" (the kaggle client said: {scrub(getattr(result, 'message', '') or 'no answer')}{'; ' + detail if detail else ''})."
            " Fix: check the connection and run the same submit again."
        )
    remaining = None
    with contextlib.suppress(KaggleKitError):
        remaining = submission_limits(slug, api)["remaining_today"]
    if not quiet:
        left = f" {remaining} submission(s) remaining today." if remaining is not None else ""
        logger.info(f"Submitted {file.name} to {slug} (ref {result.ref}).{left}")
    if wait:
        scored = wait_for_score(slug, result.ref, timeout, poll, api, quiet)
        scored.remaining_today = remaining
        return scored
    return Submission(int(result.ref), file.name, str(message), "PENDING", remaining_today=remaining)
