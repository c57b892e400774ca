"""Explain: global importance; pick or search a customer → score, band, waterfall and reason codes."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from propensity.dashboard import data, ui
from propensity.evaluation import customer_example
from propensity.explain import reason_codes_for
from propensity.report import figures

ctx = data.context()
st.title("Explain")
ui.show_problems(ctx)
if ui.need_model(ctx, "explanations") and ctx.model is not None:
    model = ctx.model
    ev = ctx.evaluation
    left, right = st.columns([2, 3])
    with left:
        fig = figures.importance(ev) if ev else None
        if fig is not None and ev is not None:
            ui.chart(go.Figure(fig), key="explain_importance")
            st.caption(
                f"Mean absolute contribution on {ev['explanations']['sample_rows']:,} rows ({ev['explanations']['space']})."
            )
        else:
            why = (ev or {}).get("explanations", {}).get("error", "no evaluation.json in the bundle")
            st.info(f"No global importance to show: {why}.")
    with right:
        snap = data.snapshot(ctx)
        example: dict | None = None
        typed: pd.DataFrame | None = None
        if snap is not None:
            st.caption(
                f"{len(snap):,} customers scored at {snap.attrs.get('as_of', 'the end of the log')}; "
                "type part of an id to search, highest scores first."
            )
            search = st.text_input("Search a customer id", key="explain_search").strip()
            pool = (
                snap
                if not search
                else snap[snap["customer_id"].str.contains(search, case=False, regex=False)]
            )
            if pool.empty:
                st.warning(f"No customer id contains '{search}'.")
            else:
                options = pool["customer_id"].head(1000).tolist()
                labels = dict(zip(pool["customer_id"], pool["probability"], strict=False))
                picked = st.selectbox(
                    "Customer",
                    options,
                    format_func=lambda c: f"{c} — {labels[c]:.1%}",
                    key="explain_customer",
                )
                row = snap[snap["customer_id"] == picked].head(1)
                prepared = model.prepare(row[model.features])
                typed = prepared.features
                example = customer_example(model, typed, ident=picked)
        elif ev and ev.get("explanations", {}).get("examples"):
            examples = {f"{e['kind']}: {e['id']}": e for e in ev["explanations"]["examples"]}
            st.caption(
                "No event log with this model: pick one of the example customers of the evaluation "
                "(or score your own on the Score page)."
            )
            choice = st.selectbox("Customer", list(examples), key="explain_example")
            example = examples[choice]
        else:
            st.info("No customers to explain: start with an event log (--events) or use the Score page.")
        if example is not None:
            cols = st.columns(3)
            cols[0].metric("Probability", f"{example['probability']:.1%}")
            cols[1].metric("Band", str(example["band"]))
            cols[2].metric("Decision", "contact" if example["decision"] else "do not contact")
            waterfall = go.Figure(figures.waterfall(example))
            waterfall.update_xaxes(title_text="log-odds (red: towards buying, blue: away)")
            ui.chart(waterfall, key="explain_waterfall")
            if typed is not None:
                reasons = reason_codes_for(model, typed, k=5)[0]
                st.markdown("**Reason codes**")
                for r in reasons:
                    st.markdown(f"- {r.text}")
            else:
                st.markdown("**Strongest contributions**")
                for c in example["contributions"][:5]:
                    st.markdown(f"- {c['text']}")
            st.caption("Contributions are log-odds before calibration: red pushes towards buying, blue away.")
