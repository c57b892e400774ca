"""Score: a form generated from the manifest for one record; an uploaded CSV/Parquet scored with
reasons and offered for download. Bad input is explained inline, never as a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from propensity.dashboard import data, ui
from propensity.dashboard.uploads import MAX_ROWS, ScoredUpload, read_upload, score_upload
from propensity.errors import PropensityError
from propensity.explain import reason_codes_for
from propensity.manifest import FeatureProfile, FeatureSpec

MISSING = "(missing)"

ctx = data.context()
st.title("Score")
ui.show_problems(ctx)


def _median(spec: FeatureSpec, profile: Mapping[str, FeatureProfile]) -> float | None:
    value = profile[spec.name].quantile("0.5") if spec.name in profile else None
    if value is None:
        return None
    return float(round(value)) if spec.integer else float(value)


def _help(spec: FeatureSpec) -> str:
    parts = [spec.description or spec.name]
    if spec.unit:
        parts.append(f"unit: {spec.unit}")
    if spec.min is not None and spec.max is not None:
        parts.append(f"training range {spec.min:g} … {spec.max:g}")
    parts.append("required" if spec.required else "optional (leave empty: imputed)")
    return "; ".join(parts)


def _field(spec: FeatureSpec, profile: Mapping[str, FeatureProfile]) -> Any:
    key = f"score_field_{spec.name}"
    if spec.role == "numeric":
        return st.number_input(
            spec.name,
            value=_median(spec, profile),
            step=1.0 if spec.integer else None,
            format="%.0f" if spec.integer else "%.4g",
            help=_help(spec),
            key=key,
        )
    if spec.role == "boolean":
        choice = st.selectbox(spec.name, [MISSING, "yes", "no"], help=_help(spec), key=key)
        return None if choice == MISSING else choice
    if spec.role == "categorical":
        levels = [*(spec.categories or []), MISSING]
        choice = st.selectbox(spec.name, levels, help=_help(spec), key=key)
        return None if choice == MISSING else choice
    text = st.text_input(spec.name, help=_help(spec) + " (ISO date, e.g. 2024-05-01)", key=key).strip()
    return text or None


if ui.need_model(ctx, "scoring") and ctx.model is not None:
    model = ctx.model
    m = model.manifest
    specs = m.input_schema.features
    one, many = st.tabs(["One record", "A file"])
    with one:
        st.caption(
            f"The {len(specs)} inputs of the model, generated from its manifest; numbers start at the training "
            "median. Hover over ? for a field's meaning, unit and range."
        )
        with st.form("score_form"):
            cols = st.columns(3)
            record: dict[str, Any] = {}
            for i, spec in enumerate(specs):
                with cols[i % 3]:
                    record[spec.name] = _field(spec, m.profile)
            submitted = st.form_submit_button("Score this record", type="primary")
        if submitted:
            empty = [s.name for s in specs if s.required and record.get(s.name) is None]
            if empty:
                st.error(
                    "Fill in the required field(s): "
                    + ", ".join(empty)
                    + " (the model never saw them missing).",
                    icon=":material/warning:",
                )
            else:
                scores, prepared = model.score_frame(pd.DataFrame([record]))
                if not prepared.good.all():
                    st.error("The record cannot be scored; fix these fields:", icon=":material/warning:")
                    st.dataframe(prepared.quarantine.to_frame(), hide_index=True, key="score_form_problems")
                else:
                    p = float(scores["probability"].iloc[0])
                    cols = st.columns(3)
                    cols[0].metric("Probability", f"{p:.1%}")
                    cols[1].metric("Band", str(scores["band"].iloc[0]))
                    cols[2].metric(
                        "Decision", "contact" if bool(scores["decision"].iloc[0]) else "do not contact"
                    )
                    unknown = [c for c, n in prepared.unknown_categories.items() if n]
                    if unknown:
                        st.warning(f"Unseen categories scored as 'other': {', '.join(unknown)}")
                    st.markdown("**Reasons**")
                    for r in reason_codes_for(model, prepared.features, k=5)[0]:
                        st.markdown(f"- {r.text}")
    with many:
        st.caption(
            "Upload a CSV (any common delimiter, .gz ok) or Parquet table with the model's input columns"
            + (f" and the id column '{model.id_column}'" if model.id_column else "")
            + f" (at most {MAX_ROWS:,} rows here; use `propensity score` for bigger files)."
        )
        upload = st.file_uploader("Table to score", key="score_upload")
        if upload is not None:
            scored: ScoredUpload | None
            try:
                scored = score_upload(model, read_upload(upload.name, upload.getvalue()))
            except PropensityError as exc:
                st.error(f"'{upload.name}' cannot be scored: {exc}", icon=":material/warning:")
                scored = None
            if scored is not None:
                if scored.missing_optional:
                    st.warning(f"Columns absent and imputed: {', '.join(scored.missing_optional)}.")
                if scored.unexpected:
                    st.info(f"Columns the model does not use (ignored): {', '.join(scored.unexpected[:30])}.")
                if scored.unknown_categories:
                    st.warning(f"Unseen categories, scored as 'other' (rows): {scored.unknown_categories}.")
                bad = scored.quarantine
                if len(bad):
                    n_bad = bad["row"].nunique()
                    st.warning(
                        f"{n_bad:,} of {scored.rows_in:,} row(s) cannot be scored and are set aside "
                        "(row 1 is the first data row):",
                        icon=":material/warning:",
                    )
                    st.dataframe(bad.head(1000), hide_index=True, key="score_quarantine")
                    st.download_button(
                        "Download the quarantined rows (CSV)",
                        bad.to_csv(index=False).encode(),
                        file_name=f"{Path(upload.name).stem}.quarantine.csv",
                        key="score_quarantine_download",
                    )
                results = scored.results
                if len(results) == 0:
                    st.error(
                        "No row of the file could be scored (see the table above).", icon=":material/warning:"
                    )
                else:
                    st.session_state["score_results"] = results
                    st.success(
                        f"Scored {len(results):,} rows: {int(results['decision'].sum()):,} to contact "
                        f"(threshold {model.threshold:.3f}). The Target page can now plan contacts for them."
                    )
                    st.download_button(
                        "Download the scores with reasons (CSV)",
                        results.to_csv(index=False).encode(),
                        file_name=f"{Path(upload.name).stem}.scores.csv",
                        mime="text/csv",
                        key="score_download",
                    )
                    st.dataframe(results.head(1000), hide_index=True, key="score_results_table")
