"""Leak-freedom, proven by properties rather than promised.

(b) appending arbitrary events at or after ``as_of`` leaves every feature unchanged — with
    session ids given and with sessions derived from inactivity gaps;
(c) labels change only with events inside ``[as_of, as_of + horizon)``;
and the stacked training set holds, for every (customer, cutoff), exactly the features computed
from the log cut at that cutoff: no customer's future leaks into an earlier snapshot.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propensity.engines import DuckDBEngine
from propensity.events.validate import load_events
from propensity.features import FeatureConfig, build_features
from propensity.features.labels import (
    Eligibility,
    LabelSpec,
    build_training_set,
    labelled_snapshot,
    plan_cutoffs,
)
from tests.features.fixtures import AS_OF, LEVELS, hand_log
from tests.features.test_features import assert_same_features

ENGINE = DuckDBEngine(threads=2)  # one connection for every example (each load writes its own files)
CONFIG = FeatureConfig(lookbacks=(7, 30, 90), levels=LEVELS)
HORIZON = 30
EXPORT = "2030-01-01"

customers = st.sampled_from(["A", "B", "C", "D", "E", "Z9"])
event_types = st.sampled_from(["view", "add_to_cart", "checkout", "purchase", "return", "search", "Purchase"])
amounts = st.one_of(
    st.none(), st.floats(min_value=-500, max_value=5000, allow_nan=False).map(lambda x: round(x, 2))
)
sessions = st.one_of(st.none(), st.sampled_from(["s1", "s3", "s5", "s7", "new1", "new2"]))
orders = st.one_of(st.none(), st.sampled_from(["o1", "o2", "o4", "o9"]))
cats = st.one_of(st.none(), st.sampled_from(["books", "toys", "home", "garden", "zzz"]))
devices = st.one_of(st.none(), st.sampled_from(["mobile", "desktop", "tablet"]))


def events_from(start: pd.Timestamp, max_seconds: int, n: int = 12) -> st.SearchStrategy[list[tuple]]:
    offsets = st.integers(min_value=0, max_value=max_seconds)
    row = st.tuples(customers, offsets, event_types, sessions, orders, amounts, cats, devices)
    return st.lists(row, min_size=1, max_size=n).map(
        lambda rows: [
            (c, str(start + pd.Timedelta(seconds=o)), t, s, od, a, cat, d)
            for c, o, t, s, od, a, cat, d in rows
        ]
    )


def with_rows(base: pd.DataFrame, rows: list[tuple]) -> pd.DataFrame:
    extra = pd.DataFrame(rows, columns=[*base.columns[:-1]], dtype=object)
    extra["channel"] = None
    both = pd.DataFrame({c: list(base[c].astype(object)) + list(extra[c]) for c in base.columns})
    both["amount"] = both["amount"].astype("float64")
    return both


def features(frame: pd.DataFrame) -> pd.DataFrame:
    with load_events(frame, export_time=EXPORT, engine=ENGINE) as log:
        return log.engine.execute(build_features(log.events, AS_OF, CONFIG))


def labels(frame: pd.DataFrame) -> pd.DataFrame:
    with load_events(frame, export_time=EXPORT, engine=ENGINE) as log:
        out = log.engine.execute(
            labelled_snapshot(log.events, AS_OF, LabelSpec("purchase", HORIZON), CONFIG, Eligibility(None))
        )
    return out[["customer_id", f"purchase_next_{HORIZON}d"]].sort_values("customer_id").reset_index(drop=True)


BASE = hand_log()
BASE_FEATURES = features(BASE)
BASE_NO_SESSIONS = BASE.drop(columns="session_id")
BASE_NO_SESSIONS_FEATURES = features(BASE_NO_SESSIONS)
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(events_from(AS_OF, 400 * 86400))
def test_events_at_or_after_the_cutoff_change_no_feature(rows):
    assert_same_features(features(with_rows(BASE, rows)), BASE_FEATURES)


@SETTINGS
@given(events_from(AS_OF, 3 * 3600))
def test_later_events_do_not_change_derived_sessions(rows):
    """Sessions derived from 30-minute gaps: events just after the cutoff cannot merge into earlier sessions."""
    later = with_rows(BASE, rows).drop(columns="session_id")
    assert_same_features(features(later), BASE_NO_SESSIONS_FEATURES)


def test_the_property_is_not_vacuous():
    """The same kind of change one second *before* the cutoff does change features."""
    before = with_rows(
        BASE, [("A", str(AS_OF - pd.Timedelta(seconds=1)), "add_to_cart", "s5", None, 10.0, "toys", "mobile")]
    )
    changed = features(before).set_index("customer_id")
    assert (
        changed.loc["A", "n_add_to_cart_7d"]
        == BASE_FEATURES.set_index("customer_id").loc["A", "n_add_to_cart_7d"] + 1
    )


BASE_LABELS = labels(BASE)


@SETTINGS
@given(
    st.one_of(
        events_from(AS_OF - pd.Timedelta(days=200), 200 * 86400 - 1),  # strictly before the cutoff
        events_from(AS_OF + pd.Timedelta(days=HORIZON), 300 * 86400),  # at or after the horizon's end
    )
)
def test_labels_ignore_events_outside_the_horizon(rows):
    after = labels(with_rows(BASE, rows))
    known = after[after["customer_id"].isin(BASE_LABELS["customer_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(known, BASE_LABELS)


@SETTINGS
@given(st.sampled_from(["B", "D"]), st.integers(min_value=0, max_value=HORIZON * 86400 - 1))
def test_a_purchase_inside_the_horizon_sets_the_label(customer, offset):
    row = (
        customer,
        str(AS_OF + pd.Timedelta(seconds=offset)),
        "purchase",
        "sx",
        "ox",
        12.0,
        "books",
        "mobile",
    )
    after = labels(with_rows(BASE, [row])).set_index("customer_id")
    assert after.loc[customer, f"purchase_next_{HORIZON}d"] == 1


@pytest.mark.slow
def test_stacked_snapshots_equal_features_from_the_log_cut_at_each_cutoff(small_shop):
    """Every (customer, cutoff) row of the training set = features from only the events before that cutoff."""
    label = LabelSpec("purchase", 14)
    with load_events(small_shop / "events.parquet") as log:
        plan = plan_cutoffs(log.first_event, log.data_end, horizon_days=14, cutoffs=4, step_days=14)
        config = FeatureConfig(lookbacks=(7, 30), levels={"device": ("mobile",), "channel": ("email",)})
        ts = build_training_set(log, label, cutoffs=plan, config=config, eligibility=Eligibility(None))
        canon = log.engine.execute(log.events)
    stacked = ts.frame
    assert sorted(stacked["cutoff"].unique()) == plan
    for cutoff in plan:
        past = canon[canon["ts"] < cutoff]
        with load_events(past, export_time=EXPORT) as cut:
            alone = cut.engine.execute(build_features(cut.events, cutoff, config))
        rows = stacked[stacked["cutoff"] == cutoff].drop(columns=["cutoff", label.column])
        assert_same_features(rows, alone)
