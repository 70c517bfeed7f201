"""The competition zoo: each competition in its real shipping format, and the independent scorer."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kagglekit as kk
from PIL import Image

from kagglekit.testing import scoring, zoo
from kagglekit.testing.zoo_folders import SEEDLINGS

@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, zoo.ZooCompetition]:
    base = tmp_path_factory.mktemp("zoo")
    comps = {}
    for name in zoo.COMPETITIONS:
        options = {"rerun": True} if name == "cassava-leaf-disease-classification" else {}
        comps[name] = zoo.build(name, base / name, **options)
    comps["imaterialist-test-folder"] = zoo.build("imaterialist-challenge-fashion-2018", base / "imat-folder", test_json=False)
    return comps


def sample_of(comp: zoo.ZooCompetition) -> pd.DataFrame:
    return pd.read_csv(comp.path / comp.sample_submission)


def header(path: Path) -> str:
    with open(path) as fh:
        return fh.readline().rstrip("\n")


def names(folder: Path, pattern: str = "*") -> set[str]:
    return {p.name for p in folder.glob(pattern) if p.is_file()}


def stems(folder: Path, pattern: str = "*") -> set[str]:
    return {p.stem for p in folder.glob(pattern) if p.is_file()}


def image_format(path: Path) -> tuple[str, str, tuple[int, int]]:
    with Image.open(path) as im:
        return im.format, im.mode, im.size


# ----------------------------------------------------------------------------- shipping formats
def test_dogs_vs_cats_redux_format(built):
    comp = built["dogs-vs-cats-redux-kernels-edition"]
    train = names(comp.path / "train")
    assert train and all(n.split(".")[0] in ("cat", "dog") and n.endswith(".jpg") for n in train)
    for animal in ("cat", "dog"):  # counted separately, from 0, no gaps
        numbers = sorted(int(n.split(".")[1]) for n in train if n.startswith(animal + "."))
        assert numbers == list(range(len(numbers)))
    assert names(comp.path / "test") == {f"{i}.jpg" for i in range(1, len(comp.answers) + 1)}
    assert header(comp.path / "sample_submission.csv") == "id,label"
    assert (sample_of(comp)["label"] == 0.5).all() and set(comp.answers["label"]) <= {0, 1}
    assert comp.positive_class == "dog" and comp.label_kind == "binary-probability"
    assert image_format(next((comp.path / "train").iterdir()))[:2] == ("JPEG", "RGB")


def test_planet_format(built):
    comp = built["planet-understanding-the-amazon-from-space"]
    assert header(comp.path / "train_v2.csv") == "image_name,tags"
    assert header(comp.path / "sample_submission_v2.csv") == "image_name,tags"
    assert not (comp.path / "sample_submission.csv").exists() and not (comp.path / "train.csv").exists()
    assert comp.sample_submission == "sample_submission_v2.csv"
    train = pd.read_csv(comp.path / "train_v2.csv")
    assert set(train["image_name"]) == stems(comp.path / "train-jpg", "*.jpg")
    assert all(n.startswith("train_") and "." not in n for n in train["image_name"])
    weather = {"clear", "partly_cloudy", "haze", "cloudy"}
    for tags in pd.concat([train["tags"], comp.answers["tags"]]):
        tags = tags.split(" ")
        assert tags == sorted(tags) and len(weather & set(tags)) == 1
        assert "cloudy" not in tags or tags == ["cloudy"]
    first, additional = stems(comp.path / "test-jpg"), stems(comp.path / "test-jpg-additional")
    assert first and additional and all(s.startswith("test_") for s in first) and all(s.startswith("file_") for s in additional)
    sample = sample_of(comp)
    assert list(sample["image_name"]) == sorted(first, key=lambda s: int(s[5:])) + sorted(additional, key=lambda s: int(s[5:]))
    assert image_format(comp.path / "train-jpg" / "train_0.jpg") == ("JPEG", "RGB", (256, 256))
    assert "artisinal_mine" in comp.classes and comp.label_kind == "multi"


def test_planet_archives_are_unpacked_by_fetch(tmp_path):
    """Planet ships train-jpg.tar.7z (a 7z holding train-jpg.tar): fetch unpacks both levels, from the download's
    zip, from an unzipped folder and from a notebook's read-only input, to the folders the layout reads."""
    import shutil

    from kagglekit import layout, sources

    comp = zoo.build("planet-understanding-the-amazon-from-space", tmp_path / "planet", n_train=6, n_test=3, archives=True)
    folders = ("train-jpg", "test-jpg", "test-jpg-additional")
    assert all((comp.path / f"{f}.tar.7z").is_file() and not (comp.path / f).exists() for f in folders)
    shutil.make_archive(str(tmp_path / "download" / "planet"), "zip", comp.path)  # what the Kaggle API downloads
    pristine = tmp_path / "pristine"
    shutil.copytree(comp.path, pristine)
    for got in (kk.fetch(str(tmp_path / "download" / "planet.zip")), kk.fetch(str(comp.path))):
        assert sorted(p.name for p in (got.path / "train-jpg").glob("train_*.jpg")) == [f"train_{i}.jpg" for i in range(6)]
        assert not (got.path / "train-jpg" / "train-jpg").exists()  # the tar's own folder is not nested again
        train, test = layout.read_competition(got.path)
        assert len(train) == 6 and len(test) == 3
    again = kk.fetch(str(comp.path))  # a second fetch unpacks nothing again
    assert again.path == comp.path
    # A notebook's input is read-only: the archives unpack into the working folder.
    work = sources._from_notebook("planet-understanding-the-amazon-from-space", pristine, tmp_path / "working")
    assert len(list((work.path / "test-jpg-additional").glob("*.jpg"))) + len(list((work.path / "test-jpg").glob("*.jpg"))) == 3
    assert not list(pristine.glob("*-jpg"))  # nothing written into the input


