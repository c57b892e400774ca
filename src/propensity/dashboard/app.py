"""The dashboard's entry script: ``streamlit run`` this file (``propensity dashboard`` does).

Pages live in ``views/`` (one script each); data loading and caching in
:mod:`propensity.dashboard.data`. The sources come from the environment (see
:mod:`propensity.dashboard`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from propensity.dashboard.data import context

st.set_page_config(page_title="propensity", page_icon=":material/monitoring:", layout="wide")

HERE = Path(__file__).parent
pages = [
    st.Page(
        HERE / "views" / "overview.py",
        title="Overview",
        icon=":material/home:",
        url_path="overview",
        default=True,
    ),
    st.Page(
        HERE / "views" / "behaviour.py",
        title="Behaviour",
        icon=":material/shopping_cart:",
        url_path="behaviour",
    ),
    st.Page(HERE / "views" / "model.py", title="Model", icon=":material/query_stats:", url_path="model"),
    st.Page(
        HERE / "views" / "explain.py", title="Explain", icon=":material/search_insights:", url_path="explain"
    ),
    st.Page(HERE / "views" / "target.py", title="Target", icon=":material/campaign:", url_path="target"),
    st.Page(HERE / "views" / "score.py", title="Score", icon=":material/calculate:", url_path="score"),
    st.Page(
        HERE / "views" / "monitor.py", title="Monitor", icon=":material/monitor_heart:", url_path="monitor"
    ),
    st.Page(HERE / "views" / "live.py", title="Live", icon=":material/stream:", url_path="live"),
]
page = st.navigation(pages)

ctx = context()
with st.sidebar:
    st.caption("**propensity** — who will buy, why, and whom to contact")
    if ctx.model is not None:
        m = ctx.model.manifest
        st.caption(f"Model: `{ctx.sources.model}` — {m.winner}, version {m.model_version}")
    else:
        st.caption("Model: none")
    if ctx.store is not None:
        st.caption(
            f"Events: `{ctx.sources.events}` — {ctx.store.rows:,} valid events, "
            f"{ctx.store.first_event:%Y-%m-%d} .. {ctx.store.last_event:%Y-%m-%d}"
        )
    else:
        st.caption("Events: none")
    if ctx.sources.store:
        st.caption(f"Live store: `{ctx.sources.store}`")
page.run()
