"""Point-in-time features: a hand-computed fixture, the registry, and agreement with a pandas oracle."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from propensity.errors import DataError, ParameterError
from propensity.events.validate import load_events
from propensity.features import FeatureConfig, build_features, check_as_of, feature_registry
from propensity.features.labels import Eligibility, LabelSpec, labelled_snapshot
from tests.features.fixtures import AS_OF, LEVELS, canonical, hand_log

CONFIG = FeatureConfig(lookbacks=(7, 30, 90), levels=LEVELS)


def features_of(frame: pd.DataFrame, as_of=AS_OF, config: FeatureConfig = CONFIG) -> pd.DataFrame:
    with load_events(frame, export_time="2030-01-01") as log:
        out = log.engine.execute(build_features(log.events, as_of, config))
    return out.set_index("customer_id").sort_index()


@pytest.fixture(scope="module")
def hand() -> pd.DataFrame:
    return features_of(hand_log())


def test_only_customers_seen_before_the_cutoff_get_a_row(hand):
    assert list(hand.index) == ["A", "B", "D"]  # C's first event is after the cutoff


def test_customer_a_by_hand(hand):
    a = hand.loc["A"]
    # the purchase at exactly 2024-03-01 00:00 is not "before the cutoff": 8 events, not 9
    assert (a.n_events_7d, a.n_events_30d, a.n_events_all) == (4, 5, 8)
    assert (a.n_view_7d, a.n_view_30d, a.n_view_all) == (2, 3, 4)
    assert (a.n_add_to_cart_7d, a.n_add_to_cart_all, a.n_checkout_all) == (1, 2, 0)
    assert (a.n_purchase_7d, a.n_purchase_all, a.n_orders_7d, a.n_orders_all) == (1, 2, 1, 2)
    assert (a.spend_7d, a.spend_30d, a.spend_all) == (50.0, 50.0, 70.0)
    assert a.days_since_last_event == pytest.approx(1 / 86400)  # 2024-02-29 23:59:59
    assert a.days_since_last_purchase == pytest.approx(1.5)  # 2024-02-28 12:00
    assert a.days_since_last_add_to_cart == pytest.approx(4 + 3 / 24 + 50 / 1440)  # 2024-02-25 20:10
    assert math.isnan(a.days_since_last_checkout) and math.isnan(a.days_since_last_return)
    assert a.tenure_days == pytest.approx(50 + 14 / 24)  # 2024-01-10 10:00, 2024 is a leap year
    # active 24-hour periods back from the cutoff: days 0, 1, 4 | 24 | 50
    assert (a.n_active_days_7d, a.n_active_days_30d, a.n_active_days_all) == (3, 4, 5)
    # sessions s1..s5; s3, s4, s5 started within 7 days
    assert (a.n_sessions_7d, a.n_sessions_30d, a.n_sessions_all) == (3, 4, 5)
    assert a.avg_events_per_session == pytest.approx(8 / 5)
    assert a.avg_session_minutes == pytest.approx((20 + 0 + 10 + 0 + 0) / 5)
    assert a.cart_to_purchase_rate == pytest.approx(0.5)  # s1 bought, s3 did not
    assert a.cart_abandonment_rate == pytest.approx(0.5)
    assert (a.n_abandoned_carts_7d, a.n_abandoned_carts_all) == (1, 1)
    assert a.view_to_cart_rate == pytest.approx(2 / 4)  # views in s1, s2, s3, s5; carts in s1, s3
    assert a.avg_order_value == pytest.approx(35.0)
    assert a.interpurchase_days_mean == pytest.approx((50 + 13 / 24 + 40 / 1440) - 1.5)
    assert math.isnan(a.interpurchase_days_std)  # one gap has no spread
    first_order = 50 + 13 / 24 + 40 / 1440  # days before the cutoff
    assert a.repeat_orders_per_30d == pytest.approx(30 / first_order)  # one repeat order
    assert a.last_order_share_of_life == pytest.approx((first_order - 1.5) / first_order)
    assert a.events_trend_30d == pytest.approx(math.log((5 + 1) / (3 + 1)))
    assert a.share_weekend == pytest.approx(2 / 8)  # 2024-02-25 was a Sunday
    assert (
        a.share_hour_night,
        a.share_hour_morning,
        a.share_hour_afternoon,
        a.share_hour_evening,
    ) == pytest.approx((0, 4 / 8, 1 / 8, 3 / 8))
    assert (a.share_device_mobile, a.share_device_desktop) == pytest.approx((5 / 8, 3 / 8))
    assert (a.top_category, a.n_categories_all) == ("books", 2)


def test_customer_b_window_edges_by_hand(hand):
    b = hand.loc["B"]
    # 2024-02-23 00:00 is exactly 7 days before: inside; 2024-02-22 23:59:59 is outside
    assert (b.n_events_7d, b.n_events_30d) == (2, 3)
    assert (b.n_add_to_cart_7d, b.n_add_to_cart_30d) == (1, 2)
    assert (b.n_active_days_7d, b.n_active_days_30d) == (1, 2)
    assert (b.n_sessions_7d, b.n_sessions_all, b.n_abandoned_carts_7d, b.n_abandoned_carts_all) == (
        1,
        2,
        1,
        2,
    )
    assert b.cart_to_purchase_rate == 0.0 and b.view_to_cart_rate == 1.0
    assert (b.n_orders_all, b.spend_all) == (0, 0.0)
    assert math.isnan(b.days_since_last_purchase) and math.isnan(b.avg_order_value)
    assert math.isnan(b.repeat_orders_per_30d) and math.isnan(b.last_order_share_of_life)


def test_customer_d_orders_returns_and_90_day_edge_by_hand(hand):
    d = hand.loc["D"]
    assert (d.n_orders_all, d.spend_all, d.returned_value_all, d.n_return_all) == (2, 160.0, 60.0, 1)
    assert d.days_since_last_purchase == pytest.approx(76.5)
    assert d.days_since_last_event == pytest.approx(56.5)  # the return
    assert d.tenure_days == pytest.approx(90.5)
    assert (d.n_events_90d, d.n_events_all, d.n_orders_90d) == (2, 3, 1)  # 90.5 days ago is outside 90d
    assert d.interpurchase_days_mean == pytest.approx(14.0)
    assert d.repeat_orders_per_30d == pytest.approx(30 / 90.5)
    assert d.last_order_share_of_life == pytest.approx(14 / 90.5)
    assert (d.n_sessions_all, d.avg_events_per_session, d.avg_session_minutes) == (
        2,
        1.0,
        0.0,
    )  # the return has no session
    assert math.isnan(d.cart_to_purchase_rate) and math.isnan(d.view_to_cart_rate)
    assert d.share_device_desktop == pytest.approx(1.0)  # the return has no device: not counted


def test_labels_and_eligibility_by_hand():
    label = LabelSpec("purchase", 30)
    with load_events(hand_log(), export_time="2030-01-01") as log:
        buy = log.engine.execute(labelled_snapshot(log.events, AS_OF, label, CONFIG, Eligibility(90)))
        churn = log.engine.execute(
            labelled_snapshot(log.events, AS_OF, LabelSpec("churn", 30), CONFIG, Eligibility(30))
        )
    buy = buy.set_index("customer_id").sort_index()
    churn = churn.set_index("customer_id").sort_index()
    # A buys exactly at the cutoff (inside [as_of, as_of + 30d)); B on 03-05; D not at all
    assert buy["purchase_next_30d"].to_dict() == {"A": 1, "B": 1, "D": 0}
    assert buy["eligible"].to_dict() == {"A": True, "B": True, "D": True}  # D was active 56.5 days ago
    # churn: only past buyers are eligible, and with 30 active days D is out
    assert churn["eligible"].to_dict() == {"A": True, "B": False, "D": False}
    assert churn.loc["A", "churn_next_30d"] == 0 and churn.loc["D", "churn_next_30d"] == 1


def test_registry_documents_every_column_once():
    defs = feature_registry(CONFIG)
    names = [d.name for d in defs]
    assert len(names) == len(set(names))
    frame = features_of(hand_log())
    assert list(frame.columns) == names
    for d in defs:
        assert d.definition and d.description and d.window and d.template, d.name
        assert d.role == ("categorical" if d.name == "top_category" else "numeric")
        if d.role == "numeric":
            assert d.unit, d.name
            assert "{value" in d.template
    assert {d.window for d in defs} >= {"7d", "30d", "90d", "lifetime"}
    # the registry follows the config: other lookbacks, other levels
    other = [d.name for d in feature_registry(FeatureConfig(lookbacks=(14,), levels={"device": ("tv",)}))]
    assert "n_events_14d" in other and "share_device_tv" in other and "n_events_7d" not in other


def test_engine_agrees_with_a_pandas_groupby_oracle_on_the_synthetic_shop(small_shop):
    from benchmarks.pandas_features import pandas_features

    config = FeatureConfig(
        lookbacks=(7, 30, 90),
        levels={"device": ("mobile", "desktop", "tablet"), "channel": ("direct", "email")},
    )
    as_of = pd.Timestamp("2024-03-20")
    with load_events(small_shop / "events.parquet") as log:
        ours = log.engine.execute(build_features(log.events, as_of, config))
        canon = log.engine.execute(log.events)
    oracle = pandas_features(canon, as_of, lookbacks=(7, 30, 90), levels=config.levels)
    assert_same_features(ours, oracle)
    assert len(ours) > 300


def assert_same_features(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("customer_id").reset_index(drop=True)
    b = b.sort_values("customer_id").reset_index(drop=True)[list(a.columns)]
    assert list(a["customer_id"]) == list(b["customer_id"])
    for col in a.columns[1:]:
        if a[col].dtype == object or b[col].dtype == object:
            assert a[col].fillna("<NA>").tolist() == b[col].fillna("<NA>").tolist(), col
        else:
            np.testing.assert_allclose(
                a[col].to_numpy(dtype="float64"),
                b[col].to_numpy(dtype="float64"),
                rtol=1e-9,
                atol=1e-12,
                err_msg=col,
            )


def test_as_of_outside_the_data_is_refused():
    first, end = pd.Timestamp("2024-01-10 10:00"), pd.Timestamp("2024-03-11")
    with pytest.raises(DataError, match="on or before the first event"):
        check_as_of(pd.Timestamp("2024-01-01"), first, end)
    with pytest.raises(DataError, match=r"5 day\(s\) after the end of the data"):
        check_as_of(pd.Timestamp("2024-03-16"), first, end)
    with pytest.raises(
        DataError, match=r"reaches 20 day\(s\) past the end of the data.*on or before 2024-02-10"
    ):
        check_as_of(pd.Timestamp("2024-03-01"), first, end, horizon_days=30)
    check_as_of(pd.Timestamp("2024-03-01"), first, end, horizon_days=30, allow_partial_horizon=True)
    check_as_of(end, first, end)  # scoring at the end of the data is the normal case


def test_feature_config_validates_its_parameters():
    with pytest.raises(ParameterError, match="lookbacks"):
        FeatureConfig(lookbacks=(7, 7))
    with pytest.raises(ParameterError, match="lookbacks"):
        FeatureConfig(lookbacks=(0,))
    with pytest.raises(ParameterError, match="as_of"):
        build_features(None, "not a date")  # type: ignore[arg-type]
    assert FeatureConfig(lookbacks=(90, 7)).lookbacks == (7, 90)


def test_pandas_oracle_reproduces_the_hand_fixture(hand):
    from benchmarks.pandas_features import pandas_features

    oracle = pandas_features(canonical(hand_log()), AS_OF, levels=LEVELS)
    assert_same_features(hand.reset_index(), oracle)