def test_imaterialist_format(built):
    comp = built["imaterialist-challenge-fashion-2018"]
    for split in ("train", "validation"):
        doc = json.loads((comp.path / f"{split}.json").read_text())
        assert set(doc) == {"images", "annotations"}
        assert set(doc["images"][0]) == {"imageId", "url"} and set(doc["annotations"][0]) == {"imageId", "labelId"}
        assert all(isinstance(a["labelId"], list) and all(isinstance(x, str) for x in a["labelId"]) for a in doc["annotations"])
        assert {i["imageId"] for i in doc["images"]} == stems(comp.path / split, "*.jpg")
    test = json.loads((comp.path / "test.json").read_text())
    assert set(test) == {"images"}
    assert [i["imageId"] for i in test["images"]] == list(sample_of(comp)["image_id"].astype(str))
    assert header(comp.path / "sample_submission.csv") == "image_id,label_id"
    assert all(" " in s or s.isdigit() for s in comp.answers["label_id"])
    variant = built["imaterialist-test-folder"]
    assert not (variant.path / "test.json").exists() and (variant.path / "train.json").exists()
    assert stems(variant.path / "test", "*.jpg") == set(sample_of(variant)["image_id"].astype(str))


def test_plant_seedlings_format(built):
    comp = built["plant-seedlings-classification"]
    folders = {p.name for p in (comp.path / "train").iterdir() if p.is_dir()}
    assert folders == set(SEEDLINGS) and {"Common Chickweed", "Shepherds Purse", "Small-flowered Cranesbill"} <= folders
    some = next((comp.path / "train" / "Small-flowered Cranesbill").iterdir())
    assert some.suffix == ".png" and len(some.stem) == 9 and image_format(some)[0] == "PNG"
    assert header(comp.path / "sample_submission.csv") == "file,species"
    sample = sample_of(comp)
    assert set(sample["file"]) == names(comp.path / "test") and all(f.endswith(".png") for f in sample["file"])
    assert set(comp.answers["species"]) <= set(SEEDLINGS) and comp.id_has_extension


def test_aerial_cactus_format(built):
    comp = built["aerial-cactus-identification"]
    assert header(comp.path / "train.csv") == "id,has_cactus" == header(comp.path / "sample_submission.csv")
    train = pd.read_csv(comp.path / "train.csv")
    assert set(train["id"]) == names(comp.path / "train") and all(len(i) == 36 and i.endswith(".jpg") for i in train["id"])
    assert set(train["has_cactus"]) == {0, 1} and train["has_cactus"].mean() > 0.5
    assert set(sample_of(comp)["id"]) == names(comp.path / "test") and (sample_of(comp)["has_cactus"] == 0.5).all()
    assert image_format(comp.path / "train" / train["id"][0]) == ("JPEG", "RGB", (32, 32))


def test_histopathologic_format(built):
    comp = built["histopathologic-cancer-detection"]
    assert header(comp.path / "train_labels.csv") == "id,label" == header(comp.path / "sample_submission.csv")
    train = pd.read_csv(comp.path / "train_labels.csv")
    assert set(train["id"]) == stems(comp.path / "train", "*.tif") and all(len(i) == 40 and "." not in i for i in train["id"])
    assert set(sample_of(comp)["id"]) == stems(comp.path / "test", "*.tif") and (sample_of(comp)["label"] == 0).all()
    assert image_format(comp.path / "train" / f"{train['id'][0]}.tif") == ("TIFF", "RGB", (96, 96))


