"""Shop analytics for people who want to look, not read JSON: the numbers behind the dashboard's
Overview and Behaviour pages and ``propensity analyze``.

Tables (:mod:`propensity.analytics.tables`, Ibis on the canonical event log, run by DuckDB or Spark): headline KPIs,
activity and conversion over time with new vs returning customers, the session funnel with
drop-off by device or channel, purchase-cohort retention, and RFM segments with their value
and predicted propensity. Charts (:mod:`propensity.analytics.charts`, Plotly, imported lazily)
draw those tables; :func:`write_analytics` writes both to a folder.

Example
-------
>>> from propensity.analytics import EventStore, funnel, rfm_table, segment_summary  # doctest: +SKIP
>>> store = EventStore("data/shop/validated/events.parquet")                       # doctest: +SKIP
>>> segment_summary(rfm_table(store))                                              # doctest: +SKIP
"""

from __future__ import annotations

from propensity.analytics.tables import (
    FUNNEL_STEPS,
    SEGMENTS,
    EventsLike,
    EventStore,
    activity_over_time,
    cohort_retention,
    funnel,
    rfm_table,
    segment_summary,
    summary_kpis,
)
from propensity.analytics.writer import AnalyticsSummary, analytics_tables, prepare_events, write_analytics

__all__ = [
    "FUNNEL_STEPS",
    "SEGMENTS",
    "AnalyticsSummary",
    "EventStore",
    "EventsLike",
    "activity_over_time",
    "analytics_tables",
    "cohort_retention",
    "funnel",
    "prepare_events",
    "rfm_table",
    "segment_summary",
    "summary_kpis",
    "write_analytics",
]
