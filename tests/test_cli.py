"""The `kagglekit` command end to end: the demo, doctor, and errors without tracebacks."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kagglekit.testing.competitions import build_competition


def kagglekit(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "kagglekit.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_demo_runs_the_whole_job_offline(tmp_path):
    out = kagglekit("demo", "--dir", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "validation accuracy:" in out.stdout
    assert "building the demo competition" in out.stdout  # the library's messages, shown by the CLI
    for noise in BACKEND_NOISE:  # the backend started quietly
        assert noise not in out.stdout + out.stderr, noise
    score = float(out.stdout.split("validation accuracy:")[-1].split()[0])
    assert score > 0.8, out.stdout
    submission = tmp_path / "demo" / "run" / "submission.csv"
    assert f"submission: {submission}" in out.stdout
    sub = pd.read_csv(submission)
    sample = pd.read_csv(tmp_path / "demo" / "digits" / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns) and sub["id"].tolist() == sample["id"].tolist()
    solution = pd.read_csv(tmp_path / "demo" / "digits.solution.csv")
    assert (sub["label"].values == solution["label"].values).mean() > 0.8
    # Running again continues: nothing is trained twice.
    written = submission.read_bytes()
    again = kagglekit("demo", "--dir", str(tmp_path / "demo"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Epoch 1/" not in again.stdout
    assert f"(trained earlier, loaded from {tmp_path / 'demo' / 'run' / 'learner'})" in again.stdout  # the saved model
    assert f"validation accuracy: {score:.4f}" in again.stdout and submission.read_bytes() == written  # the same results


def test_doctor_reports_layout_bad_images_and_duplicates(tmp_path):
    comp = build_competition("dogs-vs-cats", tmp_path / "dvc", n_train=60, n_test=20, zipped=False)
    (comp / "train" / "cat.9999.jpg").write_bytes(b"")  # zero-byte file
    (comp / "test" / "21.jpg").write_bytes((comp / "train" / "dog.0.jpg").read_bytes())  # leak across train/test
    out = kagglekit("doctor", str(comp))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "61 train, 21 test; 2 classes" in out.stdout
    assert "unreadable  1" in out.stdout and "cat.9999.jpg" in out.stdout
    assert "1 across train/test" in out.stdout and "21.jpg" in out.stdout


@pytest.mark.parametrize("args, expected", [
    (["doctor", "/nonexistent/folder"], "/nonexistent/folder"),
    (["run", "/nonexistent/comp.zip"], "/nonexistent/comp.zip"),
])
def test_bad_input_is_one_line_without_traceback(args, expected):
    out = kagglekit(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert expected in out.stderr


def test_backbones_lists_the_registry_with_weights_files():
    out = kagglekit("backbones")
    assert out.returncode == 0, out.stderr[-2000:]
    header, *rows = out.stdout.splitlines()
    assert header.split()[:5] == ["name", "family", "params", "size", "GFLOPs"] and len(rows) >= 35
    vgg = next(r for r in rows if r.startswith("vgg16 "))
    assert vgg.split()[1:5] == ["vgg", "14.7M", "224", "31"] and vgg.endswith("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert "resnet_small" in out.stdout and "none: trained from scratch" in out.stdout
    dino = next(r for r in rows if r.startswith("dinov2_small "))
    assert "KerasHub preset" in dino and dino.endswith("Kaggle Models keras/dinov2/keras/dinov2_small/1")
    markdown = kagglekit("backbones", "--markdown").stdout.splitlines()
    assert markdown[0].startswith("| name | family |") and len(markdown) == len(rows) + 2


def test_organise_writes_class_folders_and_a_multihot_csv(tmp_path, dogs_vs_cats_dir, imaterialist_dir):
    out = kagglekit("organise", str(dogs_vs_cats_dir), str(tmp_path / "folders"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"wrote {tmp_path / 'folders'} (120 images, 2 classes)" in out.stdout
    assert len(list((tmp_path / "folders" / "cat").iterdir())) + len(list((tmp_path / "folders" / "dog").iterdir())) == 120
    out = kagglekit("organise", str(imaterialist_dir), str(tmp_path / "labels.csv"), "--csv")
    assert out.returncode == 0, out.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "labels.csv", dtype=str)
    assert list(frame.columns) == ["image", "labels"] and len(frame) == 120


# What a Keras backend prints while it loads: absl's pre-init line, oneDNN, the CUDA stub, the CPU feature guard.
BACKEND_NOISE = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cuda drivers", "cpu_feature_guard")
PROBE = (  # runs the command, then says which backends got imported
    "import atexit, sys\n"
    "atexit.register(lambda: sys.__stdout__.write('\\nIMPORTED ' + ' '.join(\n"
    "    m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules) + '\\n'))\n"
    "from kagglekit.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_commands_without_a_model_import_no_backend_and_print_no_noise(dogs_vs_cats_dir):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it: no level set
    for args in (["--help"], ["doctor", str(dogs_vs_cats_dir)]):
        out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.rsplit("IMPORTED", 1)[1].split() == [], (args, out.stdout[-500:])
        for noise in BACKEND_NOISE:
            assert noise not in out.stdout + out.stderr, (args, noise)
    assert "usage: kagglekit" in subprocess.run([sys.executable, "-c", PROBE, "--help"], env=env, capture_output=True,
                                                text=True, timeout=300).stdout


def test_fetch_help_names_the_download_folder_the_code_uses():
    from kagglekit.cli import build_parser

    fetch = build_parser()._subparsers._group_actions[0].choices["fetch"]
    assert "./data/<slug>" in fetch.format_help()


def test_backend_start_up_noise_is_filtered_and_the_rest_kept():
    from kagglekit.cli import _is_startup_noise

    pre_init = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    info = "I0000 00:00:1795898967.681347   10254 port.cc:153] oneDNN custom operations are on."
    error = "E0000 00:00:1795898967.681347   10254 cuda_dnn.cc:8310] Unable to register cuDNN factory"
    assert _is_startup_noise(pre_init, 2) and _is_startup_noise(info, 2) and not _is_startup_noise(error, 2)
    assert _is_startup_noise(error, 3) and not _is_startup_noise(info, 0) and not _is_startup_noise(pre_init, 0)
    assert not _is_startup_noise("Traceback (most recent call last):", 3)


def test_demo_is_callable_as_kk_demo_also_once_its_module_is_imported():
    import kagglekit as kk
    import kagglekit.demo
    from kagglekit.testing import competitions

    assert kk.demo is kagglekit.demo and callable(kk.demo.demo) and kk.demo.DEMO_SETTINGS["backbone"] == "resnet_small"
    assert competitions.build_digits is kagglekit.demo.build_digits and competitions.digits is kagglekit.demo.digits


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is not None, reason="torch is installed here")
def test_a_missing_backend_is_one_line_naming_the_extra_to_install(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    out = subprocess.run([sys.executable, "-m", "kagglekit", "demo", "--dir", str(tmp_path / "demo")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "pip install 'kagglekit[torch]'" in out.stderr and "KERAS_BACKEND" in out.stderr


def test_submissions_joins_the_emulators_scored_submission_to_its_run(tmp_path, monkeypatch, capsys):
    import kagglekit as kk
    from kagglekit import kaggle as kk_kaggle, ledger
    from kagglekit.cli import main
    from kaggle_helpers import build_emulated_competitions
    from kagglekit.testing.kaggle_emulator import KaggleEmulator

    comps = build_emulated_competitions(tmp_path / "emulated")
    monkeypatch.setattr(kk_kaggle, "RETRY_BACKOFF_S", 0.01)
    monkeypatch.setenv("KAGGLEKIT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "no-input"))
    quick = {"backbone": "resnet_tiny", "sizes": [32], "weights": "none", "epochs": 1, "batch_size": 32, "tta": 0}
    with KaggleEmulator(comps, pending_polls=0) as emu, emu.activate(tmp_path / "home"):
        result = kk.run(comps["digits"], workdir=tmp_path / "runs" / "digits", submit=True, log=None, **quick)
        assert result.public_score is not None
        rows = ledger.read(tmp_path / "runs" / "ledger.csv")
        assert len(rows) == 1 and rows.loc[0, "run_id"] in rows.loc[0, "message"]
        assert rows.loc[0, "message"].startswith("kagglekit resnet_tiny accuracy=")
        assert int(rows.loc[0, "submission_ref"]) > 0 and rows.loc[0, "public_score"] == pytest.approx(result.public_score)
        capsys.readouterr()
        assert main(["submissions", "digits", "--ledger", str(tmp_path / "runs" / "ledger.csv")]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split() == ["date", "ref", "public", "private", "valid", "metric", "backbone", "sizes", "epochs", "run"]
    assert len(lines) == 2 and rows.loc[0, "run_id"] in lines[1] and "resnet_tiny" in lines[1], out
    assert f"{result.valid_score:.4f}" in lines[1] and f"{result.public_score:.5f}" in lines[1]


def test_run_dry_run_prints_the_plan_with_the_layout_flags(dogs_vs_cats_dir, tmp_path):
    args = ["run", str(dogs_vs_cats_dir), "--workdir", str(tmp_path / "run"), "--dry-run", "--backbone", "resnet_tiny",
            "--weights", "none"]
    out = kagglekit(*args)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "inferred for dogs-vs-cats" in out.stdout and "metric: logloss" in out.stdout and "Epoch" not in out.stdout
    assert "AMBIGUOUS positive" in out.stdout and "--positive CLASS" in out.stdout
    out = kagglekit(*args, "--positive", "cat", "--single-label", "--no-id-extension")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "label holds P(cat) (set by positive=)" in out.stdout and "AMBIGUOUS" not in out.stdout
    assert not (tmp_path / "run" / "learner").exists()


def test_run_layout_flags_are_parsed_into_detect_overrides():
    from kagglekit.cli import _layout_kwargs, build_parser

    args = build_parser().parse_args(["run", "x", "--multilabel", "--positive", "1", "--group-col", "subject",
                                      "--id-col", "img", "--label-col", "tags", "--id-extension", "--test", "t/", "--tag-sep", ","])
    assert _layout_kwargs(args) == {"multilabel": True, "positive": "1", "group_col": "subject", "id_col": "img",
                                    "label_col": "tags", "id_extension": True, "test": "t/", "tag_sep": ","}
    args = build_parser().parse_args(["run", "x", "--single-label", "--model", "m/"])
    assert args.multilabel is False and args.model == "m/" and not args.dry_run
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "x", "--multilabel", "--single-label"])


def test_run_flip_flags_reach_the_run_settings():
    from kagglekit.cli import _training_kwargs, build_parser
    from kagglekit.job import DEFAULTS

    assert DEFAULTS["flip"] is None  # judged from the images unless given
    for argv, flip in ((["--flip"], True), (["--no-flip"], False), ([], None)):
        assert _training_kwargs(build_parser().parse_args(["run", "x", *argv]))["flip"] is flip
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "x", "--flip", "--no-flip"])


def test_run_with_an_empty_train_csv_is_one_line_naming_the_file_and_exit_2(tmp_path):
    comp = tmp_path / "comp"
    (comp / "train_images").mkdir(parents=True)
    (comp / "train.csv").write_text("")
    out = kagglekit("run", str(comp), "--workdir", str(tmp_path / "run"), "--dry-run")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert f"{comp / 'train.csv'} is empty" in out.stderr and "Download it again" in out.stderr


# ------------------------------------------------------------------ bad input: one line, exit code 2, no traceback
def one_line_error(capsys, *argv: str) -> str:
    """Return the one line `kagglekit ARGV` wrote to stderr, after checking the exit code is 2 and nothing else came."""
    from kagglekit.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, out.err[-3000:])
    assert "Traceback" not in out.err + out.out
    assert lines[0].startswith(f"kagglekit {argv[0]}: ")
    return lines[0]


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory) -> Path:
    return build_competition("digits", tmp_path_factory.mktemp("cli") / "digits", n_train=40, n_test=10)


@pytest.mark.parametrize("content, says", [
    (b"", "is empty (no header, no rows)"),
    (bytes(range(256)) * 8, "cannot be read as a CSV"),
])
def test_an_empty_or_garbled_label_csv_is_one_line_naming_it(capsys, tmp_path, small_digits, content, says):
    comp = tmp_path / "digits"
    shutil.copytree(small_digits, comp)
    (comp / "train.csv").write_bytes(content)
    for argv in (["run", str(comp), "--workdir", str(tmp_path / "run")], ["doctor", str(comp)]):
        line = one_line_error(capsys, *argv)
        assert f"{comp / 'train.csv'} {says}" in line and "Download it again" in line, line


def test_an_unknown_fine_tune_key_in_the_recipe_is_one_line_before_any_work(capsys, tmp_path, small_digits):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[train]\nepochs = 1\n\n[fine_tune]\nlabel_smoothing = 0.1\nlearning_rate = 0.01\n")
    line = one_line_error(capsys, "run", str(small_digits), "--recipe", str(recipe), "--workdir", str(tmp_path / "run"))
    assert f"Unknown key 'learning_rate' in the [fine_tune] section of the recipe {recipe}" in line, line
    assert "valid keys: augment, " in line and "label_smoothing" in line and "backbone" not in line.split("valid")[1]
    assert not (tmp_path / "run").exists()  # refused before fetching, laying out or training anything
    recipe.write_text("[fine_tune]\nepochs = 2\n")  # a run setting, which belongs in [train]
    line = one_line_error(capsys, "run", str(small_digits), "--recipe", str(recipe), "--workdir", str(tmp_path / "run"))
    assert "'epochs' in the [fine_tune] section" in line and "[train] section or give --epochs" in line, line


def test_toml_recipes_fall_back_to_tomli_where_python_has_no_tomllib(capsys, monkeypatch, tmp_path, small_digits):
    import tomllib

    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[fine_tune]\nlearning_rate = 0.01\n")
    argv = ("run", str(small_digits), "--recipe", str(recipe), "--workdir", str(tmp_path / "run"))
    monkeypatch.setitem(sys.modules, "tomllib", None)  # Python 3.10: no tomllib
    monkeypatch.setitem(sys.modules, "tomli", tomllib)  # its backport (tomllib is tomli, renamed), as setup.cfg installs
    assert "Unknown key 'learning_rate'" in one_line_error(capsys, *argv)  # so the recipe was read, through tomli
    monkeypatch.setitem(sys.modules, "tomli", None)  # neither
    line = one_line_error(capsys, *argv)
    assert f"Reading the TOML recipe {recipe} needs Python 3.11+ or the tomli package; pip install 'tomli>=2'" in line


def test_a_corrupt_archive_in_the_notebook_input_is_one_line_naming_it(capsys, monkeypatch, tmp_path):
    from kaggle_helpers import truncated_zip

    mounted = tmp_path / "input" / "some-competition"
    mounted.mkdir(parents=True)
    truncated_zip(mounted / "train.zip")
    (mounted / "sample_submission.csv").write_text("id,label\n1,0\n")
    monkeypatch.setenv("KAGGLEKIT_INPUT_ROOT", str(tmp_path / "input"))
    monkeypatch.setenv("KAGGLEKIT_WORKING", str(tmp_path / "working"))
    for _ in range(2):  # nothing is marked done: the second try says the same
        line = one_line_error(capsys, "fetch", "some-competition")
        assert f"Archive {mounted / 'train.zip'} is corrupt or not an archive (BadZipFile" in line, line
        assert "Fix: remove the competition from the notebook's inputs and add it again (Add Input)" in line
    assert not list((tmp_path / "working").rglob("train*"))


# ------------------------------------------------------------------ found by the sweep of unusual inputs (docs/unusual-inputs.md)
def _folders(root: Path) -> Path:
    """Return a tiny competition: train/<a|b>/*.png (8 px), test/*.png, a sample submission."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ["train/a/a0", "train/a/a1", "train/b/b0", "train/b/b1", "test/t0"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / f"{name}.png")
    (root / "sample_submission.csv").write_text("id,label\nt0,a\n")
    return root


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_odd_subcommand_inputs_are_one_line_and_touch_nothing(capsys, tmp_path):
    from kagglekit.cli import main

    comp = _folders(tmp_path / "comp")
    mine = tmp_path / "out"
    mine.write_text("the user's file")
    # Before: a NotADirectoryError traceback (organise OUT a file, demo --dir a file).
    assert main(["organise", str(comp), str(mine)]) == 2
    assert "The class folders cannot be written into" in _one_line(capsys) and mine.read_text() == "the user's file"
    assert main(["demo", "--dir", str(mine)]) == 2
    assert "The demo folder" in _one_line(capsys) and mine.read_text() == "the user's file"
    # Before: "The competition folder f does not exist" for a file that exists.
    assert main(["doctor", str(mine)]) == 2
    assert "is a file, not a competition folder" in _one_line(capsys)
    # Before: --wide without --csv was ignored without a word (class folders written).
    assert main(["organise", str(comp), str(tmp_path / "classes"), "--wide"]) == 2
    assert "--wide shapes the CSV that --csv writes" in _one_line(capsys) and not (tmp_path / "classes").exists()
    # Before: named run(epochs=0), not the flag typed.
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--epochs", "0"]) == 2
    assert _one_line(capsys).startswith("kagglekit demo: --epochs 0 is refused") and not (tmp_path / "demo").exists()


@pytest.mark.parametrize("argv", [["runs", "--last", "0"], ["runs", "--last", "-1"], ["push", "comp", "--poll", "-1"],
                                  ["submit", "comp", "s.csv", "-m", "x", "--timeout", "-1"]])
def test_counts_and_seconds_below_one_are_usage_errors(capsys, argv):
    # Before: --last -1 listed every run but the first (pandas tail(-1)); --poll -1 was taken (time.sleep refuses it, after the push).
    from kagglekit.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("source", [None, "", 123])
def test_a_missing_or_odd_source_names_what_a_source_is(tmp_path, source):
    # Before: kk.run(None) and kk.run(123) asked for Kaggle credentials; `kagglekit run ''` read the current folder.
    import kagglekit as kk
    from kagglekit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"The competition to run is .*: give a competition slug"):
        kk.run(source, workdir=tmp_path / "run", dry_run=True, log=None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--dry-run", "--submit"])
def test_push_refuses_run_args_that_would_waste_or_double_the_session(capsys, flag):
    # Before: taken; the notebook's `kagglekit run --dry-run` trained nothing, `--submit` doubled push's own.
    from kagglekit.cli import main

    assert main(["push", "comp", "--no-wait", "--run-args", f"--epochs 1 {flag}"]) == 2
    assert _one_line(capsys).startswith(f"kagglekit push: --run-args {flag}:")