def test_aptos_format(built):
    comp = built["aptos2019-blindness-detection"]
    assert header(comp.path / "train.csv") == "id_code,diagnosis" == header(comp.path / "sample_submission.csv")
    assert header(comp.path / "test.csv") == "id_code"
    train = pd.read_csv(comp.path / "train.csv")
    assert set(train["id_code"]) == stems(comp.path / "train_images", "*.png") and set(train["diagnosis"]) <= set(range(5))
    assert list(pd.read_csv(comp.path / "test.csv")["id_code"]) == list(sample_of(comp)["id_code"])
    assert set(sample_of(comp)["id_code"]) == stems(comp.path / "test_images", "*.png")
    assert comp.label_kind == "ordinal" and image_format(comp.path / "train_images" / f"{train['id_code'][0]}.png")[:2] == ("PNG", "RGB")


def test_humpback_whale_format(built):
    comp = built["humpback-whale-identification"]
    assert header(comp.path / "train.csv") == "Image,Id" == header(comp.path / "sample_submission.csv")
    train = pd.read_csv(comp.path / "train.csv")
    assert set(train["Image"]) == names(comp.path / "train") and all(i.endswith(".jpg") for i in train["Image"])
    counts = train["Id"].value_counts()
    assert "new_whale" in counts and counts.drop("new_whale").max() <= 4 and len(counts) > len(train) / 4
    assert all(w == "new_whale" or (w.startswith("w_") and len(w) == 9) for w in counts.index)
    sample = sample_of(comp)
    assert set(sample["Image"]) == names(comp.path / "test")
    assert all(len(g.split()) == 5 and g.split()[0] == "new_whale" for g in sample["Id"])
    assert set(comp.answers["Id"]) <= set(counts.index)  # test whales are known ones or new_whale
    modes = {image_format(p)[1] for p in (comp.path / "train").iterdir()}
    assert "L" in modes and "RGB" in modes


def test_cassava_format(built):
    comp = built["cassava-leaf-disease-classification"]
    assert header(comp.path / "train.csv") == "image_id,label" == header(comp.path / "sample_submission.csv")
    train = pd.read_csv(comp.path / "train.csv")
    assert set(train["image_id"]) == names(comp.path / "train_images") and train["label"].dtype.kind == "i"
    assert all(i.endswith(".jpg") and i[:-4].isdigit() for i in train["image_id"])
    assert json.loads((comp.path / "label_num_to_disease_map.json").read_text())["3"] == "Cassava Mosaic Disease (CMD)"
    assert names(comp.path / "test_images") == {"2216849948.jpg"} == set(sample_of(comp)["image_id"])
    rerun = comp.extra["rerun"]
    assert rerun.path != comp.path and len(rerun.answers) == 16
    assert names(rerun.path / "test_images") == set(sample_of(rerun)["image_id"]) and "2216849948.jpg" in set(rerun.answers["image_id"])
    assert names(rerun.path / "train_images") == names(comp.path / "train_images")


def test_state_farm_format(built):
    comp = built["state-farm-distracted-driver-detection"]
    classes = [f"c{k}" for k in range(10)]
    assert sorted(p.name for p in (comp.path / "imgs" / "train").iterdir()) == classes
    assert header(comp.path / "driver_imgs_list.csv") == "subject,classname,img"
    assert header(comp.path / "sample_submission.csv") == "img," + ",".join(classes)
    drivers = pd.read_csv(comp.path / "driver_imgs_list.csv")
    on_disk = {(p.parent.name, p.name) for p in (comp.path / "imgs" / "train").glob("c*/*.jpg")}
    assert set(zip(drivers["classname"], drivers["img"])) == on_disk
    assert all(s.startswith("p") and len(s) == 4 for s in drivers["subject"]) and drivers["subject"].nunique() >= 3
    assert set(sample_of(comp)["img"]) == names(comp.path / "imgs" / "test")
    assert not set(comp.extra["test_subjects"]) & set(drivers["subject"])
    assert (comp.answers[classes].sum(axis=1) == 1).all()


