"""Zoo builders, second family: APTOS 2019, Humpback Whale, Cassava, State Farm, Plant Pathology 2020, Digit Recognizer.

Each builder writes one competition exactly as Kaggle ships it (after unzipping) and
returns a `ZooCompetition`. The format facts each relies on, and where they were
found, are in the comment above each builder.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .competitions import digits
from .zoo_base import DigitPool, ZooCompetition, hex_ids, photo_crop, picture, sized, split_counts


def _fundus(img: Image.Image) -> Image.Image:
    """Return `img` tinted like a retina photo, black outside the central disc."""
    a = np.asarray(img, dtype="float32") * np.asarray([1.0, 0.55, 0.3], "float32")
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = min(w, h) * 0.48
    a[((xx - w / 2) ** 2 + (yy - h / 2) ** 2) > r * r] = 0
    return Image.fromarray(a.astype("uint8"), mode="RGB")


# APTOS 2019 Blindness Detection. Relied on: openai/mle-bench competitions/aptos2019-blindness-detection/
# prepare.py (train.csv `id_code,diagnosis`, test.csv `id_code` only, train_images/<id_code>.png and
# test_images/<id_code>.png, sample_submission.csv `id_code,diagnosis` = 0), the data page (diagnosis 0-4:
# No DR, Mild, Moderate, Severe, Proliferative DR; quadratic weighted kappa). id_code is 12 hex digits;
# photos are PNG of several sizes and aspects; class shares as in train.csv (49% / 10% / 27% / 5% / 8%).
def build_aptos(root: Path, n_train: int = 40, n_test: int = 16, seed: int = 0,
                image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the APTOS 2019 competition built in `root` (train.csv, test.csv, train_images/*.png, test_images/*.png)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    shapes = [sized(image_size, s) for s in ((128, 96), (112, 84), (96, 96))]
    taken: set[str] = set()
    freq = {0: 0.49, 1: 0.10, 2: 0.27, 3: 0.05, 4: 0.08}

    def make(n: int, split: str) -> pd.DataFrame:
        folder = root / f"{split}_images"
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for grade in split_counts(n, freq, rng):
            id_code = hex_ids(rng, 1, 12, taken)[0]
            size = shapes[int(rng.integers(len(shapes)))]
            _fundus(picture(rng, pool.draw(rng, grade, split), size, photo=1, ink=(60, 60, 60), scale=0.6)).save(
                folder / f"{id_code}.png")
            rows.append((id_code, int(grade)))
        return pd.DataFrame(rows, columns=["id_code", "diagnosis"])

    make(n_train, "train").to_csv(root / "train.csv", index=False)
    answers = make(n_test, "test")
    answers[["id_code"]].to_csv(root / "test.csv", index=False)
    pd.DataFrame({"id_code": answers["id_code"], "diagnosis": 0}).to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "aptos2019-blindness-detection", "quadratic_kappa", answers, id_column="id_code",
                          label_columns=("diagnosis",), label_kind="ordinal",
                          classes=("0", "1", "2", "3", "4"),
                          test_source="test_images/ (ids from test.csv)",
                          submission_columns=("id_code", "diagnosis"), submission_kind="label",
                          train_source="train.csv")


# Humpback Whale Identification (2019). Relied on: openai/mle-bench competitions/whale-categorization-playground/
# prepare.py and description (train.csv `Image,Id` with .jpg in Image, `new_whale` for unidentified whales,
# sample_submission.csv `Image,Id` = "new_whale w_1287fbc w_98baff9 w_7554f44 w_1eafe46", up to 5 guesses,
# MAP@5) and the 2019 data (first row 0000e88ab.jpg,w_f48451c: 9-hex image names, whale ids w_<7 hex>,
# about 38% of train images new_whale, most whales with one to a few images, many photos grayscale).
def build_humpback_whale(root: Path, n_train: int = 48, n_test: int = 16, seed: int = 0,
                         image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the Humpback Whale Identification competition built in `root` (train.csv Image,Id; train/; test/)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    base = sized(image_size, (128, 64))
    taken_img, taken_whale = set(), set()

    def individual() -> dict:
        return {"digit": pool.draw(rng, int(rng.integers(10)), "train"), "photo": int(rng.integers(2)),
                "at": (int(rng.integers(0, 440)), int(rng.integers(0, 230))), "window": int(rng.integers(150, 190)),
                "ink": tuple(int(v) for v in rng.integers(0, 90, 3))}

    def draw(ind: dict, folder: Path) -> str:
        name = hex_ids(rng, 1, 9, taken_img)[0] + ".jpg"
        size = (max(16, int(base[0] * rng.uniform(0.8, 1.0))), max(8, int(base[1] * rng.uniform(0.8, 1.0))))
        dx, dy = (int(v) for v in rng.integers(0, 12, 2))
        bg = photo_crop(rng, size, ind["photo"], window=ind["window"], at=(ind["at"][0] + dx, ind["at"][1] + dy))
        img = picture(rng, ind["digit"], size, background=bg, ink=ind["ink"], scale=0.8, jitter=0.04)
        if rng.random() < 0.4:
            img = img.convert("L")
        img.save(folder / name, quality=90)
        return name

    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    n_new = round(n_train * 0.38)
    whales: dict[str, dict] = {}
    rows = []
    remaining = n_train - n_new
    while remaining > 0:
        wid = "w_" + hex_ids(rng, 1, 7, taken_whale)[0]
        whales[wid] = individual()
        for _ in range(min(remaining, int(rng.choice([1, 2, 3, 4], p=[0.25, 0.35, 0.25, 0.15])))):
            rows.append((draw(whales[wid], root / "train"), wid))
            remaining -= 1
    rows += [(draw(individual(), root / "train"), "new_whale") for _ in range(n_new)]
    order = rng.permutation(len(rows))
    train = pd.DataFrame([rows[i] for i in order], columns=["Image", "Id"]).sort_values("Image", ignore_index=True)
    train.to_csv(root / "train.csv", index=False)
    known = sorted(whales)
    truth = []
    for _ in range(n_test):
        if rng.random() < 0.3:
            truth.append((draw(individual(), root / "test"), "new_whale"))
        else:
            wid = known[int(rng.integers(len(known)))]
            truth.append((draw(whales[wid], root / "test"), wid))
    answers = pd.DataFrame(truth, columns=["Image", "Id"]).sort_values("Image", ignore_index=True)
    pd.DataFrame({"Image": answers["Image"], "Id": "new_whale w_1287fbc w_98baff9 w_7554f44 w_1eafe46"}).to_csv(
        root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "humpback-whale-identification", "map_at_5", answers, id_column="Image",
                          label_columns=("Id",), label_kind="single", classes=tuple(["new_whale", *known]),
                          test_source="test/", submission_columns=("Image", "Id"), submission_kind="top5",
                          train_source="train.csv", id_has_extension=True,
                          notes=("many classes with 1-4 images; new_whale is a class of its own",
                                 "some images are grayscale (mode L)"))


CASSAVA_DISEASES = {"0": "Cassava Bacterial Blight (CBB)", "1": "Cassava Brown Streak Disease (CBSD)",
                    "2": "Cassava Green Mottle (CGM)", "3": "Cassava Mosaic Disease (CMD)", "4": "Healthy"}
CASSAVA_PUBLIC_TEST = "2216849948.jpg"


# Cassava Leaf Disease Classification (code competition). Relied on: openai/mle-bench competitions/
# cassava-leaf-disease-classification/prepare.py and description (train.csv `image_id,label` with integer
# labels and .jpg in image_id, label_num_to_disease_map.json, train_images/ and test_images/, sample_submission
# `image_id,label`, accuracy; "the full set of test images will only be available to your notebook when it is
# submitted": publicly test_images/ holds the single 2216849948.jpg and the sample one row with label 4).
# image ids are integers of up to 10 digits; photos 800×600 JPEG; label 3 (CMD) is 61% of train.
# Not built: the train_tfrecords/ and test_tfrecords/ copies of the images.
# rerun=True also builds the tree the re-run notebook sees (`<root>-rerun`: the full hidden test set).
def build_cassava(root: Path, n_train: int = 40, n_test: int = 16, seed: int = 0,
                  image_size: int | tuple[int, int] | None = None, rerun: bool = False) -> ZooCompetition:
    """Return the Cassava competition built in `root` (one public test image; extra["rerun"] holds the hidden-test tree)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    size = sized(image_size, (120, 90))
    freq = {0: 0.051, 1: 0.102, 2: 0.112, 3: 0.615, 4: 0.120}
    taken = {CASSAVA_PUBLIC_TEST[:-4]}

    def new_id() -> str:
        while True:
            candidate = str(int(rng.integers(1_000_000, 4_294_967_295)))
            if candidate not in taken:
                taken.add(candidate)
                return candidate + ".jpg"

    def draw(label: int, split: str, path: Path) -> None:
        picture(rng, pool.draw(rng, label, split), size, photo=1, ink=(20, 70, 10), scale=0.6).save(path, quality=90)

    (root / "train_images").mkdir(parents=True, exist_ok=True)
    (root / "test_images").mkdir(parents=True, exist_ok=True)
    train_rows = []
    for label in split_counts(n_train, freq, rng):
        image_id = new_id()
        draw(label, "train", root / "train_images" / image_id)
        train_rows.append((image_id, int(label)))
    pd.DataFrame(train_rows, columns=["image_id", "label"]).to_csv(root / "train.csv", index=False)
    (root / "label_num_to_disease_map.json").write_text(json.dumps(CASSAVA_DISEASES))
    hidden = [(CASSAVA_PUBLIC_TEST, None)] + [(new_id(), None) for _ in range(max(0, n_test - 1))]
    labels = split_counts(len(hidden), freq, rng)
    hidden = [(name, int(y)) for (name, _), y in zip(hidden, labels)]
    draw(hidden[0][1], "test", root / "test_images" / CASSAVA_PUBLIC_TEST)
    pd.DataFrame({"image_id": [CASSAVA_PUBLIC_TEST], "label": [4]}).to_csv(root / "sample_submission.csv", index=False)
    public_answers = pd.DataFrame([hidden[0]], columns=["image_id", "label"])
    facts = dict(metric="accuracy", id_column="image_id", label_columns=("label",), label_kind="single",
                 classes=tuple(CASSAVA_DISEASES), submission_columns=("image_id", "label"), submission_kind="label",
                 train_source="train.csv (+ label_num_to_disease_map.json)", id_has_extension=True)
    extra: dict = {}
    if rerun:
        other = root.parent / f"{root.name}-rerun"
        (other / "test_images").mkdir(parents=True, exist_ok=True)
        _mirror(root / "train_images", other / "train_images")
        for name in ("train.csv", "label_num_to_disease_map.json"):
            shutil.copyfile(root / name, other / name)
        shutil.copyfile(root / "test_images" / CASSAVA_PUBLIC_TEST, other / "test_images" / CASSAVA_PUBLIC_TEST)
        for name, label in hidden[1:]:
            draw(label, "test", other / "test_images" / name)
        hidden_answers = pd.DataFrame(hidden, columns=["image_id", "label"])
        pd.DataFrame({"image_id": hidden_answers["image_id"], "label": 4}).to_csv(other / "sample_submission.csv", index=False)
        extra["rerun"] = ZooCompetition(other, "cassava-leaf-disease-classification", answers=hidden_answers,
                                        test_source="test_images/ (full hidden test set, as at re-run)", **facts)
    return ZooCompetition(root, "cassava-leaf-disease-classification", answers=public_answers,
                          test_source="test_images/ (one public image; the full set only at re-run)",
                          notes=("code competition: the public test set is a single image",), extra=extra, **facts)


