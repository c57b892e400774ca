"""Evidently's data-drift preset on two Parquet files; run by *another* interpreter that has Evidently.

Evidently is not one of our dependencies (its pins clash with ours), so ``bench_monitor`` runs this
file with the Python named by ``PROPENSITY_EVIDENTLY_PYTHON`` (a separate virtualenv with
``evidently`` and ``pandas<3``) and reads the JSON line it prints. It imports nothing of ours.

Usage: ``python _evidently_drift.py REFERENCE.parquet CURRENT.parquet COLUMN,COLUMN,...``
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    reference, current, columns = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    started = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = pd.read_parquet(reference, columns=columns)
    cur = pd.read_parquet(current, columns=columns)
    tick = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    metrics = len(snapshot.dict().get("metrics", []))
    print(
        json.dumps(
            {
                "seconds_report": time.perf_counter() - tick,
                "seconds_total": time.perf_counter() - started,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "metrics": metrics,
                "rows": len(cur),
                "evidently": __import__("evidently").__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