def test_plant_pathology_format(built):
    comp = built["plant-pathology-2020-fgvc7"]
    cols = "image_id,healthy,multiple_diseases,rust,scab"
    assert header(comp.path / "train.csv") == cols == header(comp.path / "sample_submission.csv")
    assert header(comp.path / "test.csv") == "image_id"
    train, test = pd.read_csv(comp.path / "train.csv"), pd.read_csv(comp.path / "test.csv")
    assert (train.iloc[:, 1:].sum(axis=1) == 1).all()
    on_disk = stems(comp.path / "images", "*.jpg")
    assert on_disk == set(train["image_id"]) | set(test["image_id"]) and not (comp.path / "train").exists()
    assert all(i.startswith("Train_") for i in train["image_id"]) and all(i.startswith("Test_") for i in test["image_id"])
    assert list(sample_of(comp)["image_id"]) == list(test["image_id"]) and (sample_of(comp).iloc[:, 1:] == 0.25).all().all()


def test_digit_recognizer_format(built):
    comp = built["digit-recognizer"]
    pixels = ",".join(f"pixel{i}" for i in range(784))
    assert header(comp.path / "train.csv") == "label," + pixels and header(comp.path / "test.csv") == pixels
    assert header(comp.path / "sample_submission.csv") == "ImageId,Label"
    test = pd.read_csv(comp.path / "test.csv")
    assert list(sample_of(comp)["ImageId"]) == list(range(1, len(test) + 1))
    values = pd.read_csv(comp.path / "train.csv").iloc[:, 1:].to_numpy()
    assert values.min() == 0 and values.max() > 200 and values.dtype.kind == "i"


# ----------------------------------------------------------------------------- generic facts
@pytest.mark.parametrize("name", zoo.COMPETITIONS)
def test_answers_in_submission_shape(built, name):
    comp = built[name]
    sample = sample_of(comp)
    assert list(sample.columns) == list(comp.answers.columns) == list(comp.submission_columns)
    assert [str(v) for v in sample.iloc[:, 0]] == [str(v) for v in comp.answers.iloc[:, 0]]
    assert comp.id_column == sample.columns[0] and comp.metric == scoring.metric_for(name)


def test_builds_are_deterministic(tmp_path):
    a = zoo.build("humpback-whale-identification", tmp_path / "a", n_train=12, n_test=5, seed=3)
    b = zoo.build("humpback-whale-identification", tmp_path / "b", n_train=12, n_test=5, seed=3)
    assert a.answers.equals(b.answers)
    assert (a.path / "train.csv").read_bytes() == (b.path / "train.csv").read_bytes()
    first = sorted((a.path / "train").iterdir())[0].name
    assert (a.path / "train" / first).read_bytes() == (b.path / "train" / first).read_bytes()
    with pytest.raises(FileExistsError):
        zoo.build("digit-recognizer", tmp_path / "a")
    with pytest.raises(ValueError, match="Unknown competition"):
        zoo.build("no-such-competition", tmp_path / "c")


# ----------------------------------------------------------------------------- scorer
def _f2_by_hand(truth: pd.Series, pred: pd.Series) -> float:
    total = 0.0
    for t, p in zip(truth, pred):
        t, p = set(t.split()), set(p.split())
        tp = len(t & p)
        prec, rec = (tp / len(p) if p else 0.0), (tp / len(t) if t else 0.0)
        total += 0.0 if tp == 0 else 5 * prec * rec / (4 * prec + rec)
    return total / len(truth)


def _micro_f1_by_hand(truth: pd.Series, pred: pd.Series) -> float:
    tp = sum(len(set(t.split()) & set(p.split())) for t, p in zip(truth, pred))
    n_pred, n_true = sum(len(set(p.split())) for p in pred), sum(len(set(t.split())) for t in truth)
    return 2 * tp / (n_pred + n_true)


def expected_sample_score(comp: zoo.ZooCompetition, sample: pd.DataFrame) -> float:
    """The score the sample submission (constant, uninformative) should get: the chance level."""
    truth = comp.answers.iloc[:, 1]
    first = sample.iloc[0, 1]
    chance = {
        "log_loss": lambda: math.log(2),
        "multiclass_log_loss": lambda: math.log(10),
        "roc_auc": lambda: 0.5,
        "mean_column_roc_auc": lambda: 0.5,
        "quadratic_kappa": lambda: 0.0,
        "accuracy": lambda: float((truth.astype(str) == str(first)).mean()),
        "micro_f1": lambda: float((truth == first).mean()),
        "map_at_5": lambda: float((truth == "new_whale").mean()),
        "f2_samples": lambda: _f2_by_hand(truth, sample.iloc[:, 1]),
        "micro_f1_labels": lambda: _micro_f1_by_hand(truth, sample.iloc[:, 1]),
    }
    return chance[comp.metric]()


