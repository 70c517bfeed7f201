"""kagglekit.run on other layouts: the competition's own validation set, recipes, and recipe errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kagglekit as kk
from kagglekit.errors import ConfigError, LayoutError, SubmissionError

QUICK = {"backbone": "resnet_tiny", "sizes": [32], "weights": "none", "epochs": 2, "batch_size": 32, "tta": 0}


def test_run_uses_the_shipped_validation_set_and_tunes_f2(imaterialist_dir, tmp_path):
    result = kk.run(imaterialist_dir, workdir=tmp_path / "run", **QUICK)
    assert result.metric == "f2"
    assert "threshold" in result.settings or "thresholds" in result.settings
    valid = kk.LabelTable.read_csv(tmp_path / "run" / "valid.table.csv")
    assert len(valid) == 30  # validation.json, not a split of train.json
    # The reported score is the F2 scikit-learn gives the saved model's validation predictions, cut at the
    # tuned thresholds (an image with no tag above its threshold keeps its most probable one).
    from sklearn.metrics import fbeta_score

    learner = kk.Learner.load(tmp_path / "run" / "learner")
    probs = learner.predict(valid, tta=0)[list(valid.classes)].to_numpy()
    cut = np.asarray(result.settings.get("thresholds", result.settings.get("threshold")), dtype=float)
    tags = probs >= cut
    empty = ~tags.any(axis=1)
    tags[empty, probs[empty].argmax(axis=1)] = True
    expected = fbeta_score(valid.targets("multihot"), tags.astype(int), beta=2, average="samples", zero_division=0)
    assert result.valid_score == pytest.approx(expected, abs=1e-6)
    sub = pd.read_csv(result.submission, dtype=str)
    sample = pd.read_csv(imaterialist_dir / "sample_submission.csv", dtype=str)
    assert list(sub.columns) == ["image_id", "label_id"] and sub["image_id"].tolist() == sample["image_id"].tolist()
    assert sub["label_id"].str.split().map(len).min() >= 1


def test_run_with_a_recipe_layout_and_logloss_clip(dogs_vs_cats_dir, tmp_path):
    recipe = {"layout": {"reader": "from_filenames", "args": {"folder": "train", "pattern": r"^(cat|dog)\."}, "test": "test"},
              "train": {"epochs": 1}}
    result = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "run", recipe=recipe, **{**QUICK, "epochs": None})
    assert result.metric == "logloss" and "clip" in result.settings
    sub = pd.read_csv(result.submission)
    assert list(sub.columns) == ["id", "label"] and sub["label"].between(0, 1).all() and len(sub) == 40
    history = pd.read_csv(tmp_path / "run" / "learner" / "history.csv")
    assert len(history) == 1  # the recipe's epochs=1 applied


@pytest.mark.parametrize("recipe, message", [
    ({"train": {"epoch": 3}}, r"Unknown key 'epoch' in the recipe's \[train\] section; did you mean epochs\?"),
    ({"layout": {"reader": "split"}}, r"\[layout\] reader = \"split\" is refused: reader takes one of from_csv, "),
    ({"layout": {"reader": "from_filenames", "args": {"folder": "train", "patern": "x"}}}, r"layout.args do not fit"),
])
def test_recipe_errors_name_the_setting(dogs_vs_cats_dir, tmp_path, recipe, message):
    with pytest.raises(ConfigError, match=message):
        kk.run(dogs_vs_cats_dir, workdir=tmp_path / "run", recipe=recipe, **QUICK)


def test_log_argument_decides_where_messages_go(capsys):
    from kagglekit.logs import logger, shown

    got: list[str] = []
    with shown(got.append):
        logger.info("step one")
    logger.info("after the block")
    assert got == ["step one"]
    with shown(None), shown(False):
        logger.info("quiet")
    with shown(print):
        logger.warning("on stdout")
    out = capsys.readouterr()
    assert out.out == "on stdout\n" and "quiet" not in out.out + out.err
    with pytest.raises(TypeError, match="callable"):
        with shown("stdout"):
            pass


# ------------------------------------------------------------------ the plan, dry runs and layout overrides
def test_dry_run_prints_the_plan_and_stops_before_training(dogs_vs_cats_dir, tmp_path):
    lines: list[str] = []
    plan = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "run", dry_run=True, log=lines.append, **QUICK)
    assert isinstance(plan, kk.job.Inference)
    assert plan.layout == "filenames" and plan.classes == ["cat", "dog"] and not plan.multilabel
    assert plan.test == 40 and plan.test_sources == ["test/"]
    assert plan.metric == "logloss" and "sample_submission.csv" in plan.metric_reason
    assert plan.submission_columns == ["id", "label"] and plan.submission_kind == "probability"
    assert plan.positive == "dog"  # by its usual name; the data cannot say, so the plan says so and names the flag
    text = "\n".join(lines)
    for expected in ("inferred for dogs-vs-cats", "layout: filenames", "labels: single-label", "40 test (from test/)",
                     "metric: logloss", "submission: columns id, label", "label holds P(dog)",
                     "AMBIGUOUS positive", "--positive CLASS", "dry run: stopped before training"):
        assert expected in text, expected
    assert "Epoch" not in text
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.json", "test.table.csv", "train.table.csv", "valid.table.csv"]


def test_layout_overrides_from_flags_and_the_recipe(dogs_vs_cats_dir, tmp_path):
    plan = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "a", dry_run=True, log=None, positive="cat", **QUICK)
    assert plan.positive == "cat" and not plan.ambiguities and "set by positive=" in plan.positive_reason
    plan = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "b", dry_run=True, log=None, recipe={"layout": {"positive": "cat"}}, **QUICK)
    assert plan.positive == "cat" and not plan.ambiguities
    # The flag wins over the recipe; changing an override re-reads the layout in the same run folder.
    plan = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "b", dry_run=True, log=None, recipe={"layout": {"positive": "cat"}},
                  positive="dog", **QUICK)
    assert plan.positive == "dog" and "set by positive=" in plan.positive_reason
    # test= names the test folder (relative to the competition folder).
    plan = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "c", dry_run=True, log=None, test="test", positive="dog", **QUICK)
    assert plan.test_sources == ["test/"] and plan.test == len(list((dogs_vs_cats_dir / "test").iterdir()))
    # A folder whose images the sample submission does not list is refused before training (kagglekit.preflight).
    with pytest.raises(SubmissionError, match=r"none of its ids of sample_submission.csv name a test image"):
        kk.run(dogs_vs_cats_dir, workdir=tmp_path / "d", dry_run=True, log=None, test="train", positive="dog", **QUICK)


@pytest.mark.parametrize("recipe, overrides, error, message", [
    ({"layout": {"positve": "cat"}}, {}, ConfigError, r"Unknown key 'positve' in the recipe's \[layout\] section; did you mean positive\?"),
    ({}, {"positive": "horse"}, ConfigError, r"positive='horse' is not a class"),
    ({"layout": {"reader": "from_filenames", "args": {"folder": "train", "pattern": r"^(cat|dog)\."}}},
     {"multilabel": True}, ConfigError, r"multilabel settle what layout detection infers.*layout.args"),
    ({}, {"test": "no-such-folder"}, LayoutError, r"test='no-such-folder': no such folder or CSV"),
])
def test_layout_override_errors_name_the_setting(dogs_vs_cats_dir, tmp_path, recipe, overrides, error, message):
    with pytest.raises(error, match=message):
        kk.run(dogs_vs_cats_dir, workdir=tmp_path / "run", recipe=recipe, dry_run=True, log=None, **overrides, **QUICK)


def test_empty_train_csv_is_a_layout_error_naming_the_file(tmp_path):
    from PIL import Image

    comp = tmp_path / "comp"
    (comp / "train_images").mkdir(parents=True)
    (comp / "test_images").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(comp / "train_images" / f"{i}.jpg")
        Image.new("RGB", (8, 8)).save(comp / "test_images" / f"t{i}.jpg")
    (comp / "train.csv").write_text("")
    with pytest.raises(LayoutError, match=r"train.csv is empty.*Download it again"):
        kk.run(comp, workdir=tmp_path / "run", dry_run=True, log=None, **QUICK)
    (comp / "train.csv").write_text("image_id,label\n")
    with pytest.raises(LayoutError, match=r"train.csv has a header but no rows"):
        kk.run(comp, workdir=tmp_path / "run", dry_run=True, log=None, **QUICK)


# ---------------------------------------------------------------- re-runs: what a changed input re-does, damaged state
def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "kagglekit"]


def test_a_changed_metric_retunes_and_repredicts_without_retraining(dogs_vs_cats_dir, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="kagglekit")
    first = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "run", log=None, **{**QUICK, "epochs": 1})
    assert first.metric == "logloss" and "clip" in first.settings
    caplog.clear()
    second = kk.run(dogs_vs_cats_dir, workdir=tmp_path / "run", log=None, **{**QUICK, "epochs": 1, "metric": "accuracy"})
    said = _messages(caplog)
    assert ("metric changed from 'logloss' to 'accuracy': re-tuning, re-predicting and re-writing the submission"
            in said), said
    assert any("trained earlier, loaded from" in m for m in said)  # not trained again
    assert second.metric == "accuracy" and "clip" not in second.settings  # the logloss tuning is gone
    caplog.clear()
    kk.run(dogs_vs_cats_dir, workdir=tmp_path / "run", log=None, **{**QUICK, "epochs": 1, "metric": "accuracy", "tta": 2})
    assert "tta changed from 0 to 2: re-tuning, re-predicting and re-writing the submission" in _messages(caplog)


def test_fine_tune_records_the_resize_mode_and_a_changed_one_retrains(dogs_vs_cats_dir, tmp_path, caplog):
    import json
    import logging

    caplog.set_level(logging.INFO, logger="kagglekit")
    run = tmp_path / "run"
    kk.run(dogs_vs_cats_dir, workdir=run, log=None, recipe={"fine_tune": {"resize": "pad"}}, **{**QUICK, "epochs": 1})
    assert json.loads((run / "learner" / "learner.json").read_text())["settings"]["resize"] == "pad"
    assert kk.Learner.load(run / "learner").settings["resize"] == "pad"  # what predict prepares test images with
    caplog.clear()
    kk.run(dogs_vs_cats_dir, workdir=run, log=None, recipe={"fine_tune": {"resize": "crop"}}, **{**QUICK, "epochs": 1})
    said = _messages(caplog)
    assert any(m.startswith("the recipe's [fine_tune] section changed from {\"resize\": \"pad\"} to {\"resize\": \"crop\"}, "
                            "resize changed from 'pad' to 'crop': re-training, re-tuning") for m in said), said
    assert kk.Learner.load(run / "learner").settings["resize"] == "crop"


def test_damaged_saved_state_is_set_aside_and_its_step_redone(dogs_vs_cats_dir, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="kagglekit")
    run = tmp_path / "run"
    first = kk.run(dogs_vs_cats_dir, workdir=run, log=None, **{**QUICK, "epochs": 1})
    expected = pd.read_csv(first.submission)
    history = pd.read_csv(run / "train" / "history.csv")
    for damaged in ("run.json", "learner/learner.json", "test.table.csv", "test_predictions.csv"):
        (run / damaged).write_text('{"half a file')
        caplog.clear()
        again = kk.run(dogs_vs_cats_dir, workdir=run, log=None, **{**QUICK, "epochs": 1})
        said = "\n".join(_messages(caplog))
        assert "cannot be read" in said and "set aside as" in said, (damaged, said)
        assert list(run.glob(damaged.split("/")[0] + ".corrupt-*")), damaged  # kept, not deleted
        pd.testing.assert_frame_equal(pd.read_csv(again.submission), expected, atol=1e-6)
        pd.testing.assert_frame_equal(pd.read_csv(run / "train" / "history.csv"), history)  # never trained again
