"""Monitoring speed and false alarms: `propensity monitor` on 10,000,000 rows against the profile.

Target (issue 19): 10M rows checked against the training profile in ≤ 10 s on 2 cores. The drift
aggregates run in DuckDB over the Parquet file (one scan); the score drift and CBPE use a 200k-row
Bernoulli sample. Baseline in the same run: the same per-feature binning in pandas/numpy after
reading the file with pyarrow (what a hand-rolled notebook check does). Evidently clashes with our
pins (it needs its own pandas), so it runs from a separate virtualenv when
``PROPENSITY_EVIDENTLY_PYTHON`` names its interpreter: its data-drift preset and our monitor on the
same 1M rows against the same training table (``monitor_vs_evidently_1m_seconds``). Evidently on
10M rows would take about half an hour here, so that size is not run.

Also measured: the false-alarm rate — the share of 100 unchanged samples (2,000 rows each, fresh
seeds of the same generator) that raise a red alert or an amber warning — and that a shifted
generator (more engaged customers, 90 % mobile) is flagged red.
"""

from __future__ import annotations

import time

from benchmarks._common import WORK, Figure, emit, isolated, speed_ratio

QUICK = False
COMMAND = "python -m benchmarks.bench_monitor"
ROWS = 10_000_000
CHUNK = 1_000_000


def _prepare(rows: int) -> tuple[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import propensity
    from propensity.datasets import make_customer_table

    WORK.mkdir(parents=True, exist_ok=True)
    model_dir = WORK / "monitor_model"
    if not (model_dir / "manifest.json").exists():
        propensity.train(make_customer_table(20_000, seed=1), target="purchased", out=model_dir, seed=0)
    data = WORK / f"monitor_{rows // 1_000_000}m.parquet"
    if not data.exists():
        writer = None
        for i in range(rows // CHUNK):
            table = pa.Table.from_pandas(make_customer_table(CHUNK, seed=1000 + i), preserve_index=False)
            writer = writer or pq.ParquetWriter(str(data) + ".tmp", table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()
        (WORK / (data.name + ".tmp")).rename(data)
    return str(model_dir), str(data)


def _monitor(model_dir: str, data: str) -> dict:
    from propensity.workflows.monitoring import monitor

    start = time.perf_counter()
    result = monitor(model_dir, data, out=WORK / "monitor_out")
    return {"seconds": time.perf_counter() - start, "status": result.status, "parts": result.seconds}


def _pandas_binning(model_dir: str, data: str) -> float:
    import numpy as np
    import pyarrow.parquet as pq

    from propensity.bundle import load_model

    manifest = load_model(model_dir).manifest
    start = time.perf_counter()
    frame = pq.read_table(data).to_pandas()
    for name, prof in manifest.profile.items():
        col = frame[name]
        if prof.role == "boolean":
            col.astype(str).str.lower().isin(["yes", "true", "1"]).mean()
        elif prof.histogram is not None:
            values = col.to_numpy(dtype=float, na_value=np.nan)
            np.histogram(values[np.isfinite(values)], bins=np.asarray(prof.histogram.edges))
        elif prof.top is not None:
            col.value_counts(normalize=True)
    return time.perf_counter() - start


def _false_alarms(model_dir: str, resamples: int = 100) -> dict:
    from propensity.datasets import make_customer_table
    from propensity.workflows.monitoring import monitor

    statuses = [
        monitor(model_dir, make_customer_table(2000, seed=50_000 + i), report=False).status
        for i in range(resamples)
    ]
    shifted = monitor(
        model_dir, make_customer_table(2000, seed=7, engagement=2.0, mobile_share=0.9), report=False
    )
    return {
        "red": statuses.count("red") / resamples,
        "amber": statuses.count("amber") / resamples,
        "shifted": shifted.status,
    }


def _one_million(data: str) -> str:
    """The first 1M rows of the benchmark file (one generator chunk), as its own Parquet file."""
    import pyarrow.parquet as pq

    path = WORK / "monitor_1m_first.parquet"
    if not path.exists():
        first = pq.ParquetFile(data).iter_batches(batch_size=CHUNK)
        pq.write_table(__import__("pyarrow").Table.from_batches([next(first)]), path)
    return str(path)


def _evidently(model_dir: str, data: str) -> Figure | None:
    """Evidently's drift preset vs our monitor on the same 1M rows (when an Evidently interpreter is named)."""
    import json
    import os
    import subprocess
    from pathlib import Path

    python = os.environ.get("PROPENSITY_EVIDENTLY_PYTHON")
    if not python:
        return None
    from propensity.bundle import load_model
    from propensity.datasets import make_customer_table

    features = [f.name for f in load_model(model_dir).manifest.input_schema.features]
    reference = WORK / "monitor_reference.parquet"
    make_customer_table(20_000, seed=1).to_parquet(reference)  # the model's training table
    current = _one_million(data)
    script = Path(__file__).with_name("_evidently_drift.py")
    done = subprocess.run(
        [python, str(script), str(reference), current, ",".join(features)],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    ours, _, peak = isolated(_monitor, model_dir, current)
    return Figure(
        "monitor_vs_evidently_1m_seconds",
        round(ours["seconds"], 2),
        "s",
        "lower",
        baseline=round(theirs["seconds_total"], 2),
        baseline_name=f"Evidently {theirs['evidently']} DataDriftPreset (read + report), same rows and reference",
        ratio=round(speed_ratio(ours["seconds"], theirs["seconds_total"], "lower"), 3),
        note=f"peak RSS ours {peak:.0f} MiB, Evidently {theirs['peak_rss_mib']:.0f} MiB; Evidently's report alone "
        f"{theirs['seconds_report']:.1f} s; ours also scores a 200k sample (score drift, CBPE)",
        params={"rows": theirs["rows"], "features": len(features)},
        command="PROPENSITY_EVIDENTLY_PYTHON=/path/to/venv/bin/python " + COMMAND,
    )


def run(quick: bool = False) -> list[Figure]:
    rows = 1_000_000 if quick else ROWS
    model_dir, data = _prepare(rows)
    info, _, peak = isolated(_monitor, model_dir, data)
    base, _, base_peak = isolated(_pandas_binning, model_dir, data)
    alarms, _, _ = isolated(_false_alarms, model_dir)
    suffix = " --quick" if quick else ""
    versus = _evidently(model_dir, data)
    return [
        *([versus] if versus else []),
        Figure(
            f"monitor_{rows // 1_000_000}m_rows_seconds",
            round(info["seconds"], 2),
            "s",
            "lower",
            baseline=round(base, 2),
            baseline_name="pyarrow read + numpy/pandas binning of the same features",
            ratio=round(speed_ratio(info["seconds"], base, "lower"), 3),
            target=None if quick else 10.0,
            note=f"parts {info['parts']}; peak RSS {peak:.0f} MiB (baseline {base_peak:.0f} MiB); status {info['status']}",
            params={"rows": rows, "features": 12, "score_sample": 200_000},
            command=COMMAND + suffix,
        ),
        Figure(
            "monitor_false_red_rate",
            alarms["red"],
            "share",
            "lower",
            note=f"100 unchanged samples of 2,000 rows: red {alarms['red']:.0%}, amber {alarms['amber']:.0%}; "
            f"shifted generator: {alarms['shifted']}",
            command=COMMAND + suffix,
        ),
    ]


if __name__ == "__main__":
    import sys

    emit("monitor", run(quick="--quick" in sys.argv))
