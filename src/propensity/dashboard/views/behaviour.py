"""Behaviour: the session funnel with drop-off by device/channel, cohort retention, RFM segments,
products and categories (by revenue, views, conversion, cart abandonment) and products bought together."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from propensity.analytics import SEGMENTS
from propensity.analytics.charts import funnel_by_chart, funnel_chart, retention_heatmap, segments_chart
from propensity.dashboard import data, ui

#: How the product tables are formatted and labelled.
ITEM_FORMAT = {
    "revenue": "{:,.0f}",
    "units": "{:,.0f}",
    "revenue_share": "{:.1%}",
    "conversion_rate": "{:.1%}",
    "conversion_low": "{:.1%}",
    "abandonment_rate": "{:.1%}",
}
ITEM_LABELS = {
    "revenue_share": "share of revenue",
    "view_buyers": "viewers who bought",
    "conversion_rate": "view → purchase",
    "conversion_low": "(95 % at least)",
    "abandoned": "carters who never bought",
    "abandonment_rate": "cart abandonment",
}
RANKING_NAMES = {
    "revenue": "revenue",
    "views": "views",
    "conversion": "view → purchase conversion",
    "abandonment": "cart abandonment",
}


def _items_table(table: pd.DataFrame, key: str) -> None:
    st.dataframe(
        table.rename(columns=ITEM_LABELS).style.format(
            {ITEM_LABELS.get(k, k): v for k, v in ITEM_FORMAT.items() if k in table.columns}, na_rep="–"
        ),
        hide_index=True,
        key=key,
    )


ctx = data.context()
st.title("Behaviour")
ui.show_problems(ctx)
if ui.need_events(ctx, "the funnel, cohorts and segments") and ctx.store is not None:
    store, key = ctx.store, ctx.events_key
    st.subheader("Funnel")
    overall = data.funnel_table(store, key, None)
    if overall.empty:
        st.info(
            "The log has no view, add-to-cart, checkout or purchase events in sessions: there is no funnel."
        )
    else:
        left, right = st.columns([2, 3])
        with left:
            ui.chart(funnel_chart(overall), key="behaviour_funnel")
        with right:
            by = st.radio("Split by", ["device", "channel"], horizontal=True, key="behaviour_by")
            split = data.funnel_table(store, key, by)
            ui.chart(funnel_by_chart(split, by), key="behaviour_funnel_by")
        shown = split.pivot(index=by, columns="step", values="drop_off")[[s for s in overall["step"][1:]]]
        shown = shown.loc[list(dict.fromkeys(split[by]))]
        st.caption(f"Drop-off from the previous step, by {by} (share of sessions lost at each step):")
        st.dataframe(shown.style.format("{:.1%}"), key="behaviour_dropoff")

    st.subheader("Cohort retention")
    cohort = data.cohorts(store, key)
    if cohort.empty:
        st.info("No purchases in the log: there are no purchase cohorts.")
    else:
        ui.chart(retention_heatmap(cohort), key="behaviour_retention")
        st.caption(
            "Each row is the customers whose first purchase fell in that month; a cell is the share of them "
            "who purchased again that many months later."
        )

    st.subheader("RFM segments")
    rfm = data.rfm(store, key)
    scores = data.snapshot(ctx)
    scores_key = f"{ctx.model.version}" if scores is not None and ctx.model is not None else ""
    clv = data.clv_scores(ctx)
    segment_scores = scores
    if clv is not None:
        segment_scores = clv if scores is None else data.with_clv(scores, clv)
        scores_key += f"|clv:{ctx.sources.clv}"
    summary = data.segments(store, key, segment_scores, scores_key)
    ui.chart(segments_chart(summary), key="behaviour_segments")
    fmt = {
        "share": "{:.1%}",
        "revenue": "{:,.0f}",
        "revenue_share": "{:.1%}",
        "avg_orders": "{:.1f}",
        "avg_recency_days": "{:.0f}",
        "avg_revenue": "{:,.0f}",
        "mean_probability": "{:.1%}",
        "expected_buyers": "{:,.0f}",
        "mean_p_alive": "{:.1%}",
        "likely_alive": "{:.1%}",
        "clv": "{:,.0f}",
    }
    labels = {
        "revenue_share": "revenue share",
        "avg_orders": "orders / customer",
        "avg_recency_days": "days since last order",
        "avg_revenue": "revenue / customer",
        "mean_probability": "mean propensity",
        "expected_buyers": "expected buyers",
        "mean_p_alive": "mean P(alive)",
        "likely_alive": "P(alive) ≥ 50 %",
        "clv": "lifetime value",
    }
    st.dataframe(
        summary.rename(columns=labels).style.format(
            {labels.get(k, k): v for k, v in fmt.items() if k in summary.columns}, na_rep="–"
        ),
        hide_index=True,
        key="behaviour_segment_table",
    )
    events = ctx.model.manifest.events if ctx.model else None
    horizon = events.label.horizon_days if events else None
    st.caption(
        f"Recency, frequency (orders) and monetary value at {store.data_end:%Y-%m-%d}, scored 1–5 among buyers. "
        + (
            f"Mean probability: the model's predicted chance of a purchase in the next {horizon} days."
            if scores is not None
            else "Start with an event-trained --model to see each segment's predicted propensity."
        )
        + (
            " P(alive) and lifetime value: the --clv bundle's BG/NBD and Gamma-Gamma estimates at the same date "
            "(buyers only)."
            if clv is not None
            else ""
        )
    )
    segment = st.selectbox(
        "Customers of a segment", [s for s in SEGMENTS if s in set(rfm["segment"])], key="behaviour_segment"
    )
    members = rfm[rfm["segment"] == segment]
    if scores is not None:
        members = members.merge(scores[["customer_id", "probability", "band"]], on="customer_id", how="left")
        members = members.sort_values("probability", ascending=False)
    members = data.with_clv(members, clv)
    st.dataframe(members.head(500), hide_index=True)

    st.subheader("Products and categories")
    support = int(
        st.number_input(
            "Minimum support: viewers (conversion) or carters (abandonment) an item needs to be ranked by a rate",
            min_value=1,
            value=30,
            step=5,
            key="behaviour_support",
        )
    )
    items = data.products(store, key, support)
    if items is None:
        st.info("The log names no product or category: there are no product tables.")
    else:
        left, right = st.columns(2)
        level = left.radio("Level", ["products", "categories"], horizontal=True, key="behaviour_level")
        choices: list[str] = items.rankings()
        ranking = str(
            right.selectbox(
                "Top by", choices, format_func=lambda r: RANKING_NAMES.get(r, r), key="behaviour_ranking"
            )
        )
        count = int(st.slider("Rows", min_value=5, max_value=100, value=20, step=5, key="behaviour_rows"))
        _items_table(items.top(ranking, level=level, n=count), "behaviour_items")
        for note in items.notes:
            st.caption(note)
        st.caption(
            "A product is bought when a purchase names it, or when it was carted in a session that ended in a "
            "purchase. View → purchase: viewers who bought it; cart abandonment: carters who never bought it "
            "(per customer, over the whole log); '95 % at least' is the Wilson lower bound."
        )
        if items.pairs.empty:
            st.caption(
                "Bought together: no two of the 50 products with the most orders share 10 orders or more."
            )
        else:
            st.markdown(
                "**Bought together** (among the 50 products with the most orders, pairs in at least 10 orders)"
            )
            st.dataframe(
                items.pairs.head(50).style.format(
                    {
                        "support": "{:.2%}",
                        "confidence_a_b": "{:.1%}",
                        "confidence_b_a": "{:.1%}",
                        "lift": "{:.2f}",
                    }
                ),
                hide_index=True,
                key="behaviour_pairs",
            )
            st.caption(
                "confidence_a_b: share of A's orders that also hold B; lift: how many times more often A and B share "
                "an order than if they were unrelated."
            )
