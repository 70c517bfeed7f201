"""Zoo builders, first family: Dogs vs. Cats Redux, Planet, iMaterialist 2018, Plant Seedlings, Aerial Cactus, Histopathology.

Each builder writes one competition exactly as Kaggle ships it (after unzipping) and
returns a `ZooCompetition`. The format facts each relies on, and where they were
found, are in the comment above each builder.
"""
from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .competitions import DOGS_VS_CATS_DIGITS, imaterialist_label_id
from .zoo_base import DigitPool, ZooCompetition, hex_ids, mosaic, photo_crop, picture, sized, split_counts


# Dogs vs. Cats Redux (dogs-vs-cats-redux-kernels-edition). Relied on: openai/mle-bench
# competitions/dogs-vs-cats-redux-kernels-edition/prepare.py (train/cat.<n>.jpg and dog.<n>.jpg counted
# separately from 0, test/<n>.jpg numbered from 1, sample_submission.csv `id,label` = 0.5, answers
# label = 1 for dog) and its Kaggle evaluation text (log loss on P(dog)). Photos vary in size.
def build_dogs_vs_cats_redux(root: Path, n_train: int = 40, n_test: int = 16, seed: int = 0,
                             image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the Dogs vs. Cats Redux competition built in `root` (train/cat.0.jpg, test/1.jpg)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    base = sized(image_size, (96, 80))

    def draw(animal: str, split: str) -> Image.Image:
        size = (max(16, int(base[0] * rng.uniform(0.75, 1.0))), max(16, int(base[1] * rng.uniform(0.75, 1.0))))
        digit = DOGS_VS_CATS_DIGITS[animal][int(rng.integers(2))]
        return picture(rng, pool.draw(rng, digit, split), size)

    counters = {"cat": 0, "dog": 0}
    for animal in split_counts(n_train, {"cat": 0.5, "dog": 0.5}, rng):
        draw(animal, "train").save(root / "train" / f"{animal}.{counters[animal]}.jpg", quality=90)
        counters[animal] += 1
    truth = []
    for i, animal in enumerate(split_counts(n_test, {"cat": 0.5, "dog": 0.5}, rng), start=1):
        draw(animal, "test").save(root / "test" / f"{i}.jpg", quality=90)
        truth.append((i, 1 if animal == "dog" else 0))
    answers = pd.DataFrame(truth, columns=["id", "label"])
    pd.DataFrame({"id": answers["id"], "label": 0.5}).to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "dogs-vs-cats-redux-kernels-edition", "log_loss", answers, id_column="id",
                          label_columns=("label",), label_kind="binary-probability",
                          classes=("cat", "dog"), test_source="test/", submission_columns=("id", "label"),
                          submission_kind="probability",
                          train_source="file names (cat.<n>.jpg / dog.<n>.jpg)", positive_class="dog",
                          notes=("test ids are integers from 1, without extension",))


PLANET_WEATHER = {"clear": 0.70, "partly_cloudy": 0.18, "haze": 0.07, "cloudy": 0.05}
# Land tags drawn as digit (index + 1) in grid cell (index) of a 3×3 grid; frequencies as in train_v2.csv,
# the rarest ones raised so a few thousand images carry them.
PLANET_LAND = {"primary": 0.93, "agriculture": 0.31, "road": 0.20, "water": 0.18, "habitation": 0.09,
               "cultivation": 0.11, "bare_ground": 0.05, "artisinal_mine": 0.04, "blooming": 0.04}


