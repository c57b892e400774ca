"""Threshold and contact-planning arithmetic, by hand, and against the stored evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from propensity.errors import ParameterError, SchemaError
from propensity.targeting import plan_contacts, threshold_view

SWEEP = {"threshold": [0.0, 0.5, 1.0], "contacted": [10, 4, 0], "tp": [3, 2, 0]}


def test_threshold_view_by_hand():
    tv = threshold_view(SWEEP, n=10, positives=3, threshold=0.45, value=10, cost=1)
    assert tv.threshold == 0.5  # the nearest stored threshold
    assert (tv.contacted, tv.tp, tv.fp, tv.fn, tv.tn) == (4, 2, 2, 1, 5)
    assert tv.precision == pytest.approx(0.5) and tv.recall == pytest.approx(2 / 3)
    assert tv.f1 == pytest.approx(4 / 7)
    assert tv.contacted_share == pytest.approx(0.4)
    assert tv.profit == pytest.approx(2 * 10 - 4 * 1)
    top = threshold_view(SWEEP, n=10, positives=3, threshold=1.0, value=10, cost=1)
    assert top.contacted == 0 and top.precision is None and top.profit == 0


def test_threshold_view_rejects_bad_money_and_empty_sweeps():
    with pytest.raises(ParameterError, match="'cost'"):
        threshold_view(SWEEP, n=10, positives=3, threshold=0.5, value=10, cost=-1)
    with pytest.raises(SchemaError, match="empty"):
        threshold_view(
            {"threshold": [], "contacted": [], "tp": []}, n=0, positives=0, threshold=0.5, value=1, cost=1
        )


def test_threshold_view_equals_the_evaluation_at_the_policy_threshold(trained):
    model, out = trained
    ev = json.loads((out / "evaluation.json").read_text())
    for ds in ev["datasets"].values():
        m = ds["metrics"]
        tv = threshold_view(
            ds["sweep"], n=ds["n"], positives=ds["positives"], threshold=model.threshold, value=10, cost=1
        )
        assert tv.threshold == pytest.approx(model.threshold, abs=1e-6)
        assert {k: getattr(tv, k) for k in ("tp", "fp", "fn", "tn")} == m["confusion"]
        assert tv.precision == pytest.approx(m["precision"]) and tv.recall == pytest.approx(m["recall"])


SCORES = pd.DataFrame({"customer_id": list("abcde"), "probability": [0.9, 0.5, 0.3, 0.1, 0.2]})


def test_plan_contacts_by_hand():
    plan = plan_contacts(SCORES, value=10, cost=2, max_contacts=2)
    assert plan.selected["customer_id"].tolist() == ["a", "b"]
    assert plan.selected["rank"].tolist() == [1, 2]
    assert plan.selected["expected_value"].tolist() == pytest.approx([7.0, 3.0])
    assert plan.contacts == 2 and plan.limited_by == "max_contacts"
    assert plan.expected_buyers == pytest.approx(1.4)
    assert plan.expected_profit == pytest.approx(1.4 * 10 - 2 * 2)
    assert plan.base_rate == pytest.approx(0.4)  # mean probability of the five candidates
    assert plan.random_buyers == pytest.approx(0.8)
    assert plan.random_profit == pytest.approx(0.8 * 10 - 4)
    assert plan.extra_buyers == pytest.approx(0.6)
    # contacting is worth it while p * 10 > 2, i.e. for a, b, c: profit 17 - 6 = 11
    assert (plan.best_contacts, plan.best_profit) == (3, pytest.approx(11.0))
    assert plan.min_probability == pytest.approx(0.5)


def test_plan_contacts_money_budget_and_profitability():
    by_money = plan_contacts(SCORES, value=10, cost=2, budget=7)
    assert by_money.contacts == 3 and by_money.limited_by == "budget" and by_money.spend == 6
    assert by_money.expected_buyers == pytest.approx(1.7)
    worth = plan_contacts(SCORES, value=10, cost=2, profitable_only=True)
    assert worth.contacts == 3 and worth.limited_by == "profitability"  # 0.2 * 10 = 2 is not > 2
    everyone = plan_contacts(SCORES, value=10, cost=0, budget=1)
    assert everyone.contacts == 5 and everyone.limited_by == "candidates"  # free contacts: no money limit
    assert everyone.expected_buyers == pytest.approx(everyone.random_buyers)  # all = random when all


def test_plan_contacts_curve_and_given_base_rate():
    plan = plan_contacts(SCORES, value=10, cost=2, max_contacts=1, base_rate=0.1)
    curve = plan.curve.set_index("contacts")
    assert curve.index.tolist() == [0, 1, 2, 3, 4, 5]
    assert curve["buyers"].tolist() == pytest.approx(np.cumsum([0, 0.9, 0.5, 0.3, 0.2, 0.1]).tolist())
    assert curve.loc[2, "random_profit"] == pytest.approx(2 * 0.1 * 10 - 4)
    assert plan.random_buyers == pytest.approx(0.1)


def test_plan_contacts_validates_its_input():
    with pytest.raises(SchemaError, match="'probability'"):
        plan_contacts(SCORES.rename(columns={"probability": "p"}), value=1, cost=1)
    with pytest.raises(SchemaError, match=r"\[0, 1\]"):
        plan_contacts(SCORES.assign(probability=[0.1, 2, 0, 0, 0]), value=1, cost=1)
    with pytest.raises(ParameterError, match="'max_contacts'"):
        plan_contacts(SCORES, value=1, cost=1, max_contacts=-1)
    with pytest.raises(ParameterError, match="'value'"):
        plan_contacts(SCORES, value=float("nan"), cost=1)


def test_plan_contacts_by_expected_value_with_a_value_per_customer():
    # expected values p × clv: a 0.9 × 10 = 9, b 0.5 × 40 = 20, c 0.3 × 100 = 30, d 0.1 × 0, e 0.2 × 5 = 1
    scores = SCORES.assign(clv=[10.0, 40.0, 100.0, np.nan, 5.0])
    plan = plan_contacts(scores, value=999, cost=2, max_contacts=2, value_col="clv")
    assert plan.selected["customer_id"].tolist() == ["c", "b"]
    assert plan.selected["expected_value"].tolist() == pytest.approx([28.0, 18.0])
    assert plan.expected_buyers == pytest.approx(0.8)
    assert plan.expected_profit == pytest.approx(30 + 20 - 4)
    assert plan.value == pytest.approx(155 / 5) and plan.value_col == "clv"  # the mean, missing as 0
    assert plan.random_profit == pytest.approx(2 * (60 / 5) - 4)  # mean expected value 12 per contact
    assert plan.min_probability == pytest.approx(0.3)
    # worth a contact while p × clv > 2: c, b, a (e's 1 is not), best profit 59 - 6
    assert (plan.best_contacts, plan.best_profit) == (3, pytest.approx(53.0))
    worth = plan_contacts(scores, value=0, cost=2, profitable_only=True, value_col="clv")
    assert worth.selected["customer_id"].tolist() == ["c", "b", "a"]
    curve = plan.curve.set_index("contacts")
    assert curve["profit"].tolist() == pytest.approx([0, 28, 46, 53, 52, 50])


def test_plan_contacts_value_zero_still_ranks_by_probability():
    plan = plan_contacts(SCORES, value=0, cost=0, max_contacts=2)
    assert plan.selected["customer_id"].tolist() == ["a", "b"]


def test_plan_contacts_refuses_a_missing_or_negative_value_column():
    with pytest.raises(SchemaError, match="'clv'"):
        plan_contacts(SCORES, value=1, cost=1, value_col="clv")
    with pytest.raises(SchemaError, match=">= 0"):
        plan_contacts(SCORES.assign(clv=[1, -1, 0, 0, 0]), value=1, cost=1, value_col="clv")
