"""The behaviour model of the synthetic shop, one batch of customers at a time.

Each phase draws from the batch's random stream in a fixed order — customers, then their
latent intent and sessions, then the funnel of every session, then the events — so the same
seed gives byte-identical files. See :mod:`propensity.synthetic` for what the shop does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from propensity.metrics import sigmoid
from propensity.synthetic.constants import (
    _BASE_PRICE,
    _HOUR_PROFILE,
    _POPULARITY,
    _RETURN_RATE,
    _WEEKDAY_FACTOR,
    CATEGORIES,
    CHANNELS,
    COUNTRIES,
    DEVICES,
    DIRTY_RATES,
    EVENTS_SCHEMA,
)
from propensity.synthetic.dirt import plant_dirt

__all__ = ["simulate_batch"]

EVENT_TYPES = np.array(["view", "add_to_cart", "checkout", "purchase", "return"], dtype=object)


@dataclass
class _Customers:
    ids: np.ndarray
    signup: np.ndarray  # day index of the first visit (0 for customers who exist from day one)
    device_pref: np.ndarray
    acq: np.ndarray  # acquisition channel
    newsletter: np.ndarray
    country: np.ndarray
    base_rate: np.ndarray  # visits per day at average intent
    pref: np.ndarray  # category preferences (rows sum to 1)
    z0: np.ndarray  # intent on day 0
    lapse: np.ndarray  # day after which visits become rare


def _draw_customers(rng: np.random.Generator, first: int, n: int, days: int, activity: float) -> _Customers:
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
    return _Customers(ids, signup, device_pref, acq, newsletter, country, base_rate, pref, z0, lapse)


@dataclass
class _Sessions:
    cust: np.ndarray  # customer index of each session
    z: np.ndarray  # the customer's intent on the session's day
    dev: np.ndarray
    chan: np.ndarray
    start_s: np.ndarray  # start in epoch seconds

    def __len__(self) -> int:
        return len(self.cust)


def _season(t0: np.datetime64, days: int) -> np.ndarray:
    """A weekly rhythm (more at weekends) and a pre-Christmas bump, per day of the period."""
    dates = (t0.astype("datetime64[D]") + np.arange(days)).astype("datetime64[D]")
    weekday = ((dates.astype("int64") - 4) % 7).astype(int)  # 1970-01-01 was a Thursday
    season = _WEEKDAY_FACTOR[weekday].copy()
    month_day = dates.astype("datetime64[M]")
    month = (month_day.astype("int64") % 12) + 1
    day_of_month = (dates - month_day.astype("datetime64[D]")).astype("int64") + 1
    season *= np.where((month == 11) & (day_of_month >= 20) | (month == 12) & (day_of_month <= 20), 1.5, 1.0)
    return season


def _draw_sessions(rng: np.random.Generator, c: _Customers, days: int, t0: np.datetime64) -> _Sessions:
    """Latent intent drifting day by day (AR(1), rho 0.97), and the visits it brings."""
    n = len(c.ids)
    rho = 0.97
    z = np.empty((n, days))
    z[:, 0] = c.z0
    noise = rng.normal(0, np.sqrt(1 - rho**2), size=(n, days))
    for d in range(1, days):
        z[:, d] = rho * z[:, d - 1] + noise[:, d]
    day_idx = np.arange(days)
    active = (day_idx[None, :] >= c.signup[:, None]) * np.where(
        day_idx[None, :] < c.lapse[:, None], 1.0, 0.04
    )
    rate = c.base_rate[:, None] * _season(t0, days)[None, :] * np.exp(0.65 * z) * active
    counts = rng.poisson(rate)
    # the day of signup always has a visit (that is how they became customers)
    new_custs = np.flatnonzero(c.signup > 0)
    counts[new_custs, c.signup[new_custs]] = np.maximum(counts[new_custs, c.signup[new_custs]], 1)

    s_cust, s_day = np.nonzero(counts)
    reps = counts[s_cust, s_day]
    s_cust, s_day = np.repeat(s_cust, reps), np.repeat(s_day, reps)
    n_sess = len(s_cust)
    dev = np.where(rng.random(n_sess) < 0.82, c.device_pref[s_cust], rng.integers(0, 3, size=n_sess))
    first_visit = np.r_[True, s_cust[1:] != s_cust[:-1]]
    chan = rng.choice(len(CHANNELS), size=n_sess, p=[0.2, 0.1, 0.1, 0.0, 0.6, 0.0])
    email = c.newsletter[s_cust] & (rng.random(n_sess) < 0.3)
    chan = np.where(email, 3, chan)
    chan = np.where(first_visit, c.acq[s_cust], chan)
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
    return _Sessions(s_cust, z[s_cust, s_day], dev, chan, start_s)


@dataclass
class _Funnel:
    n_views: np.ndarray  # views per session
    v_sess: np.ndarray  # session of each view
    is_cart: np.ndarray  # the view led to an add to cart
    checkout: np.ndarray  # per session
    bought: np.ndarray  # per session
    v_cat: np.ndarray
    v_prod: np.ndarray
    v_price: np.ndarray
    v_qty: np.ndarray
    cart_value: np.ndarray
    cart_qty: np.ndarray
    o_cat: np.ndarray  # category of an order: its first carted item's


def _draw_funnel(rng: np.random.Generator, c: _Customers, s: _Sessions) -> _Funnel:
    """Views, carts, checkouts and purchases per session, and what was viewed."""
    n_sess = len(s)
    n_views = 1 + rng.poisson(1.6 * np.exp(0.25 * s.z) * np.where(s.dev == 1, 1.3, 1.0))
    p_cart = sigmoid(-2.6 + 0.9 * s.z + 0.25 * (s.chan == 3))
    v_sess = np.repeat(np.arange(n_sess), n_views)
    is_cart = rng.random(len(v_sess)) < p_cart[v_sess]
    carts = np.bincount(v_sess, weights=is_cart, minlength=n_sess)
    checkout = (carts > 0) & (rng.random(n_sess) < sigmoid(-0.4 + 0.7 * s.z))
    bought = checkout & (rng.random(n_sess) < sigmoid(0.5 + 0.6 * s.z - 0.35 * (s.dev == 0)))

    # products of views
    v_cust = s.cust[v_sess]
    use_pref = rng.random(len(v_sess)) < 0.6
    cum_pref = np.cumsum(c.pref[v_cust], axis=1)
    pref_cat = (rng.random(len(v_sess))[:, None] > cum_pref).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    pop_cat = rng.choice(len(CATEGORIES), size=len(v_sess), p=_POPULARITY / _POPULARITY.sum())
    v_cat = np.where(use_pref, pref_cat, pop_cat)
    v_prod = np.minimum(rng.zipf(1.6, size=len(v_sess)), 2000) - 1
    price_noise = np.exp(rng.normal(0, 0.45, size=len(v_sess)))
    v_price = np.round(_BASE_PRICE[v_cat] * price_noise, 0) - 0.01
    v_qty = np.where(rng.random(len(v_sess)) < 0.82, 1, np.where(rng.random(len(v_sess)) < 0.8, 2, 3))
    cart_value = np.bincount(v_sess, weights=is_cart * v_price * v_qty, minlength=n_sess)
    cart_qty = np.bincount(v_sess, weights=is_cart * v_qty, minlength=n_sess).astype("int64")
    cart_rows = np.flatnonzero(is_cart)
    first_cart = np.full(n_sess, -1)
    first_cart[v_sess[cart_rows[::-1]]] = cart_rows[::-1]
    o_cat = np.where(first_cart >= 0, v_cat[np.maximum(first_cart, 0)], 0)
    return _Funnel(
        n_views, v_sess, is_cart, checkout, bought, v_cat, v_prod, v_price, v_qty, cart_value, cart_qty, o_cat
    )


class _Parts:
    """Events of every kind, collected per session before they are put in time order."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("sess", "type", "off", "amount", "qty", "prod", "cat")
        }

    def add(
        self,
        sess: np.ndarray,
        typ: int,
        off: np.ndarray,
        amount: np.ndarray,
        qty: np.ndarray,
        prod: np.ndarray,
        cat: np.ndarray,
    ) -> None:
        for key, value in zip(
            ("sess", "type", "off", "amount", "qty", "prod", "cat"),
            (sess, np.full(len(sess), typ), off, amount, qty, prod, cat),
            strict=True,
        ):
            self.cols[key].append(value)

    def joined(self, key: str) -> np.ndarray:
        return np.concatenate(self.cols[key])


