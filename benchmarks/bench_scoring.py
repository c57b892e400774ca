"""Batch scoring speed: a 1,000,000-row Parquet file through `score_file` (chunked, flat memory).

Target (issue 2): ≥ 500,000 rows/s. Baseline in the same run: reading the same file and writing
a same-sized output with pyarrow (pure I/O). "Flat memory" is shown by the peak RSS of scoring
2M rows next to scoring 1M rows (both many 200k-row chunks): doubling the file should not
raise it. (A 250k-row file is a chunk and a bit, below the steady state, so it is not compared.)
"""

from __future__ import annotations

import time

from benchmarks._common import WORK, Figure, emit, isolated, speed_ratio
from benchmarks._data import wide_table

QUICK = True
COMMAND = "python -m benchmarks.bench_scoring"


def _prepare(n_score: int) -> tuple[str, str]:
    import propensity

    WORK.mkdir(parents=True, exist_ok=True)
    model_dir = WORK / "score_model"
    if not (model_dir / "manifest.json").exists():
        propensity.train(
            wide_table(50_000, seed=1), target="target", out=model_dir, candidates=["lightgbm"], seed=0
        )
    data = WORK / f"score_{n_score}.parquet"
    if not data.exists():
        wide_table(n_score, seed=2, with_target=False).to_parquet(data)
    warm = WORK / "score_warm.parquet"
    if not warm.exists():
        wide_table(30_000, seed=3, with_target=False).to_parquet(warm)
    # Compiles the tree kernel once (numba caches it on disk, as after any first use of an install).
    propensity.score_file(model_dir, warm, WORK / "warm_scored.parquet")
    return str(model_dir), str(data)


def _score(model_dir: str, data: str) -> dict:
    import propensity

    summary = propensity.score_file(model_dir, data, str(WORK / "scored.parquet"))
    return {"rows": summary.rows_in, "seconds": summary.seconds}


def _io_only(data: str) -> float:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    pf = pq.ParquetFile(data)
    with pq.ParquetWriter(
        str(WORK / "io.parquet"), pa.schema([("row", pa.int64()), ("p", pa.float64())])
    ) as w:
        for batch in pf.iter_batches(batch_size=200_000):
            n = batch.num_rows
            w.write_table(pa.table({"row": np.arange(n), "p": np.zeros(n)}))
    return time.perf_counter() - start


def run(quick: bool = False) -> list[Figure]:
    n = 250_000 if quick else 1_000_000
    model_dir, data = _prepare(n)
    info, _, peak = isolated(_score, model_dir, data)
    rows_per_s = info["rows"] / info["seconds"]
    base, _, _ = isolated(_io_only, data)
    figures = [
        Figure(
            f"score_{n // 1000}k_rows_per_second",
            round(rows_per_s),
            "rows/s",
            "higher",
            baseline=round(info["rows"] / base),
            baseline_name="pyarrow read + write only",
            ratio=round(speed_ratio(rows_per_s, info["rows"] / base, "higher"), 3),
            target=None if quick else 500_000,
            params={"rows": n, "model": "LightGBM, 25 columns"},
            command=COMMAND + (" --quick" if quick else ""),
        ),
        Figure(
            f"score_{n // 1000}k_peak_rss",
            round(peak, 1),
            "MiB",
            "lower",
            params={"rows": n},
            command=COMMAND + (" --quick" if quick else ""),
        ),
    ]
    if not quick:
        _, large = _prepare(2 * n)
        _, _, peak_large = isolated(_score, model_dir, large)
        figures.append(
            Figure(
                "score_peak_rss_2m_minus_1m",
                round(peak_large - peak, 1),
                "MiB",
                "lower",
                note=f"flat memory: close to 0 means memory does not grow with the file "
                f"(peak {peak:.0f} MiB for 1M rows, {peak_large:.0f} MiB for 2M)",
                command=COMMAND,
            )
        )
    return figures


if __name__ == "__main__":
    import sys

    emit("scoring", run(quick="--quick" in sys.argv))
