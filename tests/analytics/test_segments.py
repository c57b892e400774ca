"""Churn-risk segments on four hand-made customers: every number worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from propensity.analytics.segments import ACTIONS, SEGMENT_GROUPS, risk_segments, suggested_action
from propensity.analytics.tables import SEGMENTS
from propensity.errors import SchemaError

RFM = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d"],
        "segment": ["champions", "at risk", "at risk", "prospects"],
        "monetary": [100.0, 50.0, 30.0, 0.0],
    }
)
SCORES = pd.DataFrame(
    {"customer_id": ["a", "b", "c"], "probability": [0.8, 0.2, 0.5], "band": ["high", "low", "medium"]}
)


def test_with_scores_revenue_at_risk_is_the_revenue_of_the_low_band():
    out = risk_segments(RFM, SCORES, pd.DataFrame({"customer_id": ["a", "b"], "clv": [10.0, 5.0]}))
    cells = list(zip(out["segment"], out["band"], strict=True))
    # only b is in the low band (50 at risk); then by past revenue: a 100, c 30, d 0 (not scored)
    assert cells == [
        ("at risk", "low"),
        ("champions", "high"),
        ("at risk", "medium"),
        ("prospects", "unscored"),
    ]
    assert out["revenue_at_risk"].tolist() == [50.0, 0.0, 0.0, 0.0]
    assert out["customers"].tolist() == [1, 1, 1, 1]
    assert out["share"].tolist() == [0.25] * 4
    assert out["mean_probability"].iloc[:3].tolist() == pytest.approx([0.2, 0.8, 0.5])
    assert math.isnan(out["mean_probability"].iloc[3]) and math.isnan(out["expected_buyers"].iloc[3])
    assert out["clv"].iloc[0] == 5.0 and out["clv"].iloc[1] == 10.0 and math.isnan(out["clv"].iloc[2])
    assert out["action"].iloc[0] == ACTIONS["valuable lapsing"][1]
    assert out["action"].iloc[1] == ACTIONS["best"][0]
    assert out["meaning"].iloc[0] == SEGMENTS["at risk"]


def test_without_a_model_the_churn_segments_hold_the_revenue_at_risk():
    out = risk_segments(RFM)
    assert list(zip(out["segment"], out["band"], out["revenue_at_risk"], strict=True)) == [
        ("at risk", "unscored", 80.0),
        ("champions", "unscored", 0.0),
        ("prospects", "unscored", 0.0),
    ]
    assert out["customers"].tolist() == [2, 1, 1]
    assert out["mean_probability"].isna().all() and out["clv"].isna().all()
    assert out["action"].iloc[1] == ACTIONS["best"][2]  # no model: the action of the segment alone


def test_every_segment_has_an_action_for_every_band():
    assert set(SEGMENT_GROUPS) == set(SEGMENTS)
    for segment in SEGMENTS:
        for band in ("high", "medium", "low", "unscored"):
            assert suggested_action(segment, band)
    assert suggested_action("loyal", "high") != suggested_action("loyal", "low")


def test_missing_columns_are_named():
    with pytest.raises(SchemaError, match="band"):
        risk_segments(RFM, SCORES.drop(columns=["band"]))
    with pytest.raises(SchemaError, match="clv"):
        risk_segments(RFM, clv=SCORES)
