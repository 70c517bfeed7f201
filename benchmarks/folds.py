"""One model vs `--folds K` at the same `--time`, on zoo competitions: held-out test score and |CV - test|.

    python benchmarks/folds.py --time 2m --folds 3 --only dogs-vs-cats-redux-kernels-edition --n-train 400
    python benchmarks/folds.py --time none --run-args "--epochs 10 --sizes 32 --backbone resnet_micro" --image-size 32

For each competition (built by `kagglekit.testing.zoo` in its shipping format, answers held back) it runs, as a
user types it, ``python -m kagglekit run DIR --weights none --time T`` and the same with ``--folds K``, scores both
submissions on the held-back answers with `kagglekit.testing.scoring` (scikit-learn), and prints each run's own
estimate (the single split's validation score, the folds' out-of-fold CV score), the test score, |estimate - test|
and the wall time. A markdown table ends the output.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kagglekit.testing import scoring, zoo  # noqa: E402

METRIC_FLAG = {"aptos2019-blindness-detection": "qwk", "plant-pathology-2020-fgvc7": "auc",
               "imaterialist-challenge-fashion-2018": "f1_micro"}


def run_one(comp: zoo.ZooCompetition, workdir: Path, budget: str | None, folds: int, extra: list[str]) -> dict:
    """Return {estimate, test, seconds} of one `kagglekit run` (a subprocess) on `comp`."""
    cmd = [sys.executable, "-m", "kagglekit", "run", str(comp.path), "--workdir", str(workdir), "--weights", "none",
           "--ledger", str(workdir.parent / "ledger.csv"), *(["--time", budget] if budget else []), *extra]
    if comp.name in METRIC_FLAG:
        cmd += ["--metric", METRIC_FLAG[comp.name]]
    if folds > 1:
        cmd += ["--folds", str(folds)]
    start = time.time()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.time() - start
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:])
        raise SystemExit(f"{comp.name}: kagglekit run failed ({done.returncode})")
    result = json.loads((workdir / "result.json").read_text())
    sub = pd.read_csv(result["submission"], dtype=str)
    return {"estimate": float(result["valid_score"]), "test": scoring.score(comp.name, sub, comp.answers),
            "seconds": seconds}


def main() -> None:
    """Run the comparison and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", default="2m")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--only", default="dogs-vs-cats-redux-kernels-edition", help="comma-separated zoo names, or 'all'")
    ap.add_argument("--image-size", type=int, default=None, help="the zoo images' size (default the competition's)")
    ap.add_argument("--run-args", default="", help="more `kagglekit run` flags, e.g. '--epochs 10 --sizes 32' "
                    "(with --time none: explicit epochs, no deadline)")
    args = ap.parse_args()
    budget = None if args.time == "none" else args.time
    extra = args.run_args.split()
    names = zoo.COMPETITIONS if args.only == "all" else args.only.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            comp = zoo.build(name, Path(tmp) / name / "comp", n_train=args.n_train, n_test=args.n_test,
                             image_size=args.image_size)
            for k in (1, args.folds):
                r = run_one(comp, Path(tmp) / name / f"run{k}", budget, k, extra)
                rows.append({"competition": name, "folds": k, "metric": scoring.metric_for(name), **r,
                             "gap": abs(r["estimate"] - r["test"])})
                print(rows[-1], flush=True)
    print("\n| competition | folds | metric | estimate (valid / CV) | test | abs(estimate - test) | wall s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['competition']} | {r['folds']} | {r['metric']} | {r['estimate']:.4f} | {r['test']:.4f} | "
              f"{r['gap']:.4f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
