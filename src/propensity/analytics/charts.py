"""Plotly figures drawn from the analytics tables (used by the dashboard and ``propensity analyze``).

Each function takes the table its name says (the output of the matching function in
:mod:`propensity.analytics.tables`) and returns a ``plotly.graph_objects.Figure``; none of
them computes anything the table does not hold.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = [
    "activity_chart",
    "funnel_by_chart",
    "funnel_chart",
    "new_vs_returning_chart",
    "retention_heatmap",
    "segments_chart",
    "write_charts_html",
]

BLUE, ORANGE, GREY, GREEN = "#1f6feb", "#d9480f", "#9aa4ae", "#2f9e44"
_STEP_NAMES = {
    "view": "viewed",
    "add_to_cart": "added to cart",
    "checkout": "checked out",
    "purchase": "purchased",
}
_METRICS = {
    "revenue": ("Revenue", "revenue"),
    "orders": ("Orders", "orders"),
    "sessions": ("Sessions", "sessions"),
    "active_customers": ("Active customers", "customers"),
    "conversion_rate": ("Session conversion rate", "converting sessions / sessions"),
    "buyers": ("Buyers", "customers"),
}


def _layout(fig: go.Figure, title: str, height: int = 360, **extra: Any) -> go.Figure:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "x": 0, "y": -0.18},
        "hovermode": "x unified",
    }
    fig.update_layout(**{**layout, **extra})
    return fig


def activity_chart(activity: pd.DataFrame, metric: str = "revenue", *, freq_label: str = "day") -> go.Figure:
    """One metric of :func:`~propensity.analytics.activity_over_time` per period."""
    import plotly.graph_objects as go

    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {', '.join(_METRICS)}; got {metric!r}")
    title, unit = _METRICS[metric]
    fig = go.Figure(
        go.Scatter(
            x=activity["period"],
            y=activity[metric],
            mode="lines",
            line={"color": BLUE, "width": 2},
            name=title.lower(),
            fill="tozeroy" if metric != "conversion_rate" else None,
            fillcolor="rgba(31,111,235,0.08)",
        )
    )
    _layout(fig, f"{title} per {freq_label}", showlegend=False)
    fig.update_yaxes(
        title_text=unit, rangemode="tozero", tickformat=".0%" if metric == "conversion_rate" else None
    )
    return fig


def new_vs_returning_chart(
    activity: pd.DataFrame, *, what: str = "customers", freq_label: str = "day"
) -> go.Figure:
    """Stacked bars of new and returning active customers (``what="customers"``) or buyers (``"buyers"``)."""
    import plotly.graph_objects as go

    new, ret = (
        ("new_customers", "returning_customers")
        if what == "customers"
        else ("new_buyers", "returning_buyers")
    )
    fig = go.Figure(
        [
            go.Bar(x=activity["period"], y=activity[ret], name=f"returning {what}", marker_color=BLUE),
            go.Bar(x=activity["period"], y=activity[new], name=f"new {what}", marker_color=ORANGE),
        ]
    )
    _layout(fig, f"New vs returning {what} per {freq_label}", barmode="stack", bargap=0.05)
    fig.update_yaxes(title_text=what)
    return fig


def funnel_chart(table: pd.DataFrame) -> go.Figure:
    """The overall funnel of :func:`~propensity.analytics.funnel` (sessions per step, share of the first)."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Funnel(
            y=[_STEP_NAMES.get(s, s) for s in table["step"]],
            x=table["sessions"],
            texttemplate="%{value:,} (%{percentInitial:.0%})",
            textposition="auto",  # inside the wide bars, beside the narrow ones
            hovertemplate="%{y}: %{value:,} sessions, %{percentInitial:.1%} of all, "
            "%{percentPrevious:.1%} of the previous step<extra></extra>",
            marker={"color": [BLUE, "#4c8df6", "#f08c4a", ORANGE][: len(table)]},
            connector={"line": {"color": GREY}},
        )
    )
    return _layout(fig, "Sessions through the funnel", height=340, hovermode="closest")


def funnel_by_chart(table: pd.DataFrame, by: str, *, top: int = 8) -> go.Figure:
    """Share of each group's sessions reaching every step (``funnel(events, by=...)``), one line per group."""
    import plotly.graph_objects as go

    groups = list(dict.fromkeys(table[by]))[:top]
    palette = [BLUE, ORANGE, GREEN, "#ae3ec9", "#f59f00", "#0c8599", "#e64980", "#495057"]
    fig = go.Figure()
    for i, group in enumerate(groups):
        part = table[table[by] == group]
        start = int(part["sessions"].iloc[0])
        fig.add_trace(
            go.Scatter(
                x=[_STEP_NAMES.get(s, s) for s in part["step"]],
                y=part["share_of_start"],
                mode="lines+markers",
                name=f"{group} ({start:,} sessions)",
                line={"color": palette[i % len(palette)], "width": 2},
                customdata=part[["sessions", "drop_off"]].to_numpy(),
                hovertemplate="%{y:.1%} of sessions · %{customdata[0]:,} sessions · drop-off from previous step "
                "%{customdata[1]:.1%}<extra>" + html.escape(str(group)) + "</extra>",
            )
        )
    _layout(fig, f"Funnel by {by}: share of sessions reaching each step", height=360, hovermode="closest")
    fig.update_yaxes(title_text="share of the group's sessions", tickformat=".0%", rangemode="tozero")
    return fig


