"""The one settings schema (kagglekit.settings): every value checked at the boundary, from the CLI, recipes and kk.run.

Pure Python: every refusal here happens before any download, layout or training, so no test trains.
"""
from __future__ import annotations

import inspect
import json
import math
import re
from pathlib import Path

import pytest

from kagglekit import settings as S
from kagglekit.cli import build_parser, main
from kagglekit.errors import ConfigError
from kagglekit.job import DEFAULTS, LAYOUT_KEYS, load_recipe

ROOT = Path(__file__).resolve().parents[1]

# fine_tune's parameters as the checks see them, without importing Keras (the real signature: see the last tests)
PARAMS = {s.name: inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.default)
          for s in S.SETTINGS if s.section == "fine_tune"}


def _out_of_range(s: S.Setting) -> list:
    """Return numbers just outside the setting's bounds."""
    values = []
    if s.low is not None:
        values.append(s.low if s.open_low else (s.low - 1 if s.kind in ("int", "sizes") else s.low - 0.5))
    if s.high is not None:
        values.append(s.high if s.open_high else (s.high + 1 if s.kind in ("int", "sizes") else s.high * 2 + 1))
    return [[v] if s.kind in ("sizes", "floats") else v for v in values]


# Values of every type a user might write that a setting of each kind does not take (JSON-expressible: recipes too).
WRONG = {
    "int": ["three", 1.5, True, [3], {"n": 3}, ""],
    "float": ["high", True, [0.1], {"x": 1}, "", "1e-3"],
    "bool": ["no", "true", "false", 1, 0, [True], {"on": True}, ""],
    "str": [True, ["a"], {"a": 1}, "", "   "],
    "path": [3, True, ["a"], {"a": 1}, ""],
    "duration": ["soon", True, -5, 0, [60], {"m": 1}, ""],
    "sizes": ["64,128", "64", 64.5, True, [], ["64"], [64.5], {"a": 64}],
    "floats": ["0.1,0.3,1", [], ["0.1"], True, 0.5, {"a": 1}],
    "fraction": ["0.2", 0.0, 1.0, 1.5, -3, 0, True, [0.2]],
    "table": ["x", 3, [1], True],
    "recipe": [3, True, [1], ""],
    "ledger": [3, [1], {"a": 1}, ""],
    "objects": ["x", [1], 3, True],
}


def wrong_values(s: S.Setting) -> list:
    """Return the wrong values the fuzz tests give setting `s`: every other type, and just out of range."""
    values = [v for v in WRONG[s.kind] if not (s.text_ok and isinstance(v, (int, float)) and not isinstance(v, bool))]
    values += _out_of_range(s)
    if s.choices or s.also:
        values.append("nonsense")
    if s.kind in ("int", "float"):
        values.append(float("nan")) if s.kind == "float" else None
    return [v for v in values if not (isinstance(v, str) and v in s.also)]


CASES = [(s, v) for s in S.SETTINGS if s.kind != "any" for v in wrong_values(s)]
IDS = [f"{s.section or 'run'}.{s.name}={v!r}" for s, v in CASES]


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# ------------------------------------------------------------------ the fuzz: recipe, kk.run, CLI
@pytest.mark.parametrize("setting, value", [c for c in CASES if c[0].section], ids=[i for c, i in zip(CASES, IDS) if c[0].section])
def test_fuzz_a_recipe_value_of_a_wrong_type_or_range_is_the_packages_error(tmp_path, setting, value):
    if isinstance(value, float) and math.isnan(value):
        recipe = tmp_path / "recipe.toml"  # JSON has no NaN; TOML has
        recipe.write_text(f"[{setting.section}]\n{setting.name} = nan\n")
    else:
        recipe = tmp_path / "recipe.json"
        recipe.write_text(json.dumps({setting.section: {setting.name: value}}))
    with pytest.raises(ConfigError) as caught:
        S.check_recipe(json.loads(recipe.read_text()) if recipe.suffix == ".json" else {setting.section: {setting.name: value}},
                       f"the recipe {recipe}", PARAMS)
    line = _one_line(caught.value)
    assert f"[{setting.section}] {setting.name} = " in line and str(recipe) in line and "e.g." in line, line
    if setting.section != "fine_tune":  # load_recipe reads fine_tune's real signature (Keras): see the last tests
        with pytest.raises(ConfigError, match=f"\\[{setting.section}\\] {setting.name} = "):
            load_recipe(recipe)


