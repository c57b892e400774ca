"""Dashboard and analytics commands: ``propensity dashboard`` and ``propensity analyze``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated

import typer

from propensity.cli._child import run_supervised
from propensity.cli._common import app, err, out, user_errors
from propensity.cli.events import (
    Engine,
    MapCols,
    MapEvents,
    MappingFile,
    OrderLog,
    Returns,
    SessionGap,
    Timezone,
    TsFormat,
    build_mapping,
)


@app.command()
def dashboard(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Bundle folder or models:/ URI (default: the demo's model)."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option("--events", "-e", help="Event or order log, CSV or Parquet (default: the demo's log)."),
    ] = None,
    clv: Annotated[
        str | None,
        typer.Option(
            "--clv",
            help="A lifetime-value bundle (propensity clv): P(alive) and CLV by segment, targeting by probability × CLV.",
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="The live store of `propensity stream` (SQLite): the Live page shows its current scores.",
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8501,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the validated log and scored customers (default: .propensity/dashboard/…)."
        ),
    ] = None,
) -> None:
    """Start the Streamlit dashboard on 127.0.0.1: behaviour, model quality, explanations, targeting, scoring.

    Without --model and --events it shows the outputs of `propensity demo` (make demo).
    """
    from propensity.dashboard import resolve_sources, streamlit_command
    from propensity.errors import ParameterError

    with user_errors():
        if importlib.util.find_spec("streamlit") is None:
            raise ParameterError(
                "The dashboard needs Streamlit and Plotly: pip install 'propensity[dashboard]'."
            )
        if not 1 <= port <= 65535:
            raise ParameterError(f"The --port must be in [1, 65535]. Got {port} instead.")
        sources = resolve_sources(
            model, str(events) if events else None, cache=cache, clv=clv, store=str(store) if store else None
        )
    shown = ", ".join(
        f"{what} {where}"
        for what, where in (
            ("model", sources.model),
            ("events", sources.events),
            ("CLV", sources.clv),
            ("live store", sources.store),
        )
        if where is not None
    )
    out.print(
        f"Dashboard on http://127.0.0.1:{port} ({shown}); the first load validates and scores the log "
        "(cached afterwards). Ctrl-C stops it.",
        highlight=False,
        soft_wrap=True,
    )
    code = run_supervised(streamlit_command(port), {**os.environ, **sources.environ()})
    raise typer.Exit(code=code)


@app.command()
def analyze(
    events: Annotated[Path, typer.Argument(help="Event or order log (CSV or Parquet).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the tables and charts.")] = Path(
        "analytics"
    ),
    model: Annotated[
        str | None,
        typer.Option("--model", help="An event-trained model: adds each RFM segment's predicted propensity."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Cutoff for RFM and scores (default: the end of the data).")
    ] = None,
    charts: Annotated[bool, typer.Option("--charts/--no-charts", help="Also write charts.html.")] = True,
    engine: Engine = "duckdb",
    mapping: MappingFile = None,
    map_cols: MapCols = None,
    map_events: MapEvents = None,
    order_log: OrderLog = None,
    returns: Returns = None,
    timezone: Timezone = None,
    ts_format: TsFormat = None,
    session_gap: SessionGap = None,
) -> None:
    """Shop analytics from an event log: KPIs, activity over time, funnel by device/channel, cohort
    retention and RFM segments, as CSV tables and one self-contained charts.html.

    --engine spark validates the log, computes the tables and (with --model) scores the customers on
    Spark (PROPENSITY_SPARK_MASTER, default local[2]); the tables equal DuckDB's."""
    from propensity.analytics import EventStore, prepare_events, write_analytics
    from propensity.engines import get_engine

    with user_errors(), get_engine(engine) as eng:
        mp = build_mapping(
            mapping, map_cols, map_events, order_log, returns, timezone, ts_format, session_gap
        )
        canonical, report = prepare_events(events, out_dir / "validated", mapping=mp, engine=eng)
        store = EventStore(canonical, engine=eng)
        scores = None
        if model is not None:
            from propensity.workflows.events import customer_scores

            # Scored by the engine's batch scoring (on Spark: on the executors).
            scored = customer_scores(model, canonical, as_of=as_of or store.data_end, engine=eng)
            scores = scored[["customer_id", "probability"]]
        summary = write_analytics(store, out_dir, as_of=as_of, scores=scores, charts=charts)
    k = summary.kpis
    rate = k["conversion_rate"]
    out.print(
        f"Analysed {k['events']:,} valid events ({report.rows_quarantined:,} rows quarantined) of "
        f"{k['customers']:,} customers, {k['first_event'][:10]} .. {k['last_event'][:10]}: {k['sessions']:,} sessions, "
        f"{k['orders']:,} orders, revenue {k['revenue']:,.0f}, session conversion "
        f"{'–' if rate is None else f'{rate:.1%}'}.",
        highlight=False,
        soft_wrap=True,
    )
    segments = ", ".join(f"{name} {n:,}" for name, n in summary.segments.items())
    out.print(f"Segments at {summary.as_of[:10]}: {segments}.", highlight=False, soft_wrap=True)
    out.print(
        f"Written: {out_dir}/ — {', '.join(Path(p).name for p in summary.files.values())} "
        f"(in {summary.seconds:.1f}s; validated log in {out_dir / 'validated'})",
        highlight=False,
        soft_wrap=True,
    )
    if report.rows_quarantined:
        err.print(
            f"{report.rows_quarantined:,} row(s) quarantined → {out_dir / 'validated' / 'quarantine.csv'}",
            style="yellow",
            markup=False,
        )
