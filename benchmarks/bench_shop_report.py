"""``propensity report-shop`` on the ~1M-event demo log: seconds for every aggregate of the report.

Target (issue 21): the aggregates of the shop report — KPIs, funnel, RFM, products and categories
(views, carts, orders, revenue, conversion, abandonment) and bought-together pairs — in ≤ 5 s on
the 1M-event demo log, run by DuckDB through the engines layer. The log is validated once before
timing (the report reuses its validated copy, as a second run of ``report-shop`` does). Baseline
in the same run: the per-product table alone written in pandas (groupby on the canonical events
read into memory), the way it would be done without an engine. The whole ``report_shop`` (page and
JSON written, no model) and, when ../shared is present, the same on the online-retail order log are
reported too.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import WORK, Figure, emit, isolated, shared, skipped, speed_ratio

QUICK = True
COMMAND = "python -m benchmarks.bench_shop_report"


def _prepare(customers: int) -> tuple[str, str]:
    from propensity.analytics import prepare_events
    from propensity.datasets import generate_shop

    folder = WORK / f"shop_report_{customers}"
    events = folder / "events.parquet"
    if not events.exists():
        generate_shop(customers, days=365, seed=7, out=folder)
    canonical, _ = prepare_events(events, folder / "insights_validated")
    return str(events), str(canonical)


def _insights(events: str, cache: str) -> dict:
    from propensity.workflows.shop import shop_insights

    start = time.perf_counter()
    data = shop_insights(events, cache=cache)
    return {
        "seconds": time.perf_counter() - start,
        "steps": data["seconds"],
        "events": data["kpis"]["events"],
    }


def _report(events: str, out: str, mapping: str | None = None) -> dict:
    from propensity.workflows.shop import report_shop

    start = time.perf_counter()
    report_shop(events, out, mapping=mapping)
    return {"seconds": time.perf_counter() - start}


def pandas_product_table(e: pd.DataFrame) -> pd.DataFrame:
    """The per-product table of propensity.analytics.products, in pandas (the same definitions):
    ``viewers``, ``carters``, ``buyers``, ``view_buyers``, ``abandoned``, ``orders``, ``revenue``,
    ``conversion_rate`` by ``product_id``."""
    e = e.copy()
    purchase = e["event_type"] == "purchase"
    named = e[purchase & e["product_id"].notna()]
    e["bought"] = purchase
    e["named"] = purchase & e["product_id"].notna()
    flags = (
        e[e["session_id"].notna()]
        .groupby(["customer_id", "session_id"])[["bought", "named"]]
        .max()
        .reset_index()
    )
    carts = e[(e["event_type"] == "add_to_cart") & e["product_id"].notna()].drop(columns=["bought", "named"])
    carted = carts.merge(flags[flags["bought"] & ~flags["named"]], on=["customer_id", "session_id"])
    lines = pd.concat([named, carted])[["customer_id", "product_id", "session_id", "order_id", "amount"]]
    lines["order_key"] = (
        lines["customer_id"] + "|" + lines["order_id"].fillna(lines["session_id"]).astype(str)
    )
    browse = e[e["event_type"].isin(["view", "add_to_cart"]) & e["product_id"].notna()]
    tagged = pd.concat(
        [
            browse.assign(
                v=(browse["event_type"] == "view").astype(int),
                c=(browse["event_type"] == "add_to_cart").astype(int),
                b=0,
            ),
            lines.assign(v=0, c=0, b=1),
        ]
    )
    pairs = tagged.groupby(["product_id", "customer_id"])[["v", "c", "b"]].max()
    per_customer = (
        pd.DataFrame(
            {
                "viewers": pairs["v"],
                "carters": pairs["c"],
                "buyers": pairs["b"],
                "view_buyers": (pairs["v"] == 1) & (pairs["b"] == 1),
                "abandoned": (pairs["c"] == 1) & (pairs["b"] == 0),
            }
        )
        .groupby(level=0)
        .sum()
    )
    per_item = lines.groupby("product_id").agg(orders=("order_key", "nunique"), revenue=("amount", "sum"))
    table = per_customer.join(per_item, how="left").fillna({"orders": 0, "revenue": 0.0})
    table["conversion_rate"] = np.where(
        table["viewers"] > 0, table["view_buyers"] / table["viewers"].clip(lower=1), np.nan
    )
    return table.reset_index()


def _pandas_products(canonical: str) -> dict:
    start = time.perf_counter()
    table = pandas_product_table(pd.read_parquet(canonical))
    return {"seconds": time.perf_counter() - start, "products": len(table)}


def _ours_products(canonical: str) -> dict:
    from propensity.analytics.products import product_analytics
    from propensity.engines import get_engine

    start = time.perf_counter()
    with get_engine() as eng:
        pa = product_analytics(eng.read(canonical), engine=eng)
    assert pa is not None
    return {"seconds": time.perf_counter() - start, "products": len(pa.products)}


def run(quick: bool = False) -> list[Figure]:
    customers = 5_000 if quick else 20_000
    events, canonical = _prepare(customers)
    cache = str(Path(canonical).parent)
    ours, _, peak = isolated(_insights, events, cache)
    products, _, _ = isolated(_ours_products, canonical)
    baseline, _, _ = isolated(_pandas_products, canonical)
    page, _, _ = isolated(_report, events, str(Path(cache).parent / "insights.html"))
    cmd = COMMAND + (" --quick" if quick else "")
    params = {"events": ours["events"], "customers": customers, "steps": ours["steps"]}
    figures = [
        Figure(
            "shop_report_aggregates_seconds",
            round(ours["seconds"], 3),
            "s",
            "lower",
            target=None if quick else 5.0,
            note="KPIs, funnel, RFM, products, categories, pairs, segments on the validated log (DuckDB)",
            params=params,
            command=cmd,
        ),
        Figure(
            "shop_report_products_seconds",
            round(products["seconds"], 3),
            "s",
            "lower",
            baseline=round(baseline["seconds"], 3),
            baseline_name="the per-product table alone in pandas (groupby in memory)",
            ratio=round(speed_ratio(products["seconds"], baseline["seconds"], "lower"), 3),
            note=f"products, categories and pairs through the engines layer; {products['products']:,} products",
            params={"events": ours["events"]},
            command=cmd,
        ),
        Figure(
            "shop_report_page_seconds",
            round(page["seconds"], 3),
            "s",
            "lower",
            note="report_shop: insights + HTML page + JSON, no model (validated log reused)",
            params={"events": ours["events"]},
            command=cmd,
        ),
        Figure(
            "shop_report_peak_rss",
            round(peak, 1),
            "MiB",
            "lower",
            params={"events": ours["events"]},
            command=cmd,
        ),
    ]
    retail = shared("online_retail", "online_retail.parquet")
    if retail is None:
        return figures + skipped(["online_retail"])
    mapping = Path(__file__).resolve().parents[1] / "examples" / "mappings" / "online_retail.yaml"
    out = WORK / "shop_report_retail" / "insights.html"
    _report(str(retail), str(out), str(mapping))  # validates once (cached)
    again, _, _ = isolated(_report, str(retail), str(out), str(mapping))
    figures.append(
        Figure(
            "shop_report_online_retail_seconds",
            round(again["seconds"], 3),
            "s",
            "lower",
            note="report_shop on the UCI online-retail order log (541,909 lines), validated log reused",
            command=cmd,
        )
    )
    return figures


if __name__ == "__main__":
    import sys

    emit("shop_report", run(quick="--quick" in sys.argv))
