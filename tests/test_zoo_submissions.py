"""Every zoo competition's submission format, end to end, scored by the independent scorer.

For each competition of `kagglekit.testing.zoo`: predictions in kagglekit's format
(`id` + one probability column per class) are made from the held-back answers,
perfect or noisy; kagglekit tunes the post-processing on validation predictions
(`predict.tune_settings`), writes the file (`write_submission`), validates it
(`validate_submission`), and `kagglekit.testing.scoring.score` (which does not use
kagglekit's metrics) scores it. Validation predictions are an independent noisy
draw over the same answers (the tuned settings are a handful of numbers: cut-points,
a threshold, a clip).
"""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from kagglekit import metrics as M
from kagglekit.errors import PositiveClassError, SubmissionError
from kagglekit.predict import tune_settings
from kagglekit.submission import infer_metric, read_format, validate_submission, write_submission
from kagglekit.table import LabelTable
from kagglekit.testing import scoring, zoo

SIZES = {"humpback-whale-identification": (80, 160), "aptos2019-blindness-detection": (8, 200),
         "planet-understanding-the-amazon-from-space": (8, 160), "imaterialist-challenge-fashion-2018": (8, 160)}
# what the sample alone (with the classes) says; where that is not the competition's metric, the reason names --metric
INFERRED = {
    "dogs-vs-cats-redux-kernels-edition": "logloss",
    "planet-understanding-the-amazon-from-space": "f2",
    "imaterialist-challenge-fashion-2018": "f2",  # micro-F1 over label sets: --metric f1_micro
    "plant-seedlings-classification": "accuracy",  # micro-F1 of one label per row equals accuracy
    "aerial-cactus-identification": "auc",
    "histopathologic-cancer-detection": "auc",
    "aptos2019-blindness-detection": "accuracy",  # ordinal grades: --metric qwk
    "humpback-whale-identification": "map@5",
    "cassava-leaf-disease-classification": "accuracy",
    "state-farm-distracted-driver-detection": "logloss",
    "plant-pathology-2020-fgvc7": "logloss",  # column-wise AUC: --metric auc
    "digit-recognizer": "accuracy",
}
PRIOR_SKEW = 1.5


