"""Readers, writers and splits on real images: scikit-learn's 1,797 digits in every layout."""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kagglekit import LabelTable
from kagglekit import layout as L
from kagglekit.errors import ConfigError, KaggleKitError, LayoutError, TableError
from kagglekit.io import file_digest
from kagglekit.table import natural_key
from kagglekit.testing.competitions import build_competition, digits, mosaic, to_rgb

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def digit_pngs():
    """All 1,797 real digits as 16×16 PNG bytes, ids '00000'..., labels '0'..'9'."""
    images, labels = digits()
    ids = [f"{i:05d}" for i in range(len(images))]
    return ids, [str(int(y)) for y in labels], [_png(to_rgb(im, 16, tint=i)) for i, im in enumerate(images)]


@pytest.fixture(scope="module")
def mosaics():
    """450 2×2 mosaics (16×16 PNG) of real digits; labels = the digits present (1 to 4)."""
    images, labels = digits()
    rng = np.random.default_rng(1)
    out = []
    for i in range(len(images) // 4):
        tiles = [images[4 * i + k] for k in range(4)]
        blanks = rng.choice(4, size=rng.integers(0, 3), replace=False)
        present = sorted({str(int(labels[4 * i + k])) for k in range(4) if k not in blanks})
        tiles = [np.zeros((8, 8), "uint8") if k in blanks else t for k, t in enumerate(tiles)]
        out.append((str(i + 1), _png(mosaic(tiles, 16)), tuple(present)))
    return out


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _rows(table: LabelTable) -> list[tuple[str, tuple[str, ...]]]:
    return sorted(zip(table.ids, table.labels))


# ------------------------------------------------------------------ single-label readers
def test_every_single_label_layout_reads_back_the_same_table(tmp_path, digit_pngs):
    ids, labels, pngs = digit_pngs
    root = tmp_path.absolute()

    # Reference: id CSV + folder, ids without extension (the extension is detected).
    paths = [_write(root / "csv" / "train" / f"{i}.png", b) for i, b in zip(ids, pngs)]
    pd.DataFrame({"id": ids, "label": labels}).to_csv(root / "csv" / "train.csv", index=False)
    expected = LabelTable.from_records(ids, paths, [(y,) for y in labels], multilabel=False)
    table = L.from_csv(root / "csv" / "train.csv")
    assert table.equals(expected)
    assert table.classes == tuple(str(d) for d in range(10))
    assert L.from_csv(root / "csv" / "train.csv", images=root / "csv" / "train", ext="png").equals(expected)
    assert L.from_csv(root / "csv" / "train.csv", ext=".png", id_col="id", label_col="label").equals(expected)

    # Ids that already carry the extension, odd column names chosen explicitly.
    pd.DataFrame({"file": [f"{i}.png" for i in ids], "digit": labels, "extra": 1}).to_csv(root / "csv" / "named.csv", index=False)
    named = L.from_csv(root / "csv" / "named.csv", images=root / "csv" / "train", label_col="digit")
    assert named.paths == paths and [x[0] for x in named.labels] == labels

    # Labels in file names (Dogs vs. Cats style), with a mapping back to digit names.
    order = sorted(range(len(ids)), key=lambda k: (NAMES[int(labels[k])], ids[k]))
    for k in order:
        _write(root / "fn" / f"{NAMES[int(labels[k])]}.{ids[k]}.png", pngs[k])
    by_name = L.from_filenames(root / "fn", pattern=r"^(?P<label>[a-z]+)\.(?P<id>\d+)\.",
                               mapping={n: str(d) for d, n in enumerate(NAMES)})
    assert by_name.equals(LabelTable.from_records(
        [ids[k] for k in order], [str(root / "fn" / f"{NAMES[int(labels[k])]}.{ids[k]}.png") for k in order],
        [(labels[k],) for k in order], multilabel=False))
    stems = L.from_filenames(root / "fn", pattern=r"^([a-z]+)\.")
    assert stems.ids[0] == f"eight.{ids[order[0]]}" and stems.classes == tuple(sorted(NAMES))

    # Class folders, flat and nested (class = first-level folder).
    for k in range(len(ids)):
        _write(root / "cf" / labels[k] / f"{ids[k]}.png", pngs[k])
        _write(root / "nested" / labels[k] / f"part{int(ids[k]) % 3}" / f"{ids[k]}.png", pngs[k])
    order = sorted(range(len(ids)), key=lambda k: (int(labels[k]), ids[k]))
    flat = L.from_folders(root / "cf", ids="stem")
    assert flat.equals(LabelTable.from_records(
        [ids[k] for k in order], [str(root / "cf" / labels[k] / f"{ids[k]}.png") for k in order],
        [(labels[k],) for k in order], multilabel=False))
    nested = L.from_folders(root / "nested")
    order = sorted(range(len(ids)), key=lambda k: (int(labels[k]), int(ids[k]) % 3, ids[k]))
    rel = [f"{labels[k]}/part{int(ids[k]) % 3}/{ids[k]}" for k in order]
    assert nested.equals(LabelTable.from_records(
        rel, [str(root / "nested" / f"{r}.png") for r in rel], [(labels[k],) for k in order], multilabel=False))
    assert _rows(L.from_folders(root / "nested", ids="stem")) == _rows(expected)

    for other in (by_name, flat):
        assert _rows(other) == _rows(expected) and other.classes == expected.classes and not other.multilabel


def test_unlabelled_test_folder(tmp_path, digit_pngs):
    ids, _, pngs = digit_pngs
    for i, b in zip(ids[:30], pngs[:30]):
        _write(tmp_path / "test1" / f"{int(i) + 1}.png", b)
    (tmp_path / "test1" / "notes.txt").write_text("not an image")
    table = L.unlabelled(tmp_path / "test1")
    assert table.ids == [str(k) for k in range(1, 31)]  # natural order: 2 before 10
    assert table.classes == () and not table.labelled
    assert table.paths[0] == str(tmp_path.absolute() / "test1" / "1.png")


# -------------------------------------------------------------------- multi-label readers
def test_multilabel_csv_wide_csv_and_imaterialist_json_agree(tmp_path, mosaics):
    root = tmp_path.absolute()
    paths = [_write(root / "train-jpg" / f"m{i}.png", b) for i, b, _ in mosaics]
    ids = [f"m{i}" for i, _, _ in mosaics]
    labels = [y for _, _, y in mosaics]
    expected = LabelTable.from_records(ids, paths, labels, multilabel=True)
    assert expected.multilabel and expected.classes == tuple(str(d) for d in range(10))

    pd.DataFrame({"image_name": ids, "tags": [" ".join(y) for y in labels]}).to_csv(root / "train_v2.csv", index=False)
    assert L.from_csv(root / "train_v2.csv").equals(expected)  # folder train-jpg/ and .png found alone

    spaced = L.write_multihot_csv(expected, root / "spaced.csv")
    assert pd.read_csv(spaced, dtype=str).columns.tolist() == ["image", "labels"]
    assert L.from_csv(spaced, images=root / "train-jpg").equals(expected)
    wide = L.write_multihot_csv(expected, root / "wide.csv", wide=True)
    frame = pd.read_csv(wide, dtype=str)
    assert frame.columns.tolist() == ["image", *expected.classes]
    assert set(frame.iloc[:, 1:].stack()) == {"0", "1"}
    assert L.from_csv(wide, images=root / "train-jpg").equals(expected)
    assert not list(root.glob(".*.part"))  # atomic writes leave no temporaries

    # iMaterialist JSON: label ids are the digits + 1, test JSON without annotations.
    im = root / "imat"
    doc = {"images": [], "annotations": []}
    for i, b, y in mosaics:
        _write(im / "train" / f"{i}.png", b)
        doc["images"].append({"imageId": i, "url": f"https://example.invalid/{i}.jpg"})
        doc["annotations"].append({"imageId": i, "labelId": [str(int(d) + 1) for d in y]})
    (im / "train.json").write_text(json.dumps(doc))
    table = L.from_imaterialist_json(im / "train.json")
    assert table.multilabel and table.classes == tuple(str(d) for d in range(1, 11))
    assert table.ids == [i for i, _, _ in mosaics]
    assert [tuple(str(int(d) - 1) for d in x) for x in table.labels] == labels
    out = L.imaterialist_to_csv(im / "train.json", im / "train_labels.csv")
    assert pd.read_csv(out, dtype=str).columns.tolist() == ["image", "labels"]
    assert L.from_csv(out, images=im / "train").equals(table)

    test = {"images": [{"imageId": i, "url": "u"} for i, _, _ in mosaics[:20]]}
    (im / "test.json").write_text(json.dumps(test))
    shutil.copytree(im / "train", im / "test")
    unl = L.from_imaterialist_json(im / "test.json")
    assert len(unl) == 20 and not unl.labelled and unl.classes == ()
    assert L.imaterialist_to_csv(im / "test.json", im / "t.csv").read_text().splitlines()[1] == f"{mosaics[0][0]},"


# ------------------------------------------------------------------------------ errors
def test_reader_errors_name_the_offenders(tmp_path, digit_pngs):
    ids, labels, pngs = digit_pngs
    root = tmp_path.absolute()
    for i, b in zip(ids[:20], pngs[:20]):
        _write(root / "train" / f"{i}.png", b)
    pd.DataFrame({"id": ids[:20], "label": labels[:20]}).to_csv(root / "train.csv", index=False)

    (root / "train" / "00003.png").unlink()
    with pytest.raises(LayoutError, match=r"1 of 20 images .* not in .*: 00003.*missing='drop'"):
        L.from_csv(root / "train.csv")
    with pytest.warns(UserWarning, match="Dropped 1 rows .*00003"):
        dropped = L.from_csv(root / "train.csv", missing="drop")
    assert len(dropped) == 19 and "00003" not in dropped.ids

    _write(root / "train" / "00003.png", pngs[3])
    _write(root / "train" / "00005.jpg", pngs[5])
    with pytest.raises(LayoutError, match=r"00005 \(00005.jpg, 00005.png\).*ext="):
        L.from_csv(root / "train.csv")
    assert len(L.from_csv(root / "train.csv", ext="png")) == 20
    with pytest.raises(LayoutError, match=r"20 of 20 .*00000.*extensions present in the folder: \.jpg, \.png"):
        L.from_csv(root / "train.csv", ext=".bmp")
    with pytest.raises(LayoutError, match=r"image folder .*nowhere.* does not exist"):
        L.from_csv(root / "train.csv", images=root / "nowhere")

    # Values that name no file and no usual column name: nothing tells the id column apart.
    # (Before, the ids 00000.. were used here; detection now finds the column whose values name files.)
    pd.DataFrame({"a": ["q1", "q2", "q3"], "b": labels[:3], "c": ["x", "y", "z"]}).to_csv(root / "odd.csv", index=False)
    with pytest.raises(LayoutError, match=r"image ids \(columns: a, b, c\).*id_col"):
        L.from_csv(root / "odd.csv")
    with pytest.raises(LayoutError, match=r"labels \(columns: a, b, c\).*label_col"):
        L.from_csv(root / "odd.csv", id_col="a")
    with pytest.raises(LayoutError, match=r"no column 'label'.*a, b, c"):
        L.from_csv(root / "odd.csv", id_col="a", label_col="label")
    pd.DataFrame({"id": ids[:3], "label": ["1", "", "2"]}).to_csv(root / "holes.csv", index=False)
    with pytest.raises(LayoutError, match=r"1 rows .* no label .*00001"):
        L.from_csv(root / "holes.csv", images=root / "train")

    _write(root / "fn" / "cat.1.png", pngs[0])
    _write(root / "fn" / "dog.2.png", pngs[1])
    _write(root / "fn" / "bird_3.png", pngs[2])
    with pytest.raises(LayoutError, match=r"1 of 3 images .* do not match .*: bird_3.png.*unmatched='skip'"):
        L.from_filenames(root / "fn", pattern=r"^(cat|dog)\.")
    assert L.from_filenames(root / "fn", unmatched="skip").classes == ("cat", "dog")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        L.from_filenames(root / "fn", pattern="(")

    _write(root / "cf" / "a" / "1.png", pngs[0])
    _write(root / "cf" / "stray.png", pngs[1])
    with pytest.raises(LayoutError, match=r"1 images lie directly in .*: stray.png"):
        L.from_folders(root / "cf")
    (root / "cf" / "stray.png").unlink()
    _write(root / "cf" / "b" / "1.png", pngs[1])
    with pytest.raises(TableError, match=r"ids appear more than once: 1"):
        L.from_folders(root / "cf", ids="stem")
    assert L.from_folders(root / "cf").ids == ["a/1", "b/1"]

    (root / "bad.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(LayoutError, match=r"needs an 'images' list \(found \['annotations'\]\)"):
        L.from_imaterialist_json(root / "bad.json", images=root / "train")
    (root / "zipped.zip").write_bytes(b"PK")
    with pytest.raises(LayoutError, match=r"zipped.zip does: unpack it first"):
        L.unlabelled(root / "zipped")


# ------------------------------------------------------------------------------ writers
@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_write_class_folders_round_trip_idempotent_source_untouched(tmp_path, digit_pngs, mode):
    ids, labels, pngs = digit_pngs
    n = 300
    for i, y, b in zip(ids[:n], labels[:n], pngs[:n]):
        _write(tmp_path / "src" / f"{NAMES[int(y)]}.{i}.png", b)
    table = L.from_filenames(tmp_path / "src", pattern=r"^([a-z]+)\.")
    before = {p: (file_digest(p), os.stat(p).st_mtime_ns, os.stat(p).st_nlink) for p in table.paths}

    written = L.write_class_folders(table, tmp_path / "out", mode=mode)
    back = L.from_folders(tmp_path / "out", ids="stem")
    assert _rows(back) == _rows(table) and back.classes == table.classes
    assert _rows(written) == _rows(table)
    for src, dst in zip(table.paths, written.paths):
        assert Path(dst).parent.name == src.rsplit("/", 1)[-1].split(".")[0]
        assert file_digest(dst) == before[src][0]
        assert os.path.islink(dst) == (mode == "symlink")
        assert os.path.samefile(src, dst) == (mode != "copy")
    stamp = {p: os.lstat(p).st_mtime_ns for p in written.paths}

    again = L.write_class_folders(table, tmp_path / "out", mode=mode)  # idempotent: nothing rewritten
    assert again.equals(written)
    assert {p: os.lstat(p).st_mtime_ns for p in again.paths} == stamp
    assert sum(1 for _ in (tmp_path / "out").rglob("*")) == n + len(table.classes)
    for p, (digest, mtime, nlink) in before.items():
        assert (file_digest(p), os.stat(p).st_mtime_ns) == (digest, mtime) and not os.path.islink(p)

    switched = L.write_class_folders(table, tmp_path / "out", mode="copy" if mode != "copy" else "symlink")
    assert all(os.path.islink(p) == (mode == "copy") for p in switched.paths)
    assert all(file_digest(p) == before[s][0] for p, s in zip(switched.paths, table.paths))


def test_writer_refusals(tmp_path, mosaics):
    paths = [_write(tmp_path / f"{i}.png", b) for i, b, _ in mosaics[:10]]
    multi = LabelTable.from_records([i for i, _, _ in mosaics[:10]], paths, [y for _, _, y in mosaics[:10]], multilabel=True)
    with pytest.raises(LayoutError, match="multi-label table cannot be written as class folders.*write_multihot_csv"):
        L.write_class_folders(multi, tmp_path / "out")
    single = LabelTable.from_records(["a", "b"], paths[:2], ["x", "y"])
    with pytest.raises(ConfigError, match="mode='move'"):
        L.write_class_folders(single, tmp_path / "out", mode="move")
    with pytest.raises(LayoutError, match="rows have no label.*: b"):
        L.write_class_folders(LabelTable.from_records(["a", "b"], paths[:2], ["x", ""]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- splits
def _digit_table(tmp_path, digit_pngs, n=None):
    ids, labels, _ = digit_pngs
    n = n or len(ids)
    return LabelTable.from_records(ids[:n], [str(tmp_path / f"{i}.png") for i in ids[:n]], labels[:n])


def test_stratified_split_keeps_every_class_ratio_within_one_point(tmp_path, digit_pngs):
    table = _digit_table(tmp_path, digit_pngs)
    full = table.counts() / len(table)
    for seed in (0, 1, 2):
        train, valid = L.split(table, valid=0.2, seed=seed)
        assert len(valid) == round(0.2 * len(table)) and len(train) + len(valid) == len(table)
        assert not set(train.ids) & set(valid.ids)
        assert train.classes == valid.classes == table.classes
        for side in (train, valid):
            assert (side.counts() / len(side) - full).abs().max() < 0.01
        assert train.ids == sorted(train.ids)  # original order kept
    a, b = L.split(table, valid=0.2, seed=5), L.split(table, valid=0.2, seed=5)
    assert a[1].ids == b[1].ids and a[1].ids != L.split(table, valid=0.2, seed=6)[1].ids
    assert len(L.split(table, valid=300)[1]) == 300


def test_split_single_image_class_stays_in_train_and_bad_fractions(tmp_path, digit_pngs):
    table = _digit_table(tmp_path, digit_pngs, 200)
    frame = table.frame.copy()
    frame.loc[7, "labels"] = ("lonely",)
    odd = LabelTable(frame)
    with pytest.warns(UserWarning, match=r"1 classes have a single image.*lonely.*stay in train"):
        train, valid = L.split(odd, valid=0.25)
    assert odd.ids[7] in train.ids and len(valid) == 50
    for bad in (0.0, 1.0, -0.1, 1.5, 0, 200, "0.2", True):
        with pytest.raises(ConfigError, match=r"valid="):
            L.split(table, valid=bad)
    with pytest.raises(TableError, match=r"needs between 10 and .* validation images, not 3"):
        L.split(table, valid=3)


def test_iterative_stratification_keeps_every_label_on_both_sides(tmp_path, mosaics):
    ids = [i for i, _, _ in mosaics]
    labels = [list(y) for _, _, y in mosaics]
    # 40 rare labels carried by 2 or 3 images each, on top of the ten digits.
    rng = np.random.default_rng(0)
    for r in range(40):
        for row in rng.choice(len(ids), size=2 + r % 2, replace=False):
            labels[row].append(f"rare{r}")
    table = LabelTable.from_records(ids, [str(tmp_path / f"{i}.png") for i in ids], labels, multilabel=True)
    counts = table.counts()
    for seed in range(4):
        train, valid = L.split(table, valid=0.2, seed=seed)
        assert len(train) + len(valid) == len(table) and not set(train.ids) & set(valid.ids)
        for c, n in counts.items():
            if n >= 2:
                assert train.counts()[c] >= 1 and valid.counts()[c] >= 1, (seed, c)
        assert abs(len(valid) - 0.2 * len(table)) <= 1
    assert L.split(table, seed=3)[1].ids == L.split(table, seed=3)[1].ids

    # The post-fix on its own: a split that misses labels on either side.
    y = table.targets("multihot").astype(int)
    side = np.zeros(len(y), dtype=bool)
    side[:90] = True
    side[np.flatnonzero(y[:, list(table.classes).index("rare0")])] = False
    side[np.flatnonzero(y[:, list(table.classes).index("rare1")])] = True
    L._fix_sides(y, side, np.random.default_rng(0))
    both = y[side].sum(0).clip(max=1) + y[~side].sum(0).clip(max=1)
    assert (both[y.sum(0) >= 2] == 2).all()
    assert side.sum() == 90 + len(np.flatnonzero(y[:, list(table.classes).index("rare1")])) - sum(
        1 for r in np.flatnonzero(y[:, list(table.classes).index("rare1")]) if r < 90)


def test_sample_is_stratified_and_seeded(tmp_path, digit_pngs, mosaics):
    table = _digit_table(tmp_path, digit_pngs)
    share = table.counts() / len(table)
    small = L.sample(table, n=100, seed=0)
    assert len(small) == 100 and small.classes == table.classes
    assert ((small.counts() - 100 * share).abs() < 1).all()
    assert L.sample(table, frac=0.1, seed=0).ids == L.sample(table, frac=0.1, seed=0).ids
    assert L.sample(table, frac=0.1, seed=0).ids != L.sample(table, frac=0.1, seed=1).ids
    assert len(L.sample(table, frac=0.1)) == 180
    tiny = L.sample(table, n=10)
    assert sorted(x[0] for x in tiny.labels) == list(table.classes)  # one of each class
    assert L.sample(table, n=len(table)).equals(table)
    multi = LabelTable.from_records([i for i, _, _ in mosaics], [str(tmp_path / i) for i, _, _ in mosaics],
                                    [y for _, _, y in mosaics], multilabel=True)
    assert len(L.sample(multi, n=50)) == 50
    for kwargs in ({}, {"n": 5, "frac": 0.1}, {"n": 0}, {"n": 5000}, {"frac": 0.0}, {"frac": 1.5}):
        with pytest.raises(ConfigError):
            L.sample(table, **kwargs)


def test_split_arrays_is_sklearns_stratified_split_seeded_and_checked():
    from sklearn.model_selection import train_test_split

    images, labels = digits()
    n = len(images)
    (xt, yt), (xv, yv) = L.split_arrays(images, labels, valid=0.2, seed=3)
    assert len(xv) == len(yv) == int(np.ceil(0.2 * n)) and len(xt) + len(xv) == n and xt.shape[1:] == images.shape[1:]
    full = np.bincount(labels, minlength=10) / n
    for y in (yt, yv):  # stratified: every class keeps its share within one point
        assert np.abs(np.bincount(y, minlength=10) / len(y) - full).max() < 0.01
    rows = np.arange(n)  # rows as inputs: each lands on exactly one side
    (rt, _), (rv, _) = L.split_arrays(rows, labels, valid=0.2, seed=3)
    assert sorted(np.concatenate([rt, rv]).tolist()) == rows.tolist()
    assert (images[rv] == xv).all() and (labels[rv] == yv).all()
    # Exactly scikit-learn's call; the same seed gives the same split, another seed another one.
    ref = train_test_split(rows, labels, test_size=0.2, random_state=3, stratify=labels)
    assert (ref[1] == rv).all() and (ref[0] == rt).all()
    assert (L.split_arrays(rows, labels, 0.2, seed=3)[1][0] == rv).all()
    assert not np.array_equal(L.split_arrays(rows, labels, 0.2, seed=4)[1][0], rv)
    assert len(L.split_arrays(rows, labels, valid=300)[1][0]) == 300
    # Multi-hot targets (2-D) are split without stratification.
    multihot = np.eye(10, dtype="float32")[labels]
    (_, mt), (_, mv) = L.split_arrays(rows, multihot, valid=0.25, seed=0)
    assert mv.shape == (int(np.ceil(0.25 * n)), 10) and len(mt) + len(mv) == n
    ref = train_test_split(rows, multihot, test_size=0.25, random_state=0, stratify=None)
    assert (ref[3] == mv).all()
    for bad in (0.0, 1.0, -0.1, 1.5, 0, n, "0.2", True):
        with pytest.raises(ConfigError, match=r"valid="):
            L.split_arrays(rows, labels, valid=bad)
    with pytest.raises(TableError, match=r"x has 10 rows but y has 9"):
        L.split_arrays(rows[:10], labels[:9], valid=0.2)
    with pytest.raises(TableError, match=r"stratified split of 20 rows with valid=3 is impossible"):
        L.split_arrays(rows[:20], np.arange(20) % 10, valid=3)  # 3 valid rows cannot hold 10 classes


def test_natural_key_is_the_one_order_of_names_and_files():
    assert L.natural_key is natural_key  # one key: layout re-exports table's
    names = ["b", "10", "cat.10.jpg", "a", "2", "cat.2.jpg", "-1", "0.5", "class10", "class2", "cat.02.jpg", "nan"]
    expected = ["-1", "0.5", "2", "10", "a", "b", "cat.02.jpg", "cat.2.jpg", "cat.10.jpg", "class2", "class10", "nan"]
    rng = np.random.default_rng(0)
    for _ in range(5):  # a total order: the input order never matters
        assert sorted(rng.permutation(names).tolist(), key=L.natural_key) == expected
    assert LabelTable.from_records(["x", "y", "z"], ["x", "y", "z"], ["class10", "class2", "class1"]).classes == (
        "class1", "class2", "class10")


# ---------------------------------------------------------------------------- detection
def test_detect_the_three_competition_layouts(digits_competition, dogs_vs_cats_dir, imaterialist_dir):
    layout = L.detect(digits_competition)
    assert layout.kind == "csv" and "from_csv" in str(layout) and "unlabelled" in str(layout)
    train, test = layout.read()
    answers = pd.read_csv(digits_competition / "train.csv", dtype=str)
    assert train.ids == answers["id"].tolist() and [x[0] for x in train.labels] == answers["label"].tolist()
    assert test.ids == pd.read_csv(digits_competition / "sample_submission.csv", dtype=str)["id"].tolist()

    train, test = L.read_competition(dogs_vs_cats_dir)
    assert L.detect(dogs_vs_cats_dir).kind == "filenames"
    assert train.classes == ("cat", "dog") and len(train) == 120 and train.ids[0] == "cat.0"
    assert sorted(test.ids, key=int) == pd.read_csv(dogs_vs_cats_dir / "sample_submission.csv", dtype=str)["id"].tolist()

    layout = L.detect(imaterialist_dir)
    assert layout.kind == "imaterialist-json" and layout.valid is not None
    train, test = layout.read()
    assert train.multilabel and len(train) == 120 and len(layout.valid.read()) == 30
    assert test.ids == pd.read_csv(imaterialist_dir / "sample_submission.csv", dtype=str)["image_id"].tolist()
    assert not test.labelled
    doc = json.loads((imaterialist_dir / "train.json").read_text())
    assert [list(x) for x in train.labels] == [a["labelId"] for a in doc["annotations"]]


def test_detect_kaggle_quirks_and_other_layouts(tmp_path, digit_pngs):
    comp = build_competition("dogs-vs-cats", tmp_path / "dvc", n_train=30, n_test=6, size=16)
    with pytest.raises(LayoutError, match=r"Found: sample_submission.csv; test.zip; train.zip.*unpack them.*from_filenames"):
        L.detect(comp)
    import zipfile

    for name in ("train", "test"):  # unpack one level too deep: train/train/..., and test as test1/
        with zipfile.ZipFile(comp / f"{name}.zip") as zf:
            zf.extractall(comp / (name if name == "train" else "test1"))
    assert (comp / "train" / "train").is_dir()
    train, test = L.read_competition(comp)
    assert len(train) == 30 and train.classes == ("cat", "dog") and len(test) == 6
    assert "test1" in str(L.detect(comp))

    imat = build_competition("imaterialist-fashion", tmp_path / "imat", n_train=20, n_valid=6, n_test=6, size=16, zipped=False)
    (imat / "train" / "7.jpg").unlink()  # a download that failed
    with pytest.raises(LayoutError, match=r"1 of 20 images of train.json .*: 7\b.*missing='drop'"):
        L.from_imaterialist_json(imat / "train.json")
    with pytest.warns(UserWarning, match=r"Dropped 1 rows .*: 7"):
        train, test = L.read_competition(imat)
    assert len(train) == 19 and "7" not in train.ids and len(test) == 6

    ids, labels, pngs = digit_pngs
    folders = tmp_path / "folders"
    for i, y, b in zip(ids[:60], labels[:60], pngs[:60]):
        _write(folders / "train" / y / f"{i}.png", b)
        _write(folders / "test" / f"{i}.png", b)
    layout = L.detect(folders)
    assert layout.kind == "class-folders"
    train, test = layout.read()
    assert _rows(L.from_folders(folders / "train", ids="stem")) == sorted(zip(ids[:60], [(y,) for y in labels[:60]]))
    assert len(train) == 60 and len(test) == 60

    generic = tmp_path / "generic"
    for i, b in zip(ids[:40], pngs[:40]):
        _write(generic / "images" / f"{i}.png", b)
    pd.DataFrame({"image_id": ids[:40], "class": labels[:40]}).to_csv(generic / "labels.csv", index=False)
    layout = L.detect(generic)
    assert layout.kind == "csv" and layout.test is None and "no test images" in str(layout)
    assert len(layout.read()[0]) == 40

    empty = tmp_path / "nothing"
    (empty / "stuff").mkdir(parents=True)
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(LayoutError, match=r"Found: readme.txt; stuff/ \(0 images.*from_csv\(csv, images=folder"):
        L.detect(empty)
    with pytest.raises(LayoutError, match="does not exist"):
        L.detect(tmp_path / "absent")
    assert issubclass(LayoutError, KaggleKitError)


def test_pixel_csv_layout_is_detected_and_written_once(tmp_path):
    from kagglekit.testing.competitions import build_competition

    comp = build_competition("fashion-mnist", tmp_path / "fm", n_train=120, n_test=30)
    found = L.detect(comp)
    assert found.kind == "pixel-csv"
    train, test = found.read()
    assert len(train) == 120 and len(test) == 30 and not train.multilabel
    assert test.ids[:3] == ["1", "2", "3"] and not test.classes
    frame = pd.read_csv(comp / "train.csv")
    assert train.labels[0] == (str(frame["label"][0]),)
    from PIL import Image

    pic = np.asarray(Image.open(train.paths[5]))
    assert pic.shape == (28, 28) and (pic.reshape(-1) == frame.iloc[5, 1:].to_numpy()).all()
    mtime = Path(train.paths[0]).stat().st_mtime_ns
    again, _ = L.read_competition(comp)  # second read: nothing rewritten
    assert again.equals(train) and Path(train.paths[0]).stat().st_mtime_ns == mtime


def test_the_label_column_says_whether_it_was_given_or_found(tmp_path):
    """A label column named by label_col= says so; one found says why (its usual name, or the only column left)."""
    from PIL import Image

    (tmp_path / "train").mkdir()
    for i in range(6):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "train" / f"im{i}.png")
    rows = "".join(f"im{i},{'ab'[i % 2]},{'xy'[i % 2]}\n" for i in range(6))
    (tmp_path / "train.csv").write_text("id,label,kind\n" + rows)
    given = L.detect(tmp_path, label_col="kind").fact("label_columns")
    assert given.value == ("kind",) and given.reason == "set by label_col="
    found = L.detect(tmp_path).fact("label_columns")
    assert found.value == ("label",) and found.reason == "column 'label' has a usual label name"
