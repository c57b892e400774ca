"""Shop analytics on a 14-event log of four customers, every expected number worked out by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from propensity.analytics import (
    SEGMENTS,
    EventStore,
    activity_over_time,
    cohort_retention,
    funnel,
    rfm_table,
    segment_summary,
    summary_kpis,
    write_analytics,
)
from propensity.errors import DataError, ParameterError, SchemaError


def hand_events() -> pd.DataFrame:
    """Sessions (furthest funnel step): a1 purchase, a2 purchase, b1 cart, b2 purchase, c1 view, d1 purchase."""
    rows = [
        # A: buys on Jan 1 (full funnel, mobile) and Feb 10 (view then purchase, desktop)
        ("A", "2024-01-01 10:00", "view", "a1", None, None, "mobile", "email"),
        ("A", "2024-01-01 10:05", "add_to_cart", "a1", None, 100.0, "mobile", "email"),
        ("A", "2024-01-01 10:10", "checkout", "a1", None, None, "mobile", "email"),
        ("A", "2024-01-01 10:15", "purchase", "a1", "o1", 100.0, "mobile", "email"),
        ("A", "2024-02-10 09:00", "view", "a2", None, None, "desktop", "organic"),
        ("A", "2024-02-10 09:05", "purchase", "a2", "o2", 50.0, "desktop", "organic"),
        # B: abandons a cart on Jan 2, buys on Mar 5 (desktop)
        ("B", "2024-01-02 12:00", "view", "b1", None, None, "desktop", "organic"),
        ("B", "2024-01-02 12:03", "add_to_cart", "b1", None, 30.0, "desktop", "organic"),
        ("B", "2024-03-05 18:00", "view", "b2", None, None, "desktop", "organic"),
        ("B", "2024-03-05 18:02", "checkout", "b2", None, None, "desktop", "organic"),
        ("B", "2024-03-05 18:04", "purchase", "b2", "o3", 30.0, "desktop", "organic"),
        # C: one view
        ("C", "2024-01-03 08:00", "view", "c1", None, None, "mobile", "email"),
        # D: a purchase with no device or channel, and a return without a session
        ("D", "2024-02-01 20:00", "purchase", "d1", "o4", 20.0, None, None),
        ("D", "2024-02-15 11:00", "return", None, "o4", -20.0, None, None),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["customer_id", "ts", "event_type", "session_id", "order_id", "amount", "device", "channel"],
    )
    frame["ts"] = pd.to_datetime(frame["ts"])
    return frame


@pytest.fixture(scope="module")
def store() -> EventStore:
    return EventStore(hand_events())


def test_store_loads_canonical_columns_and_the_data_end(store):
    assert store.rows == 14
    assert store.first_event == pd.Timestamp("2024-01-01 10:00")
    assert store.data_end == pd.Timestamp("2024-03-06")  # midnight after the last event


def test_kpis_by_hand(store):
    k = summary_kpis(store)
    assert (k["events"], k["customers"], k["sessions"], k["converting_sessions"]) == (14, 4, 6, 4)
    assert k["conversion_rate"] == pytest.approx(4 / 6)
    assert (k["orders"], k["buyers"], k["returns"]) == (4, 3, 1)
    assert k["revenue"] == pytest.approx(200.0)
    assert k["avg_order_value"] == pytest.approx(50.0)
    assert k["event_types"] == {"view": 5, "purchase": 4, "add_to_cart": 2, "checkout": 2, "return": 1}


def test_monthly_activity_by_hand(store):
    t = activity_over_time(store, freq="month").set_index("period")
    assert list(t.index.strftime("%Y-%m")) == ["2024-01", "2024-02", "2024-03"]
    cols = ["active_customers", "new_customers", "returning_customers", "sessions", "converting_sessions"]
    assert t[cols].to_numpy().tolist() == [[3, 3, 0, 3, 1], [2, 1, 1, 2, 2], [1, 0, 1, 1, 1]]
    assert t["conversion_rate"].tolist() == pytest.approx([1 / 3, 1.0, 1.0])
    cols = ["orders", "buyers", "new_buyers", "returning_buyers"]
    assert t[cols].to_numpy().tolist() == [[1, 1, 1, 0], [2, 2, 1, 1], [1, 1, 1, 0]]
    assert t["revenue"].tolist() == pytest.approx([100.0, 70.0, 30.0])
    assert t["revenue_new"].tolist() == pytest.approx([100.0, 20.0, 30.0])  # D's first order in Feb
    assert t["revenue_returning"].tolist() == pytest.approx([0.0, 50.0, 0.0])  # A's second order


def test_daily_activity_fills_empty_days_with_zeros(store):
    t = activity_over_time(store, freq="day")
    assert len(t) == 31 + 29 + 5  # 2024-01-01 .. 2024-03-05, 2024 is a leap year
    quiet = t[t["period"] == pd.Timestamp("2024-01-04")].iloc[0]
    assert (quiet["sessions"], quiet["orders"], quiet["active_customers"]) == (0, 0, 0)
    assert math.isnan(quiet["conversion_rate"])
    assert t["orders"].sum() == 4 and t["revenue"].sum() == pytest.approx(200.0)
    with pytest.raises(ParameterError, match="'freq'"):
        activity_over_time(store, freq="hour")


def test_funnel_by_hand(store):
    f = funnel(store)
    assert f["step"].tolist() == ["view", "add_to_cart", "checkout", "purchase"]
    assert f["sessions"].tolist() == [6, 5, 4, 4]  # a purchase implies the steps before it
    assert f["share_of_start"].tolist() == pytest.approx([1, 5 / 6, 4 / 6, 4 / 6])
    assert f["conversion_from_previous"].tolist()[1:] == pytest.approx([5 / 6, 4 / 5, 1.0])
    assert f["drop_off"].tolist()[1:] == pytest.approx([1 / 6, 1 / 5, 0.0])
    assert math.isnan(f["drop_off"].iloc[0])


def test_funnel_by_device_uses_the_sessions_first_device(store):
    f = funnel(store, by="device")
    assert list(dict.fromkeys(f["device"])) == ["desktop", "mobile", "(unknown)"]  # largest first
    per = {d: part["sessions"].tolist() for d, part in f.groupby("device", sort=False)}
    assert per == {"desktop": [3, 3, 2, 2], "mobile": [2, 1, 1, 1], "(unknown)": [1, 1, 1, 1]}
    with pytest.raises(ParameterError, match="'by'"):
        funnel(store, by="country")  # type: ignore[arg-type]


def test_funnel_of_an_order_log_has_only_the_purchase_step():
    orders = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "ts": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05"]),
            "event_type": "purchase",
            "session_id": ["s1", "s2", "s3"],
            "amount": [10.0, 20.0, 5.0],
        }
    )
    f = funnel(orders)
    assert f["step"].tolist() == ["purchase"] and f["sessions"].tolist() == [3]


def test_cohort_retention_by_hand(store):
    c = cohort_retention(store)
    got = [
        (row.cohort.strftime("%Y-%m"), row.months_since, row.cohort_size, row.active)
        for row in c.itertuples(index=False)
    ]
    assert got == [
        ("2024-01", 0, 1, 1),
        ("2024-01", 1, 1, 1),  # A bought again in February
        ("2024-01", 2, 1, 0),
        ("2024-02", 0, 1, 1),  # D
        ("2024-02", 1, 1, 0),
        ("2024-03", 0, 1, 1),  # B's first purchase is in March
    ]
    assert c["retention"].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def test_rfm_scores_and_segments_by_hand(store):
    as_of = pd.Timestamp("2024-04-01")
    r = rfm_table(store, as_of=as_of).set_index("customer_id")
    assert list(r.index) == ["A", "B", "C", "D"]
    expected_recency = {
        "A": (as_of - pd.Timestamp("2024-02-10 09:05")) / pd.Timedelta(days=1),
        "B": (as_of - pd.Timestamp("2024-03-05 18:04")) / pd.Timedelta(days=1),
        "D": (as_of - pd.Timestamp("2024-02-01 20:00")) / pd.Timedelta(days=1),
    }
    for cid, days in expected_recency.items():
        assert r.loc[cid, "recency_days"] == pytest.approx(days)
    assert r["frequency"].to_dict() == {"A": 2, "B": 1, "C": 0, "D": 1}
    assert r["monetary"].to_dict() == pytest.approx({"A": 150.0, "B": 30.0, "C": 0.0, "D": 20.0})
    # 3 buyers: score = 1 + floor(5 (rank - 1) / 3), ties share the lowest rank
    assert r.loc[["A", "B", "D"], "r_score"].tolist() == [2, 4, 1]  # D oldest, then A, then B
    assert r.loc[["A", "B", "D"], "f_score"].tolist() == [4, 1, 1]  # B and D tie at one order
    assert r.loc[["A", "B", "D"], "m_score"].tolist() == [4, 2, 1]
    assert pd.isna(r.loc["C", "r_score"])
    assert r["segment"].to_dict() == {"A": "at risk", "B": "promising", "C": "prospects", "D": "hibernating"}


def test_rfm_ignores_events_at_or_after_as_of(store):
    r = rfm_table(store, as_of="2024-02-10").set_index("customer_id")
    assert r.loc["A", "frequency"] == 1 and r.loc["A", "monetary"] == 100.0  # the Feb 10 order is later
    assert r.loc["B", "segment"] == "prospects"  # B's only purchase is in March
    with pytest.raises(DataError, match="not after the first event"):
        rfm_table(store, as_of="2023-12-31")


def test_every_recency_frequency_pair_has_a_segment():
    from propensity.analytics.tables import _segment

    names = {_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == set(SEGMENTS) - {"prospects"}


def test_segment_summary_with_scores(store):
    r = rfm_table(store, as_of="2024-04-01")
    scores = pd.DataFrame({"customer_id": ["A", "B", "C"], "probability": [0.5, 0.2, 0.1]})
    s = segment_summary(r, scores).set_index("segment")
    assert list(s.index) == ["promising", "at risk", "hibernating", "prospects"]  # SEGMENTS order
    assert s["customers"].tolist() == [1, 1, 1, 1]
    assert s.loc["at risk", "revenue_share"] == pytest.approx(150 / 200)
    assert s.loc["at risk", "mean_probability"] == pytest.approx(0.5)
    assert s.loc["hibernating", "scored"] == 0 and math.isnan(s.loc["hibernating", "mean_probability"])
    assert s["expected_buyers"].sum() == pytest.approx(0.8)
    assert s.loc["prospects", "meaning"] == SEGMENTS["prospects"]
    with pytest.raises(SchemaError, match="probability"):
        segment_summary(r, scores.rename(columns={"probability": "p"}))


def test_segment_summary_with_lifetime_values(store):
    r = rfm_table(store, as_of="2024-04-01")  # A at risk, B promising, C a prospect, D hibernating
    clv = pd.DataFrame(
        {"customer_id": ["A", "B", "D"], "p_alive": [0.9, 0.4, 0.6], "clv": [120.0, 30.0, 0.0]}
    )
    s = segment_summary(r, clv).set_index("segment")
    assert "mean_probability" not in s.columns  # no propensity scores given
    assert s.loc["at risk", "mean_p_alive"] == pytest.approx(0.9)
    assert s.loc["promising", "likely_alive"] == 0 and s.loc["hibernating", "likely_alive"] == 1
    assert s.loc["at risk", "clv"] == pytest.approx(120.0)
    assert math.isnan(s.loc["prospects", "clv"]) and math.isnan(s.loc["prospects", "likely_alive"])


def test_store_refuses_a_raw_log_without_canonical_columns(tmp_path):
    raw = tmp_path / "raw.csv"
    raw.write_text("user,when,what\n1,2024-01-01,view\n")
    with pytest.raises(SchemaError, match="propensity validate"):
        EventStore(raw)
    with pytest.raises(DataError, match="does not exist"):
        EventStore(tmp_path / "missing.parquet")


def test_write_analytics_writes_every_table_and_the_charts(store, tmp_path):
    summary = write_analytics(store, tmp_path / "out", as_of="2024-04-01")
    names = {p.split("/")[-1] for p in summary.files.values()}
    assert names >= {
        "kpis.json",
        "activity_daily.csv",
        "activity_weekly.csv",
        "funnel.csv",
        "funnel_by_device.csv",
        "funnel_by_channel.csv",
        "cohort_retention.csv",
        "rfm_customers.csv",
        "rfm_segments.csv",
        "charts.html",
        "summary.json",
    }
    assert json.loads((tmp_path / "out" / "kpis.json").read_text())["orders"] == 4
    assert pd.read_csv(tmp_path / "out" / "funnel.csv")["sessions"].tolist() == [6, 5, 4, 4]
    html = (tmp_path / "out" / "charts.html").read_text()
    assert html.count("Plotly.newPlot") == 8 and "cdn.plot.ly" not in html.split("<script", 2)[1][:200]
    assert summary.segments == {"promising": 1, "at risk": 1, "hibernating": 1, "prospects": 1}
