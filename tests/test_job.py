"""kagglekit.run on other layouts: the competition's own validation set, recipes, and recipe errors."""
from __future__ import annotations

import pandas as pd
import pytest

import kagglekit as kk
from kagglekit.errors import ConfigError

QUICK = {"backbone": "resnet_tiny", "sizes": [32], "weights": "none", "epochs": 2, "batch_size": 32, "tta": 0}


def test_run_uses_the_shipped_validation_set_and_tunes_f2(imaterialist_dir, tmp_path):
    result = kk.run(imaterialist_dir, workdir=tmp_path / "run", **QUICK)
    assert result.metric == "f2" and 0.0 <= result.valid_score <= 1.0
    assert "threshold" in result.settings or "thresholds" in result.settings
    valid = kk.LabelTable.read_csv(tmp_path / "run" / "valid.table.csv")
    assert len(valid) == 30  # validation.json, not a split of train.json
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
    ({"train": {"epoch": 3}}, r"Unknown settings \['epoch'\] in the recipe's \[train\] section"),
    ({"layout": {"reader": "split"}}, r"layout.reader 'split' is not a kagglekit.layout reader"),
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
