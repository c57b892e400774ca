"""Product and category analytics on a 22-event log of five customers, every expected number worked out by hand.

The log mixes both ways shops record what was bought: sessions a1 and b3 log one purchase per
order without a product (their carted items are what was bought), while D and E log one
purchase line per product (an order log).

Bought items: A's order o1 (P1, 10), B's order o2 (P1 10, P2 20 — both carted in b3), D's o3
(P1 10, P3 5), E's o4 (P2 20, P3 5 × 2). A's cart of P2 in a2 is never bought (abandoned).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from propensity.analytics.products import (
    ITEM_COLUMNS,
    product_analytics,
    top_items,
)
from propensity.engines import get_engine
from propensity.errors import ParameterError


def hand_events() -> pd.DataFrame:
    rows = [
        # customer, ts, type, session, order, amount, quantity, product, category
        ("A", "2024-01-01 10:00", "view", "a1", None, None, None, "P1", "X"),
        ("A", "2024-01-01 10:01", "add_to_cart", "a1", None, 10.0, 1, "P1", "X"),
        ("A", "2024-01-01 10:02", "view", "a1", None, None, None, "P2", "Y"),
        ("A", "2024-01-01 10:05", "purchase", "a1", "o1", 10.0, 1, None, "X"),
        ("A", "2024-01-05 09:00", "view", "a2", None, None, None, "P2", "Y"),
        ("A", "2024-01-05 09:01", "add_to_cart", "a2", None, 40.0, 2, "P2", "Y"),
        ("B", "2024-01-02 12:00", "view", "b3", None, None, None, "P1", "X"),
        ("B", "2024-01-02 12:01", "add_to_cart", "b3", None, 10.0, 1, "P1", "X"),
        ("B", "2024-01-02 12:02", "add_to_cart", "b3", None, 20.0, 1, "P2", "Y"),
        ("B", "2024-01-02 12:03", "checkout", "b3", None, 30.0, 2, None, "X"),
        ("B", "2024-01-02 12:04", "purchase", "b3", "o2", 30.0, 2, None, "X"),
        ("C", "2024-01-03 08:00", "view", "c4", None, None, None, "P1", "X"),
        ("C", "2024-01-03 08:01", "view", "c4", None, None, None, "P1", "X"),
        ("C", "2024-01-03 08:02", "view", "c4", None, None, None, "P3", "X"),
        ("D", "2024-01-04 20:00", "purchase", "d5", "o3", 5.0, 1, "P3", "X"),
        ("D", "2024-01-04 20:00", "purchase", "d5", "o3", 10.0, 1, "P1", "X"),
        ("E", "2024-01-06 15:00", "purchase", "e6", "o4", 20.0, 1, "P2", "Y"),
        ("E", "2024-01-06 15:00", "purchase", "e6", "o4", 10.0, 2, "P3", "X"),
        ("E", "2024-01-20 15:00", "return", None, "o4", -10.0, -2, "P3", "X"),
        ("E", "2024-01-21 15:00", "view", "e7", None, None, None, None, None),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "customer_id",
            "ts",
            "event_type",
            "session_id",
            "order_id",
            "amount",
            "quantity",
            "product_id",
            "category",
        ],
    )
    frame["ts"] = pd.to_datetime(frame["ts"])
    frame["quantity"] = frame["quantity"].astype("float64")
    return frame


@pytest.fixture(scope="module")
def result():
    with get_engine("duckdb", threads=1) as eng:
        yield product_analytics(eng.from_frame(hand_events()), engine=eng, min_support=2, min_pair_orders=1)


# product: views, viewers, carts, carters, orders, buyers, units, revenue, view_buyers, abandoned
EXPECTED_PRODUCTS = {
    # P1: viewed by A, B, C (C twice); carted by A, B; bought by A (o1), B (o2), D (o3).
    "P1": ("X", 4, 3, 2, 2, 3, 3, 3.0, 30.0, 2, 0),
    # P2: viewed by A twice (never bought by A); carted by A (a2, no purchase) and B (b3, bought); E bought it.
    "P2": ("Y", 2, 1, 2, 2, 2, 2, 2.0, 40.0, 0, 1),
    # P3: viewed by C only; bought by D (1 unit) and E (2 units, 10.0).
    "P3": ("X", 1, 1, 0, 0, 2, 2, 3.0, 15.0, 0, 0),
}
EXPECTED_CATEGORIES = {
    # X: views P1 4 + P3 1; viewers A, B, C; carters A, B; orders o1, o2, o3, o4 (E's P3); buyers A, B, D, E;
    # units 1 + 1 + 1 + 1 + 2; revenue 10 + 10 + 10 + 5 + 10.
    "X": (5, 3, 2, 2, 4, 4, 6.0, 45.0, 2, 0),
    # Y: views by A twice; carters A, B; bought in o2 (B) and o4 (E); A never bought from Y.
    "Y": (2, 1, 2, 2, 2, 2, 2.0, 40.0, 0, 1),
}
COUNTS = (
    "views",
    "viewers",
    "carts",
    "carters",
    "orders",
    "buyers",
    "units",
    "revenue",
    "view_buyers",
    "abandoned",
)


def test_product_table_matches_the_hand_computed_numbers(result):
    products = result.products.set_index("product_id")
    assert list(result.products.columns) == ["product_id", "category", *ITEM_COLUMNS]
    assert sorted(products.index) == ["P1", "P2", "P3"]
    for pid, (category, *numbers) in EXPECTED_PRODUCTS.items():
        row = products.loc[pid]
        assert row["category"] == category
        assert [row[c] for c in COUNTS] == numbers, pid
    assert products["revenue_share"].to_dict() == pytest.approx({"P1": 30 / 85, "P2": 40 / 85, "P3": 15 / 85})
    assert products.loc["P1", "conversion_rate"] == pytest.approx(2 / 3)
    assert products.loc["P2", "conversion_rate"] == 0.0
    assert products.loc["P2", "abandonment_rate"] == 0.5
    assert products.loc["P1", "abandonment_rate"] == 0.0
    assert math.isnan(products.loc["P3", "abandonment_rate"])  # nobody carted it
    # Wilson 95 % lower bound of 2 of 3: (p + z²/2n − z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    z, n, p = 1.959964, 3, 2 / 3
    low = (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    assert products.loc["P1", "conversion_low"] == pytest.approx(low)
    assert low == pytest.approx(0.2077, abs=1e-4)


def test_category_table_matches_the_hand_computed_numbers(result):
    cats = result.categories.set_index("category")
    assert sorted(cats.index) == ["X", "Y"]
    for cat, numbers in EXPECTED_CATEGORIES.items():
        assert [cats.loc[cat, c] for c in COUNTS] == list(numbers), cat
    assert cats.loc["X", "conversion_rate"] == pytest.approx(2 / 3)
    assert cats.loc["Y", "abandonment_rate"] == 0.5


def test_rankings_follow_the_minimum_support_rule(result):
    assert list(result.top("revenue")["product_id"]) == ["P2", "P1", "P3"]
    assert list(result.top("views")["product_id"]) == ["P1", "P2", "P3"]
    # P2 and P3 have one viewer each: below the minimum support of 2, they are not ranked by conversion
    assert list(result.top("conversion")["product_id"]) == ["P1"]
    assert list(result.top("abandonment")["product_id"]) == ["P2", "P1"]
    assert list(result.top("revenue", level="categories")["category"]) == ["X", "Y"]
    # a product seen once with a 100 % conversion never tops a table with the default support of 30
    table = result.products.copy()
    table.loc[table["product_id"] == "P3", ["view_buyers", "conversion_rate"]] = [1, 1.0]
    assert top_items(table, "conversion", min_support=30).empty
    assert list(top_items(table, "conversion", min_support=1)["product_id"]) == ["P3", "P1", "P2"]
    assert result.rankings() == ["revenue", "views", "conversion", "abandonment"]


def test_bought_together_support_confidence_and_lift(result):
    # 4 orders: o1 {P1}, o2 {P1, P2}, o3 {P1, P3}, o4 {P2, P3}; orders with P1 3, P2 2, P3 2.
    pairs = result.pairs
    assert list(zip(pairs["product_a"], pairs["product_b"], strict=True)) == [
        ("P2", "P3"),  # lift (1/4) / (2/4 · 2/4) = 1
        ("P1", "P2"),  # lift (1/4) / (3/4 · 2/4) = 2/3 (ties with P1-P3, broken by name)
        ("P1", "P3"),
    ]
    first = pairs.iloc[0]
    assert first["orders_together"] == 1
    assert first["support"] == pytest.approx(0.25)
    assert first["confidence_a_b"] == pytest.approx(0.5)
    assert first["lift"] == pytest.approx(1.0)
    second = pairs.iloc[1]
    assert second["confidence_a_b"] == pytest.approx(1 / 3)  # of P1's 3 orders, one holds P2
    assert second["confidence_b_a"] == pytest.approx(1 / 2)
    assert second["lift"] == pytest.approx(2 / 3)


def test_min_pair_orders_and_top_items_limit_the_pairs():
    with get_engine("duckdb", threads=1) as eng:
        events = eng.from_frame(hand_events())
        assert product_analytics(events, engine=eng, min_pair_orders=2).pairs.empty
        only_p1 = product_analytics(events, engine=eng, top_items=1, min_pair_orders=1)
        assert only_p1.pairs.empty  # one product cannot make a pair


def test_a_log_without_products_gives_none_and_an_order_log_has_no_view_rankings():
    frame = hand_events()
    with get_engine("duckdb", threads=1) as eng:
        no_products = frame.assign(product_id=None, category=None)
        assert product_analytics(eng.from_frame(no_products), engine=eng) is None
        orders = frame[frame["event_type"] == "purchase"].drop(columns=["category"])
        pa = product_analytics(eng.from_frame(orders), engine=eng, min_support=1, min_pair_orders=1)
    assert pa is not None
    assert pa.rankings() == ["revenue"]
    assert pa.categories.empty
    assert len(pa.notes) == 2
    assert list(pa.products.set_index("product_id")["revenue"].items()) == [
        ("P1", 10.0),
        ("P2", 20.0),
        ("P3", 15.0),
    ]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_parameters_are_checked(bad):
    with get_engine("duckdb", threads=1) as eng, pytest.raises(ParameterError, match="min_support"):
        product_analytics(eng.from_frame(hand_events()), engine=eng, min_support=bad)
