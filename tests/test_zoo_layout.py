"""`layout.detect` on every zoo competition (built in its real shipping format), and the inference failures it fixed."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kagglekit import LabelTable
from kagglekit import layout as L
from kagglekit.errors import LayoutError
from kagglekit.layout.infer import label_kind, positive_class
from kagglekit.testing import zoo

# name -> (build options, n_train)
BUILDS = {
    "dogs-vs-cats-redux-kernels-edition": ({}, 24),
    "planet-understanding-the-amazon-from-space": ({"image_size": 48}, 300),
    "imaterialist-challenge-fashion-2018": ({}, 40),
    "imaterialist-test-folder": ({"test_json": False}, 40),
    "plant-seedlings-classification": ({"image_size": 24}, 36),
    "aerial-cactus-identification": ({}, 30),
    "histopathologic-cancer-detection": ({"image_size": 32}, 30),
    "aptos2019-blindness-detection": ({"image_size": 32}, 30),
    "humpback-whale-identification": ({"image_size": 32}, 40),
    "cassava-leaf-disease-classification": ({"image_size": 32}, 30),
    "state-farm-distracted-driver-detection": ({"image_size": 32}, 60),
    "plant-pathology-2020-fgvc7": ({"image_size": 32}, 30),
    "digit-recognizer": ({}, 40),
}
# What detect cannot settle from the data alone (each names its override).
AMBIGUOUS = {"dogs-vs-cats-redux-kernels-edition": {"positive"}}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, zoo.ZooCompetition]:
    base = tmp_path_factory.mktemp("zoo-layout")
    out = {}
    for key, (options, n_train) in BUILDS.items():
        name = "imaterialist-challenge-fashion-2018" if key == "imaterialist-test-folder" else key
        out[key] = zoo.build(name, base / key, n_train=n_train, n_test=12, **options)
    return out


def _detect(path: Path, **overrides) -> tuple[L.Layout, LabelTable, LabelTable]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # iMaterialist's "missing='drop'" warning when nothing is missing is silent anyway
        layout = L.detect(path, **overrides)
        train, test = layout.read()
    return layout, train, test


@pytest.mark.parametrize("key", list(BUILDS))
def test_detect_reads_every_zoo_competition(built, key):
    comp = built[key]
    layout, train, test = _detect(comp.path)
    n_train = BUILDS[key][1]
    assert len(train) == n_train == layout.fact("train_count").value
    expected_classes = set(comp.classes)
    if key == "planet-understanding-the-amazon-from-space":  # rare tags may be absent from a small build
        seen = {t for tags in pd.read_csv(comp.path / "train_v2.csv")["tags"] for t in tags.split()}
        expected_classes = expected_classes & seen
        assert len(expected_classes) >= 12
    assert set(train.classes) == expected_classes and set(layout.classes) == expected_classes
    assert train.multilabel == (comp.label_kind == "multi") == layout.multilabel
    # The test table's ids are the submission's ids, in the sample's convention.
    answer_ids = sorted(str(i) for i in comp.answers[comp.id_column])
    assert test is not None and sorted(test.ids) == answer_ids
    assert layout.test_count == len(answer_ids)
    sample_ids = pd.read_csv(comp.path / comp.sample_submission, dtype=str).iloc[:, 0].tolist()
    assert set(sample_ids) == set(test.ids)
    assert layout.id_extension == comp.id_has_extension
    assert all(Path(p).is_file() for p in test.paths) and all(Path(p).is_file() for p in train.paths)
    # Positive class where the data says it; ambiguities where it cannot.
    assert {a.fact for a in layout.ambiguities} == AMBIGUOUS.get(key, set())
    if comp.label_kind == "binary-probability" and key not in AMBIGUOUS:
        assert layout.positive == comp.positive_class
    lines = layout.summary()
    assert isinstance(lines, list) and any("multilabel" in line for line in lines)
    assert all(f.reason for f in layout.facts)


def test_every_zoo_competition_is_covered():
    assert set(zoo.COMPETITIONS) <= set(BUILDS)


def test_humpback_id_column_is_the_one_naming_files(built):
    comp = built["humpback-whale-identification"]
    layout, train, _ = _detect(comp.path)
    assert layout.id_column == "Image" and layout.label_columns == ("Id",)
    assert "name image files" in layout.fact("id_column").reason
    truth = pd.read_csv(comp.path / "train.csv", dtype=str)
    assert train.ids == truth["Image"].tolist() and [x[0] for x in train.labels] == truth["Id"].tolist()
    # The old trap, called directly: from_csv alone also picks Image.
    assert L.from_csv(comp.path / "train.csv").ids == truth["Image"].tolist()


def test_state_farm_nested_folders_and_driver_groups(built):
    comp = built["state-farm-distracted-driver-detection"]
    layout, train, test = _detect(comp.path)
    assert layout.kind == "class-folders" and layout.group_column == "subject"
    drivers = pd.read_csv(comp.path / "driver_imgs_list.csv", dtype=str)
    by_image = dict(zip(drivers["img"], drivers["subject"]))
    assert train.groups == [by_image[Path(p).name] for p in train.paths]
    assert layout.fact("groups").value == drivers["subject"].nunique()
    for seed in range(3):
        tr, va = L.split(train, valid=0.2, seed=seed)  # the table's groups by default
        assert not set(tr.groups) & set(va.groups) and len(tr) + len(va) == len(train)
    # Groups survive the table file a run keeps.
    assert LabelTable.read_csv(train.to_csv(comp.path.parent / "sf.table.csv")).equals(train)


def test_positive_class_facts_and_override(built):
    layout, _, _ = _detect(built["aerial-cactus-identification"].path)
    assert layout.positive == "1" and "has_cactus" in layout.fact("positive").reason
    layout, _, _ = _detect(built["histopathologic-cancer-detection"].path)
    assert layout.positive == "1"
    dvc = built["dogs-vs-cats-redux-kernels-edition"].path
    layout, _, _ = _detect(dvc)
    (amb,) = layout.ambiguities
    assert layout.positive is None and amb.override == "positive" and "--positive" in str(amb)
    assert any("AMBIGUOUS positive" in line for line in layout.summary())
    assert _detect(dvc, positive="dog")[0].positive == "dog"
    with pytest.raises(Exception, match="not a class"):
        L.detect(dvc, positive="horse")
    assert positive_class(["0", "1"], ["label"]).value == "1"
    assert positive_class(["cat", "dog"], ["label"], ("id", "dog"), ("0.5",)).value == "dog"


def test_facts_of_the_other_layouts(built):
    layout, train, _ = _detect(built["plant-pathology-2020-fgvc7"].path)
    assert layout.label_columns == ("healthy", "multiple_diseases", "rust", "scab") and not train.multilabel
    assert layout.test_sources == ("test.csv",)
    layout, _, _ = _detect(built["planet-understanding-the-amazon-from-space"].path)
    assert layout.test_sources == ("test-jpg/", "test-jpg-additional/")
    layout, _, _ = _detect(built["aptos2019-blindness-detection"].path)
    assert layout.test_sources == ("test.csv",)
    layout, _, _ = _detect(built["cassava-leaf-disease-classification"].path)
    assert layout.fact("class_names_file").value == "label_num_to_disease_map.json"
    layout, train, _ = _detect(built["plant-seedlings-classification"].path)
    assert "Common Chickweed" in train.classes and "Loose Silky-bent" in train.classes
    layout, _, test = _detect(built["imaterialist-test-folder"].path)
    assert layout.test_sources == ("test/",) and not test.labelled


def test_overrides_settle_the_kind(built):
    comp = built["plant-pathology-2020-fgvc7"]
    layout, train, _ = _detect(comp.path, multilabel=True)
    assert train.multilabel and layout.fact("multilabel").reason == "set by multilabel="


# --------------------------------------------------------------------------- unit cases
def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        Image.fromarray(np.full((8, 8, 3), i % 255, "uint8")).save(folder / n)


FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_ankle_boot_is_single_label(tmp_path):
    ids = [f"f{i}" for i in range(60)]
    _images(tmp_path / "train", [f"{i}.png" for i in ids])
    labels = [FASHION[i % 10] for i in range(60)]
    pd.DataFrame({"id": ids, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    table = L.from_csv(tmp_path / "train.csv")
    assert not table.multilabel and "Ankle boot" in table.classes and len(table.classes) == 10
    layout = L.detect(tmp_path)
    assert layout.multilabel is False and "vocabulary" in layout.fact("multilabel").reason
    assert {a.override for a in layout.ambiguities} == {"id_extension", "test"}  # no sample, no test images: said so
    assert L.from_csv(tmp_path / "train.csv", multilabel=True).multilabel  # the override still splits
    # Few rows: single-label is the default, but reported as unsure with its override.
    pd.DataFrame({"id": ids[:4], "label": ["Ankle boot", "Bag", "Sneaker", "Ankle boot"]}).to_csv(tmp_path / "train.csv", index=False)
    layout = L.detect(tmp_path)
    assert layout.multilabel is False and "multilabel" in [a.override for a in layout.ambiguities]
    # A test folder named explicitly settles the "no test images" ambiguity.
    _images(tmp_path / "holdout", ["h1.png", "h2.png"])
    layout = L.detect(tmp_path, test="holdout", multilabel=False)
    assert layout.test_count == 2 and {a.override for a in layout.ambiguities} == {"id_extension"}


def test_label_kind_evidence():
    assert label_kind(["clear primary", "primary", "haze primary water"]).value is True  # "primary" alone and inside: tags
    seedlings = ["Common Chickweed", "Common wheat", "Fat Hen", "Maize", "Sugar beet"] * 6
    guess = label_kind(seedlings)
    assert guess.value is False and guess.sure
    assert label_kind(["a b", "c d"], sample_cells=["0.5", "0.5"]).value is False
    assert label_kind(["x", "y"]).value is False


def test_class_names_with_spaces_round_trip(tmp_path):
    names = ["Common Chickweed", "Sugar beet", "Maize"]
    for k, n in enumerate(names):
        _images(tmp_path / "src" / n, [f"{n[:2]}{i}.png" for i in range(3)])
    table = L.from_folders(tmp_path / "src", ids="stem")
    assert set(table.classes) == set(names)
    written = L.write_class_folders(table, tmp_path / "out")
    back = L.from_folders(tmp_path / "out", ids="stem")
    assert sorted(zip(back.ids, back.labels)) == sorted(zip(table.ids, table.labels)) and written.classes == table.classes
    assert LabelTable.read_csv(table.to_csv(tmp_path / "t.csv")).equals(table)
    # Narrow CSV, one whole name per cell.
    path = L.write_multihot_csv(table, tmp_path / "labels.csv")
    frame = pd.read_csv(path)
    assert set(frame["labels"]) == set(names)
    _images(tmp_path / "flat", [Path(p).name for p in table.paths])
    assert sorted(L.from_csv(path, images=tmp_path / "flat", multilabel=False).labels) == sorted(table.labels)
    # Multi-label with spaced names: written wide, read back the same.
    multi = LabelTable.from_records(table.ids, table.paths, [(x[0], "Maize") if x[0] != "Maize" else (x[0],) for x in table.labels],
                                    multilabel=True)
    wide = L.write_multihot_csv(multi, tmp_path / "multi.csv")
    assert pd.read_csv(wide).columns.tolist() == ["image", *multi.classes]
    read = L.from_csv(wide, images=tmp_path / "flat")
    assert read.multilabel and read.classes == multi.classes
    assert sorted(map(sorted, read.labels)) == sorted(map(sorted, multi.labels))


@pytest.mark.parametrize("content, match", [
    ("", r"train.csv is empty.*Download it again"),
    ('id,label\n1,2,3,4\n5,6,7\n"x', r"train.csv cannot be read as a CSV.*delimiter="),
])
def test_empty_or_garbled_csv_is_a_layout_error(tmp_path, content, match):
    _images(tmp_path / "train", ["1.png", "2.png"])
    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(LayoutError, match=match):
        L.detect(tmp_path)
    with pytest.raises(LayoutError, match=match):
        L.from_csv(tmp_path / "train.csv")


def test_group_split_never_shares_a_group_and_stratifies(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    groups = [f"p{int(g)}" for g in rng.integers(0, 25, n)]
    labels = [f"c{int(c)}" for c in rng.integers(0, 4, n)]
    table = LabelTable.from_records([str(i) for i in range(n)], [f"/x/{i}.png" for i in range(n)], labels, groups=groups)
    for seed in range(5):
        train, valid = L.split(table, valid=0.2, seed=seed)
        assert not set(train.groups) & set(valid.groups)
        assert len(train) + len(valid) == n and abs(len(valid) - 60) <= 30
        assert set(x[0] for x in valid.labels) == set(table.classes)
    explicit = L.split(table.with_groups(None), valid=0.2, seed=1, groups=groups)
    assert not set(explicit[0].ids) & set(explicit[1].ids)
    assert not {groups[int(i)] for i in explicit[0].ids} & {groups[int(i)] for i in explicit[1].ids}
    plain = L.split(table, valid=0.2, seed=1, groups=None)  # groups ignored on request
    assert len(plain[1]) == 60
    multi = LabelTable.from_records(table.ids, table.paths, [(x[0], "z") for x in table.labels], multilabel=True, groups=groups)
    tr, va = L.split(multi, valid=0.2, seed=0)
    assert not set(tr.groups) & set(va.groups)
    back = LabelTable.read_csv(table.to_csv(tmp_path / "g.csv"))
    assert back.groups == groups and back.equals(table) and table.take([0, 5]).groups == [groups[0], groups[5]]


def test_detect_logs_its_summary_at_debug_level(built, caplog):
    # run and doctor show the summary themselves (once); detect's own record is for debugging
    with caplog.at_level(logging.DEBUG, logger="kagglekit"):
        _detect(built["aerial-cactus-identification"].path)
    records = [r for r in caplog.records if "positive: 1" in r.getMessage()]
    assert records and all(r.levelno == logging.DEBUG for r in records)


def test_test_ids_from_the_sample_in_a_shared_folder(tmp_path):
    _images(tmp_path / "images", [f"img{i}.jpg" for i in range(30)])
    pd.DataFrame({"name": [f"img{i}.jpg" for i in range(24)], "label": ["a", "b", "c"] * 8}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"name": [f"img{i}.jpg" for i in range(24, 30)], "label": "a"}).to_csv(tmp_path / "sample_submission.csv", index=False)
    layout = L.detect(tmp_path)
    train, test = layout.read()
    assert len(train) == 24 and layout.id_column == "name" and layout.id_extension
    assert test.ids == [f"img{i}.jpg" for i in range(24, 30)] and layout.test_sources == ("sample_submission.csv",)
    assert [a.override for a in layout.ambiguities] == ["test"]  # a guess, said so with its override
