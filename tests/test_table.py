import numpy as np
import pandas as pd
import pytest

from kagglekit import LabelTable
from kagglekit.errors import TableError


def _table(tmp_path, labels, multilabel=None, classes=None):
    paths = []
    for i, _ in enumerate(labels):
        p = tmp_path / f"{i}.png"
        p.write_bytes(b"x")
        paths.append(p)
    return LabelTable.from_records(range(len(labels)), paths, labels, classes=classes, multilabel=multilabel)


def test_single_label_targets(tmp_path):
    t = _table(tmp_path, ["b", "a", "10", "2"])
    assert t.classes == ("2", "10", "a", "b")
    assert not t.multilabel
    assert t.targets().tolist() == [3, 2, 1, 0]
    assert t.targets("onehot").shape == (4, 4) and t.targets("onehot")[0, 3] == 1
    with pytest.raises(TableError):
        t.targets("bogus")


def test_multilabel_targets_and_roundtrip(tmp_path):
    t = _table(tmp_path, ["1 2", "3", "", "2 3"])
    assert t.multilabel
    mh = t.targets()
    assert mh.tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 1, 1]]
    with pytest.raises(TableError, match="multihot"):
        t.targets("int")
    back = LabelTable.read_csv(t.to_csv(tmp_path / "t.csv"))
    assert back.equals(t)


def test_validate_names_offenders(tmp_path):
    t = _table(tmp_path, ["a", "b", "a"])
    t.frame.loc[1, "id"] = "0"
    with pytest.raises(TableError, match=r"ids appear more than once: 0"):
        LabelTable(t.frame).validate()
    t = _table(tmp_path, ["a", "b", "c"], classes=["a", "b"])
    with pytest.raises(TableError, match="outside the class vocabulary: c"):
        t.validate()
    t = _table(tmp_path, ["a", "b"], classes=["a", "b", "z"])
    with pytest.raises(TableError, match="classes have no images: z"):
        t.validate()
    t = LabelTable.from_records(["x"] * 1 + [f"m{i}" for i in range(7)], [tmp_path / f"nope{i}.png" for i in range(8)], ["a"] * 8)
    with pytest.raises(TableError, match=r"8 image files do not exist: .*and 5 more; 8 in all"):
        t.validate()


def test_class_names_with_spaces_stay_whole_and_round_trip(tmp_path):
    t = _table(tmp_path, ["Ankle boot", "Bag", "Ankle boot"], multilabel=False)
    assert t.classes == ("Ankle boot", "Bag") and not t.multilabel
    back = LabelTable.read_csv(t.to_csv(tmp_path / "t.csv"))
    assert back.equals(t) and back.labels[0] == ("Ankle boot",)
    m = LabelTable.from_records(["a", "b"], ["a.png", "b.png"], [("Common wheat", "Maize"), ()], multilabel=True)
    assert LabelTable.read_csv(m.to_csv(tmp_path / "m.csv")).equals(m)


def test_groups_column_is_kept(tmp_path):
    t = LabelTable.from_records(["a", "b", "c"], ["a.png", "b.png", "c.png"], ["x", "y", "x"], groups=["p1", "p2", "p1"])
    assert t.groups == ["p1", "p2", "p1"] and t.take([2, 1]).groups == ["p1", "p2"]
    assert t.with_classes(["x", "y", "z"]).groups == t.groups and t.with_groups(None).groups is None
    back = LabelTable.read_csv(t.to_csv(tmp_path / "g.csv"))
    assert back.equals(t) and not back.equals(t.with_groups(None))
    with pytest.raises(TableError, match="one group per row"):
        t.with_groups(["p1"])
