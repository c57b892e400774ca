"""The frequency / recency / T / monetary summary: a hand-worked table, engines agree, awkward histories."""

from __future__ import annotations

import pandas as pd
import pytest

from propensity.clv.summary import HOLDOUT_COLUMNS, SUMMARY_COLUMNS, check_cutoff, rfm_summary
from propensity.engines import get_engine
from propensity.errors import DataError, ParameterError
from propensity.events.validate import load_events

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]
AS_OF = "2024-03-01"


def _log() -> pd.DataFrame:
    """Five customers around the cutoff 2024-03-01 00:00 UTC (worked through in the test below)."""
    rows = [
        # A: three purchase days, two purchases on 2024-01-10 (one period of 30), one after the cutoff
        ("A", "2024-01-01 09:00:00", "purchase", 10.0),
        ("A", "2024-01-10 10:00:00", "purchase", 20.0),
        ("A", "2024-01-10 18:00:00", "purchase", 10.0),
        ("A", "2024-02-20 12:00:00", "purchase", 50.0),
        ("A", "2024-02-20 13:00:00", "view", None),
        ("A", "2024-03-05 12:00:00", "purchase", 70.0),  # holdout
        ("A", "2024-03-05 14:00:00", "purchase", 10.0),  # holdout, same day
        ("A", "2024-03-20 12:00:00", "purchase", 40.0),  # holdout, second day
        # B: one purchase (the one-purchase case), then a return of it
        ("B", "2024-02-01 08:00:00", "purchase", 25.0),
        ("B", "2024-02-03 08:00:00", "return", -25.0),
        # C: repeat purchases of zero value (free orders) and one with a missing amount
        ("C", "2024-01-15 08:00:00", "purchase", 40.0),
        ("C", "2024-02-15 08:00:00", "purchase", 0.0),
        ("C", "2024-02-25 08:00:00", "purchase", None),
        # D: views only — no summary row
        ("D", "2024-02-10 08:00:00", "view", None),
        # E: first purchase 1 s before the cutoff; F: first purchase at the cutoff (no row)
        ("E", "2024-02-29 23:59:59", "purchase", 15.0),
        ("F", "2024-03-01 00:00:00", "purchase", 99.0),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "ts", "event_type", "amount"])


def _summary(engine: str, frame: pd.DataFrame, **kw) -> pd.DataFrame:
    with load_events(frame, engine=engine, export_time="2024-06-01") as ev:
        out = ev.engine.execute(rfm_summary(ev.events, AS_OF, **kw))
    return out.sort_values("customer_id").reset_index(drop=True)


def test_hand_worked_summary():
    s = _summary("duckdb", _log(), holdout_days=30).set_index("customer_id")
    assert list(s.reset_index().columns) == [*SUMMARY_COLUMNS, *HOLDOUT_COLUMNS]
    assert sorted(s.index) == ["A", "B", "C", "E"]  # D viewed only, F bought at the cutoff
    # Last observed day is 2024-02-29 (the day before a midnight cutoff).
    a = s.loc["A"]
    assert (a.frequency, a.recency, a["T"]) == (2, 50.0, 59.0)  # days 01-01, 01-10, 02-20
    assert a.monetary_value == pytest.approx((30.0 + 50.0) / 2)  # first day excluded
    assert (a.purchases, a.spend) == (4, 90.0)
    assert (a.frequency_holdout, a.spend_holdout) == (2, 120.0)  # 03-05 (two purchases) and 03-20
    assert a.monetary_value_holdout == pytest.approx(60.0)
    assert a.duration_holdout == 30.0
    assert a.first_purchase == pd.Timestamp("2024-01-01 09:00:00")
    b = s.loc["B"]  # one purchase: frequency, recency and monetary value 0; the return is reported
    assert (b.frequency, b.recency, b["T"], b.monetary_value) == (0, 0.0, 28.0, 0.0)
    assert (b.returns, b.returned_amount, b.spend) == (1, 25.0, 25.0)
    c = s.loc["C"]  # free repeat orders: purchase days with zero spend
    assert (c.frequency, c.recency, c["T"], c.monetary_value) == (2, 41.0, 45.0, 0.0)
    e = s.loc["E"]  # bought on the last observed day
    assert (e.frequency, e.recency, e["T"]) == (0, 0.0, 0.0)
    assert s.loc[["B", "C", "E"], "frequency_holdout"].tolist() == [0, 0, 0]
    assert s.loc["B", "monetary_value_holdout"] == 0.0


