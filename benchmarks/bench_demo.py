"""Wall time of ``propensity demo``: the main job end to end, as a user runs it.

The real command line in a fresh process (interpreter start and imports included), in a
temporary working directory, recording to a temporary embedded MLflow store (SQLite, created by
this run — so the first-run schema creation is part of the figure, as it is for a new user):
simulate the shop (20,000 customers, 365 days, seed 7), validate, build 6 rolling cutoffs, train
and calibrate, write the bundle and report, register it, score every customer.

Baseline in the same run: one LightGBM fit with the library's defaults on the demo's own
training table (``model/training_set.parquet``: every eligible customer at every cutoff, the
features the demo built) — the least any tool must do to learn from those rows. The ratio says
how many such fits the whole demo costs; it travels between machines better than seconds.

    python -m benchmarks.bench_demo            # the demo as `make demo` runs it
    python -m benchmarks.bench_demo --quick    # a 2,000-customer shop
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import Figure, emit, isolated, speed_ratio
from benchmarks.bench_training import lightgbm_once

QUICK = True
COMMAND = "python -m benchmarks.bench_demo"
CUSTOMERS = 20_000  # the demo's default
QUICK_CUSTOMERS = 2_000
#: Run the CLI of the propensity this benchmark imports (a worktree's src/ or the installed one).
_CLI = "import sys; from propensity.cli import main; sys.argv[0] = 'propensity'; sys.exit(main())"


def _environment(home: Path) -> dict[str, str]:
    import propensity

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "PROPENSITY_TRACKING_URI", "PROPENSITY_TRACKING")
    }
    package_root = str(Path(propensity.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.update(PROPENSITY_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true", NO_COLOR="1", COLUMNS="120")
    return env


def run(quick: bool = False) -> list[Figure]:
    customers = QUICK_CUSTOMERS if quick else CUSTOMERS
    args = ["demo", "--out", "demo"] + (["--customers", str(customers)] if quick else [])
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CLI, *args],
            cwd=folder,
            env=_environment(folder / ".propensity"),
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"propensity demo exited with {proc.returncode}: {proc.stderr[-2000:]}")
        model = folder / "demo" / "model"
        tracking = json.loads((model / "tracking.json").read_text())
        if tracking.get("status") == "failed":
            raise RuntimeError(f"the demo's MLflow tracking failed: {tracking}")
        shop = json.loads((folder / "demo" / "shop" / "shop.json").read_text())
        manifest = json.loads((model / "manifest.json").read_text())
        label = manifest["events"]["label"]["column"]
        table = model / "training_set.parquet"
        base, _, _ = isolated(lightgbm_once, str(table), label, ("customer_id", "cutoff"))
        rows = manifest["provenance"]["rows_train"] + manifest["provenance"]["rows_test"]
    said = re.search(r"Done in (\d+)s", proc.stdout)
    cmd = COMMAND + (" --quick" if quick else "")
    return [
        Figure(
            f"demo_{customers // 1000}k_wall_seconds",
            round(wall, 1),
            "s",
            "lower",
            baseline=round(base, 2),
            baseline_name="one LightGBM fit (library defaults) on the demo's training table",
            ratio=round(speed_ratio(wall, base, "lower"), 4),
            note=f"`propensity {' '.join(args)}` in a fresh process, MLflow to a new SQLite store; "
            f"the demo says 'Done in {said.group(1) if said else '?'}s' (after imports)",
            params={
                "customers": shop["customers"],
                "events": shop["events"],
                "days": shop["days"],
                "seed": shop.get("seed"),
                "cutoffs": len(manifest["events"]["cutoffs"]),
                "training_table_rows": rows,
                "winner": manifest["winner"],
                "tracking": tracking.get("status", "ok"),
                "n_jobs": os.environ.get("PROPENSITY_N_JOBS", "default (cores, at most 8)"),
            },
            command=cmd,
        )
    ]


if __name__ == "__main__":
    emit("demo", run(quick="--quick" in sys.argv))
