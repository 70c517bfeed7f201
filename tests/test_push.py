"""`kagglekit push`: the real `kaggle` client against the emulator's datasets, kernels and code-submission endpoints."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kagglekit import ledger
from kagglekit.cli import main
from kagglekit.errors import ConfigError, KaggleApiError
from kagglekit.push import build_wheel, make_plan, notebook, push
from kagglekit.testing.competitions import build_competition
from kagglekit.testing.kaggle_emulator import KaggleEmulator, score_submission
from kagglekit.testing.kaggle_kernels import notebook_source

USER = "kagglekit-tester"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return build_competition("digits", tmp_path_factory.mktemp("push") / "digits", n_train=40, n_test=12)


@pytest.fixture
def emu(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("KAGGLEKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "no-input"))
    with KaggleEmulator({"digits": digits}, pending_polls=0) as emulator, emulator.activate(tmp_path / "home"):
        yield emulator


def _status_calls(emu: KaggleEmulator) -> int:
    return emu.calls("GetKernelSessionStatus")


def test_push_runs_the_notebook_and_brings_back_a_valid_submission(emu, digits, tmp_path):
    result = push("digits", accelerator="gpu", time_budget="10m", backbone="resnet_micro", poll=0,
                  run_args=["--epochs", "1"])

    # the wheels dataset: created once, holding an installable kagglekit wheel
    ds = emu.kernels.datasets[f"{USER}/kagglekit-wheels"]
    wheel_name = next(n for n in ds.files() if n.endswith(".whl"))
    assert wheel_name.startswith("kagglekit-") and ds.private
    assert {"dogs_vs_cats.py", "imaterialist_fashion.py"} <= set(ds.files())  # the examples travel with it
    # the notebook as Kaggle received it: internet off, GPU, the competition and the wheels attached
    kernel = emu.kernels.kernels[f"{USER}/kagglekit-digits"][-1]
    req = kernel.request
    assert req["enableGpu"] is True and not req.get("enableTpu") and req["enableInternet"] is False
    assert req["machineShape"] == "NvidiaTeslaT4" and req["kernelType"] == "notebook" and req["language"] == "python"
    assert req["competitionDataSources"] == ["digits"] and req["datasetDataSources"] == [f"{USER}/kagglekit-wheels"]
    assert "kagglekit run digits --time 10m --backbone resnet_micro --epochs 1" in notebook_source(req["text"])
    assert req["sessionTimeoutSeconds"] == 600 * 1.5 + 900
    # followed QUEUED -> RUNNING -> COMPLETE: one poll queued, two running, then done
    assert _status_calls(emu) == 4 and kernel.status == "COMPLETE" and result.status == "COMPLETE"
    assert result.version == 1
    # the output: submission (checked, scoreable), run folder, ledger row merged into the local ledger
    out = tmp_path / "runs" / "digits-kaggle" / "output"
    assert result.submission == out / "submission.csv"
    assert (out / "runs" / "digits" / "run.json").exists() and (out / "kagglekit-digits.log").exists()
    public, private = score_submission(digits.parent / "digits.solution.csv", result.submission.read_bytes())
    assert 0 <= public <= 1 and 0 <= private <= 1
    rows = ledger.read(tmp_path / "runs" / "ledger.csv")
    assert len(rows) == 1 and rows.iloc[0]["competition"] == "digits" and rows.iloc[0]["backbone"] == "resnet_micro"
    assert "emulated Kaggle session (NvidiaTeslaT4)" == rows.iloc[0]["hardware"]
    assert not emu.submissions.get("digits")  # nothing submitted without --submit


def test_second_push_versions_dataset_and_notebook_and_keeps_ledger_rows_unique(emu, tmp_path):
    push("digits", accelerator="tpu", poll=0)
    push("digits", accelerator="tpu", poll=0)
    assert len(emu.kernels.datasets[f"{USER}/kagglekit-wheels"].versions) == 2
    versions = emu.kernels.kernels[f"{USER}/kagglekit-digits"]
    assert [v.number for v in versions] == [1, 2]
    assert versions[-1].request["enableTpu"] is True and versions[-1].request["machineShape"] == "TpuV5E8"
    assert "KERAS_BACKEND=jax python -m kagglekit run digits" in notebook_source(versions[-1].request["text"])  # TPUs train via JAX
    assert emu.calls("CreateDataset") == 1 and emu.calls("CreateDatasetVersion") == 1
    assert len(ledger.read(tmp_path / "runs" / "ledger.csv")) == 2  # two sessions, two different run ids


def test_code_competition_submits_the_notebook_version(emu, digits):
    emu.kernels.code_competitions.add("digits")
    result = push("digits", accelerator="gpu", poll=0, submit=True, message="from the notebook")
    assert emu.kernels.code_submissions == [{"competitionName": "digits", "kernelOwner": USER, "kernelSlug": "kagglekit-digits",
                                             "kernelVersion": 1, "fileName": "submission.csv",
                                             "submissionDescription": "from the notebook"}]
    assert emu.calls("StartSubmissionUpload") == 0  # no file upload for a code competition
    sub = emu.submissions["digits"][0]
    assert result.submission_ref == sub.ref and sub.status == "COMPLETE" and result.public_score == pytest.approx(sub.public, abs=1e-5)


def test_failed_session_is_an_error_naming_the_notebook(emu):
    emu.kernels.fail_next_run = "CUDA out of memory"
    with pytest.raises(KaggleApiError, match="kagglekit-digits ended ERROR: RuntimeError: CUDA out of memory"):
        push("digits", poll=0)
    assert emu.calls("ListKernelSessionOutput") == 0


def test_emulated_session_fails_without_the_wheels_or_the_competition(emu):
    """The emulator's run is honest: a notebook missing its inputs fails as it would on Kaggle."""
    plan = make_plan("digits", USER)
    kernel = {"id": plan.kernel_ref, "text": json.dumps(notebook(plan)), "competitionDataSources": [], "datasetDataSources": []}
    from kagglekit.testing.kaggle_kernels import KernelVersion, run_notebook

    with pytest.raises(FileNotFoundError, match="/kaggle/input/digits"):
        run_notebook(emu.kernels, KernelVersion(1, kernel))
    kernel["competitionDataSources"] = ["digits"]
    with pytest.raises(ModuleNotFoundError, match="kagglekit"):
        run_notebook(emu.kernels, KernelVersion(1, kernel))


