"""Small hand-made event logs for the event tests (imported by the tests, not collected)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the pandas oracle lives in benchmarks/
    sys.path.insert(0, str(ROOT))

AS_OF = pd.Timestamp("2024-03-01")
LEVELS = {"device": ("mobile", "desktop"), "channel": ()}


def hand_log() -> pd.DataFrame:
    """18 events of 4 customers around the cutoff 2024-03-01 00:00 UTC (worked through in test_events_features)."""
    rows = [
        # customer A: two orders, a cart abandoned 4 days before the cutoff, an event 1 s before it
        ("A", "2024-01-10 10:00:00", "view", "s1", None, None, "books", "desktop"),
        ("A", "2024-01-10 10:05:00", "add_to_cart", "s1", None, 20.0, "books", "desktop"),
        ("A", "2024-01-10 10:20:00", "purchase", "s1", "o1", 20.0, "books", "desktop"),
        ("A", "2024-02-05 09:00:00", "view", "s2", None, None, "toys", "mobile"),
        ("A", "2024-02-25 20:00:00", "view", "s3", None, None, "books", "mobile"),
        ("A", "2024-02-25 20:10:00", "add_to_cart", "s3", None, 50.0, "books", "mobile"),
        ("A", "2024-02-28 12:00:00", "purchase", "s4", "o2", 50.0, "books", "mobile"),
        ("A", "2024-02-29 23:59:59", "view", "s5", None, None, "toys", "mobile"),
        (
            "A",
            "2024-03-01 00:00:00",
            "purchase",
            "s6",
            "o5",
            999.0,
            "books",
            "mobile",
        ),  # at the cutoff: label only
        # customer B: events exactly 7 days and 7 days + 1 s before the cutoff; buys after it
        ("B", "2024-02-23 00:00:00", "view", "s7", None, None, "home", "mobile"),
        ("B", "2024-02-22 23:59:59", "add_to_cart", "s8", None, 30.0, "home", "mobile"),
        ("B", "2024-02-23 00:10:00", "add_to_cart", "s7", None, 30.0, "home", "mobile"),
        ("B", "2024-03-05 10:00:00", "purchase", "s11", "o6", 40.0, "home", "mobile"),
        # customer C: only after the cutoff
        ("C", "2024-03-02 08:00:00", "view", "s12", None, None, "toys", "desktop"),
        ("C", "2024-03-10 08:00:00", "purchase", "s13", "o7", 15.0, "toys", "desktop"),
        # customer D: an old buyer who returned an order and did not come back
        ("D", "2023-12-01 12:00:00", "purchase", "s9", "o3", 100.0, "garden", "desktop"),
        ("D", "2023-12-15 12:00:00", "purchase", "s10", "o4", 60.0, "garden", "desktop"),
        ("D", "2024-01-04 12:00:00", "return", None, "o4", -60.0, "garden", None),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["customer_id", "ts", "event_type", "session_id", "order_id", "amount", "category", "device"],
    )
    frame["channel"] = None
    return frame


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """A raw frame in canonical form (for the pandas oracle): typed ts, every canonical column."""
    from propensity.events.mapping import CANONICAL_COLUMNS

    out = frame.copy()
    out["ts"] = pd.to_datetime(out["ts"], utc=True).dt.tz_localize(None)
    for col in CANONICAL_COLUMNS:
        if col not in out:
            out[col] = None
    return out[list(CANONICAL_COLUMNS)]