@pytest.mark.parametrize("name", [*zoo.COMPETITIONS, "cassava-rerun"])
def test_scorer_perfect_chance_and_garbled(built, name):
    comp = built["cassava-leaf-disease-classification"].extra["rerun"] if name == "cassava-rerun" else built[name]
    perfect = scoring.score(comp.name, comp.answers.copy(), comp.answers)
    if scoring.HIGHER_IS_BETTER[comp.metric]:
        assert perfect == pytest.approx(1.0)
    else:
        assert perfect < 1e-9
    sample = sample_of(comp)
    if comp.metric in ("roc_auc", "mean_column_roc_auc", "quadratic_kappa") and len(comp.answers) < 2:
        return
    chance = scoring.score(comp.name, sample, comp.answers)
    assert chance == pytest.approx(expected_sample_score(comp, sample), abs=1e-9)
    shuffled = sample.sample(frac=1.0, random_state=0)  # order does not matter, ids do
    assert scoring.score(comp.metric, shuffled, comp.answers) == pytest.approx(chance, abs=1e-12)
    if len(sample) > 1:
        with pytest.raises(scoring.SubmissionError, match="missing"):
            scoring.score(comp.name, sample.iloc[1:], comp.answers)
        with pytest.raises(scoring.SubmissionError, match="repeats"):
            scoring.score(comp.name, pd.concat([sample, sample.iloc[:1]]), comp.answers)
    extra = sample.iloc[:1].astype({sample.columns[0]: object})
    extra.iloc[0, 0] = "not-a-test-id"
    with pytest.raises(scoring.SubmissionError, match="unexpected"):
        scoring.score(comp.name, pd.concat([sample, extra]), comp.answers)
    with pytest.raises(scoring.SubmissionError, match="column"):
        scoring.score(comp.name, sample.iloc[:, :1], comp.answers)


def test_scorer_beats_chance_with_partial_knowledge(built):
    comp = built["aerial-cactus-identification"]
    noisy = comp.answers.assign(has_cactus=np.where(comp.answers["has_cactus"] == 1, 0.7, 0.3))
    noisy.loc[noisy.index[:2], "has_cactus"] = 1 - noisy.loc[noisy.index[:2], "has_cactus"]
    assert 0.5 < scoring.score(comp.name, noisy, comp.answers) < 1.0


def test_scorer_details():
    ans = pd.DataFrame({"Image": ["a.jpg", "b.jpg", "c.jpg"], "Id": ["w_1", "new_whale", "w_2"]})
    sub = pd.DataFrame({"Image": ["a.jpg", "b.jpg", "c.jpg"], "Id": ["w_1 w_2", "w_1 new_whale", "w_3 w_4 w_5 w_6 w_7"]})
    assert scoring.score("map_at_5", sub, ans) == pytest.approx((1 + 0.5 + 0) / 3)
    with pytest.raises(scoring.SubmissionError, match="at most 5"):
        scoring.score("map_at_5", sub.assign(Id="a b c d e f"), ans)
    # Kaggle's clipping: a confident wrong answer costs -log(1e-15), not infinity.
    dogs = pd.DataFrame({"id": [1, 2], "label": [1, 0]})
    assert scoring.score("log_loss", dogs.assign(label=[0.0, 0.0]), dogs) == pytest.approx(-math.log(1e-15) / 2, rel=1e-6)
    # Multi-class rows are rescaled to sum 1 before scoring; ids match across int/float/str spellings.
    ans = pd.DataFrame({"img": ["x.jpg", "y.jpg"], "c0": [1.0, 0.0], "c1": [0.0, 1.0]})
    doubled = pd.DataFrame({"img": ["y.jpg", "x.jpg"], "c0": [1.0, 2.0], "c1": [3.0, 2.0]})
    assert scoring.score("multiclass_log_loss", doubled, ans) == pytest.approx(-(math.log(0.75) + math.log(0.5)) / 2)
    digits = pd.DataFrame({"ImageId": [1, 2], "Label": [3, 4]})
    assert scoring.score("digit-recognizer", pd.DataFrame({"ImageId": ["1", 2.0], "Label": [3.0, "4"]}), digits) == 1.0
    # Planet: an empty prediction is allowed (scores 0 for that image), a blank probability is not.
    planet = pd.DataFrame({"image_name": ["test_0", "file_0"], "tags": ["clear primary", "cloudy"]})
    assert scoring.score("f2_samples", planet.assign(tags=["clear primary", None]), planet) == pytest.approx(0.5)
    with pytest.raises(scoring.SubmissionError, match="empty"):
        scoring.score("roc_auc", pd.DataFrame({"id": [1, 2], "label": [0.2, None]}), dogs)
    with pytest.raises(ValueError, match="Unknown competition or metric"):
        scoring.score("nope", dogs, dogs)
