"""Submission files in the shape of each competition's sample: all five shapes, every validation failure, atomic writes."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kagglekit.errors import SubmissionError
from kagglekit.submission import read_format, to_frame, validate_submission, write_submission

DIGITS = [str(d) for d in range(10)]
IMAT = [str(i) for i in range(1, 11)]  # iMaterialist label ids of the digits


def fake_predictions(ids, classes, seed=0, multilabel=False, settings=None) -> pd.DataFrame:
    """Return a predict()-shaped frame (id + one probability column per class), rows shuffled."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    probs = rng.random((len(ids), k)) if multilabel else rng.dirichlet(np.ones(k) * 0.5, size=len(ids))
    frame = pd.DataFrame(probs, columns=classes)
    frame.insert(0, "id", [str(i) for i in ids])
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame.attrs.update(classes=list(classes), multilabel=multilabel, settings=dict(settings or {}))
    return frame


@pytest.fixture(scope="module")
def samples(digits_competition: Path, dogs_vs_cats_dir: Path, imaterialist_dir: Path, tmp_path_factory) -> dict:
    """One sample submission per shape, from the competitions' own samples and ids."""
    root = tmp_path_factory.mktemp("samples")
    digits_sample = digits_competition / "sample_submission.csv"
    dogs_sample = dogs_vs_cats_dir / "sample_submission.csv"
    digit_ids = pd.read_csv(digits_sample, dtype=str)["id"]
    dog_ids = pd.read_csv(dogs_sample, dtype=str)["id"]
    label_id = root / "label_id.csv"
    pd.DataFrame({"id": dog_ids, "label": 0}).to_csv(label_id, index=False)
    per_class = root / "per_class.csv"
    pd.DataFrame({"id": digit_ids, **{c: 0.1 for c in DIGITS}}).to_csv(per_class, index=False)
    return {
        "label": (digits_sample, DIGITS),
        "label_id": (label_id, ["cat", "dog"]),
        "probability": (dogs_sample, ["cat", "dog"]),
        "per_class": (per_class, DIGITS),
        "labels": (imaterialist_dir / "sample_submission.csv", IMAT),
    }


def test_formats_are_learnt_from_the_samples(samples):
    for kind, (sample, classes) in samples.items():
        fmt = read_format(sample, classes=classes)
        assert fmt.kind == kind, sample
    dogs = read_format(samples["probability"][0], classes=["cat", "dog"])
    assert dogs.positive == "dog" and dogs.columns == ["id", "label"]
    assert dogs.ids[:3] == ["1", "2", "3"] and "10" in dogs.ids  # ids stay text, in the sample's order
    assert read_format(samples["labels"][0]).columns == ["image_id", "label_id"]
    assert read_format(samples["label_id"][0], classes=["cat", "dog"], kind="probability").positive == "dog"
    assert read_format(samples["probability"][0], classes=["no", "yes"], positive="no").positive == "no"


@pytest.mark.parametrize("kind", ["label", "label_id", "probability", "per_class", "labels"])
def test_each_shape_writes_validates_and_round_trips(samples, tmp_path, kind):
    sample, classes = samples[kind]
    ids = pd.read_csv(sample, dtype=str).iloc[:, 0].tolist()
    multilabel = kind == "labels"
    settings = {"clip": 0.02} if kind in ("probability", "per_class") else {}
    if multilabel:
        settings = {"multilabel": True, "threshold": [0.3] * 5 + [0.9] * 5, "fallback": True}
    preds = fake_predictions(ids, classes, multilabel=multilabel, settings=settings)
    path = write_submission(preds, like=sample, path=tmp_path / "submission.csv")
    assert path == tmp_path / "submission.csv"
    back = validate_submission(path, like=sample, classes=classes)
    sample_frame = pd.read_csv(sample, dtype=str)
    assert back.columns.tolist() == sample_frame.columns.tolist()
    assert back.iloc[:, 0].tolist() == ids  # the sample's order, ids as the sample writes them
    probs = preds.set_index("id").loc[ids, classes].to_numpy()
    value = back.columns[1]
    if kind == "label":
        assert back[value].tolist() == [classes[j] for j in probs.argmax(1)]
    elif kind == "label_id":
        assert back[value].tolist() == [str(j) for j in probs.argmax(1)]
    elif kind == "probability":
        expected = np.clip(probs[:, classes.index("dog")], 0.02, 0.98)
        np.testing.assert_allclose(back[value].to_numpy(), expected, rtol=1e-5)
    elif kind == "per_class":
        np.testing.assert_allclose(back[classes].to_numpy(), np.clip(probs, 0.02, 0.98), rtol=1e-5)
    else:
        thr = np.array(settings["threshold"])
        for row, text in zip(probs, back[value]):
            chosen = {classes[j] for j in np.flatnonzero(row >= thr)} or {classes[int(row.argmax())]}
            assert set(text.split()) == chosen
    # the file on disk is plain CSV that pandas reads back with the same ids
    raw = pd.read_csv(path, dtype=str)
    assert raw.iloc[:, 0].tolist() == ids and not raw.isna().any().any()