def _draw_events(rng: np.random.Generator, f: _Funnel) -> _Parts:
    """Every event of every session with its offset in seconds from the session start.

    View k is at step 2k, its cart at 2k+1, checkout at the end of the visit, then the
    purchase; returns come 2–25 days later.
    """
    n_sess = len(f.checkout)
    gap = 35 + rng.exponential(40, size=len(f.v_sess))
    csum = np.cumsum(gap)
    start_of = np.repeat(np.cumsum(f.n_views) - f.n_views, f.n_views)
    v_off = csum - csum[start_of] + 0.0
    sess_len = np.bincount(f.v_sess, weights=gap, minlength=n_sess)
    parts = _Parts()
    nan = np.nan
    n_views, cart = len(f.v_sess), f.is_cart
    product = f.v_cat * 10000 + f.v_prod
    parts.add(f.v_sess, 0, v_off, np.full(n_views, nan), np.full(n_views, -1), product, f.v_cat)
    parts.add(
        f.v_sess[cart],
        1,
        v_off[cart] + 5 + rng.exponential(10, size=int(cart.sum())),
        np.round(f.v_price[cart] * f.v_qty[cart], 2),
        f.v_qty[cart],
        product[cart],
        f.v_cat[cart],
    )
    co = np.flatnonzero(f.checkout)
    none = np.full(len(co), -1)
    parts.add(co, 2, sess_len[co] + 20, np.round(f.cart_value[co], 2), f.cart_qty[co], none, f.o_cat[co])
    bo = np.flatnonzero(f.bought)
    parts.add(
        bo,
        3,
        sess_len[bo] + 90 + rng.exponential(60, size=len(bo)),
        np.round(f.cart_value[bo], 2),
        f.cart_qty[bo],
        np.full(len(bo), -1),
        f.o_cat[bo],
    )
    # returns, days later (only those that fall inside the period)
    ret = bo[rng.random(len(bo)) < _RETURN_RATE[f.o_cat[bo]] * 1.0]
    ret_off = sess_len[ret] + 86400 * rng.uniform(2, 25, size=len(ret))
    parts.add(
        ret,
        4,
        ret_off,
        -np.round(f.cart_value[ret], 2),
        -f.cart_qty[ret],
        np.full(len(ret), -1),
        f.o_cat[ret],
    )
    return parts


