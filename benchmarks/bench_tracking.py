"""What MLflow tracking costs a `propensity train`, and what loading by registry reference costs.

Each measurement runs in a fresh spawned process, like a command-line run: importing MLflow
and its SQL store is part of the price. Figures:

- ``train_tracking_overhead_first``: seconds tracking adds to the first train in a new
  working directory (creates the embedded SQLite store); baseline = the same train untracked;
- ``train_tracking_overhead``: the same for a train into an existing store (the usual case);
- ``load_registered``: loading ``models:/bench@champion`` in a fresh process (first time:
  download + verify), baseline = loading the bundle folder.

    python -m benchmarks.bench_tracking
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from benchmarks._common import WORK, Figure, emit, isolated

QUICK = True
COMMAND = "python -m benchmarks.bench_tracking"


def _train(folder: str, out: str, tracking: bool, rows: int, candidates: list[str]) -> dict[str, Any]:
    os.chdir(folder)
    os.environ.setdefault("PROPENSITY_N_JOBS", "2")
    import propensity
    from propensity.datasets import make_customer_table

    table = make_customer_table(rows, seed=5)
    start = time.perf_counter()
    model = propensity.train(
        table, "purchased", out=out, name="bench", tracking=tracking, candidates=candidates, seed=5
    ).model
    total = time.perf_counter() - start
    tracked = getattr(model, "tracking", None)
    return {
        "total": total,
        "tracking": getattr(tracked, "seconds", None),
        "version": getattr(tracked, "version", None),
        "error": getattr(tracked, "error", None),
    }


def _load(folder: str, ref: str) -> float:
    os.chdir(folder)
    start = time.perf_counter()
    import propensity

    propensity.resolve_model(ref)
    return time.perf_counter() - start


def _promote(folder: str) -> None:
    os.chdir(folder)
    from propensity.tracking import promote

    promote("bench", 1)


def run(quick: bool) -> list[Figure]:
    rows = 3000 if quick else 20_000
    candidates = ["logistic_regression"] if quick else ["logistic_regression", "lightgbm"]
    folder = WORK / "tracking"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    params = {"rows": rows, "candidates": candidates, "seed": 5}
    plain, _, _ = isolated(_train, str(folder), "plain", False, rows, candidates)
    first, _, _ = isolated(_train, str(folder), "first", True, rows, candidates)
    again, _, _ = isolated(_train, str(folder), "again", True, rows, candidates)
    for result in (first, again):
        if result["error"]:
            raise RuntimeError(f"tracking failed: {result['error']}")
    isolated(_promote, str(folder))
    by_path, _, _ = isolated(_load, str(folder), str(folder / "first"))
    by_ref_cold, _, _ = isolated(_load, str(folder), "models:/bench@champion")
    by_ref_warm, _, _ = isolated(_load, str(folder), "models:/bench@champion")
    note = "seconds measured inside log_training (import mlflow + store + runs + model + registration)"
    return [
        Figure(
            "train_tracking_overhead_first", first["tracking"], "s", "lower",
            baseline=plain["total"], baseline_name="untracked train (s)", note=note + "; creates the SQLite schema",
            params=params, command=COMMAND,
        ),
        Figure(
            "train_tracking_overhead", again["tracking"], "s", "lower",
            baseline=plain["total"], baseline_name="untracked train (s)", note=note, params=params, command=COMMAND,
        ),
        Figure(
            "load_registered_first", by_ref_cold, "s", "lower", baseline=by_path, baseline_name="load bundle folder (s)",
            ratio=by_path / by_ref_cold if by_ref_cold else None, note="resolve alias, download, verify, unpickle",
            params=params, command=COMMAND,
        ),
        Figure(
            "load_registered_cached", by_ref_warm, "s", "lower", baseline=by_path,
            baseline_name="load bundle folder (s)", ratio=by_path / by_ref_warm if by_ref_warm else None,
            note="resolve alias, verify the cached copy, unpickle", params=params, command=COMMAND,
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    emit("tracking", run(quick=os.environ.get("BENCH_QUICK", "1") == "1"))
