"""Target: a budget (contacts or money) and value/cost per contact → whom to contact, expected
buyers and profit versus random targeting, and the list as CSV; the customers of the log can be
narrowed to RFM segments and score bands first. With a lifetime-value bundle (--clv), the value
of a conversion can be each customer's CLV: customers are then ranked by probability × CLV."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from propensity.analytics import SEGMENTS
from propensity.dashboard import data, ui
from propensity.targeting import plan_contacts

ctx = data.context()
st.title("Target")
ui.show_problems(ctx)
if ui.need_model(ctx, "whom to contact") and ctx.model is not None:
    candidates: pd.DataFrame | None
    snap = data.snapshot(ctx)
    uploaded = st.session_state.get("score_results")
    if snap is not None:
        eligible_only = st.checkbox(
            "Eligible customers only (active within the model's eligibility window)",
            value=True,
            key="target_eligible",
        )
        candidates = snap[snap["eligible"]] if eligible_only else snap
        if ctx.store is not None:
            rfm = data.rfm(ctx.store, ctx.events_key)[["customer_id", "segment"]]
            candidates = candidates.merge(rfm.astype({"customer_id": str}), on="customer_id", how="left")
            candidates["segment"] = candidates["segment"].fillna("prospects")
            left, right = st.columns(2)
            present = set(candidates["segment"])
            chosen = left.multiselect(
                "RFM segments (empty: all)", [s for s in SEGMENTS if s in present], key="target_segments"
            )
            bands = right.multiselect(
                "Score bands (empty: all)",
                [b for b in ("high", "medium", "low") if b in set(candidates["band"])],
                key="target_bands",
            )
            if chosen:
                candidates = candidates[candidates["segment"].isin(chosen)]
            if bands:
                candidates = candidates[candidates["band"].isin(bands)]
        where = f"{len(candidates):,} customers of the log scored at {snap.attrs.get('as_of', 'its end')}"
    elif uploaded is not None:
        candidates = uploaded
        where = f"the {len(candidates):,} rows scored on the Score page"
    else:
        candidates = None
        where = ""
        st.info(
            "No customers to target yet: start with an event-trained model and its event log (--events), "
            "or score a file on the Score page first."
        )
    if candidates is not None:
        st.caption(f"Candidates: {where}.")
        clv = data.clv_scores(ctx)
        value_col: str | None = None
        if clv is not None and "customer_id" in candidates.columns:
            by_clv = st.radio(
                "Value of a conversion",
                ["the same for every customer", "each customer's lifetime value (rank by probability × CLV)"],
                horizontal=True,
                key="target_value_mode",
            ).startswith("each")
            if by_clv:
                candidates = data.with_clv(candidates, clv)
                value_col = "clv"
                missing = int(candidates["clv"].isna().sum())
                st.caption(
                    f"CLV from {ctx.sources.clv} over its horizon; {missing:,} candidates without a purchase have no "
                    "CLV and count as worth 0."
                )
        a, b, c, d = st.columns(4)
        mode = a.radio("Budget in", ["contacts", "money"], horizontal=True, key="target_mode")
        value = c.number_input(
            "Value of a conversion",
            min_value=0.0,
            value=40.0,
            step=1.0,
            key="target_value",
            disabled=value_col is not None,
            help="Ignored when ranking by lifetime value." if value_col else None,
        )
        cost = d.number_input("Cost of a contact", min_value=0.0, value=2.0, step=0.5, key="target_cost")
        max_contacts: int | None = None
        budget: float | None = None
        if mode == "contacts":
            limit = b.number_input(
                "Contacts at most",
                min_value=0,
                max_value=max(len(candidates), 1),
                value=min(1000, len(candidates)),
                step=100,
                key="target_contacts",
            )
            max_contacts = int(limit)
        else:
            money = b.number_input(
                "Money to spend", min_value=0.0, value=2000.0, step=100.0, key="target_budget"
            )
            budget = float(money)
        profitable = st.checkbox(
            "Only contact customers worth their cost (probability × value > cost)",
            value=False,
            key="target_profitable",
        )
        plan = plan_contacts(
            candidates,
            value=value,
            cost=cost,
            profitable_only=profitable,
            max_contacts=max_contacts,
            budget=budget,
            value_col=value_col,
        )
        cols = st.columns(5)
        cols[0].metric(
            "Contacts", f"{plan.contacts:,}", f"spend {plan.spend:,.0f}", delta_color="off", delta_arrow="off"
        )
        cols[1].metric(
            "Expected buyers", f"{plan.expected_buyers:,.1f}", f"{plan.extra_buyers:+,.1f} vs random"
        )
        cols[2].metric("Buyers at random", f"{plan.random_buyers:,.1f}")
        cols[3].metric(
            "Expected profit",
            ui.money(plan.expected_profit),
            f"{plan.expected_profit - plan.random_profit:+,.0f} vs random",
        )
        cols[4].metric(
            "Most profitable contacts",
            f"{plan.best_contacts:,}",
            f"profit {plan.best_profit:,.0f}",
            delta_color="off",
            delta_arrow="off",
        )
        limits = {
            "candidates": "every candidate is contacted",
            "max_contacts": "the number of contacts you allowed decides",
            "budget": "the money budget decides",
            "profitability": "beyond this, a contact is worth less than it costs",
        }
        st.caption(
            f"Lowest probability contacted: {ui.pct(plan.min_probability)} — {limits[plan.limited_by]}. "
            f"Expected buyers = sum of the contacted customers' calibrated probabilities; random targeting of as "
            f"many reaches contacts × {plan.base_rate:.1%} (the candidates' mean probability)."
        )
        curve = plan.curve
        fig = go.Figure(
            [
                go.Scatter(
                    x=curve["contacts"],
                    y=curve["profit"],
                    name="by score",
                    line={"color": "#1f6feb", "width": 2},
                ),
                go.Scatter(
                    x=curve["contacts"],
                    y=curve["random_profit"],
                    name="at random",
                    line={"color": "#9aa4ae", "width": 2, "dash": "dot"},
                ),
            ]
        )
        fig.add_vline(x=plan.contacts, line={"color": "#d9480f", "width": 2})
        fig.update_layout(
            title={"text": "Expected profit by number of contacts", "x": 0.01, "font": {"size": 15}},
            template="plotly_white",
            height=360,
            margin={"l": 60, "r": 20, "t": 50, "b": 50},
            legend={"orientation": "h", "x": 0, "y": -0.2},
            xaxis_title="customers contacted (best first)",
            yaxis_title="expected profit",
        )
        ui.chart(fig, key="target_curve")
        keep = [
            c
            for c in (
                "rank",
                "customer_id",
                "id",
                "row",
                "probability",
                "band",
                "segment",
                "p_alive",
                "clv",
                "expected_value",
            )
            if c in plan.selected.columns
        ]
        listing = plan.selected[keep]
        st.download_button(
            f"Download the {plan.contacts:,} customers to contact (CSV)",
            listing.to_csv(index=False).encode(),
            file_name="contacts.csv",
            mime="text/csv",
            key="target_download",
        )
        st.dataframe(listing.head(500), hide_index=True, key="target_table")