def simulate_batch(
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
    c = _draw_customers(rng, first, n, days, activity)
    s = _draw_sessions(rng, c, days, t0)
    f = _draw_funnel(rng, c, s)
    parts = _draw_events(rng, f)
    session_ids = session_base + np.arange(len(s)) + 1
    columns, ts = _event_columns(c, s, f, parts, session_ids, t0, days)
    # ~1 % of timestamps come from a server that writes an explicit offset (same instant)
    offset_rows = np.flatnonzero(rng.random(len(ts)) < 0.01)
    if len(offset_rows):
        shifted = ts[offset_rows] + 3600
        text = pa.array(shifted.astype("datetime64[s]")).cast(pa.string()).to_numpy(zero_copy_only=False)
        columns["ts"][offset_rows] = np.char.add(np.char.replace(text.astype(str), " ", "T"), "+01:00")
    planted = dict.fromkeys(DIRTY_RATES, 0)
    if dirty:
        columns, planted = plant_dirt(rng, columns, ts)
    return _events_table(columns), _customers_table(c, t0), int(session_base + len(s)), planted


def _event_columns(
    c: _Customers,
    s: _Sessions,
    f: _Funnel,
    parts: _Parts,
    session_ids: np.ndarray,
    t0: np.datetime64,
    days: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """The events in time order (inside the period) as columns, and their epoch seconds."""
    sess, etype = parts.joined("sess"), parts.joined("type")
    ts = s.start_s[sess] + np.floor(parts.joined("off")).astype("int64")
    end_s = t0.astype("datetime64[s]").astype("int64") + days * 86400
    keep = ts < end_s
    order = np.lexsort((etype, ts))[keep[np.lexsort((etype, ts))]]
    sess, etype, ts = sess[order], etype[order], ts[order]
    order_ids = np.where(f.bought, session_ids + 10_000_000_000, -1)
    columns: dict[str, Any] = {
        "customer_id": c.ids[s.cust[sess]].astype(object),
        "ts": pa.array(ts.astype("datetime64[s]")).cast(pa.string()).to_numpy(zero_copy_only=False),
        "event_type": EVENT_TYPES[etype],
        "session_id": np.where(etype == 4, -1, session_ids[sess]),  # a return is not a web visit
        "order_id": np.where(etype >= 3, order_ids[sess], -1),
        "amount": parts.joined("amount")[order],
        "quantity": parts.joined("qty")[order],
        "product_id": _product_ids(parts.joined("prod")[order]),
        "category": np.array(CATEGORIES, dtype=object)[parts.joined("cat")[order]],
        "device": np.array(DEVICES, dtype=object)[s.dev[sess]],
        "channel": np.array(CHANNELS, dtype=object)[s.chan[sess]],
    }
    return columns, ts


def _events_table(columns: dict[str, Any]) -> pa.Table:
    return pa.table(
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


def _customers_table(c: _Customers, t0: np.datetime64) -> pa.Table:
    signup_ts = t0.astype("datetime64[s]") + (c.signup * 86400).astype("timedelta64[s]")
    return pa.table(
        {
            "customer_id": pa.array(c.ids, pa.string()),
            "signup_date": pa.array(signup_ts.astype("datetime64[D]")),
            "country": pa.array(np.array(COUNTRIES)[c.country], pa.string()),
            "acquisition_channel": pa.array(np.array(CHANNELS)[c.acq], pa.string()),
            "newsletter": pa.array(c.newsletter),
        }
    )


def _product_ids(codes: np.ndarray) -> np.ndarray:
    """``P1xxxxx`` for product codes >= 0, missing (None) for events without a product."""
    out = np.full(len(codes), None, dtype=object)
    has = codes >= 0
    out[has] = np.char.add("P", (codes[has] + 100000).astype(str))
    return out