def test_weeks_divide_recency_and_t():
    days = _summary("duckdb", _log()).set_index("customer_id")
    weeks = _summary("duckdb", _log(), time_scaler=7).set_index("customer_id")
    assert weeks["T"].tolist() == pytest.approx((days["T"] / 7).tolist())
    assert weeks["recency"].tolist() == pytest.approx((days["recency"] / 7).tolist())
    assert weeks["frequency"].tolist() == days["frequency"].tolist()


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_give_the_same_summary(engine):
    expected = _summary("duckdb", _log(), holdout_days=30)
    got = _summary(engine, _log(), holdout_days=30)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_negative_purchase_amounts_outside_validation_are_summed_as_they_are():
    """A table that skipped validation may hold a refunded repeat order as a negative purchase."""
    frame = pd.DataFrame(
        {
            "customer_id": ["G", "G", "G"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-09"]),
            "event_type": ["purchase"] * 3,
            "amount": [20.0, -30.0, 10.0],
        }
    )
    with get_engine() as eng:
        s = eng.execute(rfm_summary(eng.from_frame(frame), AS_OF)).iloc[0]
    assert s.frequency == 2
    assert s.monetary_value == pytest.approx(-10.0)


def test_validation_quarantines_negative_purchases_before_the_summary():
    frame = _log()
    frame.loc[len(frame)] = ["B", "2024-02-10 08:00:00", "purchase", -5.0]
    with load_events(frame, export_time="2024-06-01") as ev:
        assert ev.report.reasons == {"negative amount on a non-return": 1}
        s = ev.engine.execute(rfm_summary(ev.events, AS_OF)).set_index("customer_id")
    assert s.loc["B", "frequency"] == 0


def test_a_cutoff_before_the_first_purchase_is_refused():
    with load_events(_log(), export_time="2024-06-01") as ev:
        assert check_cutoff(ev.events, AS_OF, ev.engine.execute) == pd.Timestamp("2024-01-01 09:00")
        with pytest.raises(
            DataError, match=r"No purchase before the cutoff 2023-12-01.*first purchase .* 2024-01-01"
        ):
            check_cutoff(ev.events, "2023-12-01", ev.engine.execute)
        # at the first purchase itself: still nothing strictly before it
        with pytest.raises(DataError, match="Choose a cutoff after 2024-01-01"):
            check_cutoff(ev.events, "2024-01-01 09:00:00", ev.engine.execute)
        assert ev.engine.execute(rfm_summary(ev.events, "2023-12-01")).empty


def test_a_log_without_purchases_is_refused():
    frame = _log()
    frame = frame[frame.event_type != "purchase"]
    with (
        load_events(frame, export_time="2024-06-01") as ev,
        pytest.raises(DataError, match="no purchase events"),
    ):
        check_cutoff(ev.events, AS_OF, ev.engine.execute)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"holdout_days": 0},
            "'holdout_days' parameter must be a whole number of days in \\[1, 3650\\]. Got 0",
        ),
        ({"time_scaler": 0.5}, "'time_scaler' parameter must be a number of days per time unit"),
        ({"time_scaler": "weeks"}, "Got 'weeks' instead"),
    ],
)
def test_bad_parameters(kw, message):
    with get_engine() as eng, pytest.raises(ParameterError, match=message):
        rfm_summary(eng.from_frame(_log()), AS_OF, **kw)
