"""Dashboard responsiveness on a ~1M-event log: seconds to render each page after the first load.

Target (issue 7): every page renders in ≤ 3 s after the first load (aggregates cached). Pages are
run by Streamlit's ``AppTest`` (the app's own script, in-process, no browser), so the figure is
the server-side render time a user waits for. Baseline in the same run: the raw DuckDB queries
behind the Overview and Behaviour pages (KPIs, daily and weekly activity, funnels, cohorts, RFM)
computed once, uncached, on the same canonical log. The first load (validating the raw log,
rebuilding and scoring every customer's features, both cached on disk afterwards) is reported
too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks._common import WORK, Figure, emit, isolated, speed_ratio

QUICK = True
COMMAND = "python -m benchmarks.bench_dashboard"
PAGES = ("overview", "behaviour", "model", "explain", "target", "score")


def _prepare(customers: int) -> tuple[str, str]:
    from propensity.datasets import generate_shop
    from propensity.workflows.events import train_from_events

    folder = WORK / f"dash_shop_{customers}"
    events = folder / "events.parquet"
    if not events.exists():
        generate_shop(customers, days=365, seed=7, out=folder)
    model = folder / "model"
    if not (model / "manifest.json").exists():
        train_from_events(events, horizon_days=30, cutoffs=3, out=model, candidates=["lightgbm"], seed=7)
    return str(model), str(events)


def _render(model: str, events: str, cache: str) -> dict:
    from streamlit.testing.v1 import AppTest

    from propensity.dashboard import CACHE_ENV, EVENTS_ENV, MODEL_ENV, app_path

    os.environ.update({MODEL_ENV: model, EVENTS_ENV: events, CACHE_ENV: cache})
    at = AppTest.from_file(str(app_path()), default_timeout=900)
    start = time.perf_counter()
    at.run()
    for page in PAGES:  # the first visit of each page fills the caches
        at.switch_page(f"views/{page}.py").run()
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
    first = time.perf_counter() - start
    seconds = {}
    for page in PAGES:
        start = time.perf_counter()
        at.switch_page(f"views/{page}.py").run()
        seconds[page] = time.perf_counter() - start
    start = time.perf_counter()
    at.switch_page("views/model.py").run()
    at.slider(key="model_threshold").set_value(0.4).run()
    seconds["model_slider_move"] = time.perf_counter() - start
    return {"first_load": first, "pages": seconds}


def _raw_queries(canonical: str) -> dict:
    from propensity.analytics import (
        EventStore,
        activity_over_time,
        cohort_retention,
        funnel,
        rfm_table,
        summary_kpis,
    )

    store = EventStore(canonical, threads=2)
    start = time.perf_counter()
    summary_kpis(store)
    activity_over_time(store, freq="day")
    activity_over_time(store, freq="week")
    for by in (None, "device", "channel"):
        funnel(store, by=by)  # type: ignore[arg-type]
    cohort_retention(store)
    rfm_table(store)
    return {"seconds": time.perf_counter() - start, "events": store.rows}


def run(quick: bool = False) -> list[Figure]:
    customers = 5_000 if quick else 20_000
    model, events = _prepare(customers)
    cache = WORK / f"dash_cache_{customers}"
    if cache.exists():
        import shutil

        shutil.rmtree(cache)
    result, _, peak = isolated(_render, model, events, str(cache))
    raw, _, _ = isolated(_raw_queries, str(Path(cache) / "validated" / "events.parquet"))
    worst_page = max(PAGES, key=lambda p: result["pages"][p])
    worst = result["pages"][worst_page]
    params = {
        "events": raw["events"],
        "customers": customers,
        "pages": {k: round(v, 3) for k, v in result["pages"].items()},
    }
    cmd = COMMAND + (" --quick" if quick else "")
    return [
        Figure(
            "dashboard_slowest_page_render_seconds",
            round(worst, 3),
            "s",
            "lower",
            baseline=round(raw["seconds"], 3),
            baseline_name="raw DuckDB aggregates of Overview + Behaviour, uncached",
            ratio=round(speed_ratio(worst, raw["seconds"], "lower"), 3),
            target=None if quick else 3.0,
            note=f"slowest page: {worst_page}; AppTest server-side render after the first load",
            params=params,
            command=cmd,
        ),
        Figure(
            "dashboard_first_load_seconds",
            round(result["first_load"], 2),
            "s",
            "lower",
            note="validate the raw log + score every customer + first visit of each page (then cached on disk)",
            params={"events": raw["events"], "customers": customers},
            command=cmd,
        ),
        Figure(
            "dashboard_peak_rss",
            round(peak, 1),
            "MiB",
            "lower",
            params={"events": raw["events"]},
            command=cmd,
        ),
    ]


if __name__ == "__main__":
    import sys

    emit("dashboard", run(quick="--quick" in sys.argv))