# Planet: Understanding the Amazon from Space. Relied on: the competition's data page (quoted in public
# READMEs found with the search tool: "train.csv ... labels are space-delimited", "[train/test]-jpg
# [-additional].tar.7z", "7za x train-jpg.tar.7z; tar xf train-jpg.tar"), EKami/planet-amazon-deforestation
# (train_v2.csv, test-jpg.tar.7z, test-jpg-additional.tar.7z), HagopB/Planet_kaggle (test split over two
# folders, submission_v2). Known facts kept: 256×256 JPEG chips; ids without extension (train_<n>, test_<n>,
# file_<n> for the additional test set); sample_submission_v2.csv `image_name,tags` lists test_* then file_*;
# tags sorted alphabetically, exactly one weather tag, `cloudy` chips carry no other tag; the misspelt
# `artisinal_mine`; metric F2 averaged over samples.
def build_planet(root: Path, n_train: int = 40, n_test: int = 18, seed: int = 0,
                 image_size: int | tuple[int, int] | None = None, archives: bool = False) -> ZooCompetition:
    """Return the Planet Amazon competition built in `root` (train_v2.csv, train-jpg/, test-jpg/, test-jpg-additional/)."""
    if archives:
        try:
            import py7zr  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise RuntimeError("archives=True needs py7zr (pip install py7zr) to write Kaggle's .tar.7z archives") from exc
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    size = sized(image_size, (256, 256))
    land = list(PLANET_LAND)

    def tags_for() -> list[str]:
        weather = list(PLANET_WEATHER)[int(rng.choice(4, p=list(PLANET_WEATHER.values())))]
        if weather == "cloudy":
            return ["cloudy"]
        present = [t for t in land if rng.random() < PLANET_LAND[t]] or ["primary"]
        return sorted([weather, *present])

    def draw(tags: list[str], split: str) -> Image.Image:
        w, h = size
        bg = photo_crop(rng, size, photo=0).astype("float32")
        img = np.asarray(picture(rng, None, size, background=bg.astype("uint8"), fade=0.45), dtype="float32")
        for k, tag in enumerate(land):
            if tag in tags:
                cell = (w // 3, h // 3)
                tile = picture(rng, pool.draw(rng, k + 1, split), cell, background=np.full((cell[1], cell[0], 3), 255, "uint8"),
                               fade=0.0, scale=0.9, jitter=0.03)
                x, y = (k % 3) * cell[0], (k // 3) * cell[1]
                img[y:y + cell[1], x:x + cell[0]] = np.minimum(img[y:y + cell[1], x:x + cell[0]], np.asarray(tile, "float32"))
        if "haze" in tags:
            img = img * 0.55 + 150
        if "partly_cloudy" in tags:
            yy, xx = np.mgrid[0:h, 0:w]
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            cloud = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.25 * w) ** 2)))[..., None]
            img = img * (1 - 0.85 * cloud) + 250 * 0.85 * cloud
        if "cloudy" in tags:
            img = img * 0.15 + 225
        return Image.fromarray(np.clip(img, 0, 255).astype("uint8"), mode="RGB")

    train_dir, test_dir, add_dir = root / "train-jpg", root / "test-jpg", root / "test-jpg-additional"
    for d in (train_dir, test_dir, add_dir):
        d.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train):
        tags = tags_for()
        draw(tags, "train").save(train_dir / f"train_{i}.jpg", quality=90)
        rows.append((f"train_{i}", " ".join(tags)))
    pd.DataFrame(rows, columns=["image_name", "tags"]).to_csv(root / "train_v2.csv", index=False)
    n_first = max(1, round(n_test * 40669 / 61191)) if n_test > 1 else n_test
    truth = []
    for j in range(n_test):
        name, folder = (f"test_{j}", test_dir) if j < n_first else (f"file_{j - n_first}", add_dir)
        tags = tags_for()
        draw(tags, "test").save(folder / f"{name}.jpg", quality=90)
        truth.append((name, " ".join(tags)))
    answers = pd.DataFrame(truth, columns=["image_name", "tags"])
    pd.DataFrame({"image_name": answers["image_name"], "tags": "primary clear agriculture road water"}).to_csv(
        root / "sample_submission_v2.csv", index=False)
    notes = ["test images are split across test-jpg/ (test_<n>) and test-jpg-additional/ (file_<n>)"]
    if archives:
        for folder in (train_dir, test_dir, add_dir):
            _tar_7z(folder)
        notes.append("images shipped as <folder>.tar.7z (7z of a tar): extract both layers first")
    return ZooCompetition(root, "planet-understanding-the-amazon-from-space", "f2_samples", answers,
                          id_column="image_name", label_columns=("tags",), label_kind="multi",
                          classes=tuple(sorted([*PLANET_WEATHER, *land])),
                          test_source="test-jpg/ + test-jpg-additional/",
                          submission_columns=("image_name", "tags"), submission_kind="labels",
                          train_source="train_v2.csv", sample_submission="sample_submission_v2.csv",
                          notes=tuple(notes))


def _tar_7z(folder: Path) -> None:
    """Replace `folder` by `<folder>.tar.7z`: a 7z archive holding `<folder>.tar`, as Planet ships its images."""
    import py7zr

    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / f"{folder.name}.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(folder, arcname=folder.name)
        with py7zr.SevenZipFile(folder.parent / f"{folder.name}.tar.7z", "w") as archive:
            archive.write(tar_path, tar_path.name)
    shutil.rmtree(folder)