def retention_heatmap(cohorts: pd.DataFrame) -> go.Figure:
    """Cohort × months-since heatmap of :func:`~propensity.analytics.cohort_retention` (month 0 is 100 %)."""
    import plotly.graph_objects as go

    frame = cohorts.copy()
    frame["label"] = (
        frame["cohort"].dt.strftime("%Y-%m") + " (" + frame["cohort_size"].map("{:,}".format) + ")"
    )
    grid = frame.pivot(index="label", columns="months_since", values="retention").sort_index()
    text = grid.map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
    later = grid.drop(columns=[0], errors="ignore")
    top = float(later.max().max()) if later.size and later.notna().any().any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[str(c) for c in grid.columns],
            y=list(grid.index),
            text=text.to_numpy(),
            texttemplate="%{text}",
            textfont={"size": 10},
            colorscale="Blues",
            zmin=0,
            zmax=max(top, 0.01),  # month 0 is always 100 %: scale the colours to the later months
            colorbar={"title": {"text": "retained"}, "tickformat": ".0%"},
            hovertemplate="cohort %{y}<br>month %{x}: %{z:.1%} purchased again<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    _layout(
        fig,
        "Purchase retention by first-purchase month (cohort size in brackets)",
        height=max(320, 28 * len(grid) + 110),
        hovermode="closest",
    )
    fig.update_xaxes(title_text="months since the first purchase", type="category")
    fig.update_yaxes(title_text="", autorange="reversed")
    return fig


def segments_chart(summary: pd.DataFrame) -> go.Figure:
    """Customers per RFM segment (bars) with revenue share (and mean propensity when scored) as hover text."""
    import plotly.graph_objects as go

    scored = "mean_probability" in summary.columns
    color = summary["mean_probability"] if scored else None
    hover = (
        "%{x}<br>%{y:,} customers<br>revenue share %{customdata[0]:.1%}"
        + ("<br>mean propensity %{customdata[1]:.1%}" if scored else "")
        + "<extra></extra>"
    )
    custom = summary[["revenue_share", "mean_probability"]] if scored else summary[["revenue_share"]]
    fig = go.Figure(
        go.Bar(
            x=summary["segment"],
            y=summary["customers"],
            marker={
                "color": color if scored else BLUE,
                "colorscale": "OrRd" if scored else None,
                "colorbar": {"title": {"text": "mean<br>propensity"}, "tickformat": ".0%"}
                if scored
                else None,
                "showscale": scored,
            },
            text=[f"{s:.0%}" for s in summary["share"]],
            textposition="outside",
            cliponaxis=False,
            customdata=custom.to_numpy(),
            hovertemplate=hover,
        )
    )
    _layout(
        fig,
        "RFM segments: customers" + (" (colour: mean predicted propensity)" if scored else ""),
        height=380,
        hovermode="closest",
        showlegend=False,
    )
    fig.update_yaxes(title_text="customers")
    fig.update_xaxes(tickangle=-25)
    return fig


def write_charts_html(kpis: Mapping[str, Any], tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """One self-contained HTML page (plotly.js embedded once, works offline) with every analytics chart."""
    figures: list[tuple[str, go.Figure]] = [
        ("Revenue", activity_chart(tables["activity_weekly"], "revenue", freq_label="week")),
        ("Conversion", activity_chart(tables["activity_weekly"], "conversion_rate", freq_label="week")),
        ("New vs returning", new_vs_returning_chart(tables["activity_weekly"], freq_label="week")),
        ("Funnel", funnel_chart(tables["funnel"])),
        ("Funnel by device", funnel_by_chart(tables["funnel_by_device"], "device")),
        ("Funnel by channel", funnel_by_chart(tables["funnel_by_channel"], "channel")),
        ("Cohort retention", retention_heatmap(tables["cohort_retention"])),
        ("RFM segments", segments_chart(tables["rfm_segments"])),
    ]
    parts = []
    for i, (_, fig) in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False}))
    rate = kpis.get("conversion_rate")
    headline = (
        f"{kpis['customers']:,} customers · {kpis['sessions']:,} sessions · {kpis['orders']:,} orders · "
        f"revenue {kpis['revenue']:,.0f} · session conversion {'–' if rate is None else f'{rate:.1%}'} · "
        f"{kpis['first_event'][:10]} .. {kpis['last_event'][:10]}"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>propensity analytics</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:24px auto;color:#24292f}"
        "h1{font-size:22px}p{color:#57606a}</style></head><body>"
        f"<h1>Shop analytics</h1><p>{html.escape(headline)}</p>" + "".join(parts) + "</body></html>"
    )
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
