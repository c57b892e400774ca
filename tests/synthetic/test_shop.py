"""The synthetic shop: deterministic, streamed, realistic enough to learn from, dirty in known proportions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from propensity.datasets import generate_shop
from propensity.errors import ParameterError
from propensity.synthetic import BATCH_CUSTOMERS, DIRTY_RATES


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    a = generate_shop(300, days=30, seed=5, out=tmp_path / "a")
    b = generate_shop(300, days=30, seed=5, out=tmp_path / "b")
    c = generate_shop(300, days=30, seed=6, out=tmp_path / "c")
    ta, tb, tc = (
        pq.read_table(p / "events.parquet") for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c")
    )
    assert ta.equals(tb) and a.dirty == b.dirty
    assert not ta.equals(tc)
    assert pq.read_table(tmp_path / "a" / "customers.parquet").equals(
        pq.read_table(tmp_path / "b" / "customers.parquet")
    )
    assert a.events == ta.num_rows and c.events == tc.num_rows


def test_it_streams_in_fixed_batches(tmp_path):
    calls = []
    n = 2 * BATCH_CUSTOMERS + 10
    generate_shop(n, days=7, seed=1, out=tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(BATCH_CUSTOMERS, n), (2 * BATCH_CUSTOMERS, n), (n, n)]
    # one row group per batch: memory holds one batch, never the whole log
    assert pq.ParquetFile(tmp_path / "events.parquet").metadata.num_row_groups == 3


def test_a_realistic_shop(small_shop):
    events = pd.read_parquet(small_shop / "events.parquet")
    truth = json.loads((small_shop / "shop.json").read_text())
    counts = events["event_type"].value_counts()
    # a funnel with drop-off at every step
    assert (
        counts["view"]
        > counts["add_to_cart"]
        > counts["checkout"]
        > counts["purchase"]
        > counts["return"]
        > 0
    )
    assert 0.15 < counts["purchase"] / counts["add_to_cart"] < 0.6
    assert 0.5 < counts["purchase"] / counts["checkout"] < 0.95
    # prices depend on the category; devices and channels vary
    buys = events[events["event_type"] == "purchase"]
    by_cat = buys.groupby("category")["amount"].median()
    assert by_cat["electronics"] > 3 * by_cat["books"]
    assert set(events["device"].dropna()) == {"mobile", "desktop", "tablet"}
    assert events["channel"].nunique() >= 5
    # weekly rhythm: more visits per weekend day than per weekday
    ts = pd.to_datetime(events["ts"], errors="coerce", format="mixed", utc=True).dt.tz_localize(None)
    sessions = events.assign(day=ts.dt.normalize()).dropna(subset=["day"]).drop_duplicates("session_id")
    per_day = sessions.groupby("day").size()
    weekend = per_day[per_day.index.dayofweek >= 5].mean()
    weekday = per_day[per_day.index.dayofweek < 5].mean()
    assert weekend > 1.05 * weekday
    # returning and lapsing customers
    valid = events.assign(ts=ts).dropna(subset=["ts", "customer_id"])
    valid = valid[valid["ts"] < pd.Timestamp(truth["end"])]
    span = valid.groupby("customer_id")["ts"].agg(["min", "max"])
    end = pd.Timestamp(truth["end"])
    assert (
        (span["max"] > end - pd.Timedelta(days=14)) & (span["min"] < end - pd.Timedelta(days=60))
    ).sum() > 20
    buyers = valid[valid["event_type"] == "purchase"]["customer_id"].unique()
    lapsed = span.loc[span.index.isin(buyers), "max"] < end - pd.Timedelta(days=45)
    assert lapsed.sum() > 20
    # dirty rows in the stated proportions (binomial draws around the rates)
    clean = truth["clean_events"]
    for kind, rate in DIRTY_RATES.items():
        if kind == "negative_amount":
            continue  # drawn among purchases only
        assert truth["dirty"][kind] == pytest.approx(rate * clean, rel=0.35, abs=6), kind
    assert truth["events"] == clean + sum(truth["dirty"].values())


def test_parameters_are_checked(tmp_path):
    with pytest.raises(ParameterError, match="'customers' parameter of generate_shop must be an int >= 1"):
        generate_shop(0, out=tmp_path)
    with pytest.raises(ParameterError, match="'days'"):
        generate_shop(10, days=3, out=tmp_path)
    with pytest.raises(ParameterError, match="'start'"):
        generate_shop(10, days=10, start="yesterday", out=tmp_path)


def test_clean_shop_has_no_dirty_rows(tmp_path):
    summary = generate_shop(200, days=20, seed=2, out=tmp_path, dirty=False)
    assert summary.dirty == {} and summary.clean_events == summary.events
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert events["customer_id"].notna().all()
    assert set(events["event_type"]) <= {"view", "add_to_cart", "checkout", "purchase", "return"}
    assert not events.duplicated().any()
    assert np.isfinite(events.loc[events["event_type"] == "purchase", "amount"]).all()