def test_ids_written_as_file_names_still_match(samples, tmp_path):
    sample, classes = samples["probability"]
    ids = pd.read_csv(sample, dtype=str)["id"].tolist()
    preds = fake_predictions([f"{i}.jpg" for i in ids], classes)
    back = validate_submission(write_submission(preds, like=sample, path=tmp_path / "s.csv"), like=sample)
    assert back["id"].tolist() == ids


def test_large_files_are_zipped_and_zips_validate(samples, tmp_path):
    sample, classes = samples["per_class"]
    ids = pd.read_csv(sample, dtype=str)["id"].tolist()
    preds = fake_predictions(ids, classes)
    plain = write_submission(preds, like=sample, path=tmp_path / "sub.csv")
    zipped = write_submission(preds, like=sample, path=tmp_path / "sub.csv", zip_over=1000)
    assert zipped == tmp_path / "sub.csv.zip"
    with zipfile.ZipFile(zipped) as zf:
        assert zf.namelist() == ["sub.csv"]
    pd.testing.assert_frame_equal(validate_submission(zipped, like=sample), validate_submission(plain, like=sample))
    asked = write_submission(preds, like=sample, path=tmp_path / "asked.csv", zip=True)
    assert asked.suffix == ".zip" and zipfile.is_zipfile(asked)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.write(plain, "a.csv")
        zf.write(plain, "b.csv")
    with pytest.raises(SubmissionError, match="exactly one CSV"):
        validate_submission(two, like=sample)


def _good(samples, kind, tmp_path) -> tuple[pd.DataFrame, Path, list[str]]:
    sample, classes = samples[kind]
    ids = pd.read_csv(sample, dtype=str).iloc[:, 0].tolist()
    path = write_submission(fake_predictions(ids, classes, multilabel=kind == "labels"), like=sample, path=tmp_path / f"{kind}.csv")
    return pd.read_csv(path, dtype=str), sample, classes


def test_each_validation_failure_names_the_problem_and_the_fix(samples, tmp_path):
    frame, sample, classes = _good(samples, "probability", tmp_path)
    validate_submission(frame, like=sample)  # the good one passes

    cases = [
        (frame.rename(columns={"label": "prob"}), r"header .*missing \['label'\].*unexpected \['prob'\].*id,label"),
        (frame[["label", "id"]], r"order .*Write the columns exactly"),
        (frame.iloc[:-3], r"rows but the sample has .*3 sample ids are missing: 38, 39, 40.*one row for each id"),
        (pd.concat([frame, pd.DataFrame({"id": ["999"], "label": ["0.5"]})]), r"1 ids are not in the sample: 999"),
        (pd.concat([frame.iloc[:-1], frame.iloc[:1]]), r"appear more than once.*: 1\. Keep one row per id"),
        (frame.assign(label=[np.nan] + frame["label"].tolist()[1:]), r"empty or NaN values \(columns \['label'\]\): ids 1\."),
        (frame.assign(label=["1.5"] + frame["label"].tolist()[1:]), r"outside \[0, 1\]: ids 1\. Write probabilities"),
        (frame.assign(label=["dog"] + frame["label"].tolist()[1:]), r"must hold numbers but has text .*ids 1\."),
    ]
    for bad, message in cases:
        with pytest.raises(SubmissionError, match=message):
            validate_submission(bad, like=sample)
    # too many missing ids: the first few and the count
    with pytest.raises(SubmissionError, match=r"30 sample ids are missing: 11, 12, 13, 14, 15 \(and 25 more; 30 in all\)"):
        validate_submission(frame.iloc[:10], like=sample)

    labels, imat_sample, imat_classes = _good(samples, "labels", tmp_path)
    first = labels["image_id"][0]
    bad = labels.assign(label_id=["1 77"] + labels["label_id"].tolist()[1:])
    with pytest.raises(SubmissionError, match=rf"labels outside the vocabulary: 77 \(ids {first}\).*competition's labels"):
        validate_submission(bad, like=imat_sample, classes=imat_classes)
    single, digits_sample, digits_classes = _good(samples, "label", tmp_path)
    with pytest.raises(SubmissionError, match=r"outside the vocabulary: cat"):
        validate_submission(single.assign(label=["cat"] * len(single)), like=digits_sample, classes=digits_classes)
    index, id_sample, id_classes = _good(samples, "label_id", tmp_path)
    with pytest.raises(SubmissionError, match=r"class indices 0\.\.1 but has 1 other values"):
        validate_submission(index.assign(label=["2"] + index["label"].tolist()[1:]), like=id_sample, classes=id_classes)

    # files: missing, empty, not a CSV
    with pytest.raises(SubmissionError, match="No file at"):
        validate_submission(tmp_path / "nope.csv", like=sample)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SubmissionError, match="is empty"):
        validate_submission(tmp_path / "empty.csv")
    (tmp_path / "one.csv").write_text("id\n1\n2\n")
    with pytest.raises(SubmissionError, match="needs an id column and at least one value column"):
        validate_submission(tmp_path / "one.csv")
    # without a sample: still no NaN, unique ids, probabilities in range
    validate_submission(frame)
    with pytest.raises(SubmissionError, match="outside"):
        validate_submission(frame.assign(label=["1.5"] + frame["label"].tolist()[1:]))


