"""How the Kaggle emulator (`kagglekit.testing.kaggle_emulator`) scores a submission: `score_submission`.

A deliberately simple stand-in for Kaggle's metrics, chosen by the shape of the answers (see
`kagglekit.testing.scoring` for the competitions' own metrics).
"""
from __future__ import annotations

import io
import os
import zipfile


def _read_table(data: bytes, name: str):
    import pandas as pd

    if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            csvs = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(csvs) != 1:
                raise ValueError(f"the zip must hold exactly one .csv file, it holds {len(csvs)}")
            data = zf.read(csvs[0])
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def score_submission(solution_csv: str | os.PathLike, data: bytes, name: str = "submission.csv") -> tuple[float, float]:
    """Return (public, private) scores of a submission against a solution CSV.

    Metric by the shape of the answers: space-separated label ids -> mean F2 per
    row; 0/1 answers with probability predictions -> log loss (clipped); otherwise
    accuracy. Public = first half of the rows, private = the rest (all when tiny).
    Raises ValueError naming what is wrong with the submission.
    """
    import numpy as np
    import pandas as pd

    solution = pd.read_csv(solution_csv, dtype=str, keep_default_na=False)
    sub = _read_table(data, name)
    id_col, target = solution.columns[0], solution.columns[1]
    if list(sub.columns) != list(solution.columns):
        raise ValueError(f"expected columns {list(solution.columns)}, got {list(sub.columns)}")
    if sub[id_col].duplicated().any():
        raise ValueError(f"duplicate ids in column {id_col!r}")
    merged = solution.merge(sub, on=id_col, how="left", suffixes=("", "_pred"), indicator=True)
    missing = merged.loc[merged["_merge"] != "both", id_col]
    if len(missing):
        raise ValueError(f"{len(missing)} ids missing from the submission, e.g. {list(missing[:3])}")
    if len(sub) != len(solution):
        raise ValueError(f"expected {len(solution)} rows, got {len(sub)}")
    truth, pred = merged[target].astype(str), merged[f"{target}_pred"].astype(str)

    multilabel = truth.str.contains(" ").any() or pred.str.contains(" ").any() or "label_id" in target
    if multilabel:
        def f2(t: str, p: str) -> float:
            ts, ps = set(t.split()), set(p.split())
            if not ts and not ps:
                return 1.0
            return 5 * len(ts & ps) / (4 * len(ts) + len(ps))  # F2 = 5 tp / (5 tp + 4 fn + fp)

        per_row = np.array([f2(t, p) for t, p in zip(truth, pred)])
    else:
        t_num = pd.to_numeric(truth, errors="coerce")
        p_num = pd.to_numeric(pred, errors="coerce")
        binary = t_num.notna().all() and set(t_num.unique()) <= {0.0, 1.0}
        probabilities = p_num.notna().all() and ((p_num % 1) != 0).any() and p_num.between(0, 1).all()
        if binary and probabilities:
            p = np.clip(p_num.to_numpy(float), 1e-15, 1 - 1e-15)
            y = t_num.to_numpy(float)
            per_row = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        elif t_num.notna().all() and p_num.notna().all():
            per_row = (t_num.to_numpy(float) == p_num.to_numpy(float)).astype(float)
        else:
            per_row = (truth.to_numpy() == pred.to_numpy()).astype(float)
    half = max(1, len(per_row) // 2)
    public = float(per_row[:half].mean())
    private = float(per_row[half:].mean()) if len(per_row) > half else public
    return public, private
