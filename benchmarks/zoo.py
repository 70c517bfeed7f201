"""Every zoo competition at a realistic size: `kagglekit run`, a hand-written Keras CNN and a logistic regression.

    python benchmarks/zoo.py                                  # all twelve, 2,000 train + 500 test images each
    python benchmarks/zoo.py --time 5m --only digit-recognizer,aerial-cactus-identification
    python benchmarks/zoo.py --n-train 800 --time 2m --no-cnn  # quicker

For each competition of `kagglekit.testing.zoo` (built in its exact shipping format, from real images):

1. **kagglekit**: `python -m kagglekit run DIR --weights none --time 5m` (plus `--metric` where the sample
   submission cannot tell the metric apart: APTOS's kappa, Plant Pathology's AUC, iMaterialist's micro-F1, as the
   plan says), in a subprocess, as a user types it. Its train/valid split is saved in the run folder.
2. **Keras CNN**, as the Keras tutorials write it: the same train images and the same validation images
   (kagglekit's split), resized to `--cnn-size`; Rescaling, three Conv2D/MaxPooling2D blocks (16, 32, 64
   filters), Flatten, Dense(128), Dropout; Adam; early stopping on the validation loss (patience 3, best
   weights restored), at most `--cnn-epochs` epochs; softmax, or sigmoid for multi-label.
3. **logistic regression** (scikit-learn): pixels downscaled to 16x16 RGB, standardised; one-vs-rest for
   multi-label; trained on the same train images.
4. **fastai from scratch** (with `--fastai-python PYTHON`, an interpreter that has fastai, torch and
   torchvision; `benchmarks/_fastai_peer.py`): `xresnet18`, `lr_find`'s valley, `fit_one_cycle` for as many
   epochs as fit kagglekit's budget, fastai's default augmentation; the same train/valid split, the images at
   the side kagglekit's plan trained at last. Its wall time includes importing torch and fastai.

The two baselines' test probabilities are written through `kagglekit.submission.write_submission` in the
sample's shape (no post-processing tuned: 0.5 thresholds, arg-max labels, top-5 guesses); every submission is
scored on the held-back answers by `kagglekit.testing.scoring` (scikit-learn), and the wall time of each
method printed beside its score (kagglekit's includes its backend import, planning, TTA and writing; the
baselines' include reading their images). A markdown table ends the output.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kagglekit.testing import scoring, zoo  # noqa: E402

# The sample submission cannot tell these metrics apart from another one: the user names it (the plan says so).
# iMaterialist 2018 is scored with micro-F1 (kagglekit's default for its label sets is F2, the other metric used).
METRIC_FLAG = {"aptos2019-blindness-detection": "qwk", "plant-pathology-2020-fgvc7": "auc",
               "imaterialist-challenge-fashion-2018": "f1_micro"}
# Whales with one or two photos: a larger validation share keeps the split stratifiable.
EXTRA_FLAGS = {"humpback-whale-identification": ["--valid", "0.3"]}
CAPS = {"digit-recognizer": 1797}  # built from scikit-learn's 1,797 real digits: no more images than that
BUILD_OPTIONS = {"cassava-leaf-disease-classification": {"rerun": True}}  # scored on the hidden re-run test set


def run_kagglekit(comp, workdir: Path, budget: str) -> tuple[float, float, dict]:
    """Return (score, seconds, result.json) of `kagglekit run` on the competition, as a user types it."""
    cmd = [sys.executable, "-m", "kagglekit", "run", str(comp.path), "--workdir", str(workdir), "--weights", "none",
           "--time", budget, "--ledger", str(workdir.parent / "ledger.csv"), *EXTRA_FLAGS.get(comp.name, [])]
    if comp.name in METRIC_FLAG:
        cmd += ["--metric", METRIC_FLAG[comp.name]]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    (workdir.parent / f"{comp.name}.kagglekit.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"kagglekit run failed on {comp.name} (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    result = json.loads((workdir / "result.json").read_text())
    submission = pd.read_csv(result["submission"], dtype=str, keep_default_na=False)
    return scoring.score(comp.name, submission, comp.answers), seconds, result


def read_images(table, size: int) -> np.ndarray:
    """Return the table's images as uint8 (n, size, size, 3), squashed to size x size."""
    from kagglekit.images import load_image

    out = np.zeros((len(table), size, size, 3), dtype="uint8")
    for i, path in enumerate(table.paths):
        load_image(path, size, out=out[i])
    return out


def tables(workdir: Path):
    """Return kagglekit's saved (train, valid, test) tables of the run in `workdir`: the same split for all."""
    from kagglekit.table import LabelTable

    return tuple(LabelTable.read_csv(workdir / f"{k}.table.csv") for k in ("train", "valid", "test"))