@pytest.fixture(scope="module")
def comps(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("zoo_submissions")
    out = {}
    for name in zoo.COMPETITIONS:
        n_train, n_test = SIZES.get(name, (8, 120))
        size = None if name == "digit-recognizer" else 16
        out[name] = zoo.build(name, root / name, n_train=n_train, n_test=n_test, image_size=size)
    return out


def _truth(comp) -> tuple[np.ndarray, bool]:
    """Return (class indices (n,) or multi-hot (n, k), multilabel) of the held-back answers, in kagglekit's class order."""
    classes = list(comp.classes)
    answers = comp.answers
    if comp.label_kind == "multi":
        y = np.zeros((len(answers), len(classes)))
        for r, cell in enumerate(answers[comp.label_columns[0]]):
            for tag in str(cell).split():
                y[r, classes.index(tag)] = 1.0
        return y, True
    if len(comp.label_columns) > 1:  # one-hot columns
        wide = answers[list(comp.label_columns)].to_numpy(dtype="float64").argmax(axis=1)
        return np.asarray([classes.index(comp.label_columns[j]) for j in wide]), False
    cells = answers[comp.label_columns[0]]
    if comp.label_kind == "binary-probability" and comp.positive_class not in ("0", "1"):
        other = next(c for c in classes if c != comp.positive_class)
        return np.asarray([classes.index(comp.positive_class if int(v) == 1 else other) for v in cells]), False
    return np.asarray([classes.index(str(v)) for v in cells]), False


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _probs(comp, y: np.ndarray, multilabel: bool, seed: int | None) -> np.ndarray:
    """Return perfect (seed None) or noisy probabilities (n, k) for the truth `y`, noise shaped like the metric's failure."""
    k = len(comp.classes)
    if seed is None:
        return y.astype("float64") if multilabel else np.eye(k)[y]
    rng = np.random.default_rng(seed)
    metric = M.get_metric(comp.metric).name
    if multilabel:  # under-confident positives: 0.5 is too high a threshold
        z = 2.0 * (2 * y - 1) - 1.2 + rng.normal(0, 1.3, y.shape)
        return 1 / (1 + np.exp(-z))
    onehot = np.eye(k)[y]
    if metric == "qwk":  # ordinal: near grades confused, and the majority grade favoured (as an imbalanced model does)
        z = y + rng.normal(0, 0.8, len(y))
        logits = -((np.arange(k)[None, :] - z[:, None]) ** 2) / (2 * 0.6 ** 2)
        prior = np.bincount(y, minlength=k) + 1.0
        return _softmax(logits + PRIOR_SKEW * np.log(prior / prior.sum()))
    if metric == "map@5":  # the heterogeneous new_whale class is under-predicted
        logits = 2.5 * onehot + rng.normal(0, 1.0, onehot.shape)
        logits[:, list(comp.classes).index("new_whale")] -= 2.0
        return _softmax(logits)
    if metric == "logloss":  # over-confident: some confidently wrong
        return _softmax(6.0 * (1.5 * onehot + rng.normal(0, 1.0, onehot.shape)))
    return _softmax(1.2 * onehot + rng.normal(0, 1.0, onehot.shape))


def _frame(comp, p: np.ndarray, multilabel: bool) -> pd.DataFrame:
    """Return predictions as `predict()` returns them: `id` (the sample's ids) then one probability column per class."""
    classes = list(comp.classes)
    frame = pd.DataFrame(p, columns=classes)
    frame.insert(0, "id", comp.answers[comp.id_column].astype(str).tolist())
    frame.attrs.update(classes=classes, multilabel=multilabel, settings={})
    return frame


def _table(comp, y: np.ndarray, multilabel: bool) -> LabelTable:
    classes = list(comp.classes)
    labels = [tuple(classes[j] for j in np.flatnonzero(row)) for row in y] if multilabel else [(classes[j],) for j in y]
    ids = comp.answers[comp.id_column].astype(str).tolist()
    return LabelTable.from_records(ids, ["-"] * len(ids), labels, classes=classes, multilabel=multilabel)


def _write_and_score(comp, preds: pd.DataFrame, settings: dict, path, **kwargs) -> tuple[float, pd.DataFrame]:
    sample = comp.path / comp.sample_submission
    out = write_submission(preds, like=sample, path=path, settings=settings, **kwargs)
    validate_submission(out, like=sample, classes=list(comp.classes))
    written = pd.read_csv(out, dtype=str)
    return scoring.score(comp.name, written, comp.answers), written


def _tuned(comp, metric: str, seed: int | None) -> tuple[dict, np.ndarray, bool]:
    y, multilabel = _truth(comp)
    valid = _frame(comp, _probs(comp, y, multilabel, seed), multilabel)
    learner = SimpleNamespace(settings={}, classes=list(comp.classes))
    return tune_settings(learner, valid, metric, table=_table(comp, y, multilabel)), y, multilabel


@pytest.mark.parametrize("name", zoo.COMPETITIONS)
def test_the_metric_inferred_from_each_sample_says_why_and_names_the_override(comps, name):
    comp = comps[name]
    _, multilabel = _truth(comp)
    choice = infer_metric(comp.path / comp.sample_submission, classes=list(comp.classes), multilabel=multilabel)
    assert choice == INFERRED[name] and choice.inferred and choice.reason
    true = M.get_metric(comp.metric).name
    if choice != true and not (choice == "accuracy" and true == "f1_micro"):  # one label per row: micro-F1 == accuracy
        assert f"--metric {true}" in choice.reason, choice.reason
    given = infer_metric(comp.path / comp.sample_submission, classes=list(comp.classes), metric=comp.metric)
    assert given == true and not given.inferred and "--metric" in given.describe()


@pytest.mark.parametrize("name", zoo.COMPETITIONS)
def test_perfect_predictions_get_the_best_score(comps, name, tmp_path):
    comp = comps[name]
    settings, y, multilabel = _tuned(comp, comp.metric, seed=None)
    got, _ = _write_and_score(comp, _frame(comp, _probs(comp, y, multilabel, None), multilabel), settings, tmp_path / "s.csv")
    if scoring.HIGHER_IS_BETTER[scoring.metric_for(comp.name)]:
        assert got == pytest.approx(1.0)
    else:
        assert got < 1e-6


# (metric, must tuning help on unseen predictions?)
TUNED_HELPS = {"qwk", "map@5", "f2", "f1_micro", "logloss"}


@pytest.mark.parametrize("name", [n for n in zoo.COMPETITIONS if n != "cassava-leaf-disease-classification"])
def test_noisy_predictions_tuned_post_processing_beats_untuned_where_it_should(comps, name, tmp_path):
    comp = comps[name]
    metric = M.get_metric(comp.metric)
    settings, y, multilabel = _tuned(comp, comp.metric, seed=1)
    test = _frame(comp, _probs(comp, y, multilabel, seed=2), multilabel)
    tuned, written = _write_and_score(comp, test, settings, tmp_path / "tuned.csv")
    plain, _ = _write_and_score(comp, test, {"metric": metric.name, "multilabel": multilabel}, tmp_path / "plain.csv")
    higher = scoring.HIGHER_IS_BETTER[scoring.metric_for(comp.name)]
    if metric.output == "probability":  # never hard labels
        values = written[list(written.columns[1:])].astype(float).to_numpy()
        assert len(np.unique(values)) > 2 and not np.isin(values, [0.0, 1.0]).all()
    single_label_micro = metric.name == "f1_micro" and not multilabel
    if metric.name in TUNED_HELPS and not single_label_micro:
        assert (tuned > plain) if higher else (tuned < plain), (settings, tuned, plain)
    else:  # nothing to tune: accuracy, one label per row, AUC (ranks: a clip would only add ties)
        assert tuned == pytest.approx(plain)
        assert not {"clip", "threshold", "cuts", "new_threshold"} & {k for k, v in settings.items() if v}


def test_the_tuned_settings_say_what_they_chose(comps):
    aptos, _, _ = _tuned(comps["aptos2019-blindness-detection"], "qwk", seed=1)
    assert len(aptos["cuts"]) == 4 and aptos["valid_score"] > aptos["valid_score_raw"]
    whale, _, _ = _tuned(comps["humpback-whale-identification"], "map_at_5", seed=1)
    assert whale["new_class"] == "new_whale" and "new_whale" in whale["new_class_reason"]
    assert whale["new_threshold"] > 0 and whale["top_k"] == 5 and whale["valid_score"] > whale["valid_score_raw"]
    planet, _, _ = _tuned(comps["planet-understanding-the-amazon-from-space"], "f2_samples", seed=1)
    assert np.mean(planet["threshold"]) < 0.5 and planet["fallback"] is True


def test_an_auc_sample_holding_zero_gets_probabilities_unless_told_otherwise(comps, tmp_path, caplog):
    """Histopathologic Cancer Detection: `id,label` with 0 in every row was taken for accuracy and 0/1 labels were written."""
    comp = comps["histopathologic-cancer-detection"]
    sample = comp.path / comp.sample_submission
    y, _ = _truth(comp)
    test = _frame(comp, _probs(comp, y, False, seed=3), False)
    fmt = read_format(sample, classes=list(comp.classes))
    assert fmt.kind == "probability" and fmt.positive == "1"
    assert any("placeholder" in n and "--metric accuracy" in n for n in fmt.notes)
    with caplog.at_level(logging.INFO, logger="kagglekit"):
        auc, written = _write_and_score(comp, test, {}, tmp_path / "inferred.csv")  # no metric anywhere: the sample decides
    assert any("placeholder" in r.getMessage() for r in caplog.records)
    assert auc == pytest.approx(roc_auc_score(y, test["1"]), abs=1e-4)
    labels, hard = _write_and_score(comp, test, {}, tmp_path / "labels.csv", metric="accuracy")  # the override
    assert set(hard["label"]) <= {"0", "1"} and labels < auc
    assert infer_metric(sample, classes=list(comp.classes), metric="accuracy") == "accuracy"


def test_the_positive_class_is_given_inferred_with_its_reason_or_refused(comps, tmp_path, caplog):
    dogs = comps["dogs-vs-cats-redux-kernels-edition"]
    sample = dogs.path / dogs.sample_submission
    y, _ = _truth(dogs)
    preds = _frame(dogs, _probs(dogs, y, False, seed=4), False)
    with caplog.at_level(logging.INFO, logger="kagglekit"):
        out = pd.read_csv(write_submission(preds, like=sample, path=tmp_path / "dog.csv", settings={}))
    assert any("P(dog)" in r.getMessage() and "--positive cat" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(out["label"], preds["dog"], rtol=1e-5)
    cat = pd.read_csv(write_submission(preds, like=sample, path=tmp_path / "cat.csv", settings={}, positive="cat"))
    np.testing.assert_allclose(cat["label"], preds["cat"], rtol=1e-5)
    other = preds.rename(columns={"cat": "benign", "dog": "malignant"})
    other.attrs.update(preds.attrs, classes=["benign", "malignant"])
    with pytest.raises(PositiveClassError, match=r"do not say which .*--positive CLASS") as err:
        write_submission(other, like=sample, path=tmp_path / "x.csv", settings={})
    assert "\n" not in str(err.value) and not (tmp_path / "x.csv").exists()
    given = write_submission(other, like=sample, path=tmp_path / "m.csv", settings={}, positive="malignant")
    np.testing.assert_allclose(pd.read_csv(given)["label"], other["malignant"], rtol=1e-5)
    cactus = comps["aerial-cactus-identification"]
    fmt = read_format(cactus.path / cactus.sample_submission, classes=list(cactus.classes))
    assert fmt.positive == "1" and "has_cactus" in fmt.positive_reason


def test_wide_columns_follow_the_sample_order_and_class_names_with_spaces_stay_whole(comps, tmp_path):
    farm = comps["state-farm-distracted-driver-detection"]
    y, _ = _truth(farm)
    p = _probs(farm, y, False, seed=5)
    preds = _frame(farm, p, False)
    shuffled = preds[["id", *reversed(farm.classes)]]  # the model's classes in another order
    shuffled.attrs.update(preds.attrs, classes=list(reversed(farm.classes)))
    out = pd.read_csv(write_submission(shuffled, like=farm.path / farm.sample_submission, path=tmp_path / "f.csv",
                                       settings={"metric": "logloss"}))
    assert list(out.columns) == ["img", *farm.classes]
    np.testing.assert_allclose(out[list(farm.classes)].to_numpy(), p, rtol=1e-5)
    seedlings = comps["plant-seedlings-classification"]
    y, _ = _truth(seedlings)
    written = pd.read_csv(write_submission(_frame(seedlings, _probs(seedlings, y, False, None), False),
                                           like=seedlings.path / seedlings.sample_submission, path=tmp_path / "p.csv"),
                          dtype=str)
    assert set(written["species"]) <= set(seedlings.classes) and any(" " in s for s in written["species"])
    whale = comps["humpback-whale-identification"]
    spaced = _frame(whale, _probs(whale, _truth(whale)[0], False, None), False)
    spaced = spaced.rename(columns={spaced.columns[2]: "two words"})
    spaced.attrs.update(classes=[c for c in spaced.columns if c != "id"], multilabel=False, settings={})
    with pytest.raises(SubmissionError, match="hold spaces"):
        write_submission(spaced, like=whale.path / whale.sample_submission, path=tmp_path / "w.csv")


def test_ranked_guesses_are_five_and_an_explicit_metric_decides_the_shape(comps, tmp_path):
    whale = comps["humpback-whale-identification"]
    sample = whale.path / whale.sample_submission
    settings, y, _ = _tuned(whale, "map@5", seed=1)
    preds = _frame(whale, _probs(whale, y, False, seed=2), False)
    written = pd.read_csv(write_submission(preds, like=sample, path=tmp_path / "w.csv", settings=settings), dtype=str)
    guesses = written["Id"].str.split()
    assert guesses.map(len).eq(5).all() and guesses.map(lambda g: len(set(g)) == 5).all()
    assert (guesses.map(lambda g: g[0]) == "new_whale").any() and (guesses.map(lambda g: g[0]) != "new_whale").any()
    assert read_format(sample, classes=list(whale.classes), multilabel=False).kind == "ranked"
    assert read_format(sample, classes=list(whale.classes), metric="map@3").k == 3
    dogs = comps["dogs-vs-cats-redux-kernels-edition"]
    with pytest.raises(SubmissionError, match="scores probabilities but the sample"):
        read_format(whale.path / whale.sample_submission, classes=["cat", "dog"], metric="auc")
    assert read_format(dogs.path / dogs.sample_submission, classes=["cat", "dog"], metric="auc").kind == "probability"