def _mirror(src: Path, dst: Path) -> None:
    """Make `dst` a copy of the flat folder `src` (hard links where the file system allows)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        try:
            os.link(f, dst / f.name)
        except OSError:
            shutil.copyfile(f, dst / f.name)


# State Farm Distracted Driver Detection. Relied on: the data page as quoted in public READMEs found with the
# search tool (imgs.zip of train/test images, driver_imgs_list.csv "a list of training images, their subject
# (driver) id, and class id", sample_submission.csv; classes c0 safe driving .. c9 talking to passenger;
# "train and test data are split on the drivers"), Kaggle kernels reading imgs/train/c0 and imgs/test;
# columns subject,classname,img (subject p002..p081, img img_<n>.jpg without folder); submission
# img,c0..c9 probabilities; multi-class log loss (rows rescaled to sum 1, clipped at 1e-15); 640×480 JPEG.
def build_state_farm(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0,
                     image_size: int | tuple[int, int] | None = None, n_drivers: int | None = None) -> ZooCompetition:
    """Return the State Farm competition built in `root` (imgs/train/c0..c9/, imgs/test/, driver_imgs_list.csv)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    size = sized(image_size, (96, 72))
    classes = tuple(f"c{k}" for k in range(10))
    n_drivers = n_drivers or int(np.clip(n_train // 10, 3, 26))
    numbers = rng.choice(np.arange(1, 102_151), size=n_train + n_test, replace=False)
    subjects = sorted(f"p{int(s):03d}" for s in rng.choice(np.arange(2, 82), size=n_drivers + 2, replace=False))
    train_subjects, test_subjects = subjects[:n_drivers], subjects[n_drivers:]
    seats = {s: (int(rng.integers(0, 440)), int(rng.integers(0, 230))) for s in subjects}  # each driver's own cabin

    def draw(subject: str, k: int, split: str, path: Path) -> None:
        dx, dy = (int(v) for v in rng.integers(0, 10, 2))
        bg = photo_crop(rng, size, 0, window=180, at=(seats[subject][0] + dx, seats[subject][1] + dy))
        picture(rng, pool.draw(rng, k, split), size, background=bg, scale=0.55).save(path, quality=90)

    for c in classes:
        (root / "imgs" / "train" / c).mkdir(parents=True, exist_ok=True)
    (root / "imgs" / "test").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, key in enumerate(split_counts(n_train, {c: 1.0 for c in classes}, rng)):
        subject = train_subjects[i % n_drivers]
        img = f"img_{int(numbers[i])}.jpg"
        draw(subject, classes.index(key), "train", root / "imgs" / "train" / key / img)
        rows.append((subject, key, img))
    pd.DataFrame(rows, columns=["subject", "classname", "img"]).sort_values(["subject", "classname", "img"]).to_csv(
        root / "driver_imgs_list.csv", index=False)
    truth = []
    for j, key in enumerate(split_counts(n_test, {c: 1.0 for c in classes}, rng)):
        img = f"img_{int(numbers[n_train + j])}.jpg"
        draw(test_subjects[j % len(test_subjects)], classes.index(key), "test", root / "imgs" / "test" / img)
        truth.append([img] + [1.0 if c == key else 0.0 for c in classes])
    answers = pd.DataFrame(truth, columns=["img", *classes]).sort_values("img", ignore_index=True)
    sample = answers[["img"]].copy()
    sample[list(classes)] = 0.1
    sample.to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "state-farm-distracted-driver-detection", "multiclass_log_loss", answers,
                          id_column="img", label_columns=classes, label_kind="single", classes=classes,
                          test_source="imgs/test/", submission_columns=("img", *classes),
                          submission_kind="probabilities",
                          train_source="class folders (imgs/train/c0..c9/) + driver_imgs_list.csv",
                          id_has_extension=True,
                          notes=("validation must be split by driver (subject): each driver has their own background",),
                          extra={"groups": "driver_imgs_list.csv:subject", "test_subjects": tuple(test_subjects)})


PATHOLOGY = ("healthy", "multiple_diseases", "rust", "scab")


# Plant Pathology 2020 - FGVC7. Relied on: openai/mle-bench competitions/plant-pathology-2020-fgvc7/prepare.py
# (one images/ folder holding Train_<n>.jpg and Test_<n>.jpg, train.csv `image_id,healthy,multiple_diseases,
# rust,scab` one-hot, test.csv `image_id`, sample_submission.csv with those columns = 0.25) and the evaluation
# (mean column-wise ROC AUC). Photos 2048×1365 JPEG; shares 28% / 5% / 34% / 33%.
def build_plant_pathology(root: Path, n_train: int = 40, n_test: int = 16, seed: int = 0,
                          image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the Plant Pathology 2020 competition built in `root` (images/Train_0.jpg, images/Test_0.jpg, train.csv, test.csv)."""
    rng, pool = np.random.default_rng(seed), DigitPool(seed)
    size = sized(image_size, (96, 64))
    freq = {"healthy": 0.28, "multiple_diseases": 0.05, "rust": 0.34, "scab": 0.33}
    (root / "images").mkdir(parents=True, exist_ok=True)

    def draw(cls: str, split: str, path: Path) -> None:
        if cls == "multiple_diseases":  # both marks, rust's and scab's
            img = picture(rng, pool.draw(rng, 2, split), size, photo=1, ink=(150, 60, 10), scale=0.45, center=(0.3, 0.5))
            img = picture(rng, pool.draw(rng, 5, split), size, background=np.asarray(img), fade=0.0, ink=(40, 40, 40),
                          scale=0.45, center=(0.7, 0.5))
        else:
            digit, ink = {"healthy": (0, (20, 90, 20)), "rust": (2, (150, 60, 10)), "scab": (5, (40, 40, 40))}[cls]
            img = picture(rng, pool.draw(rng, digit, split), size, photo=1, ink=ink, scale=0.6)
        img.save(path, quality=90)

    def make(n: int, prefix: str, split: str) -> pd.DataFrame:
        rows = []
        for i, cls in enumerate(split_counts(n, freq, rng)):
            draw(cls, split, root / "images" / f"{prefix}_{i}.jpg")
            rows.append([f"{prefix}_{i}"] + [int(c == cls) for c in PATHOLOGY])
        return pd.DataFrame(rows, columns=["image_id", *PATHOLOGY])

    make(n_train, "Train", "train").to_csv(root / "train.csv", index=False)
    answers = make(n_test, "Test", "test")
    answers[["image_id"]].to_csv(root / "test.csv", index=False)
    sample = answers[["image_id"]].copy()
    sample[list(PATHOLOGY)] = 0.25
    sample.to_csv(root / "sample_submission.csv", index=False)
    return ZooCompetition(root, "plant-pathology-2020-fgvc7", "mean_column_roc_auc", answers, id_column="image_id",
                          label_columns=PATHOLOGY, label_kind="single", classes=PATHOLOGY,
                          test_source="images/Test_*.jpg (ids from test.csv)",
                          submission_columns=("image_id", *PATHOLOGY), submission_kind="probabilities",
                          train_source="train.csv (one-hot columns)",
                          notes=("train and test images share one images/ folder",))


# Digit Recognizer. Relied on: kagglekit's pixel-CSV reader and the competition's data page (train.csv
# `label,pixel0..pixel783`, test.csv `pixel0..pixel783`, 28×28 grayscale 0-255 with ink high, digits
# centred in a 20×20 box; sample_submission.csv `ImageId,Label` with ImageId from 1; accuracy).
def build_digit_recognizer(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0,
                           image_size: int | tuple[int, int] | None = None) -> ZooCompetition:
    """Return the Digit Recognizer competition built in `root` (pixels in train.csv / test.csv)."""
    if image_size not in (None, 28, (28, 28)):
        raise ValueError("Digit Recognizer images are 28×28 pixels by definition")
    images, labels = digits(n_train + n_test, seed)
    if len(images) < n_train + n_test:
        raise ValueError(f"Digit Recognizer is built from scikit-learn's {len(images)} real digits: n_train + n_test "
                         f"= {n_train + n_test} is more; ask for {len(images)} or fewer")

    def mnist(im: np.ndarray) -> np.ndarray:
        out = np.zeros((28, 28), "uint8")
        out[4:24, 4:24] = np.asarray(Image.fromarray(im).resize((20, 20), Image.BILINEAR))
        return out.reshape(-1)

    cols = [f"pixel{i}" for i in range(784)]
    root.mkdir(parents=True, exist_ok=True)
    train = pd.DataFrame(np.stack([mnist(im) for im in images[:n_train]]), columns=cols)
    train.insert(0, "label", labels[:n_train].astype(int))
    train.to_csv(root / "train.csv", index=False)
    pd.DataFrame(np.stack([mnist(im) for im in images[n_train:]]), columns=cols).to_csv(root / "test.csv", index=False)
    ids = np.arange(1, n_test + 1)
    pd.DataFrame({"ImageId": ids, "Label": 0}).to_csv(root / "sample_submission.csv", index=False)
    answers = pd.DataFrame({"ImageId": ids, "Label": labels[n_train:].astype(int)})
    return ZooCompetition(root, "digit-recognizer", "accuracy", answers, id_column="ImageId",
                          label_columns=("Label",), label_kind="single",
                          classes=tuple(str(d) for d in range(10)),
                          test_source="test.csv (pixels; ImageId = row number from 1)",
                          submission_columns=("ImageId", "Label"), submission_kind="label",
                          train_source="train.csv (pixels)")