def test_bad_input_exits_2_before_any_request(emu, capsys):
    for argv, words in ([["push", "digits", "--accelerator", "a100 x8"], "--accelerator"],
                        [["push", "Digits!"], "competition slug"],
                        [["push", "digits", "--dataset", "nope"], "--dataset"],
                        [["push", "digits", "--time", "soon"], "soon"]):
        emu.log.clear()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
        assert not [e for e in emu.log if e.get("api") not in (None, "IntrospectToken")]


def test_wheel_installs_offline_and_the_cli_runs(tmp_path):
    wheel = build_wheel(tmp_path / "w")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "kagglekit/push.py" in names and not [n for n in names if "__pycache__" in n]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", "import kagglekit, sys; print(kagglekit.__file__)"], env=env,
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert str(target) in out
    assert (target / "bin" / "kagglekit").exists()


def test_real_kaggle_cli_sees_the_pushed_notebook(emu, tmp_path):
    push("digits", poll=0, wait=False)
    env = {k: v for k, v in os.environ.items()}
    kaggle = [shutil.which("kaggle")] if shutil.which("kaggle") else [sys.executable, "-m", "kaggle"]
    got = subprocess.run([*kaggle, "kernels", "status", f"{USER}/kagglekit-digits"], env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and "has status" in got.stdout and 'QUEUED"' in got.stdout, got.stdout + got.stderr


def test_plan_checks_model_refs_and_sizes_the_session_timeout():
    with pytest.raises(ConfigError, match="--kaggle-model"):
        make_plan("digits", USER, models=["not-a-model"])
    plan = make_plan("digits", USER, time_budget="1h", models=["keras/efficientnetv2/keras/efficientnetv2_s_imagenet/1"])
    assert plan.timeout_s == 3600 * 1.5 + 900 and plan.models == ["keras/efficientnetv2/keras/efficientnetv2_s_imagenet/1"]


def test_push_never_removes_a_folder_it_did_not_write(emu, tmp_path):
    mine = tmp_path / "work" / "wheels"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    assert main(["push", "digits", "--workdir", str(tmp_path / "work")]) == 2
    assert (mine / "notes.txt").read_text() == "my notes" and not emu.kernels.datasets


def test_cli_push_passes_its_flags_to_the_notebook(emu, capsys):
    assert main(["push", "digits", "--accelerator", "tpu", "--time", "5m", "--backbone", "resnet_micro", "--poll", "0",
                 "--run-args", "--epochs 2"]) == 0
    printed = capsys.readouterr().out
    assert "notebook kagglekit-tester/kagglekit-digits version 1: COMPLETE" in printed and "submission.csv" in printed
    text = notebook_source(emu.kernels.kernels[f"{USER}/kagglekit-digits"][-1].request["text"])
    assert "KERAS_BACKEND=jax python -m kagglekit run digits --time 5m --backbone resnet_micro --epochs 2" in text
