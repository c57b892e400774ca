"""Small helpers the pages share: messages for missing sources, number formatting, charts."""

from __future__ import annotations

from typing import Any

import streamlit as st

from propensity.dashboard.data import Context

__all__ = ["chart", "money", "need_events", "need_model", "pct", "show_problems"]

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def show_problems(ctx: Context) -> None:
    for problem in ctx.problems:
        st.error(problem, icon=":material/warning:")


def need_model(ctx: Context, what: str) -> bool:
    """``True`` when a model is loaded; else explain what the page needs and return ``False``."""
    if ctx.model is not None:
        return True
    st.info(
        f"No model is loaded, so there is nothing to show about {what}. Start the dashboard with "
        "`propensity dashboard --model MODEL` (a bundle folder or a models:/ URI), or run `make demo` "
        "and start it without arguments.",
        icon=":material/info:",
    )
    return False


def need_events(ctx: Context, what: str) -> bool:
    """``True`` when an event log is loaded; else explain what the page needs and return ``False``."""
    if ctx.store is not None:
        return True
    st.info(
        f"No event log is loaded, so there is nothing to show about {what}. Start the dashboard with "
        "`propensity dashboard --events EVENTS` (an event or order log, CSV or Parquet).",
        icon=":material/info:",
    )
    return False


def pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}%}"


def money(value: Any) -> str:
    return "–" if value is None or value != value else f"{value:,.0f}"


def chart(fig: Any, key: str | None = None) -> None:
    st.plotly_chart(fig, config=PLOTLY_CONFIG, key=key)
