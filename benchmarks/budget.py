"""How much of its `--time` a `kagglekit run` uses: the process's wall clock (start-up included) over the budget.

    python benchmarks/budget.py                                   # digit-recognizer, T = 2m and 5m
    python benchmarks/budget.py --time 2m --only plant-seedlings-classification
    python benchmarks/budget.py --time 2m --cost-scale 2          # plan as if the machine were 2x slower
    python benchmarks/budget.py --time 2m --cost-scale 0.5        # ... or 2x faster

Each competition is built from `kagglekit.testing.zoo` in its shipping format, then run as a user
runs it (``python -m kagglekit run DIR --time T --weights none``) in a fresh process; the wall time is
measured around the whole process. The goal (issue 17) is 93-103% of T. Also printed: the share of
the run spent outside training steps (the ledger's ``outside_share``).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kagglekit.durations import format_duration, parse_duration  # noqa: E402
from kagglekit.testing import zoo  # noqa: E402
from zoo import EXTRA_FLAGS  # noqa: E402  (benchmarks/zoo.py: flags a competition needs, e.g. Humpback's --valid)


def run_once(comp: Path, workdir: Path, budget: str, cost_scale: float | None, flags: list[str] = ()) -> dict:
    """Return the figures of one `kagglekit run` process: wall seconds, share of the budget, outside share."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if cost_scale is not None:
        env["KAGGLEKIT_COST_SCALE"] = str(cost_scale)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "kagglekit", "run", str(comp), "--time", budget, "--weights", "none",
                           "--workdir", str(workdir), *flags], env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    result = json.loads((workdir / "result.json").read_text())
    seconds = parse_duration(budget)
    return {"wall_s": round(wall, 1), "budget_s": seconds, "share": round(wall / seconds, 3),
            "run_seconds": round(result["seconds"], 1), "outside_share": result.get("outside_share"),
            "valid_score": result["valid_score"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time", default="2m,5m", help="budgets, comma-separated (default 2m,5m)")
    ap.add_argument("--only", default="digit-recognizer", help="zoo competitions, comma-separated")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=300)
    ap.add_argument("--cost-scale", type=float, default=None, help="KAGGLEKIT_COST_SCALE for the runs")
    ap.add_argument("--out", help="keep the competitions and run folders here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out or tmp)
        for name in args.only.split(","):
            built = zoo.build(name, base / name / "data", n_train=args.n_train, n_test=args.n_test)
            comp = built.extra.get("rerun", built).path
            for budget in args.time.split(","):
                row = run_once(comp, base / name / f"run-{budget}", budget, args.cost_scale, EXTRA_FLAGS.get(name, []))
                print(json.dumps({"competition": name, "time": budget, "cost_scale": args.cost_scale, **row}), flush=True)
                print(f"{name} --time {budget}: {format_duration(row['wall_s'])} wall, {row['share']:.1%} of the budget "
                      f"(goal 93-103%), {row['outside_share']:.0%} outside training steps", flush=True)


if __name__ == "__main__":
    main()