# iMaterialist Challenge (Fashion) at FGVC5, 2018. Relied on: kagglekit's own reader of that format
# (layout.from_imaterialist_json, written against the competition's JSON) and the competition data page
# as quoted in public notebooks: train.json / validation.json / test.json hold `images` ({imageId, url})
# and, except test, `annotations` ({imageId, labelId: [ids]}); ids are strings of integers; Kaggle ships
# URLs, not pictures: the images folders are what the usual downloader writes (<split>/<imageId>.jpg).
# Submission `image_id,label_id`, label ids space-separated; metric micro-averaged F1.
# Variant test_json=False: a test/ folder of images and no test.json (as some re-uploads ship it).
def build_imaterialist(root: Path, n_train: int = 40, n_test: int = 16, seed: int = 0,
                       image_size: int | tuple[int, int] | None = None, n_valid: int | None = None,
                       test_json: bool = True) -> ZooCompetition:
    """Return the iMaterialist Fashion 2018 competition built in `root` (train.json, validation.json, test.json, images)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    side = sized(image_size, (64, 64))[0]
    n_valid = max(2, n_train // 5) if n_valid is None else n_valid
    answers_rows = []
    next_id = 1
    for split, count in (("train", n_train), ("validation", n_valid), ("test", n_test)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        records, annotations = [], []
        for _ in range(count):
            tiles, present = [], set()
            for k in range(4):
                if rng.random() < 0.3:
                    tiles.append(np.zeros((8, 8), "uint8"))
                else:
                    d = int(rng.integers(10))
                    tiles.append(pool.draw(rng, d, split))
                    present.add(imaterialist_label_id(d))
            if not present:
                tiles[0] = pool.draw(rng, 0, split)
                present.add(imaterialist_label_id(0))
            image_id = str(next_id)
            next_id += 1
            mosaic(tiles, side).save(folder / f"{image_id}.jpg", quality=90)
            labels = sorted(present, key=int)
            records.append({"imageId": image_id, "url": f"https://contestimg.wish.com/api/webimage/{image_id}-large"})
            if split == "test":
                answers_rows.append((image_id, " ".join(labels)))
            else:
                annotations.append({"imageId": image_id, "labelId": labels})
        doc = {"images": records} if split == "test" else {"images": records, "annotations": annotations}
        if split != "test" or test_json:
            (root / f"{split}.json").write_text(json.dumps(doc))
    answers = pd.DataFrame(answers_rows, columns=["image_id", "label_id"])
    pd.DataFrame({"image_id": answers["image_id"], "label_id": "1 2"}).to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "imaterialist-challenge-fashion-2018", "micro_f1_labels", answers,
                          id_column="image_id", label_columns=("label_id",), label_kind="multi",
                          classes=tuple(imaterialist_label_id(d) for d in range(10)),
                          test_source="test.json + test/" if test_json else "test/ (no test.json)",
                          submission_columns=("image_id", "label_id"), submission_kind="labels",
                          train_source="train.json (+ validation.json)",
                          notes=("also scored with F2 (samples)",),
                          extra={"also_scored": "f2_samples", "test_json": test_json})


SEEDLINGS = ("Black-grass", "Charlock", "Cleavers", "Common Chickweed", "Common wheat", "Fat Hen", "Loose Silky-bent",
             "Maize", "Scentless Mayweed", "Shepherds Purse", "Small-flowered Cranesbill", "Sugar beet")


# Plant Seedlings Classification. Relied on: openai/mle-bench competitions/plant-seedlings-classification/
# prepare.py (train/<species>/<file>.png class folders, test/<file>.png flat, submission `file,species` with
# the .png in `file`, sample species "Sugar beet") and the competition's 12 species names, spaces and
# hyphens included. Files are 9-hex-digit names; pictures are PNG of varying size. Metric micro-averaged F1.
def build_plant_seedlings(root: Path, n_train: int = 48, n_test: int = 16, seed: int = 0,
                          image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the Plant Seedlings competition built in `root` (train/<species>/<hash>.png, test/<hash>.png)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    base = sized(image_size, (72, 72))
    taken: set[str] = set()
    freq = {s: 1.0 for s in SEEDLINGS}

    def draw(k: int, split: str) -> Image.Image:
        side = max(16, int(base[0] * rng.uniform(0.7, 1.0)))
        return picture(rng, pool.draw(rng, k % 10, split), (side, side), photo=k // 10, ink=(30, 90, 20))

    for species in SEEDLINGS:
        (root / "train" / species).mkdir(parents=True, exist_ok=True)
    for species in split_counts(n_train, freq, rng):
        name = hex_ids(rng, 1, 9, taken)[0] + ".png"
        draw(SEEDLINGS.index(species), "train").save(root / "train" / species / name)
    (root / "test").mkdir(parents=True, exist_ok=True)
    truth = []
    for species in split_counts(n_test, freq, rng):
        name = hex_ids(rng, 1, 9, taken)[0] + ".png"
        draw(SEEDLINGS.index(species), "test").save(root / "test" / name)
        truth.append((name, species))
    answers = pd.DataFrame(truth, columns=["file", "species"]).sort_values("file", ignore_index=True)
    pd.DataFrame({"file": answers["file"], "species": "Sugar beet"}).to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "plant-seedlings-classification", "micro_f1", answers, id_column="file",
                          label_columns=("species",), label_kind="single", classes=SEEDLINGS,
                          test_source="test/", submission_columns=("file", "species"),
                          submission_kind="label", train_source="class folders (train/<species>/)",
                          id_has_extension=True, notes=("class folder names contain spaces and hyphens",))


# Aerial Cactus Identification. Relied on: openai/mle-bench competitions/aerial-cactus-identification/
# prepare.py and description (train.csv `id,has_cactus`, ids are 32-hex file names WITH .jpg, train/ and
# test/ flat folders, sample_submission.csv `id,has_cactus` = 0.5; "32 x 32 thumbnail images"; ROC AUC).
# About 75% of train chips have a cactus.
def build_aerial_cactus(root: Path, n_train: int = 40, n_test: int = 16, seed: int = 0,
                        image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the Aerial Cactus competition built in `root` (train.csv with .jpg ids, train/, test/)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    size = sized(image_size, (32, 32))
    taken: set[str] = set()
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)

    def make(n: int, split: str) -> pd.DataFrame:
        rows = []
        for has in split_counts(n, {1: 0.75, 0: 0.25}, rng):
            image_id = hex_ids(rng, 1, 32, taken)[0] + ".jpg"
            digit = (1, 7)[int(rng.integers(2))] if has else (0, 6)[int(rng.integers(2))]
            picture(rng, pool.draw(rng, digit, split), size, photo=1, ink=(40, 110, 40), scale=0.8).save(
                root / split / image_id, quality=92)
            rows.append((image_id, int(has)))
        return pd.DataFrame(rows, columns=["id", "has_cactus"])

    make(n_train, "train").to_csv(root / "train.csv", index=False)
    answers = make(n_test, "test")
    pd.DataFrame({"id": answers["id"], "has_cactus": 0.5}).to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "aerial-cactus-identification", "roc_auc", answers, id_column="id",
                          label_columns=("has_cactus",), label_kind="binary-probability",
                          classes=("0", "1"), test_source="test/", submission_columns=("id", "has_cactus"),
                          submission_kind="probability", train_source="train.csv", id_has_extension=True,
                          positive_class="1")


# Histopathologic Cancer Detection. Relied on: openai/mle-bench competitions/histopathologic-cancer-detection/
# prepare.py and description.md (train_labels.csv `id,label`, ids WITHOUT extension, train/<id>.tif and
# test/<id>.tif, sample_submission.csv `id,label` with 0 in every row, ids are 40-hex hashes such as
# 0b2ea2a822ad23fdb1b5dd26653da899fbd2c0d5; positive when the CENTRE 32×32 holds tumour; ROC AUC), and
# the PCam patches being 96×96 RGB. About 40% of train patches are positive.
def build_histopathologic(root: Path, n_train: int = 40, n_test: int = 16, seed: int = 0,
                          image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the Histopathologic Cancer Detection competition built in `root` (train_labels.csv, train/*.tif, test/*.tif)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    size = sized(image_size, (96, 96))
    taken: set[str] = set()
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)

    def draw(label: int, split: str) -> Image.Image:
        digit = (4, 7)[int(rng.integers(2))] if label else (0, 1)[int(rng.integers(2))]
        img = picture(rng, pool.draw(rng, digit, split), size, photo=1, ink=(90, 20, 110), scale=0.34, jitter=0.02)
        if not label and rng.random() < 0.5:  # tumour-like marks outside the centre do not count
            corner = (0.17, 0.17) if rng.random() < 0.5 else (0.83, 0.83)
            img = picture(rng, pool.draw(rng, 4, split), size, background=np.asarray(img), fade=0.0, ink=(90, 20, 110),
                          scale=0.3, center=corner, jitter=0.0)
        return img

    def make(n: int, split: str) -> pd.DataFrame:
        rows = []
        for label in split_counts(n, {0: 0.595, 1: 0.405}, rng):
            image_id = hex_ids(rng, 1, 40, taken)[0]
            draw(label, split).save(root / split / f"{image_id}.tif")
            rows.append((image_id, int(label)))
        return pd.DataFrame(rows, columns=["id", "label"])

    make(n_train, "train").to_csv(root / "train_labels.csv", index=False)
    answers = make(n_test, "test")
    pd.DataFrame({"id": answers["id"], "label": 0}).to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "histopathologic-cancer-detection", "roc_auc", answers, id_column="id",
                          label_columns=("label",), label_kind="binary-probability", classes=("0", "1"),
                          test_source="test/", submission_columns=("id", "label"),
                          submission_kind="probability", train_source="train_labels.csv",
                          positive_class="1",
                          notes=("images are .tif; the sample submission holds 0 in every row",))