@pytest.mark.parametrize("setting, value", CASES, ids=IDS)
def test_fuzz_a_kk_run_value_of_a_wrong_type_or_range_is_the_packages_error(setting, value):
    with pytest.raises(ConfigError) as caught:
        if setting.section is None:
            S.check_run_arguments(**{setting.name: value})
        elif setting.keyword:
            S.check_keywords({setting.name: value}, PARAMS)
        elif setting.section == "fine_tune":
            S.check_keywords({"fine_tune": {setting.name: value}}, PARAMS)
        else:  # [layout] reader / args: recipe keys only; kk.run takes a recipe dict
            S.check_recipe({setting.section: {setting.name: value}}, "the recipe", PARAMS)
    line = _one_line(caught.value)
    assert setting.name in line and "e.g." in line, line


# What can be typed after a flag that its setting does not take: other types, out of range, empty.
CLI_WRONG = {"int": ["three", "1.5", "", "0x10"], "float": ["high", "", "nan", "inf", "1,5"], "str": ["", "  "],
             "duration": ["soon", "-5", "0", ""], "sizes": ["64,abc", "", "64.5"], "fraction": ["0", "1.0", "1.5", "-3", "x"],
             "path": [""], "recipe": [""], "ledger": [""]}


def cli_texts(s: S.Setting) -> list[str]:
    """Return the wrong texts the CLI fuzz types after the flag of `s`."""
    texts = list(CLI_WRONG.get(s.kind, []))
    texts += [",".join(map(str, v)) if isinstance(v, list) else str(v) for v in _out_of_range(s)]
    if s.choices or s.also or s.check is not None:
        texts.append("nonsense")
    return texts


CLI_CASES = [(s, text) for s in S.SETTINGS if s.flags and s.kind != "bool" for text in cli_texts(s)]


@pytest.mark.parametrize("setting, value", CLI_CASES, ids=[f"{s.flag} {v}" for s, v in CLI_CASES])
def test_fuzz_a_bad_cli_value_exits_2_with_one_line_before_any_work(capsys, tmp_path, setting, value):
    text = value
    code = main(["run", str(tmp_path / "no-such-competition"), "--workdir", str(tmp_path / "run"), setting.flag, text])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"kagglekit run: {setting.flag} {text} is refused") and "e.g." in err, err
    assert not (tmp_path / "run").exists()


