"""Overview: customers, sessions, orders, revenue; conversion over time; new vs returning."""

from __future__ import annotations

import streamlit as st

from propensity.analytics.charts import activity_chart, new_vs_returning_chart
from propensity.dashboard import data, ui

ctx = data.context()
st.title("Overview")
ui.show_problems(ctx)
if ui.need_events(ctx, "customers, sessions and orders") and ctx.store is not None:
    store, key = ctx.store, ctx.events_key
    k = data.kpis(store, key)
    st.caption(
        f"{k['events']:,} valid events from {k['first_event'][:10]} to {k['last_event'][:10]}"
        + (
            f" ({ctx.validation['rows_quarantined']:,} rows quarantined by validation)"
            if ctx.validation and ctx.validation.get("rows_quarantined")
            else ""
        )
    )
    cols = st.columns(6)
    cols[0].metric("Customers", f"{k['customers']:,}")
    cols[1].metric("Sessions", f"{k['sessions']:,}")
    cols[2].metric("Orders", f"{k['orders']:,}")
    cols[3].metric("Revenue", ui.money(k["revenue"]))
    cols[4].metric("Session conversion", ui.pct(k["conversion_rate"]))
    cols[5].metric("Avg order value", ui.money(k["avg_order_value"]))

    left, right = st.columns([1, 3])
    freq = left.radio("Period", ["day", "week"], index=1, horizontal=True, key="overview_freq")
    metric = right.radio(
        "Show",
        ["conversion_rate", "revenue", "orders", "sessions", "active_customers"],
        format_func=lambda m: m.replace("_", " "),
        horizontal=True,
        key="overview_metric",
    )
    table = data.activity(store, key, freq)
    ui.chart(activity_chart(table, metric, freq_label=freq), key="overview_activity")
    a, b = st.columns(2)
    with a:
        ui.chart(
            new_vs_returning_chart(table, what="customers", freq_label=freq), key="overview_new_customers"
        )
    with b:
        ui.chart(new_vs_returning_chart(table, what="buyers", freq_label=freq), key="overview_new_buyers")
    st.caption(
        "A session converts when it holds a purchase. New customers were first seen in the period; new buyers "
        "made their first purchase in it. Weeks start on Monday; the last period may be partial."
    )
    with st.expander(f"Table ({len(table):,} {freq}s)"):
        st.dataframe(table, hide_index=True)
