"""Dirty rows planted in known proportions, so validation can be checked against the truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from propensity.synthetic.constants import _GARBAGE_TS, _UNKNOWN_EVENTS, DIRTY_RATES

__all__ = ["plant_dirt"]


def plant_dirt(
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
