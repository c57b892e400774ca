"""Training speed: a 500,000-row × 25-column table with every default (5-fold CV, calibration, policy).

Target (issue 2): ≤ 60 s and ≤ 1.5 GB peak RSS on a 2-core machine. Baseline in the same run:
one LightGBM fit with its library defaults on the same rows — the least any pipeline must do.
"""

from __future__ import annotations

import time

from benchmarks._common import WORK, Figure, emit, isolated, speed_ratio
from benchmarks._data import wide_table

QUICK = True
COMMAND = "python -m benchmarks.bench_training"
ROWS = 500_000
#: Quick mode: every default on 4 candidate families with 5-fold CV (the random forest takes ~3/4 of it) —
#: 100k rows took ~400 s, 20k ~110 s on a busy 2-core machine: too much for the 5-minute quick suite.
QUICK_ROWS = 10_000


def _write(n: int) -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"wide_{n}.parquet"
    if not path.exists():
        wide_table(n, seed=0).to_parquet(path)
    return str(path)


def _train(path: str) -> dict:
    import propensity

    result = propensity.train(path, target="target", seed=0)
    m = result.model.manifest
    return {
        "winner": m.winner,
        "test_roc_auc": m.metrics["test"]["roc_auc"],
        "timings": result.run.timings,
        "candidates": {c.name: c.rows for c in m.candidates},
        "candidate_fit_seconds": {c.name: c.fit_seconds for c in m.candidates},
    }


def lightgbm_once(path: str, target: str = "target", drop: tuple[str, ...] = ()) -> float:
    """Seconds of one LightGBM fit with the library's defaults (threads: ``PROPENSITY_N_JOBS``) on a table.

    Text columns become pandas categories (LightGBM's own categorical handling); ``drop``
    removes columns that are not features (ids, cutoffs). Reading the file is not timed.
    """
    import lightgbm as lgb
    import pandas as pd

    from propensity.config import get_settings

    frame = pd.read_parquet(path).drop(columns=list(drop))
    y = frame.pop(target)
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].astype("category")
    start = time.perf_counter()
    lgb.LGBMClassifier(n_jobs=get_settings().n_jobs, verbose=-1).fit(frame, y)
    return time.perf_counter() - start


def run(quick: bool = False) -> list[Figure]:
    n = QUICK_ROWS if quick else ROWS
    path = _write(n)
    info, seconds, peak = isolated(_train, path)
    base, _, _ = isolated(lightgbm_once, path)
    params = {"rows": n, "columns": 25, "seed": 0, "defaults": "5-fold CV, calibration, f1 policy", **info}
    target_s, target_mb = (60.0, 1536.0) if not quick else (None, None)
    return [
        Figure(
            f"train_{n // 1000}k_seconds",
            round(seconds, 2),
            "s",
            "lower",
            baseline=round(base, 2),
            baseline_name="one LightGBM fit, library defaults",
            ratio=round(speed_ratio(seconds, base, "lower"), 3),
            target=target_s,
            params=params,
            command=COMMAND + (" --quick" if quick else ""),
        ),
        Figure(
            f"train_{n // 1000}k_peak_rss",
            round(peak, 1),
            "MiB",
            "lower",
            target=target_mb,
            params={"rows": n},
            command=COMMAND + (" --quick" if quick else ""),
        ),
    ]


if __name__ == "__main__":
    import sys

    emit("training", run(quick="--quick" in sys.argv))
