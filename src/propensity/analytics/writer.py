"""From a raw log to analytics files: validate once (cached), then write tables and charts."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from propensity.analytics.tables import (
    EventsLike,
    EventStore,
    activity_over_time,
    cohort_retention,
    funnel,
    rfm_table,
    segment_summary,
    summary_kpis,
)
from propensity.events.mapping import MappingLike, as_mapping
from propensity.events.validate import ValidationReport, validate_events

if TYPE_CHECKING:  # pragma: no cover
    from propensity.engines import Engine

__all__ = ["AnalyticsSummary", "analytics_tables", "prepare_events", "write_analytics"]

_STAMP = "source.json"


def _signature(source: Path, mapping: MappingLike) -> dict[str, Any]:
    stat = source.stat()
    return {
        "source": str(source.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "mapping": as_mapping(mapping).describe(),
    }


def prepare_events(
    source: str | Path, out: str | Path, *, mapping: MappingLike = None, engine: str | Engine = "duckdb"
) -> tuple[Path, ValidationReport]:
    """Validate a raw event or order log into ``out/events.parquet`` (canonical events), once.

    The folder also receives ``quarantine.csv`` and ``validation.json`` (as ``propensity
    validate --out``) and a stamp of the source (path, size, modification time, mapping): when
    the stamp matches, the earlier result is reused and nothing is validated again. ``engine``
    validates (``duckdb``, ``spark`` or an open engine; both give the same events).

    Returns
    -------
    (path of the canonical events, ValidationReport)
    """
    source, folder = Path(source), Path(out)
    signature = _signature(source, mapping)
    stamp, events, report_path = folder / _STAMP, folder / "events.parquet", folder / "validation.json"
    if stamp.exists() and events.exists() and report_path.exists():
        try:
            same = json.loads(stamp.read_text()) == signature
            if same:
                return events, ValidationReport(**json.loads(report_path.read_text()))
        except (json.JSONDecodeError, TypeError):
            pass  # an unreadable or older stamp: validate again
    report = validate_events(source, mapping, out=folder, engine=engine)
    stamp.write_text(json.dumps(signature, indent=2))
    return events, report


@dataclass
class AnalyticsSummary:
    """What :func:`write_analytics` wrote."""

    out: str
    kpis: dict[str, Any]
    as_of: str
    files: dict[str, str] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analytics_tables(
    events: EventsLike, *, as_of: Any = None, scores: pd.DataFrame | None = None
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The headline KPIs and every analytics table of :func:`write_analytics`, by name.

    Returns
    -------
    (kpis, tables)
        :func:`~propensity.analytics.summary_kpis`, and ``activity_daily``, ``activity_weekly``,
        ``funnel``, ``funnel_by_device``, ``funnel_by_channel``, ``cohort_retention``,
        ``rfm_customers`` (at ``as_of``) and ``rfm_segments`` (with ``scores`` when given).
    """
    store = events if isinstance(events, EventStore) else EventStore(events)
    tables: dict[str, pd.DataFrame] = {
        "activity_daily": activity_over_time(store, freq="day"),
        "activity_weekly": activity_over_time(store, freq="week"),
        "funnel": funnel(store),
        "funnel_by_device": funnel(store, by="device"),
        "funnel_by_channel": funnel(store, by="channel"),
        "cohort_retention": cohort_retention(store),
    }
    rfm = rfm_table(store, as_of=as_of)
    tables["rfm_customers"] = rfm
    tables["rfm_segments"] = segment_summary(rfm, scores)
    return summary_kpis(store), tables


def write_analytics(
    events: EventsLike,
    out: str | Path,
    *,
    as_of: Any = None,
    scores: pd.DataFrame | None = None,
    charts: bool = True,
) -> AnalyticsSummary:
    """Write every analytics table as CSV (and, with ``charts``, one self-contained ``charts.html``).

    Files: ``kpis.json``, ``activity_daily.csv``, ``activity_weekly.csv``, ``funnel.csv``,
    ``funnel_by_device.csv``, ``funnel_by_channel.csv``, ``cohort_retention.csv``,
    ``rfm_customers.csv``, ``rfm_segments.csv`` and ``summary.json``.

    Parameters
    ----------
    events
        Canonical events (see :class:`~propensity.analytics.EventStore`; pass a store to choose
        the engine that computes the tables).
    out
        Folder (created).
    as_of
        Cutoff of the RFM table (default: the end of the data).
    scores
        Optional ``customer_id``/``probability`` table: adds predicted propensity to the segments.
    charts
        Also write ``charts.html`` (needs plotly).
    """
    started = time.perf_counter()
    store = events if isinstance(events, EventStore) else EventStore(events)
    kpis, tables = analytics_tables(store, as_of=as_of, scores=scores)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    (folder / "kpis.json").write_text(json.dumps(kpis, indent=2))
    files["kpis"] = str(folder / "kpis.json")
    for name, table in tables.items():
        path = folder / f"{name}.csv"
        table.to_csv(path, index=False)
        files[name] = str(path)
    if charts:
        from propensity.analytics.charts import write_charts_html

        path = write_charts_html(kpis, tables, folder / "charts.html")
        files["charts"] = str(path)
    summary = AnalyticsSummary(
        out=str(folder),
        kpis=kpis,
        as_of=str(pd.Timestamp(as_of) if as_of is not None else store.data_end),
        files=files,
        segments=dict(
            zip(
                tables["rfm_segments"]["segment"],
                tables["rfm_segments"]["customers"].astype(int),
                strict=True,
            )
        ),
        seconds=round(time.perf_counter() - started, 3),
    )
    (folder / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2, default=str))
    summary.files["summary"] = str(folder / "summary.json")
    return summary
