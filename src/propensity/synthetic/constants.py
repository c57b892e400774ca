"""The synthetic shop's fixed parameters: catalogue, devices, channels, dirty-row rates, the event schema."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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
