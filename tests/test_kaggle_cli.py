"""The real `kaggle` command line, as a subprocess, against the emulator (and the emulator's own CLI)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from kaggle_helpers import build_emulated_competitions
from kagglekit.testing.kaggle_emulator import KaggleEmulator, score_submission

KAGGLE = shutil.which("kaggle")


def kaggle_cmd() -> list[str]:
    return [KAGGLE] if KAGGLE else [sys.executable, "-m", "kaggle"]


@pytest.fixture(scope="module")
def comps(tmp_path_factory) -> dict[str, Path]:
    return build_emulated_competitions(tmp_path_factory.mktemp("emulated-cli"))


@pytest.fixture(scope="module")
def emu(comps):
    with KaggleEmulator(comps, pending_polls=0) as emulator:
        yield emulator


@pytest.fixture
def env(emu, tmp_path) -> dict[str, str]:
    emu.reject_credentials = False
    emu.rules_not_accepted = set()
    emu.fail_uploads = False
    emu.log.clear()
    out = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    out.update(emu.environ(tmp_path / "home"))
    return out


def kaggle(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*kaggle_cmd(), *args], env=env, capture_output=True, text=True, timeout=60)


def test_cli_lists_and_downloads(emu, env, comps, tmp_path):
    files = kaggle(env, "competitions", "files", "digits", "--page-size", "500", "-v")
    assert files.returncode == 0, files.stderr
    listed = pd.read_csv(__import__("io").StringIO(files.stdout))
    assert {"train.csv", "sample_submission.csv", "train/00000.png"} <= set(listed["name"])

    dest = tmp_path / "dl"
    got = kaggle(env, "competitions", "download", "digits", "-p", str(dest))
    assert got.returncode == 0, got.stderr
    with zipfile.ZipFile(dest / "digits.zip") as zf:
        assert zf.read("train.csv") == (comps["digits"] / "train.csv").read_bytes()
    one = kaggle(env, "competitions", "download", "digits", "-f", "sample_submission.csv", "-p", str(dest))
    assert one.returncode == 0, one.stderr
    assert (dest / "sample_submission.csv").read_bytes() == (comps["digits"] / "sample_submission.csv").read_bytes()
    assert emu.key not in files.stdout + got.stdout + one.stdout


def test_cli_submits_and_lists_a_scored_submission(emu, env, comps, tmp_path):
    solution = comps["digits"].parent / "digits.solution.csv"
    sub = kaggle(env, "competitions", "submit", "digits", "-f", str(solution), "-m", "the answers")
    assert sub.returncode == 0, sub.stderr
    assert "Successfully submitted" in sub.stdout and "submissions remaining today" in sub.stdout
    listed = kaggle(env, "competitions", "submissions", "digits", "-v")
    assert listed.returncode == 0, listed.stderr
    table = pd.read_csv(__import__("io").StringIO(listed.stdout))
    row = table[table["description"] == "the answers"].iloc[0]
    assert row["status"].endswith("COMPLETE") and float(row["publicScore"]) == pytest.approx(1.0)


def test_cli_reports_401_403_404(emu, env):
    emu.reject_credentials = True
    bad = kaggle(env, "competitions", "files", "digits")
    assert bad.returncode != 0 and "Authentication required" in bad.stdout  # the CLI's answer to a 401
    assert emu.log[-1]["status"] == 401
    emu.reject_credentials = False
    emu.rules_not_accepted = {"digits"}
    refused = kaggle(env, "competitions", "download", "digits", "-f", "train.csv", "-p", env["HOME"])
    assert refused.returncode != 0 and "rules" in refused.stdout + refused.stderr
    missing = kaggle(env, "competitions", "files", "no-such-competition")
    assert missing.returncode != 0 and "not found" in missing.stdout + missing.stderr


def test_failed_upload_raises_whatever_the_client_exit_status(emu, env, comps, tmp_path):
    """kagglekit's own behaviour: a failed upload is a named error (exit code 2, one line), not a success.

    The official client's answer to the same failure changed between releases (2.2.4 exits 0
    and only prints "Could not submit to competition"; 2.2.5 exits 1), so it is not asserted.
    """
    emu.fail_uploads = True
    before = len(emu.submissions.get("digits", []))
    solution = comps["digits"].parent / "digits.solution.csv"
    like = comps["digits"] / "sample_submission.csv"
    code = (
        "import sys\n"
        "from kagglekit.errors import KaggleApiError\n"
        "from kagglekit.kaggle import submit\n"
        "try:\n"
        f"    submit('digits', {str(solution)!r}, 'x', like={str(like)!r}, quiet=True)\n"
        "except KaggleApiError as e:\n"
        "    print('raised', type(e).__name__, e)\n"
        "    sys.exit(0)\n"
        "sys.exit('no error raised')\n"
    )
    run_env = {**env, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "raised KaggleApiError" in out.stdout and "failed, so nothing was submitted" in out.stdout
    cli = subprocess.run([sys.executable, "-m", "kagglekit.cli", "submit", "digits", str(solution), "-m", "x"],
                         env=run_env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr, cli.stderr
    assert "kagglekit submit:" in cli.stderr and "failed, so nothing was submitted" in cli.stderr
    assert emu.calls("CreateSubmission") == 0 and len(emu.submissions.get("digits", [])) == before
    assert emu.key not in out.stdout + out.stderr + cli.stdout + cli.stderr


def test_emulator_runs_as_a_module(comps, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kagglekit.testing.kaggle_emulator", "--competition", f"digits={comps['digits']}", "--home", str(tmp_path / "h")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
        for line in iter(proc.stdout.readline, ""):
            if line.strip().startswith("export "):
                key, _, value = line.strip()[len("export "):].partition("=")
                env[key] = value
                if key == "no_proxy":
                    break
        assert env.get("HTTP_PROXY", "").startswith("http://127.0.0.1:")
        files = kaggle(env, "competitions", "files", "digits", "--page-size", "500")
        assert files.returncode == 0 and "train.csv" in files.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_scoring_metrics(tmp_path):
    sol = tmp_path / "s.csv"
    sol.write_text("id,label\n1,3\n2,4\n3,5\n4,6\n")
    assert score_submission(sol, b"id,label\n1,3\n2,4\n3,5\n4,0\n") == (1.0, 0.5)  # accuracy
    sol.write_text("id,label\n1,1.0\n2,0.0\n")
    public, _ = score_submission(sol, b"id,label\n1,0.5\n2,0.5\n")  # log loss
    assert public == pytest.approx(0.693147, abs=1e-5)
    sol.write_text("image_id,label_id\n1,1 2\n2,3\n")
    public, private = score_submission(sol, b"image_id,label_id\n1,1\n2,3\n")  # mean F2
    assert public == pytest.approx(5 * 1 * 0.5 / (4 * 1 + 0.5)) and private == 1.0
    with pytest.raises(ValueError, match="missing"):
        score_submission(sol, b"image_id,label_id\n1,1\n")