def write(comp, probs: np.ndarray, train, test, plan: dict, path: Path) -> float:
    """Return the score of `probs` written in the sample's shape by kagglekit's writer (no tuned post-processing)."""
    from kagglekit.submission import write_submission

    frame = pd.DataFrame(probs, columns=[str(c) for c in train.classes])
    frame.insert(0, "id", pd.Series(test.ids, dtype=object))
    frame.attrs.update(classes=list(train.classes), multilabel=train.multilabel, settings={})
    out = write_submission(frame, comp.path / comp.sample_submission, path, settings={"metric": plan["metric"]},
                           positive=plan.get("positive"), kind=plan.get("submission_kind"), metric=plan["metric"],
                           zip=False)
    return scoring.score(comp.name, pd.read_csv(out, dtype=str, keep_default_na=False), comp.answers)


def full_probs(model_probs: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Return (n, n_classes) probabilities from a model that only knows the classes `seen` (0 elsewhere)."""
    out = np.zeros((len(model_probs), n_classes), dtype="float64")
    out[:, seen] = model_probs
    return out


def run_logistic(comp, workdir: Path, plan: dict, out: Path) -> tuple[float, float]:
    """Return (score, seconds) of a scikit-learn logistic regression on 16x16 pixels, trained on kagglekit's train split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t = time.perf_counter()
    train, _, test = tables(workdir)
    x = read_images(train, 16).reshape(len(train), -1).astype("float32")
    xt = read_images(test, 16).reshape(len(test), -1).astype("float32")
    y = train.targets()
    if train.multilabel:
        keep = np.flatnonzero((y.sum(0) > 0) & (y.sum(0) < len(y)))  # a tag on every row or none: constant
        model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=300)))
        model.fit(x, y[:, keep])
        probs = np.zeros((len(test), len(train.classes)))
        probs[:, keep] = model.predict_proba(xt)
        probs[:, y.sum(0) == len(y)] = 1.0
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
        model.fit(x, y)
        probs = full_probs(model.predict_proba(xt), model[-1].classes_, len(train.classes))
    score = write(comp, probs, train, test, plan, out)
    return score, time.perf_counter() - t


def run_cnn(comp, workdir: Path, plan: dict, out: Path, size: int, max_epochs: int) -> tuple[float, float, int]:
    """Return (score, seconds, epochs) of a tutorial-style Keras CNN on kagglekit's split."""
    import keras
    from keras import layers

    t = time.perf_counter()
    train, valid, test = tables(workdir)
    size = min(size, int(plan.get("native_side") or size))
    x, xv, xt = (read_images(tab, size) for tab in (train, valid, test))
    y, yv = train.targets(), valid.targets()
    n = len(train.classes)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((size, size, 3)),
        layers.Rescaling(1.0 / 255),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Dropout(0.2), layers.Flatten(), layers.Dense(128, activation="relu"),
        layers.Dense(n, activation="sigmoid" if train.multilabel else "softmax"),
    ])
    loss = "binary_crossentropy" if train.multilabel else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = model.fit(x, y, validation_data=(xv, yv), epochs=max_epochs, batch_size=32, callbacks=[stop], verbose=0)
    probs = model.predict(xt, batch_size=256, verbose=0).astype("float64")
    score = write(comp, probs, train, test, plan, out)
    return score, time.perf_counter() - t, len(history.history["loss"])


def fastai_python(given: str | None) -> str | None:
    """Return the interpreter that runs the fastai peer: `given`, or this one when it has fastai; else None."""
    if given:
        return given
    try:
        import fastai  # noqa: F401
    except ImportError:
        return None
    return sys.executable


