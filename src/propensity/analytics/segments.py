"""Churn-risk and value segments: RFM segment × the model's score band (× lifetime value), with an action each.

The rules are fixed here, not chosen per run, so two reports of the same shop can be compared:

- **Segment**: the RFM segment of :func:`~propensity.analytics.rfm_table` (recency and frequency
  scores; ``prospects`` never bought).
- **Band**: the model's score band of each customer (``high``: at or above the decision threshold,
  ``medium``: above the average customer, ``low``: the rest — see the model report); ``unscored``
  without a model, or for a customer the model did not score.
- **Revenue at risk**: the past revenue of the customers flagged at risk — with a model, those in
  band ``low`` (less likely to buy within the model's horizon than the average customer); without
  one, those in the segments of :data:`CHURN_SEGMENTS` (recency score 1–3). Other customers add 0.
- **Value**: lifetime value (``clv``, e.g. the ``scores.parquet`` of ``propensity clv``) when given,
  summed per cell.
- **Action**: :data:`ACTIONS` by the segment's group (:data:`SEGMENT_GROUPS`) and whether the band
  is ``high`` (likely to buy anyway: no discount), ``medium``/``low``, or ``unscored``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from propensity.analytics.tables import SEGMENTS
from propensity.errors import SchemaError

__all__ = ["ACTIONS", "BANDS", "CHURN_SEGMENTS", "SEGMENT_GROUPS", "risk_segments", "suggested_action"]

#: Score bands in display order (``unscored``: no model or no score).
BANDS = ("high", "medium", "low", "unscored")

#: Segments whose past revenue counts as at risk when there is no model (they have not bought lately).
CHURN_SEGMENTS = ("about to sleep", "need attention", "at risk", "can't lose", "hibernating")

#: The group of every RFM segment (the actions are per group).
SEGMENT_GROUPS: dict[str, str] = {
    "champions": "best",
    "loyal": "best",
    "potential loyalists": "growing",
    "new customers": "growing",
    "promising": "growing",
    "need attention": "slipping",
    "about to sleep": "slipping",
    "at risk": "valuable lapsing",
    "can't lose": "valuable lapsing",
    "hibernating": "lapsed",
    "prospects": "never bought",
}

#: The suggested action per segment group: when the model says likely to buy (band ``high``), when it
#: does not (``medium`` or ``low``), and without a score (``unscored``: the RFM segment alone).
ACTIONS: dict[str, tuple[str, str, str]] = {
    "best": (
        "Reward and cross-sell (bought-together items); no discount needed.",
        "Check in personally: valued customers whose next purchase looks less likely — loyalty perk or early access.",
        "Reward and cross-sell (bought-together items); keep them close with early access, not discounts.",
    ),
    "growing": (
        "Recommend the next product (bought-together items) to make them regulars.",
        "Second-order incentive: a welcome series with a modest first-repeat offer.",
        "Welcome series recommending the next product; a modest offer for the second order.",
    ),
    "slipping": (
        "Light reminder (recently viewed, abandoned cart); no discount.",
        "Time-limited offer in their favourite category before they lapse.",
        "Time-limited offer in their favourite category before they lapse.",
    ),
    "valuable lapsing": (
        "Remind them personally; they are likely to come back without a discount.",
        "Win-back with a personal offer: the most revenue is at stake here.",
        "Win-back with a personal offer: the most revenue is at stake here.",
    ),
    "lapsed": (
        "Reactivation reminder: the model sees them returning.",
        "Low-cost channel only (email); do not spend paid contacts on them.",
        "Low-cost channel only (email); do not spend paid contacts on them.",
    ),
    "never bought": (
        "Nudge the first purchase (cart and browse reminders).",
        "Leave to general marketing.",
        "Nudge the first purchase with cart and browse reminders; otherwise general marketing.",
    ),
}

_COLUMNS = [
    "segment",
    "band",
    "meaning",
    "customers",
    "share",
    "revenue",
    "revenue_at_risk",
    "mean_probability",
    "expected_buyers",
    "clv",
    "action",
]


def suggested_action(segment: str, band: str) -> str:
    """The action of :data:`ACTIONS` for an RFM segment and a score band."""
    likely, otherwise, unscored = ACTIONS[SEGMENT_GROUPS.get(segment, "never bought")]
    return likely if band == "high" else unscored if band == "unscored" else otherwise


def risk_segments(
    rfm: pd.DataFrame, scores: pd.DataFrame | None = None, clv: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Size, revenue, revenue at risk, propensity, lifetime value and an action per segment × band.

    Parameters
    ----------
    rfm
        The output of :func:`~propensity.analytics.rfm_table`.
    scores
        Optional ``customer_id``, ``probability`` and ``band`` (``propensity score`` output or
        :func:`propensity.workflows.events.customer_snapshot`).
    clv
        Optional ``customer_id`` and ``clv`` (the scores of ``propensity clv``).

    Returns
    -------
    pandas.DataFrame
        :data:`_COLUMNS`: ``segment``, ``band``, ``meaning``, ``customers``, ``share`` (of all
        customers), ``revenue`` (past), ``revenue_at_risk``, ``mean_probability`` and
        ``expected_buyers`` (NaN without scores), ``clv`` (NaN without), ``action``. One row per
        non-empty cell, by revenue at risk (largest first), then revenue.

    Raises
    ------
    SchemaError
        ``scores`` or ``clv`` lack their columns.
    """
    frame = rfm[["customer_id", "segment", "monetary"]].copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    if scores is not None:
        if not {"customer_id", "probability", "band"} <= set(scores.columns):
            raise SchemaError(
                "The 'scores' of risk_segments need the columns customer_id, probability and band."
            )
        part = scores[["customer_id", "probability", "band"]].astype({"customer_id": str})
        frame = frame.merge(part.drop_duplicates("customer_id"), on="customer_id", how="left")
    else:
        frame["probability"] = np.nan
        frame["band"] = None
    frame["band"] = frame["band"].where(frame["probability"].notna(), "unscored").astype(str)
    if clv is not None:
        if not {"customer_id", "clv"} <= set(clv.columns):
            raise SchemaError("The 'clv' table of risk_segments needs the columns customer_id and clv.")
        part = clv[["customer_id", "clv"]].astype({"customer_id": str}).drop_duplicates("customer_id")
        frame = frame.merge(part, on="customer_id", how="left")
    else:
        frame["clv"] = np.nan
    churn = frame["segment"].isin(CHURN_SEGMENTS)
    flagged = (frame["band"] == "low") if scores is not None else churn
    frame["at_risk"] = np.where(flagged, frame["monetary"], 0.0)
    grouped = frame.groupby(["segment", "band"], sort=False)
    out = grouped.agg(
        customers=("customer_id", "size"),
        revenue=("monetary", "sum"),
        revenue_at_risk=("at_risk", "sum"),
        mean_probability=("probability", "mean"),
        expected_buyers=("probability", "sum"),
        clv=("clv", lambda s: s.sum(min_count=1)),
    ).reset_index()
    out.loc[out["mean_probability"].isna(), "expected_buyers"] = np.nan
    out["share"] = out["customers"] / max(len(frame), 1)
    out["meaning"] = out["segment"].map(SEGMENTS)
    out["action"] = [suggested_action(s, b) for s, b in zip(out["segment"], out["band"], strict=True)]
    out["_order"] = out["segment"].map({s: i for i, s in enumerate(SEGMENTS)})
    out = out.sort_values(
        ["revenue_at_risk", "revenue", "_order", "band"], ascending=[False, False, True, True], kind="stable"
    )
    return out[_COLUMNS].reset_index(drop=True)
