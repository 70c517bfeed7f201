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
    assert code == 2 and f"The run folder {blocker / 'run'} cannot be written ({blocker} is a file" in err
    assert "--workdir" in err and blocker.read_text() == "not a folder"
    (tmp_path / "ledger-dir").mkdir()
    line = refused(capsys, comp, tmp_path, "--ledger", str(tmp_path / "ledger-dir"))
    assert f"--ledger {tmp_path / 'ledger-dir'} is a folder" in line and "--ledger " in line.split("e.g.")[1]
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_tta_out_of_range_and_an_unknown_backbone_are_refused_with_the_valid_choices(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    # The settings layer bounds every value (0..12); the preflight bounds it by what the flips allow.
    assert "--tta 13 is refused: tta takes a whole number from 0 to 12" in refused(capsys, comp, tmp_path, "--tta", "13")
    assert "--tta 7 is outside 0..6" in refused(capsys, comp, tmp_path, "--tta", "7", "--no-flip")
    code, out, err = dry_run(capsys, comp, tmp_path / "tta", "--tta", "9")  # flips judged during training: said
    assert code == 0 and "note: --tta 9 needs flipped views" in out and "--tta 6 or fewer" in out, err
    line = refused(capsys, comp, tmp_path, "--backbone", "resnet_tinny")
    assert "--backbone resnet_tinny is refused" in line and "did you mean resnet_tiny?" in line


def test_a_budget_too_short_to_train_one_epoch_is_refused_naming_the_minimum(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    line = refused(capsys, comp, tmp_path, "--time", "1s")
    assert "too short" in line and "give at least --time 1m" in line
    # Time to start and predict, but not for one epoch of what was asked: the minimum is that epoch's.
    big = ("--backbone", "wide_resnet", "--sizes", "512", "--tta", "0")
    line = refused(capsys, comp, tmp_path, "--time", "3m", *big)
    assert "--time 3 min is too short to train at all: one epoch of wide_resnet at 512 px on 8 images" in line
    minimum = line.split("give at least --time ")[1].split("m")[0]
    code, out, err = dry_run(capsys, comp, tmp_path / "enough", "--time", f"{minimum}m", *big)
    assert code == 0, err
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


@pytest.mark.parametrize("layout", ["folders", "csv"])
def test_a_single_class_is_refused_and_doctor_flags_it(capsys, tmp_path, layout):
    if layout == "folders":
        comp = class_folders(tmp_path / "comp", {"a": 6})
    else:
        comp = label_csv(tmp_path / "comp", "id,label\n" + "".join(f"a{i},cat\n" for i in range(6)), 6)
    line = refused(capsys, comp, tmp_path)
    assert "only one class" in line and "a classifier needs at least two classes" in line
    assert main(["doctor", str(comp)]) == 0
    verdict = [x for x in capsys.readouterr().out.splitlines() if x.startswith("verdict")]
    assert verdict and "only one class" in verdict[0] and "healthy" not in verdict[0]


def test_tags_separated_by_commas_are_detected_and_said_and_tag_sep_settles_them(capsys, tmp_path):
    tags = ["x,y", "y", "x, z", "z", "x", "y,z"] * 3
    comp = label_csv(tmp_path / "comp", "id,tags\n" + "".join(f'a{i},"{t}"\n' for i, t in enumerate(tags)), len(tags))
    code, out, err = dry_run(capsys, comp, tmp_path)
    assert code == 0, err
    assert "multi-label" in out and "3 classes (x, y, z)" in out
    assert "note: train.csv: the tags in column 'tags' are separated by commas" in out and "--tag-sep" in out
    from kagglekit.table import LabelTable

    train = LabelTable.read_csv(tmp_path / "run" / "train.table.csv")
    assert set(train.classes) == {"x", "y", "z"}  # "x, z" is x and z, not a class "x, z"
    # --tag-sep settles it the other way: the cells are whole class names (6 of them: a stratified split needs 6 valid).
    assert "give --valid 0.34" in refused(capsys, comp, tmp_path / "other", "--tag-sep", ";", "--single-label")
    code, out, err = dry_run(capsys, comp, tmp_path / "other", "--tag-sep", ";", "--single-label", "--valid", "0.34")
    assert code == 0 and "6 classes" in out and "note: train.csv: the tags" not in out, err
    # The recipe's [layout] tag_sep and kk.run(tag_sep=) set it too.
    import kagglekit as kk

    plan = kk.run(comp, workdir=tmp_path / "recipe", dry_run=True, log=None, weights="none", recipe={"layout": {"tag_sep": ","}})
    assert plan.multilabel and plan.classes == ["x", "y", "z"] and not any("separated by commas" in n for n in plan.notes)
    plan = kk.run(comp, workdir=tmp_path / "api", dry_run=True, log=None, weights="none", tag_sep=";", multilabel=False,
                  valid=0.34)
    assert not plan.multilabel and len(plan.classes) == 6


def test_missing_labels_nan_na_and_empty_are_named_and_refused(capsys, tmp_path):
    labels = ["x", "NaN", "y", "NA", "x", "y", "", "x", "y", "x"]
    comp = label_csv(tmp_path / "comp", "id,label\n" + "".join(f"a{i},{v}\n" for i, v in enumerate(labels)), len(labels))
    line = refused(capsys, comp, tmp_path)
    assert "3 rows of" in line and "have no label in column 'label'" in line
    assert "a1 ('NaN'), a3 ('NA'), a6 (empty)" in line
    assert "fill in their class or drop those rows" in line


def test_folder_links_that_loop_are_not_followed_and_each_image_is_read_once(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 8, "b": 8})
    os.symlink("..", comp / "train" / "a" / "up")  # a loop to the train folder (would read b's images as a, again and again)
    os.symlink(".", comp / "train" / "b" / "self")
    os.symlink(comp / "train" / "a" / "a0.png", comp / "train" / "b" / "copy-of-a0.png")  # one file in two classes
    code, out, err = dry_run(capsys, comp, tmp_path)
    assert code == 0, err
    assert "folder links lead back to a folder already read or above it (up)" in out and "(self)" in out
    assert "1 images are links to an image already read in another class folder: b/copy-of-a0 (= a/a0)" in out
    from kagglekit.table import LabelTable

    train, valid = (LabelTable.read_csv(tmp_path / "run" / f"{k}.table.csv") for k in ("train", "valid"))
    assert len(train) + len(valid) == 16
    real = [os.path.realpath(p) for p in train.paths + valid.paths]
    assert len(set(real)) == 16  # no copy leaks into validation


@pytest.mark.parametrize("encoding, delimiter, said", [
    ("utf-8", ";", "columns separated by ';', not commas"),
    ("utf-8", "\t", "columns separated by a tab, not commas"),
    ("latin-1", ",", "not UTF-8, read as Latin-1"),
    ("utf-16", ",", "encoded in UTF-16"),
    ("utf-8-sig", ";", "columns separated by ';'"),
])
def test_a_csv_in_another_delimiter_or_encoding_is_read_and_said(capsys, tmp_path, encoding, delimiter, said):
    labels = ["café", "thé"] * 5
    text = f"id{delimiter}label\n" + "".join(f"a{i}{delimiter}{v}\n" for i, v in enumerate(labels))
    comp = label_csv(tmp_path / "comp", text, len(labels), encoding=encoding)
    code, out, err = dry_run(capsys, comp, tmp_path)
    assert code == 0, err
    assert f"train.csv: {said}" in out and "2 classes (café, thé)" in out


def test_a_csv_that_cannot_be_parsed_names_the_encoding_and_delimiter_tried(capsys, tmp_path):
    comp = label_csv(tmp_path / "comp", 'id,label\na0,"x\na1,y,z,w\n', 2)
    line = refused(capsys, comp, tmp_path)
    assert "cannot be read as a CSV (read in utf-8 with ',' between columns" in line and "id_col" not in line


def test_a_probability_column_of_unknown_class_is_refused_before_training_and_positive_settles_it(capsys, tmp_path):
    sample = "id,label\n" + "".join(f"t{i},0.5\n" for i in range(4))
    comp = class_folders(tmp_path / "comp", {"north": 5, "south": 5}, sample=sample)
    line = refused(capsys, comp, tmp_path, "--metric", "logloss")
    assert "'label' holds one probability, and nothing says which class it is of (north, south)" in line
    assert "--positive CLASS" in line
    code, out, err = dry_run(capsys, comp, tmp_path / "ok", "--metric", "logloss", "--positive", "south")
    assert code == 0 and "holds P(south)" in out, err


# ------------------------------------------------------------------ found by the sweep of unusual inputs (docs/unusual-inputs.md)
@pytest.mark.parametrize("folds, says", [("6", "A 6-fold split of 10 images is impossible"),
                                         ("20", "folds=20 must be a whole number of folds between 2 and the 10 images")])
def test_more_folds_than_the_classes_have_images_is_refused_by_the_dry_run(capsys, tmp_path, folds, says):
    # Before: the dry run passed (exit 0) and the real run refused only when the folds were made.
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    line = refused(capsys, comp, tmp_path, "--folds", folds)
    assert says in line and "--folds" in line, line


@pytest.mark.parametrize("recipe, says", [
    ("[fine_tune]\nclass_weight = {zebra = 2.0}\n", "class_weight names 1 classes the train labels do not have (zebra)"),
    ('[fine_tune]\nmonitor = "val_binary_accuracy"\n', "monitor = 'val_binary_accuracy' is never logged for single-label"),
])
def test_fine_tune_settings_that_do_not_fit_the_labels_are_refused_by_the_dry_run(capsys, tmp_path, recipe, says):
    # Before: passed; a class weight of a class that is not there reached Keras, a monitor never logged picked no best epoch.
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    (tmp_path / "recipe.toml").write_text(recipe)
    line = refused(capsys, comp, tmp_path, "--recipe", str(tmp_path / "recipe.toml"))
    assert says in line, line


def _csv_comp(root: Path) -> Path:
    return label_csv(root, "id,label\n" + "".join(f"a{i},{'xy'[i % 2]}\n" for i in range(10)), 10)


@pytest.mark.parametrize("flags, says", [
    # Before: exit 0, the flag ignored without a word (class folders have no CSV columns to name).
    (["--id-col", "image"], "--id-col 'image' names a column of a train CSV, but the labels of"),
    (["--label-col", "tag"], "--label-col 'tag' names a column of a train CSV"),
])
def test_a_csv_column_named_for_class_folders_is_refused_not_ignored(capsys, tmp_path, flags, says):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    line = refused(capsys, comp, tmp_path, *flags)
    assert says in line and "class folder names" in line, line


@pytest.mark.parametrize("flags, says", [
    # Before: "10 of 10 images of train.csv are not in train: x, y, ... Pass ext= ... or images=" (the wrong fix).
    (["--id-col", "label"], "id_col='label': none of its values ('x', 'y', 'x', ...) names an image in train/ (column 'id' does)"),
    (["--id-col", "label", "--label-col", "label"], "id_col and label_col both name column 'label' of train.csv"),
])
def test_an_id_column_that_names_no_image_says_so(capsys, tmp_path, flags, says):
    line = refused(capsys, _csv_comp(tmp_path / "comp"), tmp_path, *flags)
    assert says in line, line


def test_test_that_is_an_image_or_the_train_folder_says_what_it_is(capsys, tmp_path):
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    # Before: "t0.png cannot be read as a CSV (read in utf-16-be ...). Download it again, or save it as a UTF-8 CSV".
    line = refused(capsys, comp, tmp_path, "--test", str(comp / "test" / "t0.png"))
    assert "is one image, not a folder of test images or a CSV of test ids" in line, line
    # Before: "No images in comp/train" (it holds 10, in its class folders).
    line = refused(capsys, comp, tmp_path, "--test", str(comp / "train"))
    assert "only in its sub-folders a, b: is it the train folder of class folders?" in line, line


def test_a_stray_csv_beside_class_folders_says_the_folders_hold_classes(capsys, tmp_path):
    # Before: "train.csv was found in comp but no image folder beside it (looked for train/, ...)": train/ is there.
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    (comp / "train.csv").write_text("foo,bar\n1,2\n")
    line = refused(capsys, comp, tmp_path)
    assert "but train/ holds class folders (a, b), not the images a label CSV names" in line, line
    (tmp_path / "recipe.toml").write_text('[layout]\nreader = "from_folders"\nargs = { root = "train" }\ntest = "test"\n')
    code, out, err = dry_run(capsys, comp, tmp_path, "--recipe", str(tmp_path / "recipe.toml"))
    assert code == 0, err  # the recipe the message names reads it


@pytest.mark.parametrize("valid", ["10", "5000"])
def test_a_validation_count_too_large_promises_no_count_that_is_then_refused(capsys, tmp_path, valid):
    # Before: "valid=10 gives 10 of 10 images ... a count between 1 and 9", and 1 or 9 were then refused too.
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    line = refused(capsys, comp, tmp_path, "--valid", valid)
    assert f"valid={valid} gives {valid} of 10 images" in line and "between 1 and 9" not in line, line
    assert "--valid 0.2" in line, line


def test_a_group_column_that_takes_the_label_column_says_so(capsys, tmp_path):
    # Before: "Cannot tell which column of train.csv holds the labels ... Pass label_col=" (the cause: --group-col).
    line = refused(capsys, _csv_comp(tmp_path / "comp"), tmp_path, "--group-col", "label")
    assert "group_col='label' names the column that looks like the labels in train.csv" in line, line


def test_a_probability_metric_on_a_sample_of_labels_names_the_flag(capsys, tmp_path):
    # Before: "...; pass kind='probability' or a label metric", kind= being an argument of the Python API.
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    line = refused(capsys, comp, tmp_path, "--metric", "auc")
    assert "scores probabilities but the sample" in line and "give a label metric (--metric accuracy)" in line, line


def test_ids_naming_another_extension_than_the_files_say_so(capsys, tmp_path):
    # Before: "... are not in train: a0.jpg, ... Pass ext= (...) or images=" (ext= adds an extension; no CLI flag).
    comp = label_csv(tmp_path / "comp", "id,label\n" + "".join(f"a{i}.jpg,{'xy'[i % 2]}\n" for i in range(10)), 10)
    line = refused(capsys, comp, tmp_path)
    assert "Their names are there with another extension (.png, not .jpg)" in line, line


def test_a_positive_class_for_a_submission_of_labels_is_said_to_do_nothing(capsys, tmp_path):
    # Before: taken without a word (it only chooses what a single probability column holds).
    comp = class_folders(tmp_path / "comp", {"a": 5, "b": 5})
    code, out, err = dry_run(capsys, comp, tmp_path, "--positive", "a")
    assert code == 0, err
    assert "note: --positive a does nothing here: the submission has no single probability column (it holds labels)" in out
