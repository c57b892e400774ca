"""A realistic synthetic online shop: customers, sessions, a purchase funnel — and dirty rows.

:func:`generate_shop` writes ``events.parquet`` (one row per event, in the canonical event
schema of :mod:`propensity.events`) and ``customers.parquet`` (one row per customer), plus
``shop.json`` with the parameters and the exact number of dirty rows of each kind it
planted, so validation can be checked against the truth.

How the shop behaves
--------------------
- Each customer has a latent *intent* that drifts day by day (an Ornstein–Uhlenbeck
  process with a half-life of about three weeks). Intent raises how often they visit and
  how far they get through the funnel — it is never written to disk, so a model has to
  infer it from behaviour, and its drift bounds how well anyone can predict (no leak).
- Customers sign up over the whole period (a third exist from day one), come back again
  and again while their intent lasts, and lapse: each has a lapse date after which they
  visit only rarely (so some lapsed customers return).
- Visits follow a weekly rhythm (more at weekends), a pre-Christmas bump, and a time-of-day
  profile that depends on the device (mobile in the evening, desktop in working hours).
- A session is a run of product views; a view leads to an add-to-cart with a probability
  that grows with intent; a cart leads to checkout, and checkout to purchase, with
  realistic drop-off (mobile converts a little worse). Prices depend on the category.
  About 6 % of orders are returned 2–25 days later.
- Dirty rows in known proportions: exact duplicates, unparseable timestamps, missing
  customer ids, unknown event types, negative purchase amounts and clock-skewed timestamps
  decades in the future. About 1 % of timestamps carry an explicit UTC offset (another
  server's format) — valid, and equal to the same instant in UTC.

Memory stays bounded: customers are simulated in fixed batches and each batch is written as
one Parquet row group, so 10M+ events need a few hundred MB. The same seed gives the same
files (batches have their own seeded random streams).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from propensity.errors import ParameterError

__all__ = ["DIRTY_RATES", "ShopSummary", "generate_shop"]

log = logging.getLogger(__name__)

#: Customers simulated per batch; part of the definition of a seed's output, so fixed.
BATCH_CUSTOMERS = 2000

CATEGORIES = (
    "books",
    "fashion",
    "electronics",
    "home",
    "beauty",
    "sports",
    "toys",
    "grocery",
    "garden",
    "jewelry",
    "pets",
    "music",
)
_BASE_PRICE = np.array([15, 45, 180, 60, 25, 55, 30, 12, 40, 120, 22, 18], dtype="float64")
_POPULARITY = np.array([8, 16, 9, 12, 10, 8, 7, 9, 5, 3, 8, 5], dtype="float64")
_RETURN_RATE = np.array([0.02, 0.14, 0.06, 0.05, 0.03, 0.06, 0.04, 0.01, 0.04, 0.08, 0.02, 0.02])
DEVICES = ("mobile", "desktop", "tablet")
CHANNELS = ("organic", "paid_search", "social", "email", "direct", "affiliate")
COUNTRIES = ("UK", "DE", "FR", "NL", "ES", "IT", "SE", "PL")

#: Share of clean rows turned into each kind of dirty row (duplicates are extra copies).
DIRTY_RATES: dict[str, float] = {
    "duplicate": 0.006,
    "bad_timestamp": 0.001,
    "missing_customer": 0.001,
    "unknown_event_type": 0.0005,
    "negative_amount": 0.0003,
    "future_timestamp": 0.0002,
}
_GARBAGE_TS = np.array(["not a date", "2024-02-30 25:61:00", "NaT", "31/31/2024", "yesterday", "0000-00-00"])
_UNKNOWN_EVENTS = np.array(["debug_ping", "heartbeat", "test_event"])

# Hour-of-day profiles (24 weights) per device.
_HOURS = np.arange(24)
_HOUR_PROFILE = {
    "mobile": np.exp(-0.5 * ((_HOURS - 20.5) / 3.0) ** 2)
    + 0.25 * np.exp(-0.5 * ((_HOURS - 12.5) / 1.5) ** 2),
    "desktop": np.exp(-0.5 * ((_HOURS - 13.0) / 3.5) ** 2) + 0.15,
    "tablet": np.exp(-0.5 * ((_HOURS - 19.0) / 3.0) ** 2) + 0.1,
}
for _k in _HOUR_PROFILE:
    _HOUR_PROFILE[_k] = _HOUR_PROFILE[_k] + 0.02
    _HOUR_PROFILE[_k] /= _HOUR_PROFILE[_k].sum()
_WEEKDAY_FACTOR = np.array([1.05, 0.95, 0.95, 1.0, 0.95, 1.15, 1.25])  # Monday..Sunday

EVENTS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("ts", pa.string()),
        ("event_type", pa.string()),
        ("session_id", pa.int64()),
        ("order_id", pa.int64()),
        ("amount", pa.float64()),
        ("quantity", pa.int32()),
        ("product_id", pa.string()),
        ("category", pa.string()),
        ("device", pa.string()),
        ("channel", pa.string()),
    ]
)


@dataclass
class ShopSummary:
    """What :func:`generate_shop` wrote."""

    customers: int
    days: int
    seed: int
    start: str
    end: str
    events: int
    clean_events: int
    dirty: dict[str, int]
    event_types: dict[str, int]
    paths: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _check(name: str, ok: bool, expected: str, got: Any) -> None:
    if not ok:
        raise ParameterError(
            f"The '{name}' parameter of generate_shop must be {expected}. Got {got!r} instead."
        )


def generate_shop(
    customers: int = 10_000,
    days: int = 180,
    seed: int = 7,
    out: str | Path = "data/shop",
    *,
    start: str = "2024-01-01",
    dirty: bool = True,
    activity: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> ShopSummary:
    """Simulate an online shop and write ``events.parquet``, ``customers.parquet`` and ``shop.json``.

    Parameters
    ----------
    customers
        Number of customers (≥ 1). About 50 events per customer per year at ``activity=1``.
    days
        Length of the period in days (7 to 3,650); events fall in ``[start, start + days)``.
    seed
        Random seed: the same seed (and parameters) gives byte-identical data.
    out
        Output folder (created).
    start
        First day of the period (UTC), ``YYYY-MM-DD``.
    dirty
        Plant dirty rows in the proportions of :data:`DIRTY_RATES` (counted in ``shop.json``).
    activity
        Multiplier of visit rates (0.1 to 10), to trade customers for events per customer.
    progress
        Called with ``(customers_done, customers)`` after each batch.

    Returns
    -------
    ShopSummary
        Counts, the exact number of dirty rows by kind, and the paths written.

    Example
    -------
    >>> generate_shop(20_000, days=365, seed=7, out="data/shop")  # doctest: +SKIP
    """
    _check("customers", isinstance(customers, int) and customers >= 1, "an int >= 1", customers)
    _check("days", isinstance(days, int) and 7 <= days <= 3650, "an int in [7, 3650]", days)
    _check("activity", 0.1 <= activity <= 10, "a float in [0.1, 10]", activity)
    try:
        t0 = np.datetime64(start, "s")
    except ValueError:
        raise ParameterError(
            f"The 'start' parameter of generate_shop must be a date YYYY-MM-DD. Got {start!r} instead."
        ) from None
    began = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    events_path, customers_path = out / "events.parquet", out / "customers.parquet"
    totals: dict[str, int] = dict.fromkeys(DIRTY_RATES, 0)
    type_counts: dict[str, int] = {}
    n_events = n_clean = 0
    session_base = 0
    cust_tables: list[pa.Table] = []
    with pq.ParquetWriter(events_path, EVENTS_SCHEMA, compression="zstd") as writer:
        for b, first in enumerate(range(0, customers, BATCH_CUSTOMERS)):
            n = min(BATCH_CUSTOMERS, customers - first)
            rng = np.random.default_rng([seed, b])
            batch, cust, session_base, planted = _simulate_batch(
                rng, first, n, days, t0, session_base, dirty=dirty, activity=activity
            )
            writer.write_table(batch)
            cust_tables.append(cust)
            n_events += batch.num_rows
            n_clean += batch.num_rows - sum(planted.values())
            for k, v in planted.items():
                totals[k] += v
            values, counts = np.unique(
                batch.column("event_type").to_numpy(zero_copy_only=False), return_counts=True
            )
            for v, c in zip(values, counts, strict=True):
                type_counts[str(v)] = type_counts.get(str(v), 0) + int(c)
            if progress is not None:
                progress(first + n, customers)
    pq.write_table(pa.concat_tables(cust_tables), customers_path, compression="zstd")
    end = t0 + np.timedelta64(days, "D")
    summary = ShopSummary(
        customers=customers,
        days=days,
        seed=seed,
        start=str(t0.astype("datetime64[D]")),
        end=str(end.astype("datetime64[D]")),
        events=n_events,
        clean_events=n_clean if dirty else n_events,
        dirty=totals if dirty else {},
        event_types=dict(sorted(type_counts.items())),
        paths={
            "events": str(events_path),
            "customers": str(customers_path),
            "summary": str(out / "shop.json"),
        },
    )
    summary.seconds = round(time.perf_counter() - began, 3)
    meta = {
        **summary.to_dict(),
        "timezone": "UTC (timestamps without an offset are UTC)",
        "dirty_rates": DIRTY_RATES if dirty else {},
        "activity": activity,
        "note": "Clean rows = events - sum(dirty). Duplicates are extra copies of clean rows.",
    }
    (out / "shop.json").write_text(json.dumps(meta, indent=2))
    log.info("generated %d events for %d customers in %.1fs", n_events, customers, summary.seconds)
    return summary


def _simulate_batch(
    rng: np.random.Generator,
    first: int,
    n: int,
    days: int,
    t0: np.datetime64,
    session_base: int,
    *,
    dirty: bool,
    activity: float,
) -> tuple[pa.Table, pa.Table, int, dict[str, int]]:
    """Simulate ``n`` customers over ``days``; return (events, customers, next session id, planted)."""
    # ---- customers
    ids = np.array([f"C{first + i + 1:07d}" for i in range(n)])
    existing = rng.random(n) < 0.35
    signup = np.where(existing, 0, rng.integers(0, days, size=n))
    device_pref = rng.choice(3, size=n, p=[0.56, 0.34, 0.10])
    acq = rng.choice(len(CHANNELS), size=n, p=[0.3, 0.22, 0.15, 0.08, 0.18, 0.07])
    newsletter = rng.random(n) < 0.35
    country = rng.choice(len(COUNTRIES), size=n, p=[0.45, 0.15, 0.12, 0.08, 0.07, 0.06, 0.04, 0.03])
    base_rate = activity * np.exp(rng.normal(np.log(0.05), 0.8, size=n))
    pref = np.array([rng.dirichlet(_POPULARITY / _POPULARITY.sum() * 3) for _ in range(n)])
    # lapse: an exponential lifetime (longer for keen customers); afterwards visits are rare
    z0 = rng.normal(0, 1, size=n)
    lapse = signup + rng.exponential(160 * np.exp(0.35 * z0), size=n)

    # ---- latent intent drifting day by day; sessions per customer-day
    rho = 0.97
    z = np.empty((n, days))
    z[:, 0] = z0
    noise = rng.normal(0, np.sqrt(1 - rho**2), size=(n, days))
    for d in range(1, days):
        z[:, d] = rho * z[:, d - 1] + noise[:, d]
    day_idx = np.arange(days)
    dates = (t0.astype("datetime64[D]") + day_idx).astype("datetime64[D]")
    weekday = ((dates.astype("int64") - 4) % 7).astype(int)  # 1970-01-01 was a Thursday
    season = _WEEKDAY_FACTOR[weekday].copy()
    month_day = dates.astype("datetime64[M]")
    month = (month_day.astype("int64") % 12) + 1
    day_of_month = (dates - month_day.astype("datetime64[D]")).astype("int64") + 1
    season *= np.where((month == 11) & (day_of_month >= 20) | (month == 12) & (day_of_month <= 20), 1.5, 1.0)
    active = (day_idx[None, :] >= signup[:, None]) * np.where(day_idx[None, :] < lapse[:, None], 1.0, 0.04)
    rate = base_rate[:, None] * season[None, :] * np.exp(0.65 * z) * active
    # the day of signup always has a visit (that is how they became customers)
    counts = rng.poisson(rate)
    new_custs = signup > 0
    counts[np.flatnonzero(new_custs), signup[new_custs]] = np.maximum(
        counts[np.flatnonzero(new_custs), signup[new_custs]], 1
    )

    s_cust, s_day = np.nonzero(counts)
    reps = counts[s_cust, s_day]
    s_cust, s_day = np.repeat(s_cust, reps), np.repeat(s_day, reps)
    s_z = z[s_cust, s_day]
    n_sess = len(s_cust)
    dev = np.where(rng.random(n_sess) < 0.82, device_pref[s_cust], rng.integers(0, 3, size=n_sess))
    first_visit = np.r_[True, s_cust[1:] != s_cust[:-1]]
    chan = rng.choice(len(CHANNELS), size=n_sess, p=[0.2, 0.1, 0.1, 0.0, 0.6, 0.0])
    email = newsletter[s_cust] & (rng.random(n_sess) < 0.3)
    chan = np.where(email, 3, chan)
    chan = np.where(first_visit, acq[s_cust], chan)
    hour = np.empty(n_sess, dtype="int64")
    for k, name in enumerate(DEVICES):
        m = dev == k
        hour[m] = rng.choice(24, size=int(m.sum()), p=_HOUR_PROFILE[name])
    start_s = (
        t0.astype("datetime64[s]").astype("int64")
        + s_day * 86400
        + hour * 3600
        + rng.integers(0, 3600, size=n_sess)
    )

    # ---- funnel per session
    n_views = 1 + rng.poisson(1.6 * np.exp(0.25 * s_z) * np.where(dev == 1, 1.3, 1.0))
    p_cart = _sigmoid(-2.6 + 0.9 * s_z + 0.25 * (chan == 3))
    v_sess = np.repeat(np.arange(n_sess), n_views)
    is_cart = rng.random(len(v_sess)) < p_cart[v_sess]
    carts = np.bincount(v_sess, weights=is_cart, minlength=n_sess)
    p_checkout = _sigmoid(-0.4 + 0.7 * s_z)
    checkout = (carts > 0) & (rng.random(n_sess) < p_checkout)
    p_buy = _sigmoid(0.5 + 0.6 * s_z - 0.35 * (dev == 0))
    bought = checkout & (rng.random(n_sess) < p_buy)

    # products of views
    v_cust = s_cust[v_sess]
    use_pref = rng.random(len(v_sess)) < 0.6
    cum_pref = np.cumsum(pref[v_cust], axis=1)
    pref_cat = (rng.random(len(v_sess))[:, None] > cum_pref).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    pop_cat = rng.choice(len(CATEGORIES), size=len(v_sess), p=_POPULARITY / _POPULARITY.sum())
    v_cat = np.where(use_pref, pref_cat, pop_cat)
    v_prod = np.minimum(rng.zipf(1.6, size=len(v_sess)), 2000) - 1
    price_noise = np.exp(rng.normal(0, 0.45, size=len(v_sess)))
    v_price = np.round(_BASE_PRICE[v_cat] * price_noise, 0) - 0.01
    v_qty = np.where(rng.random(len(v_sess)) < 0.82, 1, np.where(rng.random(len(v_sess)) < 0.8, 2, 3))
    cart_value = np.bincount(v_sess, weights=is_cart * v_price * v_qty, minlength=n_sess)
    cart_qty = np.bincount(v_sess, weights=is_cart * v_qty, minlength=n_sess).astype("int64")
    # category of an order: its first carted item's
    cart_rows = np.flatnonzero(is_cart)
    first_cart = np.full(n_sess, -1)
    first_cart[v_sess[cart_rows[::-1]]] = cart_rows[::-1]
    o_cat = np.where(first_cart >= 0, v_cat[np.maximum(first_cart, 0)], 0)

    gap = 35 + rng.exponential(40, size=len(v_sess))
    # view k at step 2k, its cart at 2k+1, checkout at 2*n_views, purchase at 2*n_views+1
    csum = np.cumsum(gap)
    start_of = np.repeat(np.cumsum(n_views) - n_views, n_views)
    v_off = csum - csum[start_of] + 0.0
    sess_len = np.bincount(v_sess, weights=gap, minlength=n_sess)

    session_ids = session_base + np.arange(n_sess) + 1
    order_ids = np.where(bought, session_ids + 10_000_000_000, -1)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("sess", "type", "off", "amount", "qty", "prod", "cat")
    }

    def add(
        sess: np.ndarray,
        typ: int,
        off: np.ndarray,
        amount: np.ndarray,
        qty: np.ndarray,
        prod: np.ndarray,
        cat: np.ndarray,
    ) -> None:
        parts["sess"].append(sess)
        parts["type"].append(np.full(len(sess), typ))
        parts["off"].append(off)
        parts["amount"].append(amount)
        parts["qty"].append(qty)
        parts["prod"].append(prod)
        parts["cat"].append(cat)

    nan = np.nan
    add(v_sess, 0, v_off, np.full(len(v_sess), nan), np.full(len(v_sess), -1), v_cat * 10000 + v_prod, v_cat)
    add(
        v_sess[is_cart],
        1,
        v_off[is_cart] + 5 + rng.exponential(10, size=int(is_cart.sum())),
        np.round(v_price[is_cart] * v_qty[is_cart], 2),
        v_qty[is_cart],
        (v_cat * 10000 + v_prod)[is_cart],
        v_cat[is_cart],
    )
    co = np.flatnonzero(checkout)
    add(co, 2, sess_len[co] + 20, np.round(cart_value[co], 2), cart_qty[co], np.full(len(co), -1), o_cat[co])
    bo = np.flatnonzero(bought)
    add(
        bo,
        3,
        sess_len[bo] + 90 + rng.exponential(60, size=len(bo)),
        np.round(cart_value[bo], 2),
        cart_qty[bo],
        np.full(len(bo), -1),
        o_cat[bo],
    )
    # returns, days later (only those that fall inside the period)
    ret = bo[rng.random(len(bo)) < _RETURN_RATE[o_cat[bo]] * 1.0]
    ret_off = sess_len[ret] + 86400 * rng.uniform(2, 25, size=len(ret))
    add(ret, 4, ret_off, -np.round(cart_value[ret], 2), -cart_qty[ret], np.full(len(ret), -1), o_cat[ret])

    sess = np.concatenate(parts["sess"])
    etype = np.concatenate(parts["type"])
    ts = start_s[sess] + np.floor(np.concatenate(parts["off"])).astype("int64")
    end_s = t0.astype("datetime64[s]").astype("int64") + days * 86400
    keep = ts < end_s
    order = np.lexsort((etype, ts))[keep[np.lexsort((etype, ts))]]
    sess, etype, ts = sess[order], etype[order], ts[order]
    amount = np.concatenate(parts["amount"])[order]
    qty = np.concatenate(parts["qty"])[order]
    prod = np.concatenate(parts["prod"])[order]
    cat = np.concatenate(parts["cat"])[order]
    cust_idx = s_cust[sess]
    with_order = etype >= 3

    type_names = np.array(["view", "add_to_cart", "checkout", "purchase", "return"], dtype=object)
    columns: dict[str, Any] = {
        "customer_id": ids[cust_idx].astype(object),
        "ts": pa.array(ts.astype("datetime64[s]")).cast(pa.string()).to_numpy(zero_copy_only=False),
        "event_type": type_names[etype],
        "session_id": np.where(etype == 4, -1, session_ids[sess]),  # a return is not a web visit
        "order_id": np.where(with_order, order_ids[sess], -1),
        "amount": amount,
        "quantity": qty,
        "product_id": _product_ids(prod),
        "category": np.array(CATEGORIES, dtype=object)[cat],
        "device": np.array(DEVICES, dtype=object)[dev[sess]],
        "channel": np.array(CHANNELS, dtype=object)[chan[sess]],
    }
    # ~1 % of timestamps come from a server that writes an explicit offset (same instant)
    offset_rows = np.flatnonzero(rng.random(len(ts)) < 0.01)
    if len(offset_rows):
        shifted = ts[offset_rows] + 3600
        text = pa.array(shifted.astype("datetime64[s]")).cast(pa.string()).to_numpy(zero_copy_only=False)
        columns["ts"][offset_rows] = np.char.add(np.char.replace(text.astype(str), " ", "T"), "+01:00")
    planted = dict.fromkeys(DIRTY_RATES, 0)
    if dirty:
        columns, planted = _plant_dirt(rng, columns, ts)
    n_rows = len(columns["customer_id"])
    table = pa.table(
        {
            "customer_id": pa.array(columns["customer_id"], pa.string()),
            "ts": pa.array(columns["ts"], pa.string()),
            "event_type": pa.array(columns["event_type"], pa.string()),
            "session_id": pa.array(columns["session_id"], pa.int64(), mask=columns["session_id"] < 0),
            "order_id": pa.array(columns["order_id"], pa.int64(), mask=columns["order_id"] < 0),
            "amount": pa.array(columns["amount"], pa.float64(), from_pandas=True),
            "quantity": pa.array(columns["quantity"], pa.int32(), mask=columns["quantity"] == -1),
            "product_id": pa.array(columns["product_id"], pa.string()),
            "category": pa.array(columns["category"], pa.string()),
            "device": pa.array(columns["device"], pa.string()),
            "channel": pa.array(columns["channel"], pa.string()),
        },
        schema=EVENTS_SCHEMA,
    )
    assert table.num_rows == n_rows
    signup_ts = t0.astype("datetime64[s]") + (signup * 86400).astype("timedelta64[s]")
    cust = pa.table(
        {
            "customer_id": pa.array(ids, pa.string()),
            "signup_date": pa.array(signup_ts.astype("datetime64[D]")),
            "country": pa.array(np.array(COUNTRIES)[country], pa.string()),
            "acquisition_channel": pa.array(np.array(CHANNELS)[acq], pa.string()),
            "newsletter": pa.array(newsletter),
        }
    )
    return table, cust, int(session_base + n_sess), planted


def _product_ids(codes: np.ndarray) -> np.ndarray:
    """``P1xxxxx`` for product codes >= 0, missing (None) for events without a product."""
    out = np.full(len(codes), None, dtype=object)
    has = codes >= 0
    out[has] = np.char.add("P", (codes[has] + 100000).astype(str))
    return out


def _plant_dirt(
    rng: np.random.Generator, columns: dict[str, Any], ts: np.ndarray
) -> tuple[dict[str, Any], dict[str, int]]:
    """Corrupt disjoint sets of clean rows, then append exact duplicates of other clean rows."""
    n = len(ts)
    kinds = [k for k in DIRTY_RATES if k != "duplicate"]
    counts = {k: int(rng.binomial(n, DIRTY_RATES[k])) for k in DIRTY_RATES}
    etype = columns["event_type"]
    purchases = np.flatnonzero(etype == "purchase")
    chosen = rng.permutation(n)
    used = np.zeros(n, dtype=bool)
    picks: dict[str, np.ndarray] = {}
    pos = 0
    for kind in kinds:
        if kind == "negative_amount":
            free = purchases[~used[purchases]]
            take = rng.permutation(free)[: counts[kind]]
        else:
            take_list: list[int] = []
            while len(take_list) < counts[kind] and pos < n:
                if not used[chosen[pos]]:
                    take_list.append(chosen[pos])
                pos += 1
            take = np.array(take_list, dtype="int64")
        used[take] = True
        picks[kind] = take
        counts[kind] = len(take)
    out = {k: np.array(v, copy=True) for k, v in columns.items()}
    out["ts"] = out["ts"].astype(object)
    out["customer_id"] = out["customer_id"].astype(object)
    out["event_type"] = out["event_type"].astype(object)
    b = picks["bad_timestamp"]
    out["ts"][b] = _GARBAGE_TS[rng.integers(0, len(_GARBAGE_TS), size=len(b))]
    out["customer_id"][picks["missing_customer"]] = None
    u = picks["unknown_event_type"]
    out["event_type"][u] = _UNKNOWN_EVENTS[rng.integers(0, len(_UNKNOWN_EVENTS), size=len(u))]
    neg = picks["negative_amount"]
    out["amount"][neg] = -np.abs(out["amount"][neg])
    f = picks["future_timestamp"]
    skewed = ts[f] + np.int64(40 * 365 * 86400)
    out["ts"][f] = pa.array(skewed.astype("datetime64[s]")).cast(pa.string()).to_numpy(zero_copy_only=False)
    # duplicates: extra copies of rows that are still clean, inserted right after the original
    clean = np.flatnonzero(~used)
    dup = np.sort(rng.choice(clean, size=min(counts["duplicate"], len(clean)), replace=False))
    counts["duplicate"] = len(dup)
    idx = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
    out = {k: v[idx] for k, v in out.items()}
    return out, counts