def test_write_refuses_predictions_that_do_not_fit(samples, tmp_path):
    sample, classes = samples["probability"]
    ids = pd.read_csv(sample, dtype=str)["id"].tolist()
    with pytest.raises(SubmissionError, match=r"2 ids of the sample submission have no prediction: .*Predict on the full test set"):
        write_submission(fake_predictions(ids[:-2], classes), like=sample, path=tmp_path / "s.csv")
    with pytest.raises(SubmissionError, match=r"1 predicted ids are not in the sample submission: x\.jpg"):
        write_submission(fake_predictions(ids + ["x.jpg"], classes), like=sample, path=tmp_path / "s.csv")
    with pytest.raises(SubmissionError, match="needs a two-class model"):
        write_submission(fake_predictions(ids, ["a", "b", "c"]), like=sample, path=tmp_path / "s.csv")
    per_class, _ = samples["per_class"]
    digit_ids = pd.read_csv(per_class, dtype=str)["id"].tolist()
    with pytest.raises(SubmissionError, match="class columns the model does not know: 0, 1"):
        write_submission(fake_predictions(digit_ids, ["cat", "dog"]), like=per_class, path=tmp_path / "s.csv")
    nan = fake_predictions(ids, classes)
    nan.loc[0, "dog"] = np.nan
    with pytest.raises(SubmissionError, match="predictions are NaN"):
        write_submission(nan, like=sample, path=tmp_path / "s.csv")
    with pytest.raises(SubmissionError, match="'id' column"):
        write_submission(nan.drop(columns="id"), like=sample, path=tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_a_failure_mid_write_leaves_the_old_file_intact(samples, tmp_path, monkeypatch):
    sample, classes = samples["label"]
    ids = pd.read_csv(sample, dtype=str)["id"].tolist()
    target = tmp_path / "submission.csv"
    old = write_submission(fake_predictions(ids, classes, seed=1), like=sample, path=target).read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_submission(fake_predictions(ids, classes, seed=2), like=sample, path=target)
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]  # no partial file left behind
    monkeypatch.undo()
    new = write_submission(fake_predictions(ids, classes, seed=2), like=sample, path=target).read_bytes()
    assert new != old


def test_to_frame_uses_settings_given_over_the_predictions_own(samples):
    sample, classes = samples["probability"]
    ids = pd.read_csv(sample, dtype=str)["id"].tolist()
    preds = fake_predictions(ids, classes, settings={"clip": 0.4})
    own = to_frame(preds, like=sample)["label"].astype(float)
    given = to_frame(preds, like=sample, settings={})["label"].astype(float)
    assert own.min() >= 0.4 and own.max() <= 0.6
    assert given.min() < 0.4 or given.max() > 0.6


def test_a_competition_object_gives_its_sample(samples, tmp_path):
    from types import SimpleNamespace

    sample, classes = samples["probability"]
    ids = pd.read_csv(sample, dtype=str)["id"].tolist()
    path = write_submission(fake_predictions(ids, classes), like=SimpleNamespace(path=sample.parent, sample_submission=sample), path=tmp_path / "s.csv")
    assert validate_submission(path, like=sample)["id"].tolist() == ids
    with pytest.raises(SubmissionError, match="has no sample_submission.csv"):
        write_submission(fake_predictions(ids, classes), like=SimpleNamespace(path=tmp_path, sample_submission=None))


def test_a_kaggle_sized_test_set_of_100000_rows_is_checked_in_full(tmp_path):
    """100,000 rows (the size of large Kaggle test sets): every id is compared with the sample, in linear time.

    Quadratic id matching took 112 s at 10,000 rows (hours at 100,000); this takes seconds.
    """
    n = 100_000
    ids = [f"{i:06d}.jpg" for i in range(n)]
    sample = tmp_path / "sample_submission.csv"
    pd.DataFrame({"id": ids, "label": 0.5}).to_csv(sample, index=False)
    probs = np.random.default_rng(0).random(n)
    good = pd.DataFrame({"id": ids[::-1], "label": probs})  # any row order
    checked = validate_submission(good, like=sample)
    assert len(checked) == n and checked["id"].iloc[0] == ids[-1]
    bad = good.copy()
    bad.loc[[10, 50_000, 99_999], "id"] = ["x1.jpg", "x2.jpg", "x3.jpg"]  # three ids replaced: the last ones checked too
    with pytest.raises(SubmissionError) as err:
        validate_submission(bad, like=sample)
    message = str(err.value)
    assert "3 sample ids are missing" in message and "3 ids are not in the sample: x1.jpg, x2.jpg, x3.jpg" in message
    assert ids[0] in message and ids[n - 1 - 10] in message
