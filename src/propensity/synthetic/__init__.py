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
from propensity.synthetic.constants import (
    BATCH_CUSTOMERS,
    CATEGORIES,
    CHANNELS,
    COUNTRIES,
    DEVICES,
    DIRTY_RATES,
    EVENTS_SCHEMA,
)
from propensity.synthetic.simulate import simulate_batch

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "COUNTRIES",
    "DEVICES",
    "DIRTY_RATES",
    "EVENTS_SCHEMA",
    "ShopSummary",
    "generate_shop",
]

log = logging.getLogger(__name__)


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
            batch, cust, session_base, planted = simulate_batch(
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
