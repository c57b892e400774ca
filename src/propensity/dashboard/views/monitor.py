"""Monitor: has the shop moved away from what the model was trained on?

For a model trained from events, the log is tested at a chosen as-of (features rebuilt there,
the outcome read from the log when the horizon fits); for a table model, an uploaded table is.
The tests and figures are ``propensity monitor``'s: a red/amber/green table per feature, PSI,
score drift with the label-free ROC-AUC estimate (CBPE), realised performance when labels exist.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from propensity.dashboard import data, ui
from propensity.dashboard.uploads import MAX_ROWS, read_upload
from propensity.errors import PropensityError
from propensity.report.monitor import monitor_figures

ICON = {"green": ":material/check_circle:", "amber": ":material/warning:", "red": ":material/error:"}
NO_LABELS = "(none)"
PSI_BARS = 25  # features in the PSI chart (the most drifted; the table lists every one)

ctx = data.context()
st.title("Monitor")
ui.show_problems(ctx)


def _number(value: Any, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def _banner(result: dict[str, Any]) -> None:
    status = result["status"]
    text = {
        "green": "No drift beyond the thresholds: the data looks like the training data.",
        "amber": "Some tests moved past their warning level; keep an eye on them.",
        "red": "Alert: the data moved past a red threshold. Check the features below; retraining may be due.",
    }[status]
    box = {"green": st.success, "amber": st.warning, "red": st.error}[status]
    box(f"**{status.upper()}** — {text}", icon=ICON[status])
    for line in result["alerts"]:
        st.markdown(f"- :red[{line}]")
    for line in result["warnings"]:
        st.markdown(f"- :orange[{line}]")


def _kpis(result: dict[str, Any]) -> None:
    score, perf = result["score"], result["performance"]
    feats = result["features"]
    cols = st.columns(6)
    cols[0].metric("Rows tested", f"{result['data'].get('rows', score.get('rows', 0)):,}")
    cols[1].metric(
        "Features red / amber",
        f"{sum(f['status'] == 'red' for f in feats)} / {sum(f['status'] == 'amber' for f in feats)}",
    )
    cols[2].metric("Score PSI", _number(score.get("psi")))
    rate, ref_rate = score.get("decision_rate"), (score.get("reference") or {}).get("decision_rate")
    cols[3].metric(
        "Contact rate",
        ui.pct(rate),
        delta=None if rate is None or ref_rate is None else f"{(rate - ref_rate) * 100:+.1f} pts vs training",
        delta_color="off",
    )
    estimated = (score.get("estimated") or {}).get("roc_auc")
    ref_auc = (score.get("reference") or {}).get("roc_auc")
    cols[4].metric(
        "Estimated ROC-AUC",
        _number(estimated),
        delta=None if estimated is None or ref_auc is None else f"{estimated - ref_auc:+.3f} vs test",
    )
    realised = (perf or {}).get("roc_auc")
    cols[5].metric(
        "Realised ROC-AUC",
        _number(realised),
        delta=None if realised is None or ref_auc is None else f"{realised - ref_auc:+.3f} vs test",
    )


def _table(result: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {
            "status": f["status"],
            "feature": f["name"],
            "kind": f["role"],
            "PSI": f["psi"],
            "KS": f["ks"],
            "Jensen–Shannon": f["jensen_shannon"],
            "missing (training)": f["missing_reference"],
            "missing (now)": f["missing_current"],
            "mean (training)": f["mean_reference"],
            "mean (now)": f["mean_current"],
            "why": "; ".join(f["reasons"]),
        }
        for f in result["features"]
    ]
    table = pd.DataFrame(rows)
    numbers = ["PSI", "KS", "Jensen–Shannon", "mean (training)", "mean (now)"]
    table[numbers] = table[numbers].apply(pd.to_numeric)  # None (a test that does not apply) as blank
    return table


def _show(result: dict[str, Any]) -> None:
    _banner(result)
    _kpis(result)
    figures = monitor_figures({**result, "features": result["features"][:PSI_BARS]})
    st.subheader("Features")
    st.dataframe(
        _table(result),
        hide_index=True,
        key="monitor_features",
        column_config={
            "PSI": st.column_config.NumberColumn(format="%.3f"),
            "KS": st.column_config.NumberColumn(format="%.3f"),
            "Jensen–Shannon": st.column_config.NumberColumn(format="%.3f"),
            "missing (training)": st.column_config.NumberColumn(format="percent"),
            "missing (now)": st.column_config.NumberColumn(format="percent"),
        },
    )
    left, right = st.columns(2)
    with left:
        ui.chart(go.Figure(figures["psi"]), key="monitor_psi")
    with right:
        if "score" in figures:
            ui.chart(go.Figure(figures["score"]), key="monitor_score")
        else:
            st.info(
                "The model's bundle has no score profile (trained before monitoring existed): no score drift."
            )
    if figures["features"]:
        st.subheader("Most-drifted features: training vs now")
        cols = st.columns(2)
        for i, item in enumerate(figures["features"]):
            with cols[i % 2]:
                ui.chart(go.Figure(item["figure"]), key=f"monitor_{item['id']}")
    perf = result["performance"]
    if perf is not None and perf.get("roc_auc") is not None:
        low, high = perf["roc_auc_interval"]
        st.caption(
            f"With labels ({perf['rows']:,} rows, {perf['positives']:,} positive): ROC-AUC {perf['roc_auc']:.3f} "
            f"(95 % interval {low:.3f}–{high:.3f}), PR-AUC {perf['pr_auc']:.3f}, expected calibration error "
            f"{perf['ece']:.3f}."
        )
    st.caption(
        "PSI: < 0.1 stable, 0.1–0.25 moderate, > 0.25 major (the thresholds are `propensity monitor`'s; "
        "`--threshold psi=A,R` changes them on the command line). The estimated ROC-AUC is what the calibrated "
        "probabilities imply without labels (CBPE)."
    )
    st.download_button(
        "Download monitor.json",
        pd.Series(result).to_json(indent=2, default_handler=str).encode(),
        file_name="monitor.json",
        mime="application/json",
        key="monitor_download",
    )


def _event_page() -> None:
    assert ctx.store is not None and ctx.model is not None
    spec = ctx.model.manifest.events
    horizon = spec.label.horizon_days if spec is not None and spec.label is not None else 0
    first, end = ctx.store.first_event.date(), ctx.store.data_end.date()
    labelled_end = (ctx.store.data_end - pd.Timedelta(days=horizon)).date()
    default = labelled_end if labelled_end > first else end
    st.caption(
        f"The log's customers are rebuilt at the as-of with the scoring code and tested against the training "
        f"profile. Up to {labelled_end} the outcome of the {horizon} days after is in the log, so realised "
        "performance is shown too; later as-ofs have the label-free estimate only."
    )
    as_of = st.date_input("As of", value=default, min_value=first, max_value=end, key="monitor_as_of")
    result = data.monitor_log(ctx, str(as_of))
    if result is None:
        ui.show_problems(ctx)
        return
    _show(result)


def _table_page() -> None:
    assert ctx.model is not None
    st.caption(
        "Upload a table of recent records (CSV or Parquet, the model's input columns; at most "
        f"{MAX_ROWS:,} rows here, `propensity monitor` takes any size) to test it against the training profile. "
        "With an outcome column, realised performance is shown too."
    )
    upload = st.file_uploader("Table to monitor", key="monitor_upload")
    if upload is None:
        return
    try:
        frame = read_upload(upload.name, upload.getvalue())
    except PropensityError as exc:
        st.error(f"'{upload.name}' cannot be monitored: {exc}", icon=":material/warning:")
        return
    target = ctx.model.manifest.task.target
    options = [NO_LABELS, *frame.columns]
    labels = st.selectbox(
        "Outcome column (optional)",
        options,
        index=options.index(target) if target in options else 0,
        key="monitor_labels",
    )
    try:
        result = data.monitor_table(ctx, frame, None if labels == NO_LABELS else labels)
    except PropensityError as exc:
        st.error(f"'{upload.name}' cannot be monitored: {exc}", icon=":material/warning:")
        return
    _show(result)


if ui.need_model(ctx, "drift"):
    if ctx.event_model and ctx.store is not None:
        _event_page()
    elif ctx.event_model:
        ui.need_events(ctx, "drift of an event model (its features are rebuilt from the log)")
    else:
        _table_page()
