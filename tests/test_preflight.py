"""`kagglekit run --dry-run` checks everything it can before training: each refusal is one line, exit code 2.

The competitions are tiny (16 px PNGs written with PIL in tmp_path); `kagglekit.cli.main` runs in-process.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kagglekit.cli import main

# ------------------------------------------------------------------ tiny competitions
_RNG = np.random.default_rng(0)


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_RNG.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)


def class_folders(root: Path, counts: dict[str, int], n_test: int = 4, sample: str | None = None) -> Path:
    """Return a competition folder: train/<class>/<class>N.png, test/tN.png and sample_submission.csv (id,label)."""
    for cls, n in counts.items():
        for i in range(n):
            _image(root / "train" / cls / f"{cls}{i}.png")
    for i in range(n_test):
        _image(root / "test" / f"t{i}.png")
    first = next(iter(counts))
    (root / "sample_submission.csv").write_text(
        sample if sample is not None else "id,label\n" + "".join(f"t{i},{first}\n" for i in range(n_test)))
    return root


def label_csv(root: Path, text: str, n_train: int, encoding: str = "utf-8", n_test: int = 4) -> Path:
    """Return a competition folder: train.csv (`text`, in `encoding`) naming train/aN.png, test/tN.png, a sample."""
    for i in range(n_train):
        _image(root / "train" / f"a{i}.png")
    for i in range(n_test):
        _image(root / "test" / f"t{i}.png")
    (root / "train.csv").write_bytes(text.encode(encoding))
    (root / "sample_submission.csv").write_text("id,label\n" + "".join(f"t{i},x\n" for i in range(n_test)))
    return root


def dry_run(capsys, comp: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    """Return (exit code, stdout, stderr) of `kagglekit run COMP --dry-run` (from scratch, so no weights are needed)."""
    code = main(["run", str(comp), "--workdir", str(tmp_path / "run"), "--dry-run", "--weights", "none", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(capsys, comp: Path, tmp_path: Path, *extra: str) -> str:
    """Return the one line a refused dry run wrote to stderr, after checking the exit code is 2."""
    code, out, err = dry_run(capsys, comp, tmp_path, *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, out[-2000:], err[-2000:])
    return lines[0]


# ------------------------------------------------------------------ the happy path
def test_a_healthy_competition_still_passes_the_dry_run(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    code, out, err = dry_run(capsys, comp, tmp_path, "--time", "10m", "--tta", "3", "--backbone", "resnet_micro")
    assert code == 0, err
    assert "dry run: stopped before training" in out and "Epoch" not in out
    assert not (tmp_path / "run" / "learner").exists() and not (tmp_path / "ledger.csv").exists()


# ------------------------------------------------------------------ settings and places
def test_an_unwritable_run_folder_or_ledger_is_refused_before_anything_is_written(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["run", str(comp), "--workdir", str(blocker / "run"), "--dry-run", "--weights", "none"])
    err = capsys.readouterr().err
    assert code == 2 and f"The run folder {blocker / 'run'} cannot be created: {blocker} is a file" in err
    assert "--workdir" in err and blocker.read_text() == "not a folder"
    (tmp_path / "ledger-dir").mkdir()
    line = refused(capsys, comp, tmp_path, "--ledger", str(tmp_path / "ledger-dir"))
    assert "The run ledger" in line and "is a folder, not a file" in line and "--ledger PATH" in line
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_tta_out_of_range_and_an_unknown_backbone_are_refused_with_the_valid_choices(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    assert "--tta 13 is outside 0..12" in refused(capsys, comp, tmp_path, "--tta", "13")
    assert "--tta 7 is outside 0..6" in refused(capsys, comp, tmp_path, "--tta", "7", "--no-flip")
    line = refused(capsys, comp, tmp_path, "--backbone", "resnet_tinny")
    assert "'resnet_tinny' is not a registered backbone: did you mean 'resnet_tiny'?" in line


def test_a_budget_too_short_to_train_one_epoch_is_refused_naming_the_minimum(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    line = refused(capsys, comp, tmp_path, "--time", "1s")
    assert "too short" in line and "give at least --time 1m" in line
    assert not (tmp_path / "run" / "learner").exists()


# ------------------------------------------------------------------ the sample submission against the test images
@pytest.mark.parametrize("sample, expected", [
    ("id,label\n", "has a header but no rows"),
    ("id,label\nt0,a\nt1,a\nt1,a\nt2,a\nt3,a\n", "1 ids appear more than once in sample_submission.csv: t1"),
    ("id,label\nt0,a\nt1,a\nt2,a\nt3,a\nt9,a\n", "1 of its 5 ids of sample_submission.csv name a test image"),
    ("label,id\na,t0\na,t1\na,t2\na,t3\n", "holds the test ids in its column 'id' (column 2 of 2), not in the first"),
    ("id,label\nt0,a\nt1,a\n", "2 of the 4 test images are not listed in sample_submission.csv (t2, t3)"),
])
def test_the_sample_submission_is_checked_against_the_test_images(capsys, tmp_path, sample, expected):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5}, sample=sample)
    assert expected in refused(capsys, comp, tmp_path)


# ------------------------------------------------------------------ degenerate data
def test_classes_with_a_single_image_are_named_and_stated_or_refused(capsys, tmp_path):
    comp = class_folders(tmp_path / "all", {"a": 1, "b": 1, "c": 1})
    line = refused(capsys, comp, tmp_path)
    assert "3 of the 3 classes in the train labels have a single image (a, b, c)" in line
    assert "add a second image to those classes" in line
    comp = class_folders(tmp_path / "some", {"a": 5, "b": 1, "c": 5})
    code, out, err = dry_run(capsys, comp, tmp_path / "some-run")
    assert code == 0, err
    assert "note: 1 classes have a single image (b): kept in train, never validated" in out