def run_fastai(comp, workdir: Path, plan: dict, out: Path, python: str, budget_s: float) -> tuple[float, float, int]:
    """Return (score, seconds, epochs) of fastai from scratch (`benchmarks/_fastai_peer.py`) in `budget_s`."""
    t = time.perf_counter()
    train, valid, test = tables(workdir)

    def labelled(table):
        return [[p, [str(label) for label in labels]] for p, labels in zip(table.paths, table.labels)]

    sizes = (plan.get("sizes") or [None])
    side = sizes[-1] if isinstance(sizes[-1], int) else int(plan.get("native_side") or 64)
    spec = {"train": labelled(train), "valid": labelled(valid), "test": list(test.paths),
            "classes": [str(c) for c in train.classes], "multilabel": bool(train.multilabel), "size": int(side),
            "budget_s": float(budget_s), "out": str(out.with_suffix(".npy"))}
    spec_path = out.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run([python, str(Path(__file__).with_name("_fastai_peer.py")), str(spec_path)],
                          capture_output=True, text=True)
    out.with_suffix(".fastai.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"fastai failed on {comp.name}:\n{done.stderr[-2000:]}")
    probs = np.load(spec["out"])
    info = json.loads(Path(spec["out"] + ".json").read_text())
    score = write(comp, probs, train, test, plan, out)
    return score, time.perf_counter() - t, int(info["epochs"])


def native_side(workdir: Path) -> int | None:
    """Return the median longest side of the train images (what kagglekit's plan saw), from a sample of 64."""
    from PIL import Image

    train = tables(workdir)[0]
    sides = []
    for path in train.paths[:64]:
        with Image.open(path) as im:
            sides.append(max(im.size))
    return int(np.median(sides)) if sides else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--time", default="5m", help="kagglekit's --time budget per competition (default 5m)")
    ap.add_argument("--cnn-size", type=int, default=64, help="the CNN's input side (capped at the images' own)")
    ap.add_argument("--cnn-epochs", type=int, default=30, help="the CNN's epoch cap (early stopping ends it sooner)")
    ap.add_argument("--no-cnn", action="store_true", help="skip the hand-written CNN")
    ap.add_argument("--fastai-python", help="an interpreter with fastai, torch and torchvision: adds the fastai "
                    "column (default: this one, when it has fastai)")
    ap.add_argument("--only", help="comma-separated competition slugs (default: all twelve)")
    ap.add_argument("--out", help="folder for the competitions and runs (default: a temporary folder)")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(zoo.COMPETITIONS)
    unknown = sorted(set(names) - set(zoo.COMPETITIONS))
    if unknown:
        ap.error(f"unknown competition(s) {unknown}; the zoo has {', '.join(zoo.COMPETITIONS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kagglekit.durations import parse_duration

    budget_s = parse_duration(args.time)
    peer = fastai_python(args.fastai_python)
    if peer is None:
        print("fastai column skipped: no interpreter with fastai (give --fastai-python PYTHON)", flush=True)

    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out or tmp)
        base.mkdir(parents=True, exist_ok=True)
        for name in names:
            metric = scoring.metric_for(name)
            workdir = base / name / "run"
            n_train, n_test = args.n_train, args.n_test
            if name in CAPS and n_train + n_test > CAPS[name]:  # scikit-learn's digits: 1,797 in all
                n_train = min(n_train, CAPS[name] * 4 // 5)
                n_test = CAPS[name] - n_train
            try:
                built = zoo.build(name, base / name / "data", n_train=n_train, n_test=n_test,
                                  **BUILD_OPTIONS.get(name, {}))
                comp = built.extra.get("rerun", built)
                ks, kt, result = run_kagglekit(comp, workdir, args.time)
                trained = json.loads((workdir / "run.json").read_text())["steps"].get("plan", {}).get("result") or {}
                plan = {**(result.get("plan") or {}), "sizes": trained.get("sizes"), "metric": result["metric"],
                        "native_side": native_side(workdir)}
                ls, lt = run_logistic(comp, workdir, plan, base / name / "logistic.csv")
                cs = ct = ce = None
                if not args.no_cnn:
                    cs, ct, ce = run_cnn(comp, workdir, plan, base / name / "cnn.csv", args.cnn_size, args.cnn_epochs)
                fs = ft = fe = None
                if peer is not None:
                    fs, ft, fe = run_fastai(comp, workdir, plan, base / name / "fastai.csv", peer, budget_s)
            except Exception as exc:  # one competition's failure is reported in the table, not the end of the run
                print(f"{name}: FAILED: {exc}", flush=True)
                failed.append(name)
                continue
            row = {"competition": name, "metric": metric, "higher": scoring.HIGHER_IS_BETTER[metric],
                   "train+valid": n_train, "test": len(comp.answers),
                   "kagglekit": ks, "kagglekit_s": kt, "valid_score": result["valid_score"],
                   "logistic": ls, "logistic_s": lt, "cnn": cs, "cnn_s": ct, "cnn_epochs": ce,
                   "fastai": fs, "fastai_s": ft, "fastai_epochs": fe, "budget_s": budget_s}
            rows.append(row)
            print(json.dumps(row), flush=True)

    import keras

    print(f"\nzoo benchmark: {args.n_train} train (80/20 split by kagglekit) + {args.n_test} test images per "
          f"competition; kagglekit run --weights none --time {args.time}; {os.cpu_count()} CPU cores, "
          f"KERAS_BACKEND={keras.backend.backend()}\n")
    header = ("| competition | metric | kagglekit | s (share of budget) | Keras CNN | s | logistic regression | s | "
              "fastai xresnet18 | s (share) | kagglekit best? |")
    print(header)
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    wins = 0
    for r in rows:
        others = [v for v in (r["logistic"], r["cnn"], r["fastai"]) if v is not None]
        best = all(r["kagglekit"] > v if r["higher"] else r["kagglekit"] < v for v in others)
        wins += best
        arrow = "higher" if r["higher"] else "lower"
        cnn = f"{r['cnn']:.4f} | {r['cnn_s']:.0f} ({r['cnn_epochs']} ep)" if r["cnn"] is not None else "- | -"
        fastai = (f"{r['fastai']:.4f} | {r['fastai_s']:.0f} ({r['fastai_s'] / r['budget_s']:.0%}, "
                  f"{r['fastai_epochs']} ep)" if r["fastai"] is not None else "- | -")
        mine = f"**{r['kagglekit']:.4f}**" if best else f"{r['kagglekit']:.4f}"  # bold only where it is ahead of all
        print(f"| {r['competition']} | {r['metric']} ({arrow} is better) | {mine} | "
              f"{r['kagglekit_s']:.0f} ({r['kagglekit_s'] / r['budget_s']:.0%}) | {cnn} | {r['logistic']:.4f} | "
              f"{r['logistic_s']:.0f} | {fastai} | {'yes' if best else 'no'} |")
    print(f"\nkagglekit scores best on {wins} of {len(rows)} competitions."
          + (f" FAILED (see above): {', '.join(failed)}" if failed else ""))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
