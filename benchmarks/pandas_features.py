"""The event features written the straightforward way, in pandas groupby code.

Two uses: the baseline of ``bench_features`` (same features, same input, same run), and an
independent oracle for the tests — it shares no code with :mod:`propensity.features`
except the feature *list*, so an agreement between the two is evidence both are right.

It loads the canonical events into memory (that is what "straightforward" means) and computes,
per customer with events before ``as_of``, every feature in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

DAY = 86_400
TYPES = ("view", "add_to_cart", "checkout", "purchase", "return")
DAYPARTS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))


def _slug(value: str) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in value.strip().lower()).strip("_")
    while "__" in text:
        text = text.replace("__", "_")
    return text or "blank"


def pandas_features(
    events: pd.DataFrame,
    as_of: Any,
    *,
    lookbacks: tuple[int, ...] = (7, 30, 90),
    trend_days: int = 30,
    levels: Mapping[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """Features at ``as_of`` from canonical events (naive-UTC ``ts``), one row per customer."""
    as_of = pd.Timestamp(as_of)
    levels = levels or {}
    ev = events[events["ts"] < as_of].copy()
    epoch = (ev["ts"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    as_of_e = (as_of - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    ev["age"] = as_of_e - epoch
    ev["bucket"] = (ev["age"] - 1) // DAY
    ev["hour"] = ev["ts"].dt.hour
    ev["dow"] = ev["ts"].dt.dayofweek
    windows: list[tuple[str, int | None]] = [(f"{w}d", w) for w in sorted(lookbacks)] + [("all", None)]
    g = ev.groupby("customer_id")
    out = pd.DataFrame(index=pd.Index(sorted(ev["customer_id"].unique()), name="customer_id"))

    def inside(frame: pd.DataFrame, days: int | None, col: str = "age") -> pd.Series:
        return pd.Series(True, index=frame.index) if days is None else frame[col] <= days * DAY

    is_purchase = ev["event_type"] == "purchase"
    for suffix, days in windows:
        w = inside(ev, days)
        out[f"n_events_{suffix}"] = ev[w].groupby("customer_id").size()
        for t in TYPES:
            out[f"n_{t}_{suffix}"] = ev[w & (ev["event_type"] == t)].groupby("customer_id").size()
        out[f"spend_{suffix}"] = ev[w & is_purchase].groupby("customer_id")["amount"].sum()
    out["returned_value_all"] = -ev[ev["event_type"] == "return"].groupby("customer_id")["amount"].sum()
    out["days_since_last_event"] = g["age"].min() / DAY
    for t in TYPES:
        out[f"days_since_last_{t}"] = ev[ev["event_type"] == t].groupby("customer_id")["age"].min() / DAY
    out["tenure_days"] = g["age"].max() / DAY
    recent = ev[ev["age"] <= trend_days * DAY].groupby("customer_id").size()
    earlier = (
        ev[(ev["age"] > trend_days * DAY) & (ev["age"] <= 2 * trend_days * DAY)].groupby("customer_id").size()
    )
    recent = recent.reindex(out.index, fill_value=0)
    earlier = earlier.reindex(out.index, fill_value=0)
    out[f"events_trend_{trend_days}d"] = np.log((recent + 1.0) / (earlier + 1.0))
    total = g.size()
    for part, lo, hi in DAYPARTS:
        out[f"share_hour_{part}"] = (
            ev[(ev["hour"] >= lo) & (ev["hour"] < hi)]
            .groupby("customer_id")
            .size()
            .reindex(out.index, fill_value=0)
            / total
        )
    out["share_weekend"] = (
        ev[ev["dow"] >= 5].groupby("customer_id").size().reindex(out.index, fill_value=0) / total
    )
    for col in ("device", "channel"):
        if not levels.get(col):
            continue
        known = ev[ev[col].notna()].groupby("customer_id").size().reindex(out.index, fill_value=0)
        for level in levels[col]:
            n = ev[ev[col] == level].groupby("customer_id").size().reindex(out.index, fill_value=0)
            out[f"share_{col}_{_slug(level)}"] = (n / known.replace(0, np.nan)).astype("float64")
    days_t = ev[["customer_id", "bucket"]].drop_duplicates()
    for suffix, days in windows:
        sel = days_t if days is None else days_t[days_t["bucket"] < days]
        out[f"n_active_days_{suffix}"] = sel.groupby("customer_id").size()
    sess = (
        ev[ev["session_id"].notna()]
        .assign(
            is_view=lambda d: d["event_type"] == "view",
            is_cart=lambda d: d["event_type"] == "add_to_cart",
            is_buy=lambda d: d["event_type"] == "purchase",
        )
        .groupby(["customer_id", "session_id"])
        .agg(
            start=("age", "max"),
            end=("age", "min"),
            n=("age", "size"),
            has_view=("is_view", "any"),
            has_cart=("is_cart", "any"),
            has_purchase=("is_buy", "any"),
        )
        .reset_index()
    )
    abandoned = sess["has_cart"] & ~sess["has_purchase"]
    for suffix, days in windows:
        w = inside(sess, days, "start")
        out[f"n_sessions_{suffix}"] = sess[w].groupby("customer_id").size()
        out[f"n_abandoned_carts_{suffix}"] = sess[w & abandoned].groupby("customer_id").size()
    sg = sess.groupby("customer_id")
    out["avg_session_minutes"] = sg.apply(
        lambda d: ((d["start"] - d["end"]) / 60.0).mean(), include_groups=False
    )
    out["avg_events_per_session"] = sg["n"].mean()
    carts = sess[sess["has_cart"]].groupby("customer_id").size()
    views = sess[sess["has_view"]].groupby("customer_id").size()
    both = sess[sess["has_cart"] & sess["has_purchase"]].groupby("customer_id").size()
    vc = sess[sess["has_view"] & sess["has_cart"]].groupby("customer_id").size()
    ab = sess[abandoned].groupby("customer_id").size()
    out["cart_to_purchase_rate"] = both.reindex(carts.index, fill_value=0) / carts
    out["view_to_cart_rate"] = vc.reindex(views.index, fill_value=0) / views
    out["cart_abandonment_rate"] = ab.reindex(carts.index, fill_value=0) / carts
    buys = ev[is_purchase].copy()
    buys["order"] = buys["order_id"].where(buys["order_id"].notna(), (as_of_e - buys["age"]).astype(str))
    orders = (
        buys.groupby(["customer_id", "order"])
        .agg(o_age=("age", "max"), o_amount=("amount", "sum"))
        .reset_index()
    )
    orders = orders.sort_values(["customer_id", "o_age"], ascending=[True, False])
    orders["gap"] = (orders.groupby("customer_id")["o_age"].shift(1) - orders["o_age"]) / DAY
    for suffix, days in windows:
        sel = orders if days is None else orders[orders["o_age"] <= days * DAY]
        out[f"n_orders_{suffix}"] = sel.groupby("customer_id").size()
    og = orders.groupby("customer_id")
    out["avg_order_value"] = og["o_amount"].mean()
    out["interpurchase_days_mean"] = og["gap"].mean()
    out["interpurchase_days_std"] = og["gap"].std(ddof=1)
    first, last = og["o_age"].max() / DAY, og["o_age"].min() / DAY
    out["repeat_orders_per_30d"] = (og.size() - 1) * 30.0 / first.clip(lower=1.0)
    out["last_order_share_of_life"] = ((first - last) / first).where(first > 0)
    cats = ev[ev["category"].notna()].groupby(["customer_id", "category"]).size().rename("n").reset_index()
    out["n_categories_all"] = cats.groupby("customer_id").size()
    cats = cats.sort_values(["customer_id", "n", "category"], ascending=[True, False, True])
    out["top_category"] = cats.groupby("customer_id")["category"].first()
    counts = [c for c in out.columns if c.startswith(("n_", "spend_", "returned_"))]
    out[counts] = out[counts].fillna(0)
    return out.reset_index()
