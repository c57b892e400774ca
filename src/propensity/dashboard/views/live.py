"""Live: the scores ``propensity stream`` keeps current — latest customers, counts, distribution, lag, lookup."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from propensity.dashboard import data, ui
from propensity.errors import PropensityError

ctx = data.context()
st.title("Live scores")
ui.show_problems(ctx)

REFRESH_S = 5


def _seconds(delta: Any) -> str:
    return f"{pd.Timedelta(delta).total_seconds():,.0f} s"


def _render(path: str) -> None:
    try:
        view = data.live_view(path)
    except PropensityError as exc:
        st.error(f"The live store '{path}' could not be read: {exc}", icon=":material/warning:")
        return
    frame = view.scores
    st.caption(f"Read {view.read_at:%Y-%m-%d %H:%M:%S} UTC from `{path}`.")
    if frame.empty:
        st.info(
            "The live store has no scores yet: start `propensity stream MODEL --store STORE` and send events "
            "(`propensity replay EVENTS --to redis://…` for the demo shop).",
            icon=":material/info:",
        )
        return
    lag = view.as_of_lag
    cols = st.columns(5)
    cols[0].metric("Events stored", f"{view.events:,}")
    cols[1].metric("Customers scored", f"{len(frame):,}")
    cols[2].metric("To contact", f"{int(frame['decision'].sum()):,}")
    cols[3].metric("Mean probability", ui.pct(float(frame["probability"].mean())))
    cols[4].metric("Median as-of lag", _seconds(lag.median()))
    behind = view.read_at - view.last_scored_at if view.last_scored_at is not None else None
    st.caption(
        f"Latest event {view.watermark}; newest as-of {view.newest_as_of} (event time: the second after the "
        f"latest event). The as-of lag is how far a customer's score is behind the newest as-of (max "
        f"{_seconds(lag.max())}): a customer is re-scored when one of their events arrives."
        + (f" Last scores written {_seconds(behind)} ago." if behind is not None else "")
    )

    left, right = st.columns(2)
    with left:
        fig = px.histogram(
            frame,
            x="probability",
            color="band",
            nbins=40,
            range_x=(0, 1),
            title="Score distribution",
            category_orders={"band": ["high", "medium", "low"]},
        )
        ui.chart(fig, key="live_distribution")
    with right:
        latest = frame.assign(scored_at=pd.to_datetime(frame["scored_at"], utc=True)).sort_values(
            ["scored_at", "probability"], ascending=False
        )
        st.markdown("**Latest scored customers**")
        st.dataframe(
            latest[["customer_id", "probability", "decision", "band", "eligible", "as_of", "scored_at"]].head(
                50
            ),
            hide_index=True,
            column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)},
        )

    st.subheader("Customer lookup")
    wanted = st.text_input("Customer id", key="live_customer").strip()
    if wanted:
        found = frame[frame["customer_id"] == wanted]
        if found.empty:
            st.warning(f"No live score for customer '{wanted}' (no valid event of theirs has been scored).")
        else:
            row = found.iloc[0]
            a, b, c, d = st.columns(4)
            a.metric("Probability", ui.pct(float(row["probability"])))
            b.metric("Decision", "contact" if bool(row["decision"]) else "no contact")
            c.metric("Band", str(row["band"]))
            d.metric("As-of", str(row["as_of"]))
            if row["reasons"]:
                st.markdown("**Reasons:** " + "; ".join(str(r) for r in row["reasons"]))
            features = pd.DataFrame(
                {"feature": list(row["features"]), "value": list(row["features"].values())}
            )
            st.dataframe(features.astype({"value": str}), hide_index=True)


if not ctx.sources.store:
    st.info(
        "No live store is open. Start the stream scorer (`propensity stream MODEL --source redis://… "
        "--store live.db`) and the dashboard with `propensity dashboard --store live.db`.",
        icon=":material/info:",
    )
else:
    store_path = ctx.sources.store
    auto = st.toggle(f"Refresh every {REFRESH_S} s", value=True, key="live_auto")
    st.button("Refresh now", key="live_refresh", icon=":material/refresh:")
    st.fragment(run_every=REFRESH_S if auto else None)(_render)(store_path)
