"""Model: metrics and curves from evaluation.json; a live threshold slider; calibration."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from propensity.dashboard import data, ui
from propensity.report import figures
from propensity.targeting import threshold_view

ctx = data.context()
st.title("Model")
ui.show_problems(ctx)
if ui.need_model(ctx, "model quality") and ctx.model is not None:
    m = ctx.model.manifest
    ev = ctx.evaluation
    st.caption(
        f"{m.winner} predicting {m.task.label_definition or m.task.target} — version {m.model_version}; "
        f"calibration {m.calibration.method}; threshold {m.policy.threshold:.3f} ({m.policy.rationale})."
    )
    if ev is None:
        st.warning(
            "This bundle has no evaluation.json, so there are no curves to show. "
            "Write one with `propensity evaluate MODEL LABELLED_DATA --report report.html`.",
            icon=":material/warning:",
        )
    else:
        names = list(ev["datasets"])
        labels = {"test": "test (held out)", "oof": "out-of-fold (training)", "evaluation": "evaluation"}
        name = st.radio(
            "Data set",
            names,
            index=names.index(ev["main"]),
            format_func=lambda n: labels.get(n, n),
            horizontal=True,
            key="model_dataset",
        )
        ds = ev["datasets"][name]
        view_ev = {**ev, "main": name}
        met = ds["metrics"]
        cols = st.columns(5)
        cols[0].metric("ROC-AUC", "–" if met.get("roc_auc") is None else f"{met['roc_auc']:.3f}")
        cols[1].metric("PR-AUC", "–" if met.get("pr_auc") is None else f"{met['pr_auc']:.3f}")
        cols[2].metric(
            "Lift in top 10 %", "–" if met.get("lift_top10") is None else f"{met['lift_top10']:.2f}×"
        )
        cols[3].metric("Brier", "–" if met.get("brier") is None else f"{met['brier']:.4f}")
        cols[4].metric(
            "Rows", f"{ds['n']:,}", f"{ds['positives']:,} buyers", delta_color="off", delta_arrow="off"
        )
        a, b = st.columns(2)
        with a:
            ui.chart(go.Figure(figures.roc(ev)), key="model_roc")
        with b:
            ui.chart(go.Figure(figures.pr(ev)), key="model_pr")

        st.subheader("Threshold")
        profit = ds.get("profit") or {}
        left, mid, right = st.columns([3, 1, 1])
        threshold = left.slider(
            "Contact everyone with a probability at or above",
            min_value=0.0,
            max_value=1.0,
            value=round(float(m.policy.threshold), 2),
            step=0.01,
            key="model_threshold",
        )
        value = mid.number_input(
            "Value of a conversion", min_value=0.0, value=float(profit.get("value", 10.0)), key="model_value"
        )
        cost = right.number_input(
            "Cost of a contact", min_value=0.0, value=float(profit.get("cost", 1.0)), key="model_cost"
        )
        tv = threshold_view(
            ds["sweep"], n=ds["n"], positives=ds["positives"], threshold=threshold, value=value, cost=cost
        )
        cols = st.columns(5)
        cols[0].metric(
            "Contacted",
            f"{tv.contacted:,}",
            f"{tv.contacted_share:.1%} of rows",
            delta_color="off",
            delta_arrow="off",
        )
        cols[1].metric("Precision", ui.pct(tv.precision))
        cols[2].metric("Recall", ui.pct(tv.recall))
        cols[3].metric("F1", "–" if tv.f1 is None else f"{tv.f1:.3f}")
        cols[4].metric("Expected profit", ui.money(tv.profit))
        c1, c2 = st.columns([1, 2])
        with c1:
            st.caption(f"Confusion matrix at {tv.threshold:.2f} ({labels.get(name, name)})")
            st.dataframe(
                pd.DataFrame(
                    {"contacted": [tv.tp, tv.fp], "not contacted": [tv.fn, tv.tn]},
                    index=["bought", "did not buy"],
                ),
                key="model_confusion",
            )
            st.caption(
                f"Profit = buyers reached × {value:g} − contacts × {cost:g}. "
                f"The model's own threshold is {m.policy.threshold:.3f}."
            )
        with c2:
            sweep = go.Figure(figures.sweep(view_ev))
            sweep.add_vline(x=tv.threshold, line={"color": "#d9480f", "width": 2})
            ui.chart(sweep, key="model_sweep")

        st.subheader("Calibration")
        a, b = st.columns(2)
        with a:
            ui.chart(go.Figure(figures.reliability(view_ev)), key="model_reliability")
        with b:
            ui.chart(go.Figure(figures.score_histogram(view_ev)), key="model_histogram")
        scores = ev["model"].get("calibration_scores") or {}
        if scores:
            st.caption(
                "Cross-fitted out-of-fold log loss by calibration method: "
                + ", ".join(f"{k} {v['log_loss']:.4f}" for k, v in scores.items())
                + f" — chosen: {ev['model']['calibration']}."
            )
        for warning in ev.get("warnings", []):
            st.warning(warning)