def test_the_issue_cases_are_refused_from_recipe_files_and_the_cli(capsys, tmp_path):
    for text, says in [("[train]\nepochs = 1.5\n", "[train] epochs = 1.5 is refused: epochs takes a whole number"),
                       ('[train]\nepochs = "three"\n', '[train] epochs = "three" is refused'),
                       ("[train]\nlr = -0.01\n", "[train] lr = -0.01 is refused: lr takes a number > 0"),
                       ('[fine_tune]\nlabel_smoothing = "high"\n', '[fine_tune] label_smoothing = "high" is refused'),
                       ('[train]\nflip = "no"\n', '[train] flip = "no" is refused: flip takes true or false'),
                       ('[train]\nsizes = "64,128"\n', "a text is not split into a list")]:
        recipe = tmp_path / "recipe.toml"
        recipe.write_text(text)
        code = main(["run", str(tmp_path / "nowhere"), "--recipe", str(recipe), "--workdir", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and says in err and str(recipe) in err and "\n" not in err, err
    recipe = tmp_path / "recipe.json"
    for top in ("[1, 2]", '"train"', "3"):
        recipe.write_text(top)
        with pytest.raises(ConfigError, match=r"must hold a table of sections \(\[layout\], \[train\], \[fine_tune\]\) at its top level"):
            load_recipe(recipe)
    for argv, says in [(["--lr", "0"], "--lr 0 is refused: lr takes a number > 0"),
                       (["--batch-size", "0"], "--batch-size 0 is refused: batch_size takes a whole number from 1"),
                       (["--epochs", "1.5"], "--epochs 1.5 is refused"), (["--lr", "nan"], "--lr nan is refused")]:
        assert main(["run", str(tmp_path / "nowhere"), *argv]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ did you mean
@pytest.mark.parametrize("recipe, says", [
    ({"fine-tune": {"dropout": 0.1}}, "unknown section [fine-tune]; did you mean [fine_tune]?"),
    ({"Train": {}}, "did you mean [train]?"),
    ({"train": {"epoch": 3}}, "Unknown key 'epoch' in the recipe's [train] section; did you mean epochs?"),
    ({"train": {"batch-size": 8}}, "did you mean batch_size?"),
    ({"train": {"learning_rate": 0.1}}, "did you mean lr?"),
    ({"layout": {"positve": "cat"}}, "did you mean positive?"),
    ({"layout": {"reader": "from_csv", "args": {"cvs": "x.csv"}}}, "no argument 'cvs'; did you mean csv?"),
    ({"layout": {"reader": "from_cvs"}}, "did you mean from_csv?"),
    ({"train": {"freeze_epochs": 2}}, "freeze_epochs belongs in the [fine_tune] section"),
    ({"fine_tune": {"learning_rate": 0.1}}, "lr belongs in the [train] section"),
    ({"fine_tune": {"drop_out": 0.1}}, "did you mean dropout?"),
    ({"fine_tune": {"fit": "pad"}}, "did you mean resize?"),  # the resize mode's name before it was resize
    ({"fine_tune": {"epochs": 2}}, "'epochs' in the recipe's [fine_tune] section is set by the run"),
    ({"epochs": 3}, "epochs = 3 is outside any section; epochs belongs in the [train] section"),
    ({"train": {"backbone": "resnet_tny"}}, "did you mean resnet_tiny?"),
    ({"train": {"metric": "logloos"}}, "did you mean logloss?"),
    ({"train": {"weights": "imagnet"}}, "did you mean imagenet?"),
])
def test_an_unknown_name_in_a_recipe_names_the_closest_valid_one(recipe, says):
    with pytest.raises(ConfigError) as caught:
        S.check_recipe(recipe, "the recipe", PARAMS)
    assert says in _one_line(caught.value), str(caught.value)


@pytest.mark.parametrize("keywords, says", [
    ({"epoch": 3}, "run(epoch=3) is not a setting; did you mean epochs?"),
    ({"batchsize": 8}, "did you mean batch_size?"),
    ({"time": "10m"}, "did you mean time_budget?"),
    ({"dropout": 0.1}, "dropout is a fine_tune argument: run(fine_tune={'dropout': 0.1})"),
    ({"reader": "from_csv"}, "reader is set only in a recipe's [layout] section"),
    ({"fine_tune": {"labelsmoothing": 0.1}}, "did you mean label_smoothing?"),
])
def test_an_unknown_kk_run_keyword_names_the_closest_valid_one(keywords, says):
    with pytest.raises(ConfigError) as caught:
        S.check_keywords(keywords, PARAMS)
    assert says in _one_line(caught.value), str(caught.value)


def test_kk_run_refuses_a_misspelt_keyword_before_any_work(tmp_path):
    import kagglekit as kk

    with pytest.raises(ConfigError, match=r"run\(epoch=3\) is not a setting; did you mean epochs\?"):
        kk.run(tmp_path / "nowhere", workdir=tmp_path / "run", epoch=3, log=None)
    with pytest.raises(ConfigError, match=r"run\(submit='yes'\) is refused: submit takes true or false"):
        kk.run(tmp_path / "nowhere", workdir=tmp_path / "run", submit="yes", log=None)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ valid values: accepted and normalised
@pytest.mark.parametrize("setting", [s for s in S.SETTINGS if s.kind != "any"], ids=lambda s: f"{s.section}.{s.name}")
def test_every_example_is_accepted_from_each_place_that_sets_it(setting):
    assert S.check_value(setting, setting.example) == setting.example
    if setting.section and setting.kind != "objects":
        body = {setting.name: setting.example, **({"reader": "from_csv"} if setting.name == "args" else {})}  # args need it
        got = S.check_recipe({setting.section: body}, "the recipe", PARAMS)
        assert got[setting.section][setting.name] == setting.example
    if setting.flags and setting.kind != "bool":
        text = ",".join(map(str, setting.example)) if isinstance(setting.example, list) else str(setting.example)
        args = build_parser().parse_args(["run", "x", setting.flag, text])
        assert S.from_cli(args)[setting.name] == setting.example


def test_values_are_normalised_and_said_nothing_when_the_meaning_is_plain():
    got = S.check_recipe({"train": {"sizes": 64, "epochs": 3.0, "lr": 1, "tta": "auto", "valid": 100},
                          "layout": {"positive": 1}}, "the recipe", PARAMS)
    assert got == {"train": {"sizes": [64], "epochs": 3, "lr": 1.0, "tta": "auto", "valid": 100},
                   "layout": {"positive": "1"}}
    assert isinstance(got["train"]["epochs"], int) and isinstance(got["train"]["lr"], float)
    args = build_parser().parse_args(["run", "x", "--sizes", "64, 128 300", "--tta", "auto", "--valid", "0.25",
                                      "--time", "1h30m", "--no-flip", "--weights", "none", "--ledger", "none"])
    given = S.from_cli(args)
    assert given["sizes"] == [64, 128, 300] and given["tta"] == "auto" and given["valid"] == 0.25
    assert given["time_budget"] == "1h30m" and given["flip"] is False and given["weights"] == "none"
    assert given["ledger"] is False and given["epochs"] is None and given["submit"] is False
    assert S.check_keywords({"fine_tune": {"class_weight": {"cat": 2.0}, "mixed_precision": "mixed_bfloat16",
                                           "verbose": "auto"}}, PARAMS)["fine_tune"]["verbose"] == "auto"


def test_a_fine_tune_argument_the_schema_does_not_declare_is_checked_by_its_annotation():
    def fine_tune(data, new_flag: bool = False, ratio: float = 0.5, shape: "tuple | None" = None):  # noqa: ANN001
        return data

    params = inspect.signature(fine_tune).parameters
    assert S.check_fine_tune({"new_flag": True, "ratio": 1, "shape": (2, 2)}, params) == {
        "new_flag": True, "ratio": 1.0, "shape": (2, 2)}
    with pytest.raises(ConfigError, match=r"new_flag = \"yes\" is refused: new_flag takes true or false"):
        S.check_fine_tune({"new_flag": "yes"}, params)
    with pytest.raises(ConfigError, match=r"Unknown key 'ratoi'.*did you mean ratio\?"):
        S.check_fine_tune({"ratoi": 0.2}, params)


def test_layout_reader_args_are_checked_by_the_readers_annotations():
    for args, says in [({"csv": "a.csv", "classes": "abc"}, "classes takes a list of texts (a text is not split"),
                       ({"csv": "a.csv", "multilabel": "yes"}, "multilabel takes true or false"),
                       ({"csv": 3}, "csv takes a path")]:
        with pytest.raises(ConfigError, match=re.escape(f"[layout.args] {list(args)[-1]} = ")) as caught:
            S.check_recipe({"layout": {"reader": "from_csv", "args": args}})
        assert says in _one_line(caught.value), str(caught.value)
    ok = {"layout": {"reader": "from_pixel_csv", "args": {"csv": "train.csv", "shape": [28, 28], "first_id": 1}}}
    assert S.check_recipe(ok) == ok


def test_json_null_numpy_values_and_a_recipe_of_another_format(tmp_path):
    import numpy as np

    with pytest.raises(ConfigError, match=r"\[train\] weights = null is refused.*leave the key out for the default"):
        S.check_recipe({"train": {"weights": None}})  # not silently "from scratch"
    assert S.check_keywords({"epochs": np.int64(3), "lr": np.float32(0.5), "flip": np.bool_(False)}) == {
        "epochs": 3, "lr": 0.5, "flip": False}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"is neither a \.toml nor a \.json file; kagglekit reads recipes in TOML or JSON"):
        load_recipe(recipe)


@pytest.mark.parametrize("name, data, says", [
    ("r.json", b'{"train": {"epochs": 2, "epochs": 3}}', "sets 'epochs' twice in one table"),
    ("r.json", b'{"train": {"epochs": 2}, "train": {"seed": 3}}', "sets 'train' twice in one table"),
    ("r.toml", b"[train]\nepochs = 2\nepochs = 3\n", "is not valid TOML"),
])
def test_a_recipe_that_sets_a_key_twice_is_refused(tmp_path, name, data, says):
    # Before: JSON kept the last value silently (epochs 3, or only seed = 3: the epochs lost), where TOML refused.
    recipe = tmp_path / name
    recipe.write_bytes(data)
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_recipe(recipe)


@pytest.mark.parametrize("name, data", [
    ("r.json", b'\xef\xbb\xbf{"train": {"epochs": 2}}'),  # a byte-order mark (Notepad): was "Unexpected UTF-8 BOM"
    ("r.toml", b"\xef\xbb\xbf[train]\nepochs = 2\n"),  # was "Invalid statement (at line 1, column 1)"
    ("r.TOML", b"[train]\nepochs = 2\n"),  # was read as JSON: "not valid JSON (its name does not end in .toml)"
    ("r.JSON", b'{"train": {"epochs": 2}}'),
])
def test_a_recipe_with_a_byte_order_mark_or_an_upper_case_suffix_is_read(tmp_path, name, data):
    recipe = tmp_path / name
    recipe.write_bytes(data)
    assert load_recipe(recipe) == {"train": {"epochs": 2}}


@pytest.mark.parametrize("section, says", [
    # Before, each was taken and failed or did nothing only once training ran:
    ({"lr_mult": [0.1, 0.3]}, "lr_mult takes three factors (early layers, late layers, head), not 2"),  # head's silently 1
    ({"cycle_mult": 0.5}, "cycle_mult takes a number >= 1"),  # sgdr refused it when training started
    ({"monitor": "val_acc"}, "monitor takes one of val_loss, val_accuracy"),  # never logged: no epoch was ever "best"
    ({"replay": {}}, "'replay' in the recipe's [fine_tune] section is set by the run (give --replay RUN_DIR"),  # replaced --replay's record
])
def test_fine_tune_values_that_failed_or_did_nothing_in_training_are_refused(section, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        S.check_recipe({"fine_tune": section}, "the recipe", PARAMS)


def test_an_empty_item_in_a_cli_list_is_refused(capsys, tmp_path):
    # Before: --sizes 64,,128 was read as 64,128 without a word (a size left out by mistake).
    assert main(["run", str(tmp_path / "nowhere"), "--sizes", "64,,128"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kagglekit run: --sizes 64,,128 is refused") and "an empty item between commas" in err, err


def test_weights_must_be_a_weights_file_not_any_existing_file(tmp_path):
    # Before: any existing file (train.csv, an empty .h5) passed the check and failed when the model was built.
    weights = S.get("weights")
    csv, empty, fake, h5, keras_file = (tmp_path / n for n in ("train.csv", "empty.h5", "fake.keras", "w_notop.h5", "m.keras"))
    csv.write_text("id,label\n")
    empty.write_bytes(b"")
    fake.write_text("not a zip")
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    keras_file.write_bytes(b"PK\x03\x04" + bytes(100))
    for bad, says in ((csv, "is not a weights file"), (empty, "is not an HDF5 file (it is empty)"),
                      (fake, "is not a .keras file")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            S.check_value(weights, str(bad), S.Origin("cli"))
    assert S.check_value(weights, str(h5)) == str(h5) and S.check_value(weights, str(keras_file)) == str(keras_file)
    assert S.check_value(weights, h5) == str(h5)  # kk.run(weights=Path(...)): was refused as "not a text"


def test_class_weights_are_positive_numbers():
    for table in ({"cat": "high"}, {"cat": 2, "dog": 0}, {"cat": True}):
        with pytest.raises(ConfigError, match=r"\[fine_tune\] class_weight = .* positive numbers as weights"):
            S.check_recipe({"fine_tune": {"class_weight": table}}, "the recipe", PARAMS)
    assert S.check_recipe({"fine_tune": {"class_weight": {"cat": 2}}}, "the recipe", PARAMS)["fine_tune"] == {
        "class_weight": {"cat": 2}}


# ------------------------------------------------------------------ one schema: the parser, job and the docs follow it
def test_the_docs_table_is_the_schema_rendered():
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == S.markdown(), \
        "docs/settings.md differs from the schema: python -m kagglekit.settings > docs/settings.md"


def test_the_run_parser_job_defaults_and_layout_keys_come_from_the_schema():
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    flags = {f for action in run._actions for f in action.option_strings} - {"-h", "--help"}
    assert flags == {f for s in S.SETTINGS for f in s.flags}
    assert DEFAULTS == S.defaults("train") and DEFAULTS["flip"] is None and DEFAULTS["tta"] == "auto"
    assert set(LAYOUT_KEYS) == {s.name for s in S.SETTINGS if s.section == "layout" and s.keyword}
    names = [(s.section, s.name) for s in S.SETTINGS]
    assert len(names) == len(set(names))
    from kagglekit.job import run as kk_run  # the CLI passes every run-level setting to kk.run by its name

    assert set(S.section_settings(None)) <= set(inspect.signature(kk_run).parameters)


def test_declared_fine_tune_settings_match_fine_tunes_signature():
    params = S.fine_tune_parameters()  # imports the learner (Keras)
    for s in S.SETTINGS:
        if s.section == "fine_tune":
            assert s.name in params and s.name not in S.SET_BY_RUN, s.name
            default = params[s.name].default
            if s.default is not None:
                assert s.default == default, (s.name, s.default, default)
    assert S.SET_BY_RUN <= set(params)


def test_a_python_warning_on_the_cli_is_one_plain_line_without_a_path(capsys, monkeypatch):
    import warnings

    import kagglekit.cli as cli

    def backbones_that_warn(args):  # a library warning raised while a command runs, as layout's readers raise them
        warnings.warn("Dropped 2 rows whose image is missing:\n a.png, b.png.", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "cmd_backbones", backbones_that_warn)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["backbones"]) == 0
    out = capsys.readouterr()
    assert out.out == "warning: Dropped 2 rows whose image is missing: a.png, b.png.\n" and out.err == ""
    assert warnings.showwarning is not cli._warning_as_one_line  # put back after the command
